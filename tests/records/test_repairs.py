"""Repairs through the API: intake, lifecycle, notifications, ratings, access.

Tests are few and scenario-shaped on purpose: each runs on SQLite and PostgreSQL, and a fresh
database per test is the expensive part.
"""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from records.core.clock import ManualClock
from records.models import Notification, StaffRole
from tests.conftest import T0
from tests.records.factories import World

REPORTER = "telegram:9001"
ELDER_PHONE = "phone:+8613800000001"


def report(client: TestClient, **overrides: Any) -> dict[str, Any]:
    """File a lift repair at 3号楼2单元501 from REPORTER; returns the created repair."""
    body: dict[str, Any] = {
        "category": "lift",
        "description": "电梯门关不上",
        "identity": REPORTER,
        "building": 3,
        "entrance": 2,
        "room": "501",
        **overrides,
    }
    response = client.post("/api/v1/repairs", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def move(client: TestClient, repair_id: int, status: str, note: str | None = None) -> Any:
    return client.post(f"/api/v1/repairs/{repair_id}/status", json={"status": status, "note": note})


def rate(client: TestClient, repair_id: int, rating: int, identity: str = REPORTER) -> Any:
    return client.post(
        f"/api/v1/repairs/{repair_id}/rating",
        json={"identity": identity, "rating": rating, "comment": "评价"},
    )


def notifications(session: Session, kind: str) -> list[Notification]:
    query = select(Notification).where(Notification.kind == kind).order_by(Notification.id)
    rows = list(session.scalars(query.execution_options(populate_existing=True)).all())
    session.commit()  # end the read: SQLite writers (the app) would wait for this transaction
    return rows


def assert_problem(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["detail"]), body
    if code is not None:
        assert body["type"].endswith("/" + code), body
    return body


def at(moment: datetime) -> str:
    """The start of an ISO timestamp, to compare with the API's (offset spelled either way)."""
    return moment.isoformat()[:19]


def test_intake_from_any_sender(client: TestClient, world: World, session: Session) -> None:
    stranger = report(client)
    assert (stranger["status"], stranger["reporter_id"], stranger["channel"]) == (
        "submitted",
        None,
        "telegram",
    )
    assert stranger["place"] == "3号楼2单元501"
    assert stranger["events"][0]["kind"] == "created"
    assert stranger["first_response_due_at"].startswith(at(T0 + timedelta(hours=24)))
    assert stranger["closure_due_at"].startswith(at(T0 + timedelta(hours=48)))
    [leader_note] = notifications(session, "repair_new")
    assert leader_note.recipient == f"staff:{world.staff[StaffRole.unit_leader].id}"
    assert "501" not in leader_note.payload["text"]  # rooms stay out of unencrypted payloads

    urgent = report(client, urgency="urgent")
    assert urgent["first_response_due_at"].startswith(at(T0 + timedelta(hours=12)))
    assert urgent["closure_due_at"].startswith(at(T0 + timedelta(hours=24)))

    free_text = {"building": None, "entrance": None, "room": None, "location_text": "小区东门"}
    caller = report(client, identity=ELDER_PHONE, **free_text)
    assert (caller["reporter_id"], caller["channel"]) == (world.elder.id, "phone")
    assert caller["place"] == "小区东门"

    mine = client.post("/api/v1/repairs/mine", json={"identity": REPORTER}).json()
    assert [r["id"] for r in mine] == [urgent["id"], stranger["id"]]
    assert mine[0]["status_name"] == "已提交"
    elder = client.post("/api/v1/repairs/mine", json={"identity": ELDER_PHONE}).json()
    assert [r["id"] for r in elder] == [caller["id"]]
    assert client.post("/api/v1/repairs/mine", json={"identity": "web:new"}).json() == []

    # A retried create with the same Idempotency-Key returns the first result.
    headers = {"Idempotency-Key": "repair-1"}
    body = {"category": "water", "description": "厨房漏水", "location_text": "1号楼门口"}
    first = client.post("/api/v1/repairs", json=body, headers=headers)
    second = client.post("/api/v1/repairs", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert client.get("/api/v1/repairs").json()["total"] == 4  # three above, one here


def test_bad_reports_are_chinese_problems(client: TestClient, world: World) -> None:
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"building": None, "entrance": None, "room": None}, "location-required", "在哪里"),
        ({"description": "   "}, "validation-error", "description"),
        ({"description": "长" * 501}, "validation-error", "description"),
        ({"category": "spaceship"}, "validation-error", "category"),
        ({"building": 99}, "unknown-building", "99号楼"),
        ({"entrance": 7}, "no-such-entrance", "7单元"),
        ({"building": None, "location_text": None}, "building-required", "几号楼"),
    ]
    good = {"category": "lift", "description": "电梯坏了", "building": 3, "entrance": 2}
    for changes, code, words in cases:
        response = client.post("/api/v1/repairs", json={**good, "room": "501", **changes})
        assert words in assert_problem(response, 422, code)["detail"]
    assert client.get("/api/v1/repairs").json()["total"] == 0


