"""Unit leaders (联户长) answer their households' requests with one tap: 收到 / 上报."""

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from records.models import AlertStatus, EmergencyAlert, EscalationTier, Repair, StaffRole, StaffUser
from tests.records.dispatch_helpers import link_identity, link_staff, outbox, recipients
from tests.records.factories import World

LEADERS = "/api/v1/leaders/requests"
REPORTER = "telegram:9001"


def report(client: TestClient, *, building: int, entrance: int, room: str) -> dict[str, Any]:
    body = {
        "category": "water",
        "description": "水管漏水",
        "identity": REPORTER,
        "building": building,
        "entrance": entrance,
        "room": room,
    }
    response = client.post("/api/v1/repairs", json=body)
    assert response.status_code == 201, response.text
    repair: dict[str, Any] = response.json()
    return repair


def second_leader(session: Session, world: World) -> StaffUser:
    """Another unit leader, for the second unit (3号楼2单元501 and 3号楼1单元302)."""
    first = world.staff[StaffRole.unit_leader]
    other = StaffUser(
        username="leader2",
        display_name="联户长赵敏",
        password_hash=first.password_hash,
        role=StaffRole.unit_leader,
    )
    session.add(other)
    session.flush()
    world.units[1].leader_id = other.id
    session.commit()
    return other


def test_leader_acknowledges_and_escalates_a_repair_with_one_tap(
    client: TestClient, session: Session, world: World
) -> None:
    leader = world.staff[StaffRole.unit_leader]
    leader_identity = link_staff(session, leader, world.residents[1])
    other = second_leader(session, world)
    repair = report(client, building=1, entrance=1, room="101")
    ref = f"repair:{repair['id']}"

    [note] = [n for n in outbox(session, "repair_new") if n.payload["repair_id"] == repair["id"]]
    # The leader linked Telegram, so the request is pushed there.
    assert (note.channel, note.recipient) == ("telegram", leader_identity)
    assert note.payload["buttons"] == [
        {"title": "收到", "payload": f'/leader_ack{{"request": "{ref}"}}'},
        {"title": "上报", "payload": f'/leader_escalate{{"request": "{ref}"}}'},
    ]
    waiting = client.post(f"{LEADERS}/open", json={"identity": leader_identity}).json()
    assert waiting == [
        {
            "request": ref,
            "kind": "repair",
            "summary": f"报修单{repair['id']}号，1号楼1单元，水管",
            "status": "submitted",
        }
    ]

    ack = client.post(f"{LEADERS}/acknowledge", json={"identity": leader_identity, "request": ref})
    assert ack.status_code == 200, ack.text
    assert ack.json() == {
        "request": ref,
        "changed": True,
        "message": f"好的，报修单{repair['id']}号记为您已收到，也告诉报修的居民了。",
    }
    stored = session.get_one(Repair, repair["id"], populate_existing=True)
    assert stored.status.value == "acknowledged"
    assert stored.events[-1].note == "联户长测试unit_leader已收到，会跟进。"
    assert stored.events[-1].actor == f"staff:{leader.id}"
    session.commit()
    assert REPORTER in recipients(session, "repair_status")
    again = client.post(
        f"{LEADERS}/acknowledge", json={"identity": leader_identity, "request": ref}
    )
    assert again.json()["changed"] is False

    up = client.post(
        f"{LEADERS}/escalate",
        json={"identity": leader_identity, "request": ref, "note": "要换管子"},
    )
    assert up.json() == {
        "request": ref,
        "changed": True,
        "message": f"好的，报修单{repair['id']}号已经上报给网格员。",
    }
    stored = session.get_one(Repair, repair["id"], populate_existing=True)
    assert stored.escalation_tier is EscalationTier.grid_worker
    session.commit()
    [handed] = outbox(session, "repair_escalated")
    assert handed.recipient == f"staff:{world.staff[StaffRole.grid_worker].id}"
    assert "联户长测试unit_leader上报（要换管子）" in handed.payload["text"]
    repeat = client.post(f"{LEADERS}/escalate", json={"identity": leader_identity, "request": ref})
    assert repeat.json()["changed"] is False

    # Requests from other units, strangers, unverified senders and garbled references.
    theirs = report(client, building=3, entrance=2, room="501")
    [their_note] = [
        n for n in outbox(session, "repair_new") if n.payload["repair_id"] == theirs["id"]
    ]
    assert their_note.recipient == f"staff:{other.id}"
    refused = client.post(
        f"{LEADERS}/acknowledge",
        json={"identity": leader_identity, "request": f"repair:{theirs['id']}"},
    )
    assert refused.status_code == 403
    assert refused.json()["detail"] == "这件事不是您负责的住户报的，请转给相应的联户长。"
    resident = link_identity(session, world.residents[2])
    session.commit()
    not_staff = client.post(f"{LEADERS}/acknowledge", json={"identity": resident, "request": ref})
    assert not_staff.status_code == 403
    unverified = client.post(
        f"{LEADERS}/acknowledge", json={"identity": "phone:+8613800000002", "request": ref}
    )
    assert unverified.status_code == 403
    assert unverified.json()["detail"].startswith("需要先核实身份")
    garbled = client.post(
        f"{LEADERS}/acknowledge", json={"identity": leader_identity, "request": "repair:abc"}
    )
    assert garbled.status_code == 422
    missing = client.post(f"{LEADERS}/acknowledge", json={"request": ref})
    assert missing.status_code == 422


