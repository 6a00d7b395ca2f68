"""Volunteers and their tasks: registration, first acceptance wins, points credited once."""

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from records.core.clock import ManualClock
from records.core.config import Settings
from records.models import Notification, PointsEntry, StaffRole, Task, VerificationState
from records.repository import identities as identities_repo
from records.repository import residents as residents_repo
from records.repository import volunteers as volunteers_repo
from tests.records.factories import World

TASKS = "/api/v1/volunteers/tasks"


@pytest.fixture
def volunteers(session: Session, world: World) -> list[tuple[int, str]]:
    """Ten volunteers, each with a verified Telegram identity: (volunteer id, identity)."""
    made = []
    for n in range(10):
        resident = residents_repo.create_resident(
            session, name=f"志愿者{n}", household_id=world.households[n % 4].id
        )
        identity = f"telegram:{1000 + n}"
        row = identities_repo.get_or_create_identity(session, identity=identity)
        row.resident = resident
        row.state = VerificationState.verified
        volunteer = volunteers_repo.register_volunteer(
            session, resident_id=resident.id, skills=["visit", "meal_delivery"]
        )
        made.append((volunteer.id, identity))
    session.commit()
    return made


def create_task(client: TestClient, **fields: Any) -> dict[str, Any]:
    body = {"kind": "visit", "title": "陪王奶奶聊天", "points": 3, **fields}
    response = client.post(TASKS, json=body)
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    return task


def count(session: Session, query: Any) -> int:
    """A count read through the test session, ended at once so SQLite writers need not wait."""
    value = session.scalar(query) or 0
    session.commit()
    return int(value)


def at_once(count_: int, action: Callable[[int], Any]) -> list[Any]:
    """Run `action(0..count_-1)` in threads released together; results in index order."""
    barrier = threading.Barrier(count_)
    results: list[Any] = [None] * count_

    def run(index: int) -> None:
        barrier.wait()
        results[index] = action(index)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count_)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_register_list_and_ask_me(client: TestClient, world: World) -> None:
    resident = world.residents[2]
    unknown = client.post(
        "/api/v1/volunteers", json={"resident_id": resident.id, "skills": ["跳舞"]}
    )
    assert unknown.status_code == 422
    assert unknown.json()["detail"].startswith("没有“跳舞”这项服务。可以选的有：送餐")

    body = {"resident_id": resident.id, "skills": ["driving", "visit", "visit"]}
    created = client.post("/api/v1/volunteers", json=body)
    assert created.status_code == 201, created.text
    volunteer = created.json()
    assert volunteer["skills"] == ["visit", "driving"]
    assert volunteer["home_building_id"] == world.buildings[1].id  # where they live
    again = client.post("/api/v1/volunteers", json=body)
    assert again.status_code == 409

    by_skill = client.get("/api/v1/volunteers", params={"skill": "driving"}).json()
    assert [v["id"] for v in by_skill["items"]] == [volunteer["id"]]
    assert client.get("/api/v1/volunteers", params={"skill": "repair"}).json()["total"] == 0

    by_phone = client.post("/api/v1/volunteers/me", json={"identity": "phone:13800000003"}).json()
    assert by_phone["is_volunteer"] is True
    assert by_phone["message"] == "您是志愿者，现在一共有0积分。"
    stranger = client.post("/api/v1/volunteers/me", json={"identity": "telegram:5"}).json()
    assert stranger["is_volunteer"] is False

    paused = client.patch(f"/api/v1/volunteers/{volunteer['id']}", json={"active": False})
    assert paused.json()["active"] is False
    assert client.get("/api/v1/volunteers", params={"active": True}).json()["total"] == 0


def test_ten_volunteers_accept_at_once_and_exactly_one_wins(
    client: TestClient, session: Session, volunteers: list[tuple[int, str]]
) -> None:
    task = create_task(client, offer_to=[v for v, _ in volunteers])
    offers = count(
        session, select(func.count(Notification.id)).where(Notification.kind == "task_offered")
    )
    assert offers == 10

    responses = at_once(
        10,
        lambda i: client.post(f"{TASKS}/{task['id']}/accept", json={"identity": volunteers[i][1]}),
    )

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [409] * 9
    refusals = {r.json()["detail"] for r in responses if r.status_code == 409}
    assert refusals == {"这个任务已经被别的志愿者接走了，谢谢您！"}
    winner = next(r.json()["task"] for r in responses if r.status_code == 200)
    detail = client.get(f"{TASKS}/{task['id']}").json()
    assert detail["status"] == "accepted"
    assert detail["volunteer_id"] == winner["volunteer_id"]
    states = sorted(o["state"] for o in detail["offers"])
    assert states == ["accepted"] + ["withdrawn"] * 9


