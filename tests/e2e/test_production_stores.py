"""Production path: Rasa replicas sharing a PostgreSQL tracker store and a Redis lock store."""

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from tests.e2e.production import (
    REDIS_DB,
    production_replicas,
    redis_reachable,
    tracker_database,
    tracker_event_count,
)
from tests.e2e.stack import Stack


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh PostgreSQL database for Rasa's tracker store (Redis must answer too)."""
    if not redis_reachable():
        if os.environ.get("CI"):
            pytest.fail("CI must test the Redis lock store, but no Redis answers on 6379")
        pytest.skip("no Redis")
    with ExitStack() as cleanup:
        try:
            name = cleanup.enter_context(tracker_database())
        except Exception as exc:
            if os.environ.get("CI"):
                raise
            pytest.skip(f"no PostgreSQL: {exc}")
        yield name


def test_two_replicas_continue_one_conversation(stack: Stack, database: str) -> None:
    who = f"web:replica-{uuid.uuid4().hex[:6]}"
    with production_replicas(stack, database, 2) as urls:
        first = Stack(**{**stack.__dict__, "rasa_url": urls[0]})
        second = Stack(**{**stack.__dict__, "rasa_url": urls[1]})
        # Watch Redis while the replicas work: the lock store must take its locks there.
        monitor = subprocess.Popen(["redis-cli", "monitor"], stdout=subprocess.PIPE, text=True)
        try:
            greeting = first.chat(who, "你好")
            repeated = second.chat(who, "再说一遍")
            first.chat(who, "说慢一点")
            slowly = second.chat(who, "再说一遍")
        finally:
            monitor.terminate()
            commands, _ = monitor.communicate(timeout=10)
    assert f"[{REDIS_DB} " in commands
    assert "lock" in commands
    assert [m["text"] for m in repeated] == [m["text"] for m in greeting]
    assert [m["metadata"]["speech_rate"] for m in repeated] == ["normal"] * len(repeated)
    assert [m["metadata"]["speech_rate"] for m in slowly] == ["slow"] * len(slowly)
    assert tracker_event_count(database) > 4
