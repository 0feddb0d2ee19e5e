"""Connections: one engine per database per process, sessions and steps, and migrations.

The database, not Redis, is the record of every URL (the tables are in ``models``). Works on
PostgreSQL (deployment) and SQLite (embedded default); an outage surfaces as DatabaseUnavailable.
"""

from __future__ import annotations

import contextlib
import json
import zlib
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, CursorResult, Engine, Result
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from workers.core.errors import DatabaseUnavailable
from workers.core.settings import get_settings
from workers.storage.models import Base


def insert_unless_exists(session: Session, model: type[Base], key: str, **values) -> int | None:
    """``INSERT … ON CONFLICT (key) DO NOTHING`` on either database; the new row's id, or None if it existed."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(model).values(**values).on_conflict_do_nothing(index_elements=[key]).returning(model.__table__.c.id)
    )
    return session.execute(statement).scalar()


def rowcount(result: Result) -> int:
    """The rows an UPDATE matched (``Session.execute`` types every result as a Result; an UPDATE's has a count)."""
    assert isinstance(result, CursorResult)
    return result.rowcount


def pack(data: dict) -> bytes:
    """Compressed JSON for ``urls.payload``: a 100 KB page shrinks about fivefold."""
    return zlib.compress(json.dumps(data, ensure_ascii=False).encode("utf-8"), 1)


def unpack(blob: bytes) -> dict:
    return json.loads(zlib.decompress(blob).decode("utf-8"))


_engines: dict[tuple[str, bool], Engine] = {}


def get_engine(database_url: str | None = None, durable: bool = True) -> Engine:
    """One engine per URL per process; SQLite gets WAL and a busy timeout so several workers can write.

    ``durable=False`` (stage tasks) commits without waiting for the disk: on PostgreSQL without the
    WAL flush (``synchronous_commit=off``), on SQLite without the fsync of every commit
    (``synchronous=NORMAL`` in WAL mode: a killed process loses nothing, only a power cut may lose
    the last commits). Measured here, that fsync was two thirds of a hop's ledger work (15 ms of a
    page's claim + move, 5 ms without it). Every ledger move is idempotent and the reconciler resumes
    a URL from whatever state survived, so a crash can only make a stage run again. Pushes stay
    durable: the user was told "accepted".
    """
    url = database_url or get_settings().database_url
    key = (url, durable)
    if key not in _engines:
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas if durable else _sqlite_pragmas_without_fsync)
        else:
            # A fetch worker runs MIRSAD_FETCH_CONCURRENCY threads; none should wait for a connection.
            # No pre-ping (a round trip per transaction): a dropped connection surfaces as
            # DatabaseUnavailable, the pool is invalidated, and the task retries on a fresh one.
            engine = create_engine(
                url,
                pool_size=5,
                max_overflow=max(5, get_settings().fetch_concurrency),
                connect_args={} if durable else {"options": "-c synchronous_commit=off"},
            )
        _engines[key] = engine
    return _engines[key]


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Debian's SQLite zeroes every freed page (secure_delete=ON), so each hop that replaces a page's
    # compressed HTML wrote its pages once more; FAST zeroes only what costs no extra write.
    cursor.execute("PRAGMA secure_delete=FAST")
    cursor.close()


def _sqlite_pragmas_without_fsync(dbapi_connection, record) -> None:
    _sqlite_pragmas(dbapi_connection, record)
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


def forget_engines() -> None:
    """Drop pooled connections inherited across fork (each worker process opens its own)."""
    for engine in _engines.values():
        engine.dispose(close=False)
    _engines.clear()
    _sessionmakers.clear()


_sessionmakers: dict[Engine, sessionmaker] = {}


@contextlib.contextmanager
def session_scope(database_url: str | None = None, durable: bool = True) -> Iterator[Session]:
    """A transaction: commits on success, rolls back on error; "database down" becomes DatabaseUnavailable."""
    engine = get_engine(database_url, durable)
    maker = _sessionmakers.get(engine)
    if maker is None:
        maker = _sessionmakers[engine] = sessionmaker(bind=engine, expire_on_commit=False)
    with _unavailable_as_retryable(), maker.begin() as session:
        yield session


@contextlib.contextmanager
def step_scope(database_url: str | None = None) -> Iterator[Connection]:
    """A connection for one ledger step of a stage task: autocommit on PostgreSQL, where every step is
    a single statement (no BEGIN/COMMIT round trips), a short transaction on SQLite."""
    engine = get_engine(database_url, durable=False)
    with _unavailable_as_retryable():
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                yield connection
        else:
            with engine.begin() as connection:
                yield connection


@contextlib.contextmanager
def _unavailable_as_retryable() -> Iterator[None]:
    try:
        yield
    except OperationalError as exc:
        if _is_connection_problem(exc):
            raise DatabaseUnavailable(f"database unavailable: {exc.orig}") from exc
        raise


def _is_connection_problem(exc: DBAPIError) -> bool:
    """Connection exceptions (SQLSTATE 08…) and a server shutting down or starting up (57P01–57P03) included."""
    sqlstate = getattr(exc.orig, "sqlstate", None) or ""
    return (
        exc.connection_invalidated
        or sqlstate.startswith(("08", "57P"))
        or "could not connect" in str(exc.orig)
        or "locked" in str(exc.orig)
        or "terminating connection" in str(exc.orig)
        or "server closed" in str(exc.orig)
        or "Connection refused" in str(exc.orig)
        or "the database system is" in str(exc.orig)
    )


def alembic_config(database_url: str | None = None):
    """Alembic's configuration for ``database_url`` (default: the setting), with the scripts shipped in the package."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.set_main_option("sqlalchemy.url", (database_url or get_settings().database_url).replace("%", "%%"))
    return config


def migrate(database_url: str | None = None) -> None:
    """Bring the schema to the newest Alembic revision (safe to run on every start)."""
    from alembic import command

    command.upgrade(alembic_config(database_url), "head")


def schema_revisions(database_url: str | None = None) -> tuple[str | None, str]:
    """(the database's Alembic revision, None when it was never migrated; the newest revision of the code)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    with _unavailable_as_retryable(), get_engine(database_url).connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    return current, head or ""