def test_lifecycle_records_events_and_tells_the_reporter_once_per_change(
    client: TestClient, world: World, session: Session, clock: ManualClock
) -> None:
    repair_id = report(client)["id"]
    steps = ["acknowledged", "assigned", "in_progress", "resolved", "closed"]
    for step in steps:
        clock.advance(timedelta(hours=1))
        response = move(client, repair_id, step, note=f"备注{step}")
        assert response.status_code == 200, response.text
        assert response.json()["status"] == step
    assert "已经是" in assert_problem(move(client, repair_id, "closed"), 409)["detail"]
    detail = client.get(f"/api/v1/repairs/{repair_id}").json()
    history = [(e["from_status"], e["to_status"], e["note"]) for e in detail["events"][1:]]
    expected = zip(["submitted", *steps[:-1]], steps, [f"备注{s}" for s in steps], strict=True)
    assert history == list(expected)
    assert {e["actor"] for e in detail["events"]} == {"service"}
    assert detail["acknowledged_at"].startswith(at(T0 + timedelta(hours=1)))
    assert detail["resolved_at"].startswith(at(T0 + timedelta(hours=4)))
    assert detail["closed_at"].startswith(at(T0 + timedelta(hours=5)))
    sent = notifications(session, "repair_status")
    assert [n.payload["status"] for n in sent] == steps
    assert {(n.channel, n.recipient) for n in sent} == {("telegram", REPORTER)}
    assert "备注resolved" in sent[3].payload["text"]


def test_moves_go_forward_only(client: TestClient, world: World) -> None:
    skipped = report(client)["id"]
    response = move(client, skipped, "resolved")
    assert response.status_code == 200
    assert response.json()["acknowledged_at"] is not None  # skipping still answers the report
    illegal = [
        (["acknowledged"], "submitted"),
        (["resolved"], "in_progress"),
        (["closed"], "resolved"),
        ([], "reopened"),
    ]
    for path, target in illegal:
        repair_id = report(client)["id"]
        for step in path:
            assert move(client, repair_id, step).status_code == 200
        problem = assert_problem(move(client, repair_id, target), 409, "illegal-transition")
        assert "不能改成" in problem["detail"]
    assert "报修单" in assert_problem(move(client, 424242, "closed"), 404)["detail"]


def test_assign_and_reassign(client: TestClient, world: World, session: Session) -> None:
    repair_id = report(client)["id"]
    worker = world.staff[StaffRole.grid_worker].id
    response = client.post(f"/api/v1/repairs/{repair_id}/assign", json={"assignee_id": worker})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["assignee_id"]) == ("assigned", worker)
    assert body["events"][-1]["kind"] == "assign"
    assert move(client, repair_id, "in_progress").status_code == 200
    other = world.staff[StaffRole.unit_leader].id
    again = client.post(f"/api/v1/repairs/{repair_id}/assign", json={"assignee_id": other})
    assert again.json()["status"] == "in_progress"  # reassigning keeps the progress
    assert [n.recipient for n in notifications(session, "repair_assigned")] == [
        f"staff:{worker}",
        f"staff:{other}",
    ]
    unknown = client.post(f"/api/v1/repairs/{repair_id}/assign", json={"assignee_id": 9999})
    assert_problem(unknown, 422, "unknown-assignee")


