"""The staff console at /admin: sign-in, role limits, repair triage, canteen sheet, tallies."""

import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from records.core.clock import ManualClock
from records.models import (
    AuditEntry,
    Ballot,
    Booking,
    Dish,
    EmergencyAlert,
    EmergencyKind,
    HandoffRequest,
    Household,
    MealSlot,
    Menu,
    PointsEntry,
    Proposal,
    Repair,
    RepairCategory,
    RepairEvent,
    RepairStatus,
    StaffRole,
    Task,
    TaskKind,
    Urgency,
    Volunteer,
    Vote,
    VoteKind,
    VoteOption,
)
from records.repository.community import address_key
from records.repository.residents import create_resident
from tests.conftest import T0
from tests.records.conftest import STAFF_PASSWORD
from tests.records.factories import World

Login = Callable[[StaffRole], TestClient]


@pytest.fixture
def console(app: FastAPI, world: World) -> Iterator[Login]:
    """Browsers signed in to the console as a staff user of a given role."""
    clients: list[TestClient] = []

    def login(role: StaffRole) -> TestClient:
        browser = TestClient(app, follow_redirects=False)
        clients.append(browser)
        response = browser.post(
            "/admin/login",
            data={"username": world.staff[role].username, "password": STAFF_PASSWORD},
        )
        assert response.status_code == 302, response.text
        return browser

    yield login
    for browser in clients:
        browser.close()


def make_repair(session: Session, world: World, **overrides: object) -> Repair:
    values: dict[str, object] = {
        "category": RepairCategory.lift,
        "description": "电梯停在三楼不动了",
        "urgency": Urgency.urgent,
        "building_id": world.buildings[0].id,
        "entrance": 2,
        "room": "202",
        "reporter_id": world.elder.id,
        "channel": "phone",
        "first_response_due_at": T0 + timedelta(hours=12),
        "closure_due_at": T0 + timedelta(hours=24),
        **overrides,
    }
    repair = Repair(**values)
    session.add(repair)
    session.commit()
    return repair


def reload(session: Session, repair: Repair) -> Repair:
    """The repair as stored now; ends the read so the app (SQLite) can write again."""
    session.refresh(repair)
    session.commit()
    return repair


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "the form carries no CSRF token"
    return match.group(1)


def test_sign_in_shares_the_api_session_and_refuses_bad_credentials(
    app: FastAPI, world: World, session: Session
) -> None:
    with TestClient(app, follow_redirects=False) as browser:
        assert (
            browser.post(
                "/admin/login", data={"username": "grid_worker1", "password": STAFF_PASSWORD}
            ).status_code
            == 302
        )
        home = browser.get("/admin/")
        assert home.status_code == 200
        assert "测试grid_worker" in home.text
        me = browser.get("/api/v1/auth/me")  # the console's sign-in is an API staff session
        assert me.status_code == 200
        assert me.json()["staff_id"] == world.staff[StaffRole.grid_worker].id
        assert me.json()["role"] == "grid_worker"
        browser.get("/admin/logout")
        assert browser.get("/api/v1/auth/me").status_code == 401
        assert browser.get("/admin/").status_code == 302

        page = browser.get("/admin/login")
        assert page.status_code == 200
        assert "邻里 社区工作台" in page.text
        wrong = browser.post(
            "/admin/login", data={"username": "grid_worker1", "password": "wrong password"}
        )
        assert wrong.status_code == 400
        assert "用户名或密码不对" in wrong.text
        assert browser.get("/admin/").status_code == 302

        world.staff[StaffRole.grid_worker].active = False
        session.commit()
        inactive = browser.post(
            "/admin/login", data={"username": "grid_worker1", "password": STAFF_PASSWORD}
        )
        assert inactive.status_code == 400


def test_canteen_staff_see_neither_residents_nor_repairs(console: Login, world: World) -> None:
    browser = console(StaffRole.canteen)
    for table in ("resident", "repair", "vote", "staff-user"):
        response = browser.get(f"/admin/{table}/list")
        assert response.status_code == 403, table
        assert "王秀英" not in response.text
    assert browser.get(f"/admin/resident/details/{world.elder.id}").status_code == 403
    assert browser.get("/admin/triage").status_code == 403
    menu = browser.get("/admin/").text
    assert "/admin/resident/list" not in menu
    assert "/admin/repair/list" not in menu
    assert "报修" not in menu
    assert "/admin/canteen-day" in menu


