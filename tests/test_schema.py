"""One schema: the models module and the Alembic migrations describe the same tables, on both databases."""

from __future__ import annotations

from alembic import command

from workers.storage.db import alembic_config
from workers.storage.models import Base


def test_migrations_match_the_models(database_url):
    """``alembic check``: a freshly migrated database has no pending autogenerate change."""
    command.check(alembic_config(database_url))


def test_every_table_lives_in_the_models_module():
    modules = {table.name: mapper.class_.__module__ for mapper in Base.registry.mappers for table in mapper.tables}
    assert set(modules.values()) == {"workers.storage.models"}
    assert set(modules) == set(Base.metadata.tables)
