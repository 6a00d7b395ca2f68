"""Alembic environment: migrations run against the configured database."""

from alembic import context
from sqlalchemy import Connection

from records.core.config import get_settings
from records.core.db import make_engine
from records.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    # Batch mode lets ALTER work on SQLite, which cannot alter columns in place.
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run migrations with a live connection."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    settings = config.attributes.get("settings") or get_settings()
    engine = make_engine(settings)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


run_migrations_online()