def test_grid_workers_manage_residents_unit_leaders_only_read(
    console: Login, world: World, session: Session
) -> None:
    create_resident(session, name="外单元的孙阿姨", household_id=None)
    session.commit()
    grid_worker = console(StaffRole.grid_worker)
    listing = grid_worker.get("/admin/resident/list")
    assert listing.status_code == 200
    assert "王秀英" in listing.text
    assert "+8613800000001" in listing.text  # decrypted for staff allowed to see it
    details = grid_worker.get(f"/admin/resident/details/{world.elder.id}").text
    assert "少盐" in details
    assert "王小明" in details
    assert grid_worker.get(f"/admin/resident/edit/{world.elder.id}").status_code == 200
    households = grid_worker.get("/admin/household/list").text
    assert "1号楼1单元101" in households
    assert world.households[0].address_index not in households
    menu = grid_worker.get("/admin/").text
    assert "/admin/repair/list" in menu
    assert "/admin/dish/list" not in menu
    assert grid_worker.get("/admin/staff-user/list").status_code == 403

    household = {"building": str(world.buildings[0].id), "entrance": "1", "save": "保存"}
    taken = grid_worker.post("/admin/household/create", data={**household, "room": "101"})
    assert "已经登记过住户" in taken.text
    added = grid_worker.post("/admin/household/create", data={**household, "room": "909"})
    assert added.status_code == 302, added.text
    key = address_key(building_id=world.buildings[0].id, entrance=1, room="909")
    assert session.scalars(select(Household.room).where(Household.address_index == key)).one()
    session.commit()

    unit_leader = console(StaffRole.unit_leader)
    own_units = unit_leader.get("/admin/resident/list")
    assert own_units.status_code == 200
    assert "王秀英" in own_units.text
    assert "外单元的孙阿姨" not in own_units.text
    assert unit_leader.get(f"/admin/resident/edit/{world.elder.id}").status_code == 403
    assert unit_leader.get("/admin/resident/create").status_code == 403
    assert unit_leader.get("/admin/household/list").status_code == 403


def test_triage_lists_open_repairs_and_changes_status(
    console: Login, world: World, session: Session, clock: ManualClock
) -> None:
    repair = make_repair(session, world)
    make_repair(session, world, status=RepairStatus.closed, description="已经修好的灯")
    clock.advance(timedelta(hours=13))
    browser = console(StaffRole.grid_worker)
    page = browser.get("/admin/triage")
    assert page.status_code == 200
    assert "电梯停在三楼不动了" in page.text
    assert "已经修好的灯" not in page.text
    assert "1号楼2单元202" in page.text
    assert "已超时" in page.text  # the first response was due an hour ago

    response = browser.post(
        "/admin/triage/change",
        data={
            "csrf_token": csrf_of(page.text),
            "repair_id": str(repair.id),
            "to_status": "acknowledged",
            "note": "明天上午物业来修",
        },
    )
    assert response.status_code == 303
    assert "已更新" in browser.get("/admin/triage").text

    staff_id = world.staff[StaffRole.grid_worker].id
    event = session.scalars(
        select(RepairEvent).where(RepairEvent.repair_id == repair.id).order_by(RepairEvent.id)
    ).all()[-1]
    assert (event.to_status, event.note, event.actor) == (
        "acknowledged",
        "明天上午物业来修",
        f"staff:{staff_id}",
    )
    audit = session.scalars(
        select(AuditEntry).where(AuditEntry.entity == "repairs", AuditEntry.action == "update")
    ).all()
    assert [entry.actor for entry in audit] == [f"staff:{staff_id}"]


