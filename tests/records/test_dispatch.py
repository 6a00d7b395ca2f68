"""Volunteer dispatch: ranking, offers with buttons, widening, one winner, reminders, points.

The clock starts on Monday 2026-11-23 at 10:00 in Shanghai (T0).
"""

import json
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from records.core.clock import ManualClock
from records.core.config import Settings
from records.models import PointsEntry, StaffRole, TaskStatus
from records.repository import volunteers as volunteers_repo
from tests.conftest import T0
from tests.records.dispatch_helpers import (
    TASKS,
    at_once,
    extra_household,
    link_identity,
    make_volunteer,
    offers,
    outbox,
    recipients,
    run_rule,
    task_row,
)
from tests.records.factories import World

TUESDAY_10 = T0 + timedelta(days=1)


def visit(client: TestClient, world: World, **fields: Any) -> dict[str, Any]:
    """A visit to 王秀英 (1号楼, first unit) due Tuesday 10:00, dispatched by ranking."""
    body = {
        "kind": "visit",
        "title": "陪王奶奶聊聊天",
        "resident_id": world.elder.id,
        "due_at": TUESDAY_10.isoformat(),
        "dispatch": True,
        **fields,
    }
    response = client.post(TASKS, json=body)
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    return task


@pytest.fixture
def crowd(session: Session, world: World, client: TestClient) -> dict[str, tuple[int, str]]:
    """Volunteers at different distances, availabilities, loads and recent work.

    Expected scores for the visit to 王秀英 on Tuesday morning:
    B same building 30 + skill 30 + available 20                       = 80
    A same unit 40 + skill 30 + availability unsaid 10 - 1 recent task = 75
    F same unit 40 + skill 30 + unsaid 10 - one open task 10           = 70
    C same grid 15 + skill 30 + unsaid 10                              = 55
    E same unit 40 + skill 30 - weekends only 30                       = 40
    D only drives (no visit skill) and 王秀英 herself are never offered it.
    """
    unit1 = world.units[1]
    same_building = extra_household(
        session, building_id=world.buildings[0].id, room="303", unit_id=unit1.id
    )
    people = {
        "A": make_volunteer(session, "甲", household_id=world.households[1].id, skills=["visit"]),
        "B": make_volunteer(
            session,
            "乙",
            household_id=same_building.id,
            skills=["visit", "escort"],
            availability={"weekdays": [2], "slots": ["morning"]},
        ),
        "C": make_volunteer(session, "丙", household_id=world.households[3].id, skills=["visit"]),
        "D": make_volunteer(session, "丁", household_id=world.households[1].id, skills=["driving"]),
        "E": make_volunteer(
            session,
            "戊",
            household_id=world.households[1].id,
            skills=["visit"],
            availability={"weekdays": [6, 7], "slots": []},
        ),
        "F": make_volunteer(session, "己", household_id=world.households[1].id, skills=["visit"]),
    }
    link_identity(session, world.elder)
    volunteers_repo.register_volunteer(session, resident_id=world.elder.id, skills=["visit"])
    session.commit()
    # A finished a task recently; F holds one open task.
    finished = client.post(
        TASKS, json={"kind": "escort", "title": "陪李大爷看病", "offer_to": [people["A"][0]]}
    ).json()
    client.post(f"{TASKS}/{finished['id']}/accept", json={"identity": people["A"][1]})
    client.post(f"{TASKS}/{finished['id']}/done", json={"identity": people["A"][1]})
    holding = client.post(
        TASKS, json={"kind": "escort", "title": "陪张阿姨买菜", "offer_to": [people["F"][0]]}
    ).json()
    client.post(f"{TASKS}/{holding['id']}/accept", json={"identity": people["F"][1]})
    return people


