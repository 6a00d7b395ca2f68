"""Production path: Rasa replicas sharing a PostgreSQL tracker store and a Redis lock store."""

import os
import socket
import subprocess
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import PG_ADMIN_URL
from tests.e2e.stack import Stack, free_port, rasa_server

REDIS_DB = 7


def _redis_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def tracker_database() -> Iterator[str]:
    """A fresh PostgreSQL database for Rasa's tracker store (Redis must answer too)."""
    if not _redis_reachable():
        if os.environ.get("CI"):
            pytest.fail("CI must test the Redis lock store, but no Redis answers on 6379")
        pytest.skip("no Redis")
    name = f"linli_tracker_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no PostgreSQL: {exc}")
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_two_replicas_continue_one_conversation(stack: Stack, tracker_database: str) -> None:
    env = {
        **stack.env,
        "RASA_TRACKER_DB_HOST": "127.0.0.1",
        "RASA_TRACKER_DB_PORT": "5432",
        "RASA_TRACKER_DB": tracker_database,
        "RASA_TRACKER_DB_USER": "postgres",
        "RASA_TRACKER_DB_PASSWORD": "",
        "RASA_REDIS_HOST": "127.0.0.1",
        "RASA_REDIS_PORT": "6379",
        "RASA_REDIS_DB": str(REDIS_DB),
    }
    ports = [free_port(), free_port()]
    servers = [
        rasa_server(
            f"rasa-replica-{i}",
            stack.model,
            port,
            env=env,
            actions_url=stack.actions_url,
            logs=stack.logs,
            endpoints="endpoints.production.yml",
        )
        for i, port in enumerate(ports)
    ]
    who = f"web:replica-{uuid.uuid4().hex[:6]}"
    with servers[0], servers[1]:
        first = Stack(**{**stack.__dict__, "rasa_url": f"http://127.0.0.1:{ports[0]}"})
        second = Stack(**{**stack.__dict__, "rasa_url": f"http://127.0.0.1:{ports[1]}"})
        # Watch Redis while the replicas work: the lock store must take its locks there.
        monitor = subprocess.Popen(["redis-cli", "monitor"], stdout=subprocess.PIPE, text=True)
        try:
            greeting = first.chat(who, "你好")
            repeated = second.chat(who, "再说一遍")
        finally:
            monitor.terminate()
            commands, _ = monitor.communicate(timeout=10)
    assert f"[{REDIS_DB} " in commands
    assert "lock" in commands
    assert [m["text"] for m in repeated] == [m["text"] for m in greeting]
    engine = create_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + tracker_database)
    with engine.connect() as conn:
        events = conn.execute(text("SELECT count(*) FROM events")).scalar_one()
    engine.dispose()
    assert events > 4
