"""Shared test fixtures: both databases, a dedicated Redis database, and an isolated environment.

Tests talk to the real PostgreSQL and Redis of the machine (`.ci/run` starts
them). The Redis database (MIRSAD_TEST_REDIS_URL), the PostgreSQL database and
the config/ folder (a copy, following no source) are the tests' own, so a
developer's data, queues and configuration are never touched.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path


def _test_redis_url() -> str:
    """``MIRSAD_TEST_REDIS_URL`` (default database 15); under pytest-xdist, worker N takes the database N
    below it, so that two workers' stacks never take each other's tasks."""
    base = os.environ.get("MIRSAD_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    server, database = base.rsplit("/", 1)
    return f"{server}/{int(database) - worker}"


def _test_config(root: str) -> Path:
    """A copy of the project's config/ for the whole run, following no source: the user's own feeds are
    never polled by the tests' beat, and no test reads or edits the project's files."""
    copy = Path(shutil.copytree(Path(__file__).resolve().parents[1] / "config", Path(root) / "config"))
    sources = copy / "sources.yaml"
    header = "".join(
        line for line in sources.read_text(encoding="utf-8").splitlines(keepends=True) if line.startswith("#")
    )
    sources.write_text(f"{header}sources: []\n", encoding="utf-8")
    return copy


_TMP = tempfile.mkdtemp(prefix="mirsad-tests-")
TEST_CONFIG = _test_config(_TMP)
os.environ["MIRSAD_CONFIG_DIR"] = str(TEST_CONFIG)
os.environ["MIRSAD_REDIS_URL"] = _test_redis_url()
os.environ["MIRSAD_DATABASE_URL"] = f"sqlite:///{_TMP}/default.db"
os.environ["MIRSAD_ALLOW_PRIVATE_HOSTS"] = "127.0.0.0/8"
# Every stack a test starts runs the API; on port 0 each takes a free port, so stacks of parallel runs never collide.
os.environ["MIRSAD_API_PORT"] = "0"

import psycopg  # noqa: E402
import pytest  # noqa: E402
import redis  # noqa: E402
from sqlalchemy import text  # noqa: E402

from tests.stack_helpers import FAST_RECOVERY, free_port  # noqa: E402
from workers.runtime.stack import Stack  # noqa: E402
from workers.storage.db import forget_engines, get_engine, migrate  # noqa: E402
from workers.storage.models import Base  # noqa: E402

PG_ADMIN = os.environ.get("MIRSAD_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")


# The fault suite takes longest: run it first, so that under pytest-xdist (deploy/native test) the other
# worker takes every other module meanwhile instead of the fault suite starting last and running alone.
FIRST_MODULES = ("test_faults.py",)


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.path.name not in FIRST_MODULES)  # stable: the rest keep their order


@pytest.fixture
def config_copy(tmp_path):
    """A copy of config/ for a test to edit (point MIRSAD_CONFIG_DIR at it for the code that reads settings)."""
    return Path(shutil.copytree(TEST_CONFIG, tmp_path / "config"))


@pytest.fixture(scope="session")
def tmp_root() -> str:
    return _TMP


def create_postgres_database(prefix: str) -> tuple[str, str]:
    """A new empty PostgreSQL database: (its name, its SQLAlchemy URL); drop it with ``drop_postgres_database``."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return name, PG_ADMIN.replace("postgresql://", "postgresql+psycopg://").rsplit("/", 1)[0] + f"/{name}"


def drop_postgres_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL database, migrated once, dropped at the end."""
    name, url = create_postgres_database("mirsad_test")
    migrate(url)
    yield url
    forget_engines()
    drop_postgres_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """An empty, migrated database of each kind."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/mirsad.db"
        migrate(url)
        return url
    url = request.getfixturevalue("postgres_url")
    with get_engine(url).begin() as connection:
        tables = ", ".join(table.name for table in Base.metadata.sorted_tables)  # every table, new ones too
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    return url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stack(request, tmp_path_factory):
    """Real workers and beat on a fresh database of each kind; yields (database_url, env, Stack, log file).

    The tests' Redis database is emptied first, so queues left by an earlier module do not leak in.
    """
    if request.param == "sqlite":
        database_url = f"sqlite:///{tmp_path_factory.mktemp('e2e')}/mirsad.db"
    else:
        name, database_url = create_postgres_database("mirsad_e2e")
    migrate(database_url)
    redis.Redis.from_url(os.environ["MIRSAD_REDIS_URL"]).flushdb()
    # The stack's API on a port of its own: stacks of other test runs on this machine may be up at once.
    # A module may add settings of its own to the stack's (STACK_ENV, a dict at module level).
    extra = getattr(request.module, "STACK_ENV", {})
    env = {**FAST_RECOVERY, **extra, "MIRSAD_DATABASE_URL": database_url, "MIRSAD_API_PORT": str(free_port())}
    log_path = tmp_path_factory.mktemp("logs") / f"stack-{request.param}.log"
    with open(log_path, "ab") as log_file:
        running = Stack(env=env, log_file=log_file).start()
        yield database_url, env, running, log_file
        running.stop(grace=10)
    forget_engines()
    if request.param == "postgresql":
        drop_postgres_database(name)
