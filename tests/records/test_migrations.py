"""Alembic migrations: upgrade from empty matches the models; downgrade removes everything."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from records.cli import downgrade, migrate
from records.core.db import make_engine
from records.models import Base
from tests.conftest import make_settings


def test_upgrade_from_empty_matches_models_and_downgrade_empties(database_url: str) -> None:
    settings = make_settings(database_url)
    migrate(settings)
    engine = make_engine(settings)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
        downgrade(settings, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        migrate(settings)
        assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
