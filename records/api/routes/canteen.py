"""The elderly canteen: dishes and menus for staff, bookings for residents via the assistant.

Menus are harmless, so every staff role may read them; bookings and the day sheet carry
names, addresses and dietary notes, so only canteen staff (and admins, and the service
token the assistant uses) reach them.
"""

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from records.api.deps import ClockDep, PageDep, SessionDep, SettingsDep, require_roles
from records.api.idempotency import IdempotencyDep
from records.core.clock import Clock
from records.core.config import Settings
from records.models import BookingStatus, MealSlot, StaffRole
from records.repository import canteen as canteen_repo
from records.schemas.canteen import (
    BookingCreate,
    BookingOut,
    CancelBySlotIn,
    DaySheetOut,
    DishCreate,
    DishOut,
    MenuCreate,
    MenuOut,
    MyBookingsIn,
    booking_out,
    menu_out,
    slot_sheet_out,
)
from records.schemas.common import Page
from records.schemas.people import IdentityIn

# The default window of GET /menus without dates: this week's meals from today.
MENU_WINDOW_DAYS = 7

router = APIRouter(
    prefix="/canteen",
    tags=["canteen"],
    dependencies=[
        Depends(require_roles(StaffRole.canteen, StaffRole.grid_worker, StaffRole.unit_leader))
    ],
)
CANTEEN_ONLY = [Depends(require_roles(StaffRole.canteen))]


def _today(clock: Clock, settings: Settings) -> date:
    return canteen_repo.local_today(now=clock.now(), settings=settings)


@router.post("/dishes", status_code=201, response_model=DishOut, dependencies=CANTEEN_ONLY)
def create_dish(body: DishCreate, session: SessionDep, idem: IdempotencyDep) -> JSONResponse:
    """Add a dish."""
    return idem.run(
        body, lambda: DishOut.model_validate(canteen_repo.create_dish(session, **body.model_dump()))
    )


@router.get("/dishes")
def list_dishes(session: SessionDep, page: PageDep, active: bool | None = None) -> Page[DishOut]:
    """List dishes by name."""
    rows, total = canteen_repo.list_dishes(
        session, limit=page.limit, offset=page.offset, active=active
    )
    return Page(
        items=[DishOut.model_validate(d) for d in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.post("/menus", status_code=201, response_model=MenuOut, dependencies=CANTEEN_ONLY)
def create_menu(
    body: MenuCreate,
    session: SessionDep,
    idem: IdempotencyDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> JSONResponse:
    """Plan a meal (day and slot) with its dishes, places, price and cut-off."""

    def create() -> MenuOut:
        menu = canteen_repo.create_menu(session, **body.model_dump(), settings=settings)
        return menu_out(menu, booked=0, now=clock.now(), settings=settings)

    return idem.run(body, create)


@router.get("/menus")
def list_menus(
    session: SessionDep,
    page: PageDep,
    clock: ClockDep,
    settings: SettingsDep,
    day: date | None = None,
    first: Annotated[date | None, Query(alias="from")] = None,
    last: Annotated[date | None, Query(alias="to")] = None,
    slot: MealSlot | None = None,
) -> Page[MenuOut]:
    """Menus of one day, or of a range (default: the coming week), optionally one slot."""
    first = day or first or _today(clock, settings)
    last = day or last or first + timedelta(days=MENU_WINDOW_DAYS - 1)
    rows, total = canteen_repo.menus_between(
        session, first=first, last=last, slot=slot, limit=page.limit, offset=page.offset
    )
    booked = canteen_repo.booked_quantities(session, menu_ids=[m.id for m in rows])
    now = clock.now()
    return Page(
        items=[menu_out(m, booked=booked[m.id], now=now, settings=settings) for m in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/menus/{menu_id}")
def get_menu(menu_id: int, session: SessionDep, clock: ClockDep, settings: SettingsDep) -> MenuOut:
    """One menu with its places left."""
    menu = canteen_repo.get_menu(session, menu_id=menu_id)
    booked = canteen_repo.booked_quantities(session, menu_ids=[menu.id])[menu.id]
    return menu_out(menu, booked=booked, now=clock.now(), settings=settings)


@router.post("/bookings", status_code=201, response_model=BookingOut, dependencies=CANTEEN_ONLY)
def create_booking(
    body: BookingCreate,
    session: SessionDep,
    idem: IdempotencyDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> JSONResponse:
    """Book a meal for the sender; refusals say why in plain Chinese."""

    def create() -> BookingOut:
        now = clock.now()
        booking = canteen_repo.book(session, **body.model_dump(), now=now, settings=settings)
        return booking_out(booking, now=now, settings=settings)

    return idem.run(body, create)


@router.get("/bookings", dependencies=CANTEEN_ONLY)
def list_bookings(
    session: SessionDep,
    page: PageDep,
    clock: ClockDep,
    settings: SettingsDep,
    day: date | None = None,
    slot: MealSlot | None = None,
    status: BookingStatus | None = None,
) -> Page[BookingOut]:
    """Bookings for the canteen, filtered by day, slot and status."""
    rows, total = canteen_repo.list_bookings(
        session, limit=page.limit, offset=page.offset, day=day, slot=slot, status=status
    )
    now = clock.now()
    return Page(
        items=[booking_out(b, now=now, settings=settings) for b in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.post("/bookings/mine", dependencies=CANTEEN_ONLY)
def my_bookings(
    body: MyBookingsIn, session: SessionDep, clock: ClockDep, settings: SettingsDep
) -> list[BookingOut]:
    """The sender's upcoming bookings (POST keeps the identity out of URLs)."""
    now = clock.now()
    rows = canteen_repo.bookings_for_identity(
        session, identity=body.identity, from_day=body.from_day or _today(clock, settings)
    )
    return [booking_out(b, now=now, settings=settings) for b in rows]


@router.post("/bookings/cancel", dependencies=CANTEEN_ONLY)
def cancel_by_slot(
    body: CancelBySlotIn, session: SessionDep, clock: ClockDep, settings: SettingsDep
) -> BookingOut:
    """Cancel the sender's booking of one meal before its cut-off."""
    now = clock.now()
    booking = canteen_repo.cancel(
        session, identity=body.identity, day=body.day, slot=body.slot, now=now, settings=settings
    )
    session.commit()
    return booking_out(booking, now=now, settings=settings)


@router.post("/bookings/{booking_id}/cancel", dependencies=CANTEEN_ONLY)
def cancel_booking(
    booking_id: int,
    body: IdentityIn,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> BookingOut:
    """Cancel one of the sender's bookings before its cut-off."""
    now = clock.now()
    booking = canteen_repo.cancel(
        session, identity=body.identity, booking_id=booking_id, now=now, settings=settings
    )
    session.commit()
    return booking_out(booking, now=now, settings=settings)


@router.get("/day-sheet", dependencies=CANTEEN_ONLY)
def day_sheet(
    session: SessionDep, clock: ClockDep, settings: SettingsDep, day: date | None = None
) -> DaySheetOut:
    """What the kitchen cooks and volunteers deliver on a day (default today)."""
    day = day or _today(clock, settings)
    sheets = canteen_repo.day_sheet(session, day=day)
    return DaySheetOut(day=day, slots=[slot_sheet_out(s) for s in sheets])
