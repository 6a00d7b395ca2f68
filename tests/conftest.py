"""Shared fixtures: settings with fresh secrets, databases on SQLite and PostgreSQL, and the
running dialogue stack (records, actions, Rasa) for end-to-end tests of every channel."""

import base64
import os
import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from records.core.config import Settings
from tests.e2e.stack import Stack, running_stack, trained_model

# PostgreSQL server used for the second backend; these machines and CI run one with trust auth.
PG_ADMIN_URL = os.environ.get(
    "LINLI_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
# 10:00 in Shanghai on a Monday: a fixed, readable "now" for rule tests.
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def make_settings(database_url: str, **overrides: object) -> Settings:
    """Settings with fresh random secrets, as setup would write them."""
    values: dict[str, object] = {
        "database_url": database_url,
        "service_token": secrets.token_urlsafe(32),
        "secret_key": secrets.token_urlsafe(32),
        "field_encryption_key": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "blind_index_key": secrets.token_urlsafe(32),
        "demo_staff_password": "demo-" + secrets.token_urlsafe(8),
        "escalation_interval_seconds": 3600,
        **overrides,
    }
    return Settings.model_validate(values)


def _pg_reachable() -> bool:
    try:
        engine = create_engine(PG_ADMIN_URL)
        with engine.connect():
            pass
        engine.dispose()
    except OperationalError:
        return False
    return True


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str | None]:
    """The PostgreSQL admin URL, or None where none runs (CI insists on one)."""
    if _pg_reachable():
        yield PG_ADMIN_URL
    elif os.environ.get("CI"):
        pytest.fail(f"CI must test PostgreSQL too, but none answers at {PG_ADMIN_URL}")
    else:
        yield None


def _create_pg_database(admin_url: str) -> tuple[str, str]:
    name = f"linli_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return name, admin_url.rsplit("/", 1)[0] + "/" + name


def _drop_pg_database(admin_url: str, name: str) -> None:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'records.db'}"
        return
    admin_url = request.getfixturevalue("pg_server")
    if admin_url is None:
        pytest.skip("no PostgreSQL reachable")
    name, url = _create_pg_database(admin_url)
    try:
        yield url
    finally:
        _drop_pg_database(admin_url, name)


@pytest.fixture(scope="session")
def model() -> Path:
    """The trained model for the current bot and NLU data."""
    return trained_model()


@pytest.fixture(scope="session")
def stack(model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The real services (records, actions, Rasa), started once per test session."""
    with running_stack(tmp_path_factory.mktemp("stack"), model) as running:
        yield running
