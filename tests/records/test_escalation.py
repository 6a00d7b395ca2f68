"""SLA escalation of overdue repairs: unit leader → grid worker → council, with a manual clock."""

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from records.core.clock import ManualClock
from records.core.config import Settings
from records.models import Notification, Repair, StaffRole
from records.repository import repairs as repairs_repo
from tests.records.factories import World

REPORTER = "telegram:555"


def report(client: TestClient, **overrides: Any) -> int:
    """File a repair at 1号楼1单元101 (a household of the first unit); returns its id."""
    body = {
        "category": "water",
        "description": "楼道水管漏水",
        "identity": REPORTER,
        "building": 1,
        "entrance": 1,
        "room": "101",
        **overrides,
    }
    response = client.post("/api/v1/repairs", json=body)
    assert response.status_code == 201, response.text
    repair_id: int = response.json()["id"]
    return repair_id


def run(client: TestClient) -> int:
    response = client.post("/api/v1/repairs/escalations/run")
    assert response.status_code == 200, response.text
    count: int = response.json()["escalated"]
    return count


def tier(client: TestClient, repair_id: int) -> str:
    result: str = client.get(f"/api/v1/repairs/{repair_id}").json()["escalation_tier"]
    return result


def escalation_notes(session: Session) -> list[tuple[int, str]]:
    """(repair id, recipient) of every escalation notification, oldest first."""
    query = select(Notification).where(Notification.kind == "repair_escalated")
    rows = session.scalars(query.order_by(Notification.id)).all()
    notes = [(int(n.payload["repair_id"]), n.recipient) for n in rows]
    session.commit()  # end the read: SQLite writers (the app) would wait for this transaction
    return notes


def staff(world: World, role: StaffRole) -> str:
    return f"staff:{world.staff[role].id}"


def test_overdue_repair_climbs_one_tier_at_a_time(
    client: TestClient, world: World, session: Session, clock: ManualClock
) -> None:
    overdue, finished = report(client), report(client)
    assert client.post(f"/api/v1/repairs/{finished}/status", json={"status": "resolved"}).is_success
    clock.advance(timedelta(hours=23, minutes=59))
    assert run(client) == 0

    clock.advance(timedelta(minutes=1))  # the first response is now due
    assert (run(client), run(client)) == (1, 0)  # re-running at the same moment does nothing
    assert tier(client, overdue) == "unit_leader"

    clock.advance(timedelta(hours=23))
    assert run(client) == 0  # the unit leader still holds it
    clock.advance(timedelta(hours=1))
    assert run(client) == 1
    assert tier(client, overdue) == "grid_worker"

    clock.advance(timedelta(hours=24))
    assert run(client) == 1
    assert tier(client, overdue) == "council"
    clock.advance(timedelta(days=10))
    assert run(client) == 0  # the council is the last tier

    assert escalation_notes(session) == [
        (overdue, staff(world, StaffRole.unit_leader)),
        (overdue, staff(world, StaffRole.grid_worker)),
        (overdue, staff(world, StaffRole.admin)),
    ]
    events = client.get(f"/api/v1/repairs/{overdue}").json()["events"]
    escalations = [e for e in events if e["kind"] == "escalate"]
    assert [e["note"] for e in escalations] == [
        "超过首次响应时限，升级到联户长。",
        "超过首次响应时限，从联户长升级到网格员。",
        "超过首次响应时限，从网格员升级到社区议事会。",
    ]
    assert tier(client, finished) == "none"  # a resolved repair never escalates


def test_answered_repair_escalates_only_when_closure_is_late(
    client: TestClient, world: World, clock: ManualClock
) -> None:
    repair_id = report(client)
    client.post(f"/api/v1/repairs/{repair_id}/status", json={"status": "acknowledged"})
    clock.advance(timedelta(hours=47))
    assert run(client) == 0
    clock.advance(timedelta(hours=1))
    assert run(client) == 1
    detail = client.get(f"/api/v1/repairs/{repair_id}").json()
    assert detail["escalation_tier"] == "unit_leader"
    assert "办结" in detail["events"][-1]["note"]


def test_tiers_without_a_person_are_skipped(
    client: TestClient, world: World, session: Session, clock: ManualClock, settings: Settings
) -> None:
    # A public place: no household, so no unit leader; the building's grid worker comes first.
    in_building = report(client, room=None, entrance=None)
    # Nowhere known and an unknown sender: neither unit nor grid, straight to the council.
    nowhere = report(client, building=None, room=None, entrance=None, location_text="河边")
    clock.advance(timedelta(hours=24))
    assert repairs_repo.escalate_overdue(session, settings=settings, now=clock.now()) == 2
    session.commit()
    tiers = {r.id: r.escalation_tier.value for r in session.scalars(select(Repair)).all()}
    session.commit()
    assert tiers == {in_building: "grid_worker", nowhere: "council"}
    assert escalation_notes(session) == [
        (in_building, staff(world, StaffRole.grid_worker)),
        (nowhere, staff(world, StaffRole.admin)),
    ]


def test_unsatisfied_rating_restarts_escalation(
    client: TestClient, world: World, session: Session, clock: ManualClock
) -> None:
    repair_id = report(client)
    clock.advance(timedelta(hours=24))
    assert run(client) == 1
    client.post(f"/api/v1/repairs/{repair_id}/status", json={"status": "resolved"})
    rating = {"identity": REPORTER, "rating": 1, "comment": "还在漏"}
    reopened = client.post(f"/api/v1/repairs/{repair_id}/rating", json=rating).json()
    assert (reopened["status"], reopened["escalation_tier"]) == ("reopened", "none")
    clock.advance(timedelta(hours=48))
    assert run(client) == 1
    assert tier(client, repair_id) == "unit_leader"
    # The unit leader hears of the second round too: dedupe keys are per round.
    leader = staff(world, StaffRole.unit_leader)
    assert escalation_notes(session) == [(repair_id, leader), (repair_id, leader)]
