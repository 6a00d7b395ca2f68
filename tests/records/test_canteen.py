"""The canteen: menus, bookings with subsidies, cut-offs, capacity, cancellation, reminders.

The clock starts on Monday 2026-11-23 at 10:00 in Shanghai: today's lunch has closed
(09:30), tomorrow's meals are open.
"""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from records.core.clock import ManualClock
from records.core.config import Settings
from records.models import Booking, BookingStatus, Notification, StaffRole
from records.repository import canteen as canteen_repo
from records.repository import residents as residents_repo
from tests.records.factories import World

TODAY = date(2026, 11, 23)
TOMORROW = date(2026, 11, 24)
ELDER = "phone:+8613800000001"  # 王秀英, born 1941: 85 tomorrow, 30% subsidy
ADULT = "phone:+8613800000003"  # 张伟, born 1985: no subsidy
RETIREE = "phone:+8613800000002"  # 李建国, born 1958
BASE = "/api/v1/canteen"


@pytest.fixture
def dish_ids(client: TestClient, world: World) -> list[int]:
    """Two dishes on the repertoire."""
    ids = []
    for name in ("红烧冬瓜", "清蒸鱼"):
        response = client.post(f"{BASE}/dishes", json={"name": name, "tags": ["少盐"]})
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


def plan(
    client: TestClient,
    *,
    day: date = TOMORROW,
    slot: str = "lunch",
    capacity: int = 10,
    dish_ids: list[int] | None = None,
) -> dict[str, Any]:
    """Plan a meal at 12元 a portion through the API."""
    response = client.post(
        f"{BASE}/menus",
        json={
            "day": day.isoformat(),
            "slot": slot,
            "capacity": capacity,
            "price_cents": 1200,
            "dish_ids": dish_ids or [],
        },
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def book(
    client: TestClient,
    identity: str,
    *,
    quantity: int = 1,
    day: date = TOMORROW,
    slot: str = "lunch",
    **extra: Any,
) -> Any:
    """Ask to book a meal through the API."""
    body = {"identity": identity, "day": day.isoformat(), "slot": slot, "quantity": quantity}
    return client.post(f"{BASE}/bookings", json={**body, **extra})


def assert_problem(response: Any, status: int, *fragments: str) -> None:
    """A problem+json refusal whose Chinese detail says what it should."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    for fragment in fragments:
        assert fragment in response.json()["detail"]


def test_booking_prices_with_age_subsidy(
    client: TestClient, world: World, dish_ids: list[int]
) -> None:
    menu = plan(client, dish_ids=dish_ids)
    assert menu["cutoff_at"].startswith("2026-11-24T01:30")  # 09:30 in Shanghai
    assert menu["text"] == "明天午饭：红烧冬瓜、清蒸鱼，每份12元。还剩10份，上午9:30截止预订。"

    elder = book(client, ELDER, quantity=2)
    assert elder.status_code == 201, elder.text
    body = elder.json()
    assert (body["unit_price_cents"], body["subsidy_cents"], body["total_cents"]) == (
        1200,
        720,
        1680,
    )
    assert body["dietary_notes"] == "少盐"  # the resident's usual notes
    assert body["channel"] == "phone"
    assert body["text"] == "已为您订好明天午饭2份，共16.80元（已补贴7.20元），请到食堂用餐。"

    adult = book(client, ADULT).json()
    assert (adult["subsidy_cents"], adult["total_cents"]) == (0, 1200)

    again = book(client, ELDER)
    assert_problem(again, 409, "您已经订过明天午饭了", "先取消")

    plan(client, slot="dinner")
    plan(client, slot="breakfast")
    listed = client.get(f"{BASE}/menus", params={"day": TOMORROW.isoformat()}).json()
    assert [(m["slot"], m["booked"], m["remaining"]) for m in listed["items"]] == [
        ("breakfast", 0, 10),
        ("lunch", 3, 7),
        ("dinner", 0, 10),
    ]
    mine = client.post(f"{BASE}/bookings/mine", json={"identity": ELDER}).json()
    assert [(b["day"], b["slot"], b["quantity"]) for b in mine] == [("2026-11-24", "lunch", 2)]


def test_after_cutoff_booking_is_refused_with_local_time(
    client: TestClient, world: World, clock: ManualClock
) -> None:
    plan(client, day=TODAY)
    assert_problem(book(client, ELDER, day=TODAY), 409, "今天午饭的预订已经在上午9:30截止了")

    plan(client, slot="breakfast")  # closes at 20:00 today
    clock.advance(timedelta(hours=10, minutes=30))
    refused = book(client, ELDER, slot="breakfast")
    assert_problem(refused, 409, "明天早饭的预订已经在今天晚上8:00截止了")


def test_no_menu_and_unknown_sender_are_refused_kindly(client: TestClient, world: World) -> None:
    assert_problem(book(client, ELDER, slot="dinner"), 404, "明天晚饭还没有排菜单")
    plan(client)
    assert_problem(book(client, "telegram:999"), 403, "登记")


@pytest.mark.parametrize("quantity", [0, 11])
def test_quantity_out_of_range_is_refused(client: TestClient, world: World, quantity: int) -> None:
    plan(client)
    assert_problem(book(client, ELDER, quantity=quantity), 422, "1到10份")


def test_full_menu_refuses_the_next_booking(client: TestClient, world: World) -> None:
    plan(client, capacity=3)
    assert book(client, ELDER, quantity=2).status_code == 201
    assert_problem(book(client, ADULT, quantity=2), 409, "明天午饭只剩1份了")
    assert book(client, ADULT, quantity=1).status_code == 201
    assert_problem(book(client, RETIREE), 409, "订满")


def test_concurrent_bookings_never_exceed_capacity(
    client: TestClient, world: World, session: Session
) -> None:
    for i in range(20):
        residents_repo.create_resident(
            session, name=f"居民{i}", household_id=None, phones=[f"1370000{i:04d}"]
        )
    session.commit()
    menu = plan(client, capacity=10)

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(
            pool.map(lambda i: book(client, f"phone:+861370000{i:04d}").status_code, range(20))
        )

    assert sorted(statuses) == [201] * 10 + [409] * 10
    booked = session.scalar(
        select(func.sum(Booking.quantity)).where(
            Booking.menu_id == menu["id"], Booking.status == BookingStatus.booked
        )
    )
    session.rollback()
    assert booked == 10


def test_cancel_before_cutoff_frees_the_place(client: TestClient, world: World) -> None:
    plan(client, capacity=1)
    booking = book(client, ELDER).json()
    assert_problem(book(client, ADULT), 409, "订满")

    someone_else = client.post(f"{BASE}/bookings/{booking['id']}/cancel", json={"identity": ADULT})
    assert someone_else.status_code == 404
    body = {"identity": ELDER, "day": TOMORROW.isoformat(), "slot": "lunch"}
    cancelled = client.post(f"{BASE}/bookings/cancel", json=body)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    repeated = client.post(f"{BASE}/bookings/{booking['id']}/cancel", json={"identity": ELDER})
    assert repeated.status_code == 200
    assert repeated.json()["cancelled_at"] == cancelled.json()["cancelled_at"]

    assert book(client, ADULT).status_code == 201


def test_cancel_after_cutoff_is_refused(
    client: TestClient, world: World, clock: ManualClock
) -> None:
    plan(client)
    booking = book(client, ELDER).json()
    clock.advance(timedelta(days=1))  # tomorrow 10:00, past 09:30
    response = client.post(f"{BASE}/bookings/{booking['id']}/cancel", json={"identity": ELDER})
    assert_problem(response, 409, "今天午饭的预订已经在上午9:30截止了", "不能取消")


def test_booking_retry_with_same_key_books_once(client: TestClient, world: World) -> None:
    plan(client)
    headers = {"Idempotency-Key": "bot-msg-77"}
    body = {"identity": ELDER, "day": TOMORROW.isoformat(), "slot": "lunch", "quantity": 1}
    first = client.post(f"{BASE}/bookings", json=body, headers=headers)
    second = client.post(f"{BASE}/bookings", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    listing = client.get(f"{BASE}/bookings", params={"day": TOMORROW.isoformat()}).json()
    assert listing["total"] == 1


def test_reminders_go_out_once_per_booking(
    client: TestClient, world: World, session: Session, settings: Settings, clock: ManualClock
) -> None:
    plan(client, dish_ids=[])
    book(client, ELDER, quantity=2, delivery=True)
    book(client, ADULT)

    def remind() -> int:
        count = canteen_repo.remind_tomorrow(session, settings=settings, now=clock.now())
        session.commit()
        return count

    assert remind() == 0  # 10:00 is too early
    clock.advance(timedelta(hours=8, minutes=30))
    assert remind() == 2
    assert remind() == 0
    clock.advance(timedelta(hours=1))
    assert remind() == 0

    texts = session.scalars(
        select(Notification.payload).where(Notification.kind == "canteen.reminder")
    ).all()
    session.rollback()
    assert len(texts) == 2
    assert any("明天午饭您订了2份，我们会送到您家" in t["text"] for t in texts)


def test_day_sheet_lists_deliveries_for_canteen_staff_only(
    client: TestClient,
    world: World,
    session: Session,
    staff_client: Callable[[StaffRole], TestClient],
) -> None:
    plan(client)
    residents_repo.create_resident(
        session, name="无址老人", household_id=None, phones=["13700009999"]
    )
    session.commit()
    assert_problem(book(client, "phone:+8613700009999", delivery=True), 422, "住址")
    book(client, ELDER, quantity=2, delivery=True)
    book(client, ADULT, dietary_notes="不吃辣")

    canteen = staff_client(StaffRole.canteen)
    sheet = canteen.get(f"{BASE}/day-sheet", params={"day": TOMORROW.isoformat()})
    assert sheet.status_code == 200, sheet.text
    (lunch,) = sheet.json()["slots"]
    assert (lunch["booked"], lunch["remaining"]) == (3, 7)
    (delivery,) = lunch["deliveries"]
    assert delivery["resident_name"] == "王秀英"
    assert delivery["address"] == "1号楼1单元101"
    assert (delivery["quantity"], delivery["dietary_notes"]) == (2, "少盐")
    assert [line["dietary_notes"] for line in lunch["dine_in"]] == ["不吃辣"]

    grid = staff_client(StaffRole.grid_worker)
    assert grid.get(f"{BASE}/menus", params={"day": TOMORROW.isoformat()}).status_code == 200
    assert grid.get(f"{BASE}/day-sheet").status_code == 403
    assert grid.get(f"{BASE}/bookings").status_code == 403
    assert book(grid, ELDER).status_code == 403
    assert grid.post(f"{BASE}/dishes", json={"name": "土豆丝"}).status_code == 403
