"""Shared test fixtures: both databases, a dedicated Redis database, and an isolated environment.

Tests talk to the real PostgreSQL and Redis of the machine (`.ci/run` starts
them). The Redis database and the PostgreSQL database are the tests' own, so
a developer's data is never touched.
"""

from __future__ import annotations

import os
import tempfile
import uuid

_TMP = tempfile.mkdtemp(prefix="mirsad-tests-")
os.environ["MIRSAD_REDIS_URL"] = os.environ.get("MIRSAD_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ["MIRSAD_DATABASE_URL"] = f"sqlite:///{_TMP}/default.db"
os.environ["MIRSAD_ALLOW_PRIVATE_HOSTS"] = "127.0.0.0/8"

import psycopg  # noqa: E402
import pytest  # noqa: E402
from sqlalchemy import text  # noqa: E402

from workers.db import forget_engines, get_engine, migrate  # noqa: E402

PG_ADMIN = os.environ.get("MIRSAD_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def tmp_root() -> str:
    return _TMP


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL database, migrated once, dropped at the end."""
    name = f"mirsad_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.replace("postgresql://", "postgresql+psycopg://").rsplit("/", 1)[0] + f"/{name}"
    migrate(url)
    yield url
    forget_engines()
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """An empty, migrated database of each kind."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/mirsad.db"
        migrate(url)
        return url
    url = request.getfixturevalue("postgres_url")
    with get_engine(url).begin() as connection:
        connection.execute(text("TRUNCATE url_events, tags, urls, items RESTART IDENTITY CASCADE"))
    return url
