"""订餐日表: one day's menus with who booked what, for the kitchen and the delivery round."""

# sqladmin configures views through class-level lists and dicts, never mutated.
# ruff: noqa: RUF012

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import anyio
from sqladmin import expose
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from records.admin.base import Access, ConsoleContext, ConsolePage, console_context
from records.admin.labels import label, local_time_text
from records.admin.views.canteen import CANTEEN
from records.admin.views.common import address_text, joined
from records.models import Booking, BookingStatus, MealSlot, Menu, Resident, StaffRole

_SLOT_ORDER = list(MealSlot)


@dataclass(frozen=True)
class BookingLine:
    """One booking on the sheet."""

    resident: str
    quantity: int
    delivery: bool
    address: str
    dietary_notes: str


@dataclass(frozen=True)
class SlotSheet:
    """One meal of the day."""

    slot: str
    dishes: str
    capacity: int
    booked: int
    cutoff: str
    price: str
    bookings: list[BookingLine]

    @property
    def deliveries(self) -> int:
        """Portions to deliver."""
        return sum(line.quantity for line in self.bookings if line.delivery)


def day_sheet(session: Session, *, day: date, context: ConsoleContext) -> list[SlotSheet]:
    """Every menu of `day` in meal order, with its standing bookings."""
    menus = sorted(
        session.scalars(select(Menu).where(Menu.day == day)),
        key=lambda menu: _SLOT_ORDER.index(menu.slot),
    )
    return [_slot_sheet(session, menu, context) for menu in menus]


def _slot_sheet(session: Session, menu: Menu, context: ConsoleContext) -> SlotSheet:
    rows = session.execute(
        select(Booking, Resident)
        .join(Resident, Resident.id == Booking.resident_id)
        .where(Booking.menu_id == menu.id, Booking.status == BookingStatus.booked)
        .order_by(Booking.delivery.desc(), Booking.id)
    )
    lines = [
        BookingLine(
            resident=resident.name,
            quantity=booking.quantity,
            delivery=booking.delivery,
            # The address is only needed by whoever delivers.
            address=address_text(resident.household) if booking.delivery else "",
            dietary_notes=booking.dietary_notes or resident.dietary_notes or "",
        )
        for booking, resident in rows
    ]
    return SlotSheet(
        slot=label(menu.slot),
        dishes=joined([dish.name for dish in menu.dishes]),
        capacity=menu.capacity,
        booked=sum(line.quantity for line in lines),
        cutoff=local_time_text(menu.cutoff_at, context.timezone),
        price=f"¥{menu.price_cents / 100:.2f}",
        bookings=lines,
    )


def local_today(now: datetime, context: ConsoleContext) -> date:
    """Today's date in the community's time zone."""
    return now.astimezone(context.timezone).date()


class CanteenDayPage(ConsolePage):
    """The canteen's sheet for one day."""

    name = "订餐日表"
    icon = "fa-solid fa-calendar-day"
    category = CANTEEN
    access = {StaffRole.canteen: Access.write}

    @expose("/canteen-day", methods=["GET"], identity="canteen_day")
    async def canteen_day(self, request: Request) -> Response:
        """Menus and bookings of the chosen day (today by default)."""
        context = console_context(request)
        today = local_today(context.clock.now(), context)
        error = None
        try:
            day = date.fromisoformat(request.query_params.get("day") or today.isoformat())
        except ValueError:
            day, error = today, "日期格式不对，已显示今天的订餐。"

        def load() -> list[SlotSheet]:
            with context.session_factory() as session:
                return day_sheet(session, day=day, context=context)

        page: dict[str, Any] = {
            "title": self.name,
            "day": day,
            "previous_day": day - timedelta(days=1),
            "next_day": day + timedelta(days=1),
            "is_today": day == today,
            "sheets": await anyio.to_thread.run_sync(load),
            "error": error,
        }
        return await self.templates.TemplateResponse(request, "linli/canteen_day.html", page)