def test_triage_assigns_refuses_illegal_moves_and_forged_posts(
    console: Login, world: World, session: Session
) -> None:
    repair = make_repair(session, world)
    browser = console(StaffRole.unit_leader)
    token = csrf_of(browser.get("/admin/triage").text)
    leader = world.staff[StaffRole.unit_leader]

    forged = browser.post(
        "/admin/triage/change",
        data={"csrf_token": "forged", "repair_id": str(repair.id), "to_status": "closed"},
    )
    assert forged.status_code == 403
    cross_site = browser.post(
        "/admin/triage/change",
        data={"csrf_token": token, "repair_id": str(repair.id), "to_status": "closed"},
        headers={"Origin": "https://evil.example"},
    )
    assert cross_site.status_code == 403

    browser.post(
        "/admin/triage/change",
        data={"csrf_token": token, "repair_id": str(repair.id), "assignee_id": str(leader.id)},
    )
    assert (reload(session, repair).assignee_id, repair.status) == (
        leader.id,
        RepairStatus.assigned,
    )

    browser.post(
        "/admin/triage/change",
        data={"csrf_token": token, "repair_id": str(repair.id), "to_status": "acknowledged"},
    )
    assert "不能改成" in browser.get("/admin/triage").text
    assert reload(session, repair).status == RepairStatus.assigned


def test_canteen_plans_menus_in_local_time_and_reads_the_day_sheet(
    console: Login, world: World, session: Session
) -> None:
    today = date(2026, 11, 23)  # T0 in Shanghai
    menu = Menu(
        day=today,
        slot=MealSlot.lunch,
        capacity=30,
        cutoff_at=T0 - timedelta(hours=1),
        price_cents=1200,
    )
    session.add(menu)
    session.flush()
    session.add(
        Booking(
            menu_id=menu.id,
            resident_id=world.elder.id,
            quantity=2,
            delivery=True,
            dietary_notes="少盐",
            unit_price_cents=1200,
            subsidy_cents=360,
            total_cents=2040,
        )
    )
    session.commit()
    browser = console(StaffRole.canteen)
    page = browser.get("/admin/canteen-day")
    assert page.status_code == 200
    assert "午餐" in page.text
    assert "王秀英" in page.text
    assert "1号楼1单元101" in page.text  # delivered, so the address is shown
    assert "已订 2 / 30 份" in page.text
    assert "王秀英" not in browser.get("/admin/canteen-day?day=2026-11-24").text

    dish = Dish(name="南瓜粥", tags=["软烂"])
    session.add(dish)
    session.commit()
    form = {
        "day": "2026-11-24",
        "slot": "lunch",
        "dishes": str(dish.id),
        "capacity": "20",
        "cutoff_at": "2026-11-24 09:30:00",
        "price_cents": "1200",
        "save": "保存",
    }
    created = browser.post("/admin/menu/create", data=form)
    assert created.status_code == 302, created.text
    stored = session.scalars(select(Menu).where(Menu.day == date(2026, 11, 24))).one()
    assert stored.cutoff_at == datetime(2026, 11, 24, 1, 30, tzinfo=UTC)
    assert [d.name for d in stored.dishes] == ["南瓜粥"]
    session.commit()
    again = browser.post("/admin/menu/create", data=form)
    assert again.status_code == 400
    assert "已经有菜单了" in again.text


def test_vote_tally_is_hidden_until_the_vote_closes(
    console: Login, world: World, session: Session, clock: ManualClock
) -> None:
    vote = Vote(
        title="是否加装电梯",
        kind=VoteKind.yes_no,
        opens_at=T0 - timedelta(days=1),
        closes_at=T0 + timedelta(days=1),
    )
    vote.options = [
        VoteOption(code="yes", label="赞成", position=1),
        VoteOption(code="no", label="反对", position=2),
    ]
    session.add(vote)
    session.flush()
    yes, no = vote.options
    session.add_all([Ballot(vote_id=vote.id, option_id=o.id) for o in (yes, yes, no)])
    session.commit()
    browser = console(StaffRole.grid_worker)

    during = browser.get(f"/admin/vote/details/{vote.id}").text
    assert "投票进行中，结束后公布" in during
    assert "赞成：2 票" not in during

    clock.advance(timedelta(days=2))
    after = browser.get(f"/admin/vote/details/{vote.id}").text
    assert "赞成：2 票" in after
    assert "反对：1 票" in after
    assert "赞成：2 票" in browser.get("/admin/vote/list").text


