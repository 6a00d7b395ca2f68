"""Schemas for the canteen: dishes, menus, bookings and the kitchen's day sheet."""

from datetime import date, datetime

from pydantic import AwareDatetime, BaseModel, Field

from records.core.config import Settings
from records.models import Booking, BookingStatus, MealSlot, Menu
from records.repository import canteen as canteen_repo
from records.schemas.common import ORMModel
from records.schemas.people import IdentityIn


class DishCreate(BaseModel):
    """A new dish."""

    name: str = Field(min_length=1, max_length=50)
    description: str | None = Field(default=None, max_length=200)
    tags: list[str] = Field(default_factory=list, max_length=10, description="e.g. 少盐, 软烂, 素")


class DishOut(ORMModel):
    """A dish."""

    id: int
    name: str
    description: str | None
    tags: list[str]
    active: bool


class MenuCreate(BaseModel):
    """A meal to plan; the cut-off defaults by slot (breakfast 20:00 the day before, …)."""

    day: date
    slot: MealSlot
    capacity: int = Field(ge=1, le=10_000)
    price_cents: int = Field(ge=0, le=100_000)
    dish_ids: list[int] = Field(default_factory=list, max_length=20)
    cutoff_at: AwareDatetime | None = None


class MenuOut(BaseModel):
    """A planned meal, with places left and a sentence to read out."""

    id: int
    day: date
    slot: MealSlot
    slot_name: str
    capacity: int
    booked: int
    remaining: int
    cutoff_at: datetime
    open_for_booking: bool
    price_cents: int
    dishes: list[DishOut]
    text: str = Field(description="the menu as the assistant says it, in Chinese")


class BookingCreate(IdentityIn):
    """A booking made for the sender `identity` (quantity limits are checked with reasons)."""

    day: date
    slot: MealSlot
    quantity: int = 1
    delivery: bool = False
    dietary_notes: str | None = Field(
        default=None, max_length=200, description="null: the resident's usual notes"
    )
    channel: str | None = Field(default=None, max_length=20)


class MyBookingsIn(IdentityIn):
    """Whose upcoming bookings, from which day (default today)."""

    from_day: date | None = None


class CancelBySlotIn(IdentityIn):
    """Cancel the sender's booking of one meal."""

    day: date
    slot: MealSlot


class BookingOut(BaseModel):
    """A booking with its fixed prices and a sentence to read out."""

    id: int
    menu_id: int
    day: date
    slot: MealSlot
    resident_id: int
    quantity: int
    delivery: bool
    dietary_notes: str | None
    status: BookingStatus
    unit_price_cents: int
    subsidy_cents: int
    total_cents: int
    channel: str | None
    created_at: datetime
    cancelled_at: datetime | None
    cutoff_at: datetime
    text: str = Field(description="the booking as the assistant says it, in Chinese")


class SheetLineOut(ORMModel):
    """One booking on the kitchen's sheet."""

    booking_id: int
    resident_name: str
    quantity: int
    dietary_notes: str | None
    address: str | None


class SlotSheetOut(BaseModel):
    """One meal of the day for the kitchen."""

    menu_id: int
    slot: MealSlot
    slot_name: str
    capacity: int
    booked: int
    remaining: int
    dishes: list[str]
    deliveries: list[SheetLineOut]
    dine_in: list[SheetLineOut]


class DaySheetOut(BaseModel):
    """Everything the canteen cooks and delivers on one day."""

    day: date
    slots: list[SlotSheetOut]


def menu_out(menu: Menu, *, booked: int, now: datetime, settings: Settings) -> MenuOut:
    """A menu with its places left, as the assistant presents it."""
    today = canteen_repo.local_today(now=now, settings=settings)
    remaining = max(menu.capacity - booked, 0)
    is_open = now < menu.cutoff_at
    return MenuOut(
        id=menu.id,
        day=menu.day,
        slot=menu.slot,
        slot_name=canteen_repo.SLOT_NAMES[menu.slot],
        capacity=menu.capacity,
        booked=booked,
        remaining=remaining,
        cutoff_at=menu.cutoff_at,
        open_for_booking=is_open,
        price_cents=menu.price_cents,
        dishes=[DishOut.model_validate(d) for d in menu.dishes],
        text=_menu_text(menu, remaining=remaining, is_open=is_open, today=today, settings=settings),
    )


def _menu_text(
    menu: Menu, *, remaining: int, is_open: bool, today: date, settings: Settings
) -> str:
    meal = canteen_repo.meal_phrase(menu.day, menu.slot, today=today)
    dishes = "、".join(d.name for d in menu.dishes) or "还没定菜"
    text = f"{meal}：{dishes}，每份{canteen_repo.yuan(menu.price_cents)}。"
    if not is_open:
        return text + "已经截止预订了。"
    if remaining == 0:
        return text + "已经订满了。"
    cutoff = canteen_repo.cutoff_phrase(menu, today=today, settings=settings)
    return text + f"还剩{remaining}份，{cutoff}截止预订。"


def booking_out(booking: Booking, *, now: datetime, settings: Settings) -> BookingOut:
    """A booking, as the assistant confirms it."""
    menu = booking.menu
    return BookingOut(
        id=booking.id,
        menu_id=menu.id,
        day=menu.day,
        slot=menu.slot,
        resident_id=booking.resident_id,
        quantity=booking.quantity,
        delivery=booking.delivery,
        dietary_notes=booking.dietary_notes,
        status=booking.status,
        unit_price_cents=booking.unit_price_cents,
        subsidy_cents=booking.subsidy_cents,
        total_cents=booking.total_cents,
        channel=booking.channel,
        created_at=booking.created_at,
        cancelled_at=booking.cancelled_at,
        cutoff_at=menu.cutoff_at,
        text=_booking_text(booking, today=canteen_repo.local_today(now=now, settings=settings)),
    )


def _booking_text(booking: Booking, *, today: date) -> str:
    meal = canteen_repo.meal_phrase(booking.menu.day, booking.menu.slot, today=today)
    if booking.status == BookingStatus.cancelled:
        return f"{meal}的{booking.quantity}份已经取消了。"
    price = f"共{canteen_repo.yuan(booking.total_cents)}"
    if booking.subsidy_cents:
        price += f"（已补贴{canteen_repo.yuan(booking.subsidy_cents)}）"
    how = "会送到您家" if booking.delivery else "请到食堂用餐"
    return f"已为您订好{meal}{booking.quantity}份，{price}，{how}。"


def slot_sheet_out(sheet: canteen_repo.SlotSheet) -> SlotSheetOut:
    """One meal of the day sheet."""
    menu = sheet.menu
    return SlotSheetOut(
        menu_id=menu.id,
        slot=menu.slot,
        slot_name=canteen_repo.SLOT_NAMES[menu.slot],
        capacity=menu.capacity,
        booked=sheet.booked,
        remaining=sheet.remaining,
        dishes=[d.name for d in menu.dishes],
        deliveries=[SheetLineOut.model_validate(line) for line in sheet.deliveries],
        dine_in=[SheetLineOut.model_validate(line) for line in sheet.dine_in],
    )
