"""Tasks that arise by themselves, once per source: meal deliveries, emergency check-ons,
visits to elders living alone, help with small repairs.

The clock starts on Monday 2026-11-23 at 10:00 in Shanghai (T0).
"""

from datetime import date, timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from records.core.clock import ManualClock
from records.core.config import Settings
from records.models import StaffRole, TaskKind, TaskStatus
from records.repository import dispatch
from tests.conftest import T0
from tests.records.dispatch_helpers import (
    TASKS,
    at_once,
    make_volunteer,
    offers,
    outbox,
    recipients,
    run_rule,
    task_row,
    tasks,
)
from tests.records.factories import World

TOMORROW = date(2026, 11, 24)
ELDER = "phone:+8613800000001"  # 王秀英, 1号楼1单元101, lives alone
ADULT = "phone:+8613800000003"  # 张伟, 3号楼2单元501


def plan_lunch(client: TestClient) -> None:
    """Tomorrow's lunch, booking open until 09:30 tomorrow."""
    response = client.post(
        "/api/v1/canteen/menus",
        json={
            "day": TOMORROW.isoformat(),
            "slot": "lunch",
            "capacity": 10,
            "price_cents": 1200,
            "dish_ids": [],
        },
    )
    assert response.status_code == 201, response.text


def book(client: TestClient, identity: str, *, delivery: bool, key: str | None = None) -> Any:
    body = {
        "identity": identity,
        "day": TOMORROW.isoformat(),
        "slot": "lunch",
        "quantity": 1,
        "delivery": delivery,
    }
    headers = {"Idempotency-Key": key} if key else {}
    response = client.post("/api/v1/canteen/bookings", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_a_delivered_meal_becomes_one_delivery_task_cancelled_with_the_booking(
    app: FastAPI, client: TestClient, session: Session, world: World, settings: Settings
) -> None:
    runner, runner_identity = make_volunteer(
        session, "送餐员", household_id=world.households[1].id, skills=["meal_delivery"]
    )
    make_volunteer(session, "只会修", household_id=world.households[1].id, skills=["repair"])
    plan_lunch(client)

    booking = book(client, ELDER, delivery=True, key="lunch-1")
    again = book(client, ELDER, delivery=True, key="lunch-1")
    assert again == booking
    book(client, ADULT, delivery=False)  # eats at the canteen: no task
    [task] = tasks(session)
    assert (task.kind, task.booking_id, task.source_key) == (
        TaskKind.meal_delivery,
        booking["id"],
        f"booking:{booking['id']}",
    )
    assert task.title == "给王秀英送11月24日午饭（1份，1号楼）"
    assert "101" not in task.title + (task.details or "")
    assert task.due_at is not None
    assert task.due_at.isoformat() == "2026-11-24T03:30:00+00:00"  # 11:30 in Shanghai
    assert task.expires_at == T0 + timedelta(minutes=60)
    assert [o.volunteer_id for o in offers(session, task.id)] == [runner]  # skill required

    # However often and however concurrently the source asks, there is one task.
    def create(_: int) -> int:
        with app.state.session_factory() as own:
            made = dispatch.create_dispatched_task(
                own,
                kind=TaskKind.meal_delivery,
                title="重复",
                booking_id=booking["id"],
                source_key=f"booking:{booking['id']}",
                now=T0,
                settings=settings,
            )
            own.commit()
            return made.id

    assert at_once(4, create) == [task.id] * 4
    assert len(tasks(session)) == 1

    accepted = client.post(f"{TASKS}/{task.id}/accept", json={"identity": runner_identity})
    assert "地址：1号楼1单元101。请在11月24日11:30前完成。" in accepted.json()["message"]
    cancelled = client.post(
        "/api/v1/canteen/bookings/cancel",
        json={"identity": ELDER, "day": TOMORROW.isoformat(), "slot": "lunch"},
    )
    assert cancelled.status_code == 200, cancelled.text
    assert task_row(session, task.id).status == TaskStatus.cancelled
    [told] = outbox(session, "task_cancelled")
    assert told.recipient == runner_identity
    assert told.payload["text"] == (
        "您接的志愿任务“给王秀英送11月24日午饭（1份，1号楼）”取消了：居民取消了订餐，不用去了，谢谢您！"
    )


def raise_alert(client: TestClient, kind: str, key: str | None = None) -> dict[str, Any]:
    headers = {"Idempotency-Key": key} if key else {}
    response = client.post(
        "/api/v1/alerts",
        json={"kind": kind, "identity": ELDER, "channel": "phone"},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    alert: dict[str, Any] = response.json()["alert"]
    return alert


def test_an_emergency_sends_the_nearest_neighbour_within_minutes(
    client: TestClient,
    session: Session,
    world: World,
    clock: ManualClock,
    settings: Settings,
) -> None:
    neighbour, neighbour_identity = make_volunteer(
        session, "隔壁", household_id=world.households[1].id, skills=["driving"]
    )
    medic, _ = make_volunteer(
        session, "护士", household_id=world.households[3].id, skills=["first_aid"]
    )
    alert = raise_alert(client, "fall", key="sos-1")
    raise_alert(client, "fall", key="sos-1")  # the same call, retried
    raise_alert(client, "gas")  # fire and gas are for 119, not for a neighbour
    [task] = tasks(session)
    assert (task.kind, task.alert_id, task.points) == (TaskKind.emergency_check, alert["id"], 3)
    assert task.expires_at == T0 + timedelta(minutes=5)
    assert task.due_at == T0 + timedelta(minutes=15)
    # Closeness counts double in an emergency: the neighbour (no first aid) comes first.
    ranked = [(o.volunteer_id, o.score) for o in offers(session, task.id)]
    assert ranked == [(neighbour, 90), (medic, 70)]
    offer = next(n for n in outbox(session, "task_offered") if n.recipient == neighbour_identity)
    assert offer.payload["text"].startswith(
        "有一个志愿任务（紧急查看）：紧急查看：王秀英（1号楼）摔倒"
    )

    clock.advance(timedelta(minutes=5))
    assert run_rule(session, "tasks_expired", settings=settings, now=clock.now()) == 1
    assert task_row(session, task.id).status == TaskStatus.escalated
    assert recipients(session, "task_escalated") == [
        f"staff:{world.staff[StaffRole.grid_worker].id}"
    ]

    # A resolved alert calls off the check-on; the volunteer on the way is told.
    second = raise_alert(client, "illness")
    check = tasks(session)[-1]
    client.post(f"{TASKS}/{check.id}/accept", json={"identity": neighbour_identity})
    resolved = client.post(f"/api/v1/alerts/{second['id']}/resolve", json={"note": "已送医"})
    assert resolved.status_code == 200, resolved.text
    assert task_row(session, check.id).status == TaskStatus.cancelled
    assert recipients(session, "task_cancelled") == [neighbour_identity]


def test_elders_living_alone_get_a_visit_each_period(
    session: Session, world: World, clock: ManualClock, settings: Settings
) -> None:
    make_volunteer(session, "探访员", household_id=world.households[2].id, skills=["visit"])
    assert run_rule(session, "visits_scheduled", settings=settings, now=clock.now()) == 2
    assert run_rule(session, "visits_scheduled", settings=settings, now=clock.now()) == 0
    visits = tasks(session)
    assert [(t.kind, t.resident_id) for t in visits] == [
        (TaskKind.visit, world.residents[0].id),
        (TaskKind.visit, world.residents[4].id),
    ]
    assert visits[0].title == "上门看望独居老人王秀英"
    assert visits[0].due_at == T0 + timedelta(hours=48)

    clock.advance(timedelta(days=6, hours=12))  # Sunday 22:00: the same week
    assert run_rule(session, "visits_scheduled", settings=settings, now=clock.now()) == 0
    clock.advance(timedelta(hours=9))  # Monday 07:00: too early to ring anyone
    assert run_rule(session, "visits_scheduled", settings=settings, now=clock.now()) == 0
    clock.advance(timedelta(hours=1))
    assert run_rule(session, "visits_scheduled", settings=settings, now=clock.now()) == 2
    clock.advance(timedelta(days=7))
    settings.visit_interval_days = 0
    assert run_rule(session, "visits_scheduled", settings=settings, now=clock.now()) == 0


def test_staff_flag_a_small_repair_for_a_handy_volunteer(
    client: TestClient, session: Session, world: World
) -> None:
    handy, _ = make_volunteer(
        session, "巧手", household_id=world.households[1].id, skills=["repair"]
    )
    repair = client.post(
        "/api/v1/repairs",
        json={
            "category": "lighting",
            "description": "楼道灯不亮",
            "identity": ELDER,
            "building": 1,
            "entrance": 1,
            "room": "101",
        },
    ).json()
    first = client.post(f"{TASKS}/repair-help", json={"repair_id": repair["id"]})
    assert first.status_code == 201, first.text
    task = first.json()
    assert (task["kind"], task["repair_id"], task["resident_id"]) == (
        "repair_help",
        repair["id"],
        world.elder.id,
    )
    assert task["title"] == "帮忙修照明灯（1号楼1单元）"
    assert [o.volunteer_id for o in offers(session, task["id"])] == [handy]  # repair ↔ repair_help
    again = client.post(f"{TASKS}/repair-help", json={"repair_id": repair["id"]})
    assert again.json()["id"] == task["id"]

    other = client.post(
        "/api/v1/repairs",
        json={
            "category": "water",
            "description": "水龙头滴水",
            "identity": ELDER,
            "building": 1,
            "entrance": 1,
            "room": "101",
        },
    ).json()
    client.post(f"/api/v1/repairs/{other['id']}/status", json={"status": "resolved"})
    finished = client.post(f"{TASKS}/repair-help", json={"repair_id": other["id"]})
    assert finished.status_code == 409
    assert finished.json()["detail"] == f"报修单{other['id']}号已经办完了，不需要志愿者了。"
    missing = client.post(f"{TASKS}/repair-help", json={"repair_id": 99999})
    assert missing.status_code == 404