def test_tasks_nobody_takes_go_to_the_grid_worker(
    client: TestClient,
    session: Session,
    world: World,
    clock: ManualClock,
    settings: Settings,
    volunteers: list[tuple[int, str]],
) -> None:
    (first, first_identity), (second, second_identity) = volunteers[:2]
    task = create_task(client, offer_to=[first, second], building_id=world.buildings[0].id)
    outsider = client.post(f"{TASKS}/{task['id']}/accept", json={"identity": volunteers[5][1]})
    assert outsider.status_code == 403
    for identity in (first_identity, second_identity):
        answer = client.post(f"{TASKS}/{task['id']}/decline", json={"identity": identity})
        assert answer.json()["task"]["status"] == "offered"
    assert told_staff(session, "task_declined") == [world.staff[StaffRole.grid_worker].id]
    mine = client.post(f"{TASKS}/mine", json={"identity": second_identity, "status": "offered"})
    assert mine.json() == []
    changed = client.post(f"{TASKS}/{task['id']}/accept", json={"identity": second_identity})
    assert changed.json()["task"]["volunteer_id"] == second  # a change of mind counts

    expiring = create_task(
        client,
        kind="meal_delivery",
        title="给3号楼陈奶奶送午饭",
        resident_id=world.residents[4].id,
        offer_to=[first],
        expires_at=(clock.now() + timedelta(hours=2)).isoformat(),
    )

    def expire() -> int:
        touched = volunteers_repo.expire_unanswered(session, settings=settings, now=clock.now())
        session.commit()
        return touched

    assert expire() == 0
    clock.advance(timedelta(hours=2))
    assert expire() == 1
    assert expire() == 0
    detail = client.get(f"{TASKS}/{expiring['id']}").json()
    assert detail["status"] == "escalated"
    assert [o["state"] for o in detail["offers"]] == ["withdrawn"]
    assert told_staff(session, "task_escalated") == [world.staff[StaffRole.grid_worker].id]
    late = client.post(f"{TASKS}/{expiring['id']}/accept", json={"identity": first_identity})
    assert late.status_code == 409
    assert late.json()["detail"] == "这个任务已经不需要人接了，谢谢您！"


def told_staff(session: Session, kind: str) -> list[int]:
    """Ids of staff notified with `kind` (recipients are encrypted, so compared here)."""
    rows = session.scalars(select(Notification).where(Notification.kind == kind)).all()
    session.commit()
    return [int(row.recipient.removeprefix("staff:")) for row in rows]


def test_done_by_assignee_then_confirmed_once(
    client: TestClient,
    session: Session,
    world: World,
    clock: ManualClock,
    settings: Settings,
    volunteers: list[tuple[int, str]],
) -> None:
    (volunteer_id, identity), (_, other) = volunteers[:2]
    task = create_task(client, resident_id=world.elder.id)  # offered to nobody: open to all
    assert task["building_id"] == world.buildings[0].id
    task_url = f"{TASKS}/{task['id']}"
    assert client.post(f"{task_url}/confirm").status_code == 409  # not done yet
    assert client.post(f"{task_url}/accept", json={"identity": identity}).status_code == 200
    stranger = client.post(f"{task_url}/done", json={"identity": other})
    assert stranger.status_code == 403
    assert stranger.json()["detail"] == "只有接了这个任务的志愿者才能报告完成。"
    done = client.post(f"{task_url}/done", json={"identity": identity, "note": "聊了一小时"})
    assert done.json()["task"]["status"] == "done"
    mine = client.post(f"{TASKS}/mine", json={"identity": identity}).json()
    assert [t["id"] for t in mine] == [task["id"]]

    responses = at_once(2, lambda _: client.post(f"{task_url}/confirm"))
    assert [r.status_code for r in responses] == [200, 200]
    messages = sorted(r.json()["message"] for r in responses)
    assert messages == ["已确认完成，给志愿者记了3积分。", "这个任务之前已经确认过了。"]
    # Even if a confirmation slipped past the status check, the ledger refuses a second line.
    session.get_one(Task, task["id"]).confirmed_at = None
    session.commit()
    assert client.post(f"{task_url}/confirm").json()["message"] == "这个任务之前已经确认过了。"
    entries = select(func.count(PointsEntry.id)).where(PointsEntry.volunteer_id == volunteer_id)
    assert count(session, entries) == 1
    assert client.post("/api/v1/volunteers/me", json={"identity": identity}).json()["points"] == 3

    # Work nobody confirms counts as confirmed after a day.
    unconfirmed = create_task(client, offer_to=[volunteer_id], points=2)
    client.post(f"{TASKS}/{unconfirmed['id']}/accept", json={"volunteer_id": volunteer_id})
    client.post(f"{TASKS}/{unconfirmed['id']}/done", json={"identity": identity})

    def auto_confirm() -> int:
        touched = volunteers_repo.auto_confirm_done_tasks(
            session, settings=settings, now=clock.now()
        )
        session.commit()
        return touched

    clock.advance(timedelta(hours=23))
    assert auto_confirm() == 0
    clock.advance(timedelta(hours=2))
    assert auto_confirm() == 1
    assert auto_confirm() == 0
    points = client.get(f"/api/v1/volunteers/{volunteer_id}/points").json()
    assert points["balance"] == 5
    assert [e["delta"] for e in points["ledger"]["items"]] == [2, 3]
