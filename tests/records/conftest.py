"""Fixtures for the records backend: an app on a fresh database, clients, a manual clock."""

from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from records.core.clock import ManualClock
from records.core.config import Settings
from records.core.security import hash_password
from records.main import create_app
from records.models import Base, StaffRole, StaffUser
from tests.conftest import T0, make_settings
from tests.records.factories import World, build_world

STAFF_PASSWORD = "correct horse battery staple"


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Settings for a fresh database."""
    return make_settings(database_url)


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when a test says so."""
    return ManualClock(T0)


@pytest.fixture
def app(settings: Settings, clock: ManualClock) -> Iterator[FastAPI]:
    """The records app with its schema created."""
    application = create_app(settings, clock=clock, background_jobs=False)
    Base.metadata.create_all(application.state.engine)
    yield application
    application.state.engine.dispose()
    application.state.read_engine.dispose()


@pytest.fixture
def session(app: FastAPI) -> Iterator[Session]:
    """A session on the app's database, for arranging and checking records."""
    with app.state.session_factory() as db:
        yield db


@pytest.fixture
def world(session: Session) -> World:
    """A small community: buildings, units, households, residents, staff."""
    return build_world(session, password_hash=hash_password(STAFF_PASSWORD))


@pytest.fixture
def client(app: FastAPI, settings: Settings) -> Iterator[TestClient]:
    """A client holding the service token."""
    with TestClient(app, headers={"Authorization": f"Bearer {settings.service_token}"}) as c:
        yield c


@pytest.fixture
def anonymous(app: FastAPI) -> Iterator[TestClient]:
    """A client with no credentials."""
    with TestClient(app) as c:
        yield c


@pytest.fixture
def staff_client(app: FastAPI, world: World) -> Iterator[Callable[[StaffRole], TestClient]]:
    """Clients signed in as a staff user of a given role."""
    clients: list[TestClient] = []

    def login(role: StaffRole) -> TestClient:
        staff: StaffUser = world.staff[role]
        c = TestClient(app)
        clients.append(c)
        response = c.post(
            "/api/v1/auth/login", json={"username": staff.username, "password": STAFF_PASSWORD}
        )
        assert response.status_code == 200, response.text
        return c

    yield login
    for c in clients:
        c.close()
