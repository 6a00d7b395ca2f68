"""The notifications outbox: leasing to concurrent workers, retries with backoff, delivery."""

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from records.core.clock import ManualClock
from records.models import Notification, StaffRole
from records.repository import notifications as notifications_repo
from tests.records.factories import World


def queue(session: Session, count: int, *, channel: str = "telegram") -> list[int]:
    """Enqueue `count` messages and commit (SQLite writers must not wait on this session)."""
    rows = [
        notifications_repo.enqueue(
            session,
            channel=channel,
            recipient=f"{channel}:{n}",
            kind="test",
            payload={"text": f"第{n}条"},
        )
        for n in range(count)
    ]
    session.commit()
    return [r.id for r in rows]


def claim(client: TestClient, **body: Any) -> list[dict[str, Any]]:
    response = client.post("/api/v1/notifications/claim", json=body)
    assert response.status_code == 200, response.text
    claimed: list[dict[str, Any]] = response.json()
    return claimed


def test_concurrent_claimers_never_share_a_row(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    ids = queue(session, 30)
    queue(session, 2, channel="phone")
    barrier = threading.Barrier(3)
    batches: list[list[int]] = []

    def worker() -> None:
        barrier.wait()
        batch = claim(client, channel="telegram", limit=12, lease_seconds=60)
        batches.append([row["id"] for row in batch])

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    claimed = [i for batch in batches for i in batch]
    assert len(claimed) == len(set(claimed)) == 30
    assert set(claimed) == set(ids)
    assert claim(client, channel="telegram", limit=50) == []  # every row is leased

    clock.advance(timedelta(seconds=61))  # the leases run out: a worker must have died
    again = claim(client, channel="telegram", limit=50)
    assert len(again) == 30
    assert {row["attempts"] for row in again} == {2}
    assert again[0]["recipient"].startswith("telegram:")


def test_reports_back_off_give_up_and_sent_is_final(
    client: TestClient,
    session: Session,
    clock: ManualClock,
    staff_client: Callable[[StaffRole], TestClient],
    world: World,
) -> None:
    retried_enqueue = [
        notifications_repo.enqueue(
            session,
            channel="phone",
            recipient="phone:+8613800000001",
            kind="welcome",
            payload={"text": "您好"},
            dedupe_key="welcome:1",
        ).id
        for _ in range(2)
    ]
    session.commit()
    assert retried_enqueue[0] == retried_enqueue[1]
    assert session.scalar(select(func.count(Notification.id))) == 1
    session.commit()

    notification_id = retried_enqueue[0]
    for attempt in range(1, 6):
        assert [row["id"] for row in claim(client, limit=5)] == [notification_id]
        failed = client.post(
            f"/api/v1/notifications/{notification_id}/failed", json={"error": "timeout"}
        ).json()
        if attempt < 5:
            backoff = timedelta(seconds=30 * 2 ** (attempt - 1))
            assert failed["state"] == "pending"
            assert datetime.fromisoformat(failed["next_attempt_at"]) == clock.now() + backoff
            clock.advance(backoff - timedelta(seconds=1))
            assert claim(client, limit=5) == []  # not due yet
            clock.advance(timedelta(seconds=1))
    assert (failed["state"], failed["attempts"], failed["last_error"]) == ("failed", 5, "timeout")
    clock.advance(timedelta(days=1))
    assert claim(client, limit=5) == []

    [other] = queue(session, 1)
    claim(client, limit=5)
    first = client.post(f"/api/v1/notifications/{other}/sent").json()
    clock.advance(timedelta(minutes=1))
    second = client.post(f"/api/v1/notifications/{other}/sent").json()
    assert first["state"] == second["state"] == "sent"
    assert second["sent_at"] == first["sent_at"]
    late = client.post(f"/api/v1/notifications/{other}/failed", json={"error": "late"})
    assert late.json()["state"] == "sent"

    listing = client.get("/api/v1/notifications", params={"state": "sent"}).json()
    assert listing["total"] == 1
    assert "recipient" not in listing["items"][0]  # personal data stays with the workers
    missing = client.post("/api/v1/notifications/999999/sent")
    assert missing.status_code == 404
    assert missing.json()["detail"] == "没有找到这个通知。"
    grid_worker = staff_client(StaffRole.grid_worker)
    assert grid_worker.post("/api/v1/notifications/claim", json={}).status_code == 403