def test_ranking_is_explained_and_the_best_three_get_buttons(
    client: TestClient, session: Session, world: World, crowd: dict[str, tuple[int, str]]
) -> None:
    task = visit(client, world)
    assert task["expires_at"] == "2026-11-23T06:00:00Z"  # visit: 240 minutes to answer
    assert task["points"] == 2  # task_points for visits

    ranked = client.get(f"{TASKS}/{task['id']}/candidates").json()
    by_id = {v: k for k, (v, _) in crowd.items()}
    assert [by_id.get(c["volunteer_id"]) for c in ranked] == ["B", "A", "F", "C", "E"]
    assert [c["score"] for c in ranked] == [80, 75, 70, 55, 40]
    best = ranked[0]
    assert best["parts"] == {
        "skill": 30,
        "closeness": 30,
        "availability": 20,
        "load": 0,
        "fairness": 0,
    }
    assert best["reasons"] == ["技能对口（探访）", "同一栋楼", "那时有空"]
    assert ranked[1]["reasons"][-1] == "近30天做了1个任务"
    assert ranked[2]["open_tasks"] == 1
    assert [c["offer_state"] for c in ranked] == ["pending"] * 3 + [None] * 2

    detail = client.get(f"{TASKS}/{task['id']}").json()
    assert [(o["rank"], o["score"]) for o in detail["offers"]] == [(1, 80), (2, 75), (3, 70)]
    assert detail["offers"][0]["ranking"]["parts"]["closeness"] == 30

    offered = [n for n in outbox(session, "task_offered") if n.payload["task_id"] == task["id"]]
    assert [n.recipient for n in offered] == [crowd[k][1] for k in "BAF"]
    payload = offered[0].payload
    assert payload["text"] == (
        "有一个志愿任务（上门探访）：陪王奶奶聊聊天，11月24日10:00前，完成可得2积分。您愿意接吗？"
    )
    assert payload["buttons"] == [
        {"title": "接单", "payload": f'/task_accept{{"task_id": {task["id"]}}}'},
        {"title": "不接", "payload": f'/task_decline{{"task_id": {task["id"]}}}'},
    ]
    command = payload["buttons"][0]["payload"]
    assert json.loads(command.removeprefix("/task_accept")) == {"task_id": task["id"]}

    # The next best few hear of it only when all three said no; then the grid worker.
    for key in "BAF":
        answer = client.post(f"{TASKS}/{task['id']}/decline", json={"identity": crowd[key][1]})
        assert answer.status_code == 200, answer.text
    later = [o.volunteer_id for o in offers(session, task["id"])]
    assert later[3:] == [crowd["C"][0], crowd["E"][0]]
    assert recipients(session, "task_declined") == []
    for key in "CE":
        client.post(f"{TASKS}/{task['id']}/decline", json={"identity": crowd[key][1]})
    assert recipients(session, "task_declined") == [
        f"staff:{world.staff[StaffRole.grid_worker].id}"
    ]
    late = client.post(f"{TASKS}/{task['id']}/accept", json={"identity": crowd["C"][1]})
    assert late.status_code == 200  # a change of mind still counts
    assert late.json()["message"].startswith(
        "谢谢您！“陪王奶奶聊聊天”这个任务交给您了。地址：1号楼1单元101。"
    )


def test_nobody_fitting_escalates_at_once(
    client: TestClient, session: Session, world: World
) -> None:
    make_volunteer(session, "只会开车", household_id=world.households[1].id, skills=["driving"])
    task = visit(client, world)
    assert task["status"] == "escalated"
    [note] = outbox(session, "task_escalated")
    assert note.recipient == f"staff:{world.staff[StaffRole.grid_worker].id}"
    assert "没有合适的志愿者" in note.payload["text"]


def test_ten_offered_volunteers_accept_at_once_and_exactly_one_wins(
    client: TestClient, session: Session, world: World, settings: Settings
) -> None:
    settings.dispatch_offer_count = 10  # the app holds this very settings object
    crowd = [
        make_volunteer(
            session, f"志愿者{n}", household_id=world.households[n % 4].id, skills=["visit"]
        )
        for n in range(10)
    ]
    task = visit(client, world)
    assert len(offers(session, task["id"])) == 10

    responses = at_once(
        10, lambda i: client.post(f"{TASKS}/{task['id']}/accept", json={"identity": crowd[i][1]})
    )

    assert sorted(r.status_code for r in responses) == [200] + [409] * 9
    winner = next(r.json()["task"]["volunteer_id"] for r in responses if r.status_code == 200)
    stored = task_row(session, task["id"])
    assert (stored.status, stored.volunteer_id) == (TaskStatus.accepted, winner)
    states = sorted(o.state.value for o in offers(session, task["id"]))
    assert states == ["accepted"] + ["withdrawn"] * 9


def test_unanswered_offers_escalate_after_the_minutes_set_for_the_kind(
    client: TestClient,
    session: Session,
    world: World,
    clock: ManualClock,
    settings: Settings,
) -> None:
    settings.task_answer_minutes = "default:30,visit:90"
    make_volunteer(session, "甲", household_id=world.households[1].id, skills=["visit"])
    task = visit(client, world)
    assert task["expires_at"] == "2026-11-23T03:30:00Z"
    clock.advance(timedelta(minutes=89))
    assert run_rule(session, "tasks_expired", settings=settings, now=clock.now()) == 0
    clock.advance(timedelta(minutes=1))
    assert run_rule(session, "tasks_expired", settings=settings, now=clock.now()) == 1
    assert run_rule(session, "tasks_expired", settings=settings, now=clock.now()) == 0
    assert task_row(session, task["id"]).status == TaskStatus.escalated
    assert recipients(session, "task_escalated") == [
        f"staff:{world.staff[StaffRole.grid_worker].id}"
    ]


