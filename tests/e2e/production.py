"""Rasa's production stores for tests and benchmarks: a fresh PostgreSQL tracker database, Redis."""

import socket
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager

from sqlalchemy import create_engine, text

from tests.conftest import PG_ADMIN_URL
from tests.e2e.stack import Stack, free_port, rasa_server

REDIS_DB = 7


def redis_reachable() -> bool:
    """Whether Redis answers on its default port."""
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


@contextmanager
def tracker_database() -> Iterator[str]:
    """A fresh PostgreSQL database for Rasa's tracker store, dropped afterwards."""
    name = f"linli_tracker_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def production_env(env: Mapping[str, str], database: str) -> dict[str, str]:
    """The stack's environment with Rasa pointed at the tracker database and Redis."""
    return {
        **env,
        "RASA_TRACKER_DB_HOST": "127.0.0.1",
        "RASA_TRACKER_DB_PORT": "5432",
        "RASA_TRACKER_DB": database,
        "RASA_TRACKER_DB_USER": "postgres",
        "RASA_TRACKER_DB_PASSWORD": "",
        "RASA_REDIS_HOST": "127.0.0.1",
        "RASA_REDIS_PORT": "6379",
        "RASA_REDIS_DB": str(REDIS_DB),
    }


def tracker_event_count(database: str) -> int:
    """How many events Rasa stored in the tracker database."""
    engine = create_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + database)
    try:
        with engine.connect() as conn:
            count: int = conn.execute(text("SELECT count(*) FROM events")).scalar_one()
            return count
    finally:
        engine.dispose()


@contextmanager
def production_replicas(stack: Stack, database: str, replicas: int) -> Iterator[list[str]]:
    """`replicas` Rasa servers on the tracker database and Redis, beside `stack`; their URLs."""
    env = production_env(stack.env, database)
    ports = [free_port() for _ in range(replicas)]
    with ExitStack() as running:
        for i, port in enumerate(ports):
            running.enter_context(
                rasa_server(
                    f"rasa-replica-{i}",
                    stack.model,
                    port,
                    env=env,
                    actions_url=stack.actions_url,
                    logs=stack.logs,
                    endpoints="endpoints.production.yml",
                )
            )
        yield [f"http://127.0.0.1:{port}" for port in ports]
