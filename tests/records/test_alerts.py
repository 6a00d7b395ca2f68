"""Emergency alerts and handoff (call-back) requests."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from records.core.clock import ManualClock
from records.core.config import Settings
from records.models import Notification, StaffRole
from records.repository import alerts as alerts_repo
from tests.records.factories import World

ELDER_PHONE = "phone:+8613800000001"
CONTACT_PHONE = "phone:+8613900000001"


def outbox(session: Session, *, kind: str | None = None) -> list[Notification]:
    """Every queued notification (of one kind), then end the read so writers need not wait."""
    query = select(Notification).order_by(Notification.id).execution_options(populate_existing=True)
    if kind is not None:
        query = query.where(Notification.kind == kind)
    rows = list(session.scalars(query))
    session.commit()
    return rows


def raise_alert(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/api/v1/alerts", json={"kind": "fall", "channel": "phone", **body})
    assert response.status_code == 201, response.text
    raised: dict[str, Any] = response.json()
    return raised


def test_alert_reaches_everyone_who_can_help_at_once(
    client: TestClient, session: Session, world: World
) -> None:
    headers = {"Idempotency-Key": "sos-1"}
    body = {"kind": "fall", "identity": ELDER_PHONE, "channel": "phone"}
    first = client.post("/api/v1/alerts", json=body, headers=headers)
    assert first.status_code == 201, first.text
    raised = first.json()
    assert raised["notified"] == ["网格员", "联户长", "紧急联系人"]
    assert raised["message"].startswith("已经通知网格员、联户长和您的紧急联系人，马上有人联系您。")
    assert raised["alert"]["resident_id"] == world.elder.id
    assert raised["alert"]["ack_due_at"] == "2026-11-23T02:05:00Z"

    rows = outbox(session, kind="emergency_alert")
    grid_worker, leader = world.staff[StaffRole.grid_worker], world.staff[StaffRole.unit_leader]
    assert {(r.channel, r.recipient) for r in rows} == {
        ("staff", f"staff:{grid_worker.id}"),
        ("staff", f"staff:{leader.id}"),
        ("phone", CONTACT_PHONE),
    }
    for row in rows:
        assert "王秀英" in row.payload["text"]
        assert "101" not in row.payload["text"]  # rooms stay encrypted, out of payloads
        assert row.dedupe_key is not None
        assert "138" not in row.dedupe_key
        assert "139" not in row.dedupe_key

    retry = client.post("/api/v1/alerts", json=body, headers=headers)
    assert retry.json() == raised
    assert len(outbox(session)) == len(rows)

    # Unknown senders get help too; with no known place, every grid worker and admin hears it.
    stranger = raise_alert(client, kind="gas", identity="telegram:999", location_text="3号楼楼下")
    assert stranger["notified"] == ["社区工作人员"]
    assert "不要开关电器" in stranger["message"]
    told = {r.recipient for r in outbox(session, kind="emergency_alert")[len(rows) :]}
    assert told == {
        f"staff:{world.staff[StaffRole.grid_worker].id}",
        f"staff:{world.staff[StaffRole.admin].id}",
    }
    garbled = raise_alert(client, identity="not an identity", description="救命")
    assert garbled["alert"]["status"] == "open"


def test_overdue_alert_renotifies_admins_once(
    client: TestClient,
    session: Session,
    world: World,
    clock: ManualClock,
    settings: Settings,
    staff_client: Callable[[StaffRole], TestClient],
) -> None:
    overdue = raise_alert(client, identity=ELDER_PHONE)["alert"]["id"]
    handled = raise_alert(client, identity="telegram:7")["alert"]["id"]
    grid_worker = staff_client(StaffRole.grid_worker)
    acked = grid_worker.post(f"/api/v1/alerts/{handled}/acknowledge").json()
    assert acked["status"] == "acknowledged"
    assert acked["acknowledged_by_id"] == world.staff[StaffRole.grid_worker].id
    [told_caller] = outbox(session, kind="emergency_ack")
    assert told_caller.recipient == "telegram:7"

    def run_rule() -> int:
        touched = alerts_repo.overdue_unacknowledged(session, settings=settings, now=clock.now())
        session.commit()
        return touched

    clock.advance(timedelta(minutes=4))
    assert run_rule() == 0
    clock.advance(timedelta(minutes=2))
    assert run_rule() == 1
    assert run_rule() == 0
    [escalation] = outbox(session, kind="emergency_overdue")
    assert escalation.recipient == f"staff:{world.staff[StaffRole.admin].id}"
    assert escalation.payload["alert_id"] == overdue
    assert escalation.payload["text"].startswith("超时未确认")

    resolved = grid_worker.post(f"/api/v1/alerts/{overdue}/resolve", json={"note": "已送医"})
    assert resolved.json()["status"] == "resolved"
    listing = grid_worker.get("/api/v1/alerts", params={"status": "open"}).json()
    assert listing["total"] == 0
    forbidden = staff_client(StaffRole.canteen).get("/api/v1/alerts")
    assert forbidden.status_code == 403


def test_handoff_is_one_open_request_per_sender(
    client: TestClient,
    session: Session,
    world: World,
    staff_client: Callable[[StaffRole], TestClient],
) -> None:
    body = {"identity": ELDER_PHONE, "reason": "想问问补贴的事"}
    first = client.post("/api/v1/handoffs", json=body).json()
    again = client.post("/api/v1/handoffs", json={**body, "reason": "还是补贴"}).json()
    assert first["created"] is True
    assert again["created"] is False
    assert again["handoff"]["id"] == first["handoff"]["id"]
    assert first["message"] == "社区工作人员会在30分钟内给您回电话。"
    assert first["handoff"]["callback_phone"] == "+8613800000001"
    [told] = outbox(session, kind="handoff_requested")
    assert told.recipient == f"staff:{world.staff[StaffRole.grid_worker].id}"

    handoff_id = first["handoff"]["id"]
    claimed = staff_client(StaffRole.grid_worker).post(f"/api/v1/handoffs/{handoff_id}/claim")
    assert claimed.json()["status"] == "in_progress"
    taken = staff_client(StaffRole.unit_leader).post(f"/api/v1/handoffs/{handoff_id}/claim")
    assert taken.status_code == 409
    assert taken.json()["detail"] == "这个回电请求已经有同事在处理了。"
    done = client.post(f"/api/v1/handoffs/{handoff_id}/done", json={"note": "已回电"})
    assert done.json()["status"] == "done"

    later = client.post("/api/v1/handoffs", json=body).json()
    assert later["created"] is True
    web = client.post("/api/v1/handoffs", json={"identity": "web:tablet1"}).json()
    assert web["message"] == "社区工作人员会在30分钟内在这里回复您。"
    listing = client.get("/api/v1/handoffs", params={"status": "open"}).json()
    assert listing["total"] == 2