def test_reminder_once_before_the_due_time(
    client: TestClient, session: Session, world: World, clock: ManualClock, settings: Settings
) -> None:
    volunteer_id, identity = make_volunteer(
        session, "甲", household_id=world.households[1].id, skills=["visit"]
    )
    task = visit(client, world, due_at=(T0 + timedelta(hours=3)).isoformat())
    client.post(f"{TASKS}/{task['id']}/accept", json={"identity": identity})
    clock.advance(timedelta(hours=1, minutes=59))
    assert run_rule(session, "tasks_reminded", settings=settings, now=clock.now()) == 0
    clock.advance(timedelta(minutes=1))  # 60 minutes before the due time
    assert run_rule(session, "tasks_reminded", settings=settings, now=clock.now()) == 1
    clock.advance(timedelta(minutes=30))
    assert run_rule(session, "tasks_reminded", settings=settings, now=clock.now()) == 0
    [reminder] = outbox(session, "task_reminder")
    assert reminder.recipient == identity
    assert reminder.payload["text"] == (
        "提醒您：志愿任务“陪王奶奶聊聊天”要在11月23日13:00前完成。做完了请点“做完了”或者跟我说一声。"
    )
    assert reminder.payload["buttons"] == [
        {"title": "做完了", "payload": f'/task_done{{"task_id": {task["id"]}}}'}
    ]

    # Accepted inside the reminder window: the volunteer has just said yes, no reminder.
    soon = visit(
        client, world, title="送药", due_at=(clock.now() + timedelta(minutes=40)).isoformat()
    )
    client.post(f"{TASKS}/{soon['id']}/accept", json={"identity": identity})
    assert run_rule(session, "tasks_reminded", settings=settings, now=clock.now()) == 0
    assert task_row(session, soon["id"]).reminded_at is None
    assert volunteer_id


def test_done_with_photo_the_resident_confirms_and_points_are_credited_once(
    client: TestClient, session: Session, world: World, clock: ManualClock, settings: Settings
) -> None:
    volunteer_id, identity = make_volunteer(
        session, "甲", household_id=world.households[1].id, skills=["visit"]
    )
    elder = link_identity(session, world.elder)
    session.commit()
    task = visit(client, world)
    url = f"{TASKS}/{task['id']}"
    client.post(f"{url}/accept", json={"identity": identity})
    done = client.post(
        f"{url}/done", json={"identity": identity, "note": "聊了一小时", "photo": "tg-file:AgAD1"}
    )
    assert done.status_code == 200, done.text
    assert (done.json()["task"]["done_note"], done.json()["task"]["done_photo"]) == (
        "聊了一小时",
        "tg-file:AgAD1",
    )
    [told] = outbox(session, "task_done")
    assert told.recipient == elder
    assert told.payload["buttons"] == [
        {"title": "确认完成", "payload": f'/task_confirm{{"task_id": {task["id"]}}}'}
    ]

    stranger = client.post(f"{TASKS}/confirm", json={"identity": identity, "task_id": task["id"]})
    assert stranger.status_code == 403
    confirmations = at_once(3, lambda _: client.post(f"{TASKS}/confirm", json={"identity": elder}))
    assert sorted(r.json()["message"] for r in confirmations) == [
        "谢谢您的确认！已经给志愿者记上积分了。",
        "这个任务之前已经确认过了，谢谢您！",
        "这个任务之前已经确认过了，谢谢您！",
    ]
    ledger = session.scalar(
        select(func.count(PointsEntry.id)).where(PointsEntry.volunteer_id == volunteer_id)
    )
    session.commit()
    assert ledger == 1
    [points_note] = outbox(session, "points_credited")
    assert points_note.payload["text"].endswith("您获得2积分，现在一共2积分。")
    me = client.post("/api/v1/volunteers/me", json={"identity": identity}).json()
    assert me["message"] == "您是志愿者，现在一共有2积分。"  # what "我的积分" reads out
    nothing = client.post(f"{TASKS}/confirm", json={"identity": "telegram:404404"})
    assert nothing.status_code == 404


def test_auto_confirm_after_the_hours_set(
    client: TestClient, session: Session, world: World, clock: ManualClock, settings: Settings
) -> None:
    settings.task_auto_confirm_hours = 2
    volunteer_id, identity = make_volunteer(
        session, "甲", household_id=world.households[1].id, skills=["visit"]
    )
    task = visit(client, world)
    client.post(f"{TASKS}/{task['id']}/accept", json={"identity": identity})
    client.post(f"{TASKS}/{task['id']}/done", json={"identity": identity})
    clock.advance(timedelta(hours=1, minutes=59))
    assert run_rule(session, "tasks_auto_confirmed", settings=settings, now=clock.now()) == 0
    clock.advance(timedelta(minutes=1))
    assert run_rule(session, "tasks_auto_confirmed", settings=settings, now=clock.now()) == 1
    assert volunteers_repo.points_balance(session, volunteer_id=volunteer_id) == 2