def test_a_retried_rating_is_replayed_not_applied_twice(
    client: TestClient, world: World, session: Session
) -> None:
    repair_id = report(client)["id"]
    move(client, repair_id, "resolved")
    body = {"identity": REPORTER, "rating": 2, "comment": "还是漏"}
    headers = {"Idempotency-Key": "rate-once"}
    url = f"/api/v1/repairs/{repair_id}/rating"
    first = client.post(url, json=body, headers=headers)
    again = client.post(url, json=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert [e["kind"] for e in first.json()["events"]].count("rate") == 1
    statuses = [n.payload["status"] for n in notifications(session, "repair_status")]
    assert statuses.count("reopened") == 1
    other = report(client)["id"]
    move(client, other, "resolved")
    reused = client.post(f"/api/v1/repairs/{other}/rating", json=body, headers=headers)
    assert_problem(reused, 422, "idempotency-key-reused")
    fresh = client.post(url, json=body, headers={"Idempotency-Key": "another"})
    assert_problem(fresh, 409, "not-finished")  # the rules apply again: it was reopened


def test_rating_closes_or_reopens(
    client: TestClient, world: World, session: Session, clock: ManualClock
) -> None:
    happy, unhappy = report(client)["id"], report(client)["id"]
    assert_problem(rate(client, happy, 5), 409, "not-finished")
    for repair_id in (happy, unhappy):
        assert move(client, repair_id, "resolved").status_code == 200
    assert_problem(rate(client, happy, 5, identity="telegram:1234"), 403, "not-reporter")
    assert rate(client, happy, 6).status_code == 422
    closed = rate(client, happy, 4).json()
    assert (closed["status"], closed["rating"]) == ("closed", 4)
    assert_problem(rate(client, happy, 5), 409, "already-rated")

    clock.advance(timedelta(hours=30))
    reopened = rate(client, unhappy, 2).json()
    assert (reopened["status"], reopened["resolved_at"]) == ("reopened", None)
    assert reopened["closure_due_at"].startswith(at(clock.now() + timedelta(hours=48)))
    assert reopened["events"][-1]["kind"] == "rate"
    statuses = [n.payload["status"] for n in notifications(session, "repair_status")]
    assert statuses[-1] == "reopened"
    # Handled and resolved again: the new resolution may be rated.
    assert move(client, unhappy, "in_progress").status_code == 200
    assert move(client, unhappy, "resolved").status_code == 200
    assert rate(client, unhappy, 5).json()["status"] == "closed"

    # The same resident may rate from another channel.
    repair_id = report(client, identity=ELDER_PHONE)["id"]
    move(client, repair_id, "resolved")
    code = client.post(f"/api/v1/residents/{world.elder.id}/verification-codes").json()["code"]
    client.post("/api/v1/identities/verify", json={"identity": "wechat:elder", "code": code})
    assert rate(client, repair_id, 5, identity="wechat:elder").status_code == 200


def test_list_paginates_and_filters(client: TestClient, world: World) -> None:
    ids = [report(client, category=c)["id"] for c in ("lift", "water", "lift", "drain")]
    page = client.get("/api/v1/repairs", params={"limit": 2, "offset": 1}).json()
    assert (page["total"], page["limit"], page["offset"]) == (4, 2, 1)
    assert [r["id"] for r in page["items"]] == [ids[2], ids[1]]  # newest first
    lifts = client.get("/api/v1/repairs", params={"category": "lift"}).json()
    assert [r["id"] for r in lifts["items"]] == [ids[2], ids[0]]
    move(client, ids[3], "acknowledged")
    acked = client.get("/api/v1/repairs", params={"status": "acknowledged"}).json()
    assert [r["id"] for r in acked["items"]] == [ids[3]]
    assert client.get(f"/api/v1/repairs/{ids[0]}").json()["category_name"] == "电梯"


def test_roles(
    staff_client: Callable[[StaffRole], TestClient], anonymous: TestClient, world: World
) -> None:
    assert_problem(staff_client(StaffRole.canteen).get("/api/v1/repairs"), 403)
    assert_problem(anonymous.get("/api/v1/repairs"), 401)
    worker = staff_client(StaffRole.grid_worker)
    created = worker.post(
        "/api/v1/repairs", json={"category": "lighting", "description": "楼道灯不亮", "building": 1}
    )
    assert created.status_code == 201, created.text
    acked = worker.post(
        f"/api/v1/repairs/{created.json()['id']}/status", json={"status": "acknowledged"}
    )
    assert acked.json()["events"][-1]["actor"] == f"staff:{world.staff[StaffRole.grid_worker].id}"
    assert_problem(worker.post("/api/v1/repairs/escalations/run"), 403)
    admin = staff_client(StaffRole.admin).post("/api/v1/repairs/escalations/run")
    assert admin.json() == {"escalated": 0}
