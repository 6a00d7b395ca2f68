"""The demo community: loaded once, complete enough to try every service, staff can sign in."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from records.core.config import Settings
from records.demo import DemoError, load_demo
from records.models import (
    Base,
    Building,
    Community,
    Household,
    HouseholdUnit,
    MealSlot,
    Menu,
    Proposal,
    ProposalStatus,
    Repair,
    Resident,
    StaffRole,
    StaffUser,
    Volunteer,
    Vote,
)

# 01:30 on 24 November in Shanghai, still the 23rd in UTC: menus follow the local date.
NOW = datetime(2026, 11, 23, 17, 30, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def count(session: Session, model: type[Base]) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def row_counts(session: Session) -> dict[str, int]:
    return {table.name: count_table(session, table.name) for table in Base.metadata.tables.values()}


def count_table(session: Session, name: str) -> int:
    table = Base.metadata.tables[name]
    return session.scalar(select(func.count()).select_from(table)) or 0


@pytest.fixture
def demo(session: Session, settings: Settings) -> Session:
    """A session on a database holding the demo community."""
    assert load_demo(session=session, settings=settings, now=NOW) is True
    return session


def test_demo_builds_the_community(demo: Session) -> None:
    assert count(demo, Community) == 1
    assert count(demo, Building) == 3
    assert 38 <= count(demo, Household) <= 42
    assert count(demo, HouseholdUnit) == 3
    assert demo.scalar(select(func.count(func.distinct(Household.unit_id)))) == 3
    assert 70 <= count(demo, Resident) <= 90
    assert count(demo, Volunteer) == 6
    skills = {s for v in demo.scalars(select(Volunteer)) for s in v.skills}
    assert skills == {"meal_delivery", "visit", "repair", "escort", "first_aid", "driving"}
    roles = {s.role for s in demo.scalars(select(StaffUser))}
    assert roles == set(StaffRole)
    published = select(func.count()).where(Proposal.status == ProposalStatus.published)
    assert demo.scalar(published) == 1
    assert len({r.status for r in demo.scalars(select(Repair))}) >= 2
    assert_unit_leaders_live_in_their_units(demo)
    assert_elderly_living_alone_have_contacts_and_notes(demo)


def assert_unit_leaders_live_in_their_units(demo: Session) -> None:
    for unit in demo.scalars(select(HouseholdUnit)):
        leader = demo.get(StaffUser, unit.leader_id)
        assert leader is not None
        assert leader.role is StaffRole.unit_leader
        resident = demo.get(Resident, leader.resident_id)
        assert resident is not None
        assert resident.household is not None
        assert resident.household.unit_id == unit.id


def assert_elderly_living_alone_have_contacts_and_notes(demo: Session) -> None:
    alone = demo.scalars(select(Resident).where(Resident.lives_alone)).all()
    assert len(alone) >= 5
    assert all(r.is_elderly and r.emergency_contacts and r.dietary_notes for r in alone)
    assert all(p.number.startswith("+86138") for r in alone for p in r.phones)


def test_a_week_of_menus_and_an_open_vote(demo: Session) -> None:
    assert_a_week_of_menus_with_default_cutoffs(demo)
    assert_one_vote_open_for_a_week(demo)


def assert_a_week_of_menus_with_default_cutoffs(demo: Session) -> None:
    menus = demo.scalars(select(Menu).order_by(Menu.day)).all()
    assert len(menus) == 21
    first_day = NOW.astimezone(SHANGHAI).date()
    assert first_day == date(2026, 11, 24)
    assert {m.day for m in menus} == {first_day + timedelta(days=d) for d in range(7)}
    assert all(30 <= m.capacity <= 60 and 800 <= m.price_cents <= 1500 for m in menus)
    assert all(m.dishes for m in menus)
    local_cutoffs = {
        (m.slot, (m.day - local.date()).days, local.strftime("%H:%M"))
        for m in menus
        for local in [m.cutoff_at.astimezone(SHANGHAI)]
    }
    assert local_cutoffs == {
        (MealSlot.breakfast, 1, "20:00"),
        (MealSlot.lunch, 0, "09:30"),
        (MealSlot.dinner, 0, "15:00"),
    }


def assert_one_vote_open_for_a_week(demo: Session) -> None:
    votes = demo.scalars(select(Vote)).all()
    assert len(votes) == 1
    vote = votes[0]
    assert vote.opens_at <= NOW < vote.closes_at == NOW + timedelta(days=7)
    assert [(o.code, o.label) for o in vote.options] == [
        ("yes", "同意"),
        ("no", "反对"),
        ("abstain", "弃权"),
    ]


def test_second_load_changes_nothing(demo: Session, settings: Settings) -> None:
    before = row_counts(demo)
    assert load_demo(session=demo, settings=settings, now=NOW + timedelta(days=1)) is False
    assert row_counts(demo) == before


def test_load_is_refused_without_a_demo_password(session: Session, settings: Settings) -> None:
    no_password = settings.model_copy(update={"demo_staff_password": None})
    with pytest.raises(DemoError, match="DEMO_STAFF_PASSWORD"):
        load_demo(session=session, settings=no_password, now=NOW)
    session.rollback()
    assert count(session, Community) == 0


def test_demo_staff_sign_in_with_the_demo_password(
    demo: Session, settings: Settings, anonymous: TestClient
) -> None:
    password = settings.demo_staff_password
    response = anonymous.post(
        "/api/v1/auth/login", json={"username": "grid1", "password": password}
    )
    assert response.status_code == 200, response.text
    assert response.json()["role"] == "grid_worker"
    wrong = anonymous.post("/api/v1/auth/login", json={"username": "admin", "password": "x"})
    assert wrong.status_code == 401
