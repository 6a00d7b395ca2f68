"""The outbox keeps requests sealed at rest: no phone or address in the file in clear."""

import sqlite3
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from actions.outbox import Outbox
from actions.outbox_seal import OutboxKeyError, Sealer, sealer_from_env

ALERT = {"kind": "求助", "identity": "phone:+8613800138000", "location": "3号楼2单元502"}


def sealed_box(path: Path, key: bytes | None = None) -> Outbox:
    return Outbox(path, Sealer(Fernet(key or Fernet.generate_key())))


def raw_rows(path: Path) -> list[tuple[str, str | None]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT body, response FROM outbox").fetchall()


def test_requests_and_replies_are_sealed_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    box = sealed_box(path)
    item_id = box.enqueue("/api/v1/alerts", ALERT, idempotency_key="sos")
    box.mark_delivered(item_id, {"id": 7, "identity": ALERT["identity"]})
    [(body, response)] = raw_rows(path)
    for stored in (body, response):
        assert stored is not None
        assert stored.startswith("fernet:")
        assert "13800138000" not in stored
        assert "502" not in stored
    item = box.get(item_id)
    assert item is not None
    assert item.body == ALERT
    assert item.response == {"id": 7, "identity": ALERT["identity"]}


def test_entries_stored_before_the_key_was_set_stay_readable(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    Outbox(path, Sealer()).enqueue("/api/v1/alerts", ALERT, idempotency_key="old")
    box = sealed_box(path)
    box.enqueue("/api/v1/alerts", {**ALERT, "kind": "新"}, idempotency_key="new")
    assert [item.body["kind"] for item in box.pending()] == ["求助", "新"]


def test_another_key_is_a_clear_error_not_garbage(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    sealed_box(path).enqueue("/api/v1/alerts", ALERT, idempotency_key="sos")
    with pytest.raises(OutboxKeyError, match="another ACTIONS_OUTBOX_KEY"):
        sealed_box(path).pending()
    with pytest.raises(OutboxKeyError, match="not set"):
        Outbox(path, Sealer()).pending()


def test_the_key_comes_from_the_settings(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    sealer = sealer_from_env({"ACTIONS_OUTBOX_KEY": key})
    assert sealer.open(sealer.seal(ALERT)) == ALERT
    assert sealer_from_env({"ACTIONS_OUTBOX_KEY": ""}).fernet is None  # plain JSON, as before
    with pytest.raises(OutboxKeyError, match="Fernet key"):
        sealer_from_env({"ACTIONS_OUTBOX_KEY": "not-a-key"})