def test_leader_answers_an_alert_and_a_signed_in_grid_worker_escalates_to_the_council(
    client: TestClient,
    session: Session,
    world: World,
    staff_client: Callable[[StaffRole], TestClient],
) -> None:
    leader = world.staff[StaffRole.unit_leader]
    leader_identity = link_staff(session, leader, world.residents[1])
    raised = client.post(
        "/api/v1/alerts", json={"kind": "fall", "identity": "phone:+8613800000001"}
    ).json()["alert"]
    ref = f"alert:{raised['id']}"
    to_leader = [n for n in outbox(session, "emergency_alert") if n.recipient == leader_identity]
    assert to_leader[0].payload["buttons"][0] == {
        "title": "收到",
        "payload": f'/leader_ack{{"request": "{ref}"}}',
    }
    waiting = client.post(f"{LEADERS}/open", json={"identity": leader_identity}).json()
    assert waiting[0]["request"] == ref
    assert waiting[0]["summary"] == "王秀英的紧急求助（摔倒）"

    up = client.post(f"{LEADERS}/escalate", json={"identity": leader_identity, "request": ref})
    assert up.json()["message"] == f"好的，求助单{raised['id']}号已经上报给网格员。"
    assert recipients(session, "emergency_escalated") == [
        f"staff:{world.staff[StaffRole.grid_worker].id}"
    ]
    ack = client.post(f"{LEADERS}/acknowledge", json={"identity": leader_identity, "request": ref})
    assert ack.json()["changed"] is True
    alert = session.get_one(EmergencyAlert, raised["id"], populate_existing=True)
    assert (alert.status, alert.acknowledged_by_id) == (AlertStatus.acknowledged, leader.id)
    session.commit()

    worker = staff_client(StaffRole.grid_worker)
    higher = worker.post(f"{LEADERS}/escalate", json={"request": ref})
    assert higher.status_code == 200, higher.text
    assert higher.json()["message"] == f"好的，求助单{raised['id']}号已经上报给社区议事会。"
    assert recipients(session, "emergency_escalated")[-1] == (
        f"staff:{world.staff[StaffRole.admin].id}"
    )
    canteen = staff_client(StaffRole.canteen)
    assert canteen.post(f"{LEADERS}/acknowledge", json={"request": ref}).status_code == 403
