"""Alembic environment: the database URL comes from Mirsad's settings unless the caller set one."""

from alembic import context
from sqlalchemy import pool

from workers.storage.db import get_engine
from workers.storage.models import Base

config = context.config
target_metadata = Base.metadata


def include_name(name, type_, _parent_names) -> bool:
    """SQLite's FTS5 table and its shadow tables (migration 0005) are not in the models: leave them out."""
    return not (type_ == "table" and name is not None and name.startswith("search_fts"))


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = get_engine(config.get_main_option("sqlalchemy.url") or None)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=True,
            poolclass=pool.NullPool,
            include_name=include_name,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