def test_admin_creates_staff_with_a_hashed_password(
    console: Login, app: FastAPI, session: Session, world: World
) -> None:
    browser = console(StaffRole.admin)
    response = browser.post(
        "/admin/staff-user/create",
        data={
            "username": "newcomer",
            "display_name": "新同事",
            "role": "canteen",
            "active": "y",
            "password": "a long enough secret",
            "save": "保存",
        },
    )
    assert response.status_code == 302, response.text
    assert response.headers["location"].endswith("/admin/staff-user/list")
    listing = browser.get("/admin/staff-user/list").text
    assert "新同事" in listing
    admin_id = world.staff[StaffRole.admin].id
    for page in (listing, browser.get(f"/admin/staff-user/edit/{admin_id}").text):
        assert "argon2" not in page
    with TestClient(app, follow_redirects=False) as newcomer:
        signed_in = newcomer.post(
            "/admin/login", data={"username": "newcomer", "password": "a long enough secret"}
        )
        assert signed_in.status_code == 302
    creators = session.scalars(
        select(AuditEntry.actor).where(
            AuditEntry.entity == "staff_users", AuditEntry.action == "create"
        )
    ).all()
    assert f"staff:{world.staff[StaffRole.admin].id}" in creators


def fill_every_table(session: Session, world: World) -> None:
    """At least one row in each table the console shows."""
    repair = make_repair(session, world)
    menu = Menu(
        day=date(2026, 11, 23),
        slot=MealSlot.dinner,
        capacity=10,
        cutoff_at=T0 + timedelta(hours=6),
        price_cents=800,
    )
    menu.dishes = [Dish(name="清蒸鱼", tags=["少盐"])]
    volunteer = Volunteer(resident_id=world.residents[2].id, skills=["送餐"])
    session.add_all([menu, volunteer])
    session.flush()
    booking = Booking(
        menu_id=menu.id,
        resident_id=world.elder.id,
        quantity=1,
        unit_price_cents=800,
        subsidy_cents=240,
        total_cents=560,
    )
    session.add(booking)
    session.flush()
    task = Task(
        kind=TaskKind.meal_delivery,
        title="给王秀英送晚餐",
        booking_id=booking.id,
        volunteer_id=volunteer.id,
        resident_id=world.elder.id,
        points=2,
    )
    session.add(task)
    session.flush()
    session.add_all(
        [
            PointsEntry(volunteer_id=volunteer.id, task_id=task.id, delta=2, reason="task_done"),
            EmergencyAlert(
                kind=EmergencyKind.fall,
                resident_id=world.elder.id,
                location_text="卫生间",
                ack_due_at=T0 + timedelta(minutes=5),
            ),
            HandoffRequest(
                resident_id=world.elder.id,
                reason="想找人说话",
                callback_phone="+8613800000001",
                due_at=T0 + timedelta(minutes=30),
            ),
            Proposal(
                title="楼下加装座椅",
                content="方便老人休息",
                author_id=world.elder.id,
                support_threshold=10,
                answer_due_at=T0 - timedelta(days=1),
            ),
            Vote(
                title="广场改造",
                kind=VoteKind.yes_no,
                opens_at=T0 + timedelta(days=1),
                closes_at=T0 + timedelta(days=3),
            ),
        ]
    )
    session.commit()
    assert repair.id


def test_admin_can_open_every_page(console: Login, world: World, session: Session) -> None:
    fill_every_table(session, world)
    browser = console(StaffRole.admin)
    menu = browser.get("/admin/").text
    tables = sorted(set(re.findall(r'href="[^"]*/admin/([a-z-]+)/list"', menu)))
    assert len(tables) == 20, tables
    for table in tables:
        listing = browser.get(f"/admin/{table}/list")
        assert listing.status_code == 200, (table, listing.text[-2000:])
        for page in ("details", "edit"):
            if found := re.search(rf"/admin/{table}/{page}/\d+", listing.text):
                assert browser.get(found.group(0)).status_code == 200, found.group(0)
        if f"/admin/{table}/create" in listing.text:
            assert browser.get(f"/admin/{table}/create").status_code == 200, table
    for page in ("/admin/triage", "/admin/canteen-day", "/admin/canteen-day?day=oops"):
        assert browser.get(page).status_code == 200, page
