"""The elderly canteen (老年食堂): dishes, menus, bookings, the day sheet and reminders.

Refusals and their HTTP statuses, kept consistent for the assistant:
- 403 `not-registered`: the sender is not a known resident (phone recognition is enough);
- 404 `no-menu`: nothing is planned for that day and meal (also `not-found` for ids);
- 409 `booking-closed` / `cancel-closed`: past the cut-off;
- 409 `already-booked`: one active booking per resident and meal; to change the number of
  portions the resident cancels and books again (a simple rule to explain by voice);
- 409 `sold-out` / `not-enough-places`: capacity;
- 422 `bad-quantity` / `no-address`: a request that cannot be served as asked.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from records.core.config import Settings
from records.core.problems import Problem, not_found
from records.models import (
    Booking,
    BookingStatus,
    Dish,
    MealSlot,
    Menu,
    Notification,
    Resident,
    TaskKind,
)
from records.repository import dispatch
from records.repository import identities as identities_repo
from records.repository import notifications as notifications_repo
from records.repository import residents as residents_repo
from records.repository.paging import page

# Default booking cut-offs in local time: (days before the meal, time of day). The kitchen
# shops the evening before for breakfast and cooks from mid-morning / mid-afternoon.
DEFAULT_CUTOFFS: dict[MealSlot, tuple[int, time]] = {
    MealSlot.breakfast: (1, time(20, 0)),
    MealSlot.lunch: (0, time(9, 30)),
    MealSlot.dinner: (0, time(15, 0)),
}
# Day-before reminders go out from this local time on, once people are home for the evening.
REMINDER_FROM = time(18, 0)

SLOT_NAMES = {MealSlot.breakfast: "早饭", MealSlot.lunch: "午饭", MealSlot.dinner: "晚饭"}
SLOT_ORDER = {slot: index for index, slot in enumerate(MealSlot)}

NOT_REGISTERED = Problem(
    403,
    "not-registered",
    "订餐需要先登记、核实身份。请联系社区工作人员登记，或者把工作人员给您的验证码告诉我。",
)


# --- Wording: dates, times and money as they are said aloud -------------------------------


def local_zone(settings: Settings) -> ZoneInfo:
    """The community's time zone."""
    return ZoneInfo(settings.timezone)


def local_today(*, now: datetime, settings: Settings) -> date:
    """Today's date where the community is."""
    return now.astimezone(local_zone(settings)).date()


def day_phrase(day: date, *, today: date) -> str:
    """今天 / 明天 / 后天 / 昨天, else the month and day."""
    relative = {0: "今天", 1: "明天", 2: "后天", -1: "昨天"}
    return relative.get((day - today).days, f"{day.month}月{day.day}日")


def meal_phrase(day: date, slot: MealSlot, *, today: date) -> str:
    """E.g. 明天午饭."""
    return day_phrase(day, today=today) + SLOT_NAMES[slot]


def clock_phrase(moment: time) -> str:
    """E.g. 上午9:30, 中午12:00, 晚上8:00."""
    hour = moment.hour
    if hour < 6:
        part = "凌晨"
    elif hour < 12:
        part = "上午"
    elif hour == 12:
        part = "中午"
    elif hour < 18:
        part = "下午"
    else:
        part = "晚上"
    return f"{part}{hour % 12 or 12}:{moment.minute:02d}"


def cutoff_phrase(menu: Menu, *, today: date, settings: Settings) -> str:
    """When booking closes, naming the day only when it is not the meal's day."""
    local = menu.cutoff_at.astimezone(local_zone(settings))
    when = clock_phrase(local.time())
    if local.date() != menu.day:
        when = day_phrase(local.date(), today=today) + when
    return when


def yuan(cents: int) -> str:
    """Money as said aloud: 12元, 9.60元."""
    whole, rest = divmod(cents, 100)
    return f"{whole}元" if rest == 0 else f"{whole}.{rest:02d}元"


# --- Dishes ---------------------------------------------------------------------------------


def create_dish(
    session: Session, *, name: str, description: str | None = None, tags: Sequence[str] = ()
) -> Dish:
    """Add a dish to the canteen's repertoire (names are unique)."""
    name = name.strip()
    if session.scalar(select(Dish.id).where(Dish.name == name)) is not None:
        raise Problem(409, "dish-exists", f"已经有“{name}”这道菜了。")
    dish = Dish(name=name, description=description, tags=list(tags))
    session.add(dish)
    session.flush()
    return dish


def list_dishes(
    session: Session, *, limit: int, offset: int, active: bool | None = None
) -> tuple[Sequence[Dish], int]:
    """A page of dishes by name, and the total."""
    query = select(Dish)
    if active is not None:
        query = query.where(Dish.active == active)
    return page(session, query.order_by(Dish.name), limit=limit, offset=offset)


# --- Menus ----------------------------------------------------------------------------------


def default_cutoff(*, day: date, slot: MealSlot, settings: Settings) -> datetime:
    """The default booking cut-off of a meal, in UTC."""
    days_before, at = DEFAULT_CUTOFFS[slot]
    local = datetime.combine(day - timedelta(days=days_before), at, tzinfo=local_zone(settings))
    return local.astimezone(UTC)


def create_menu(
    session: Session,
    *,
    day: date,
    slot: MealSlot,
    capacity: int,
    price_cents: int,
    dish_ids: Sequence[int],
    cutoff_at: datetime | None = None,
    settings: Settings,
) -> Menu:
    """Plan one meal: dishes, places, price and booking cut-off (default by slot)."""
    if capacity < 1 or price_cents < 0:
        raise Problem(422, "bad-menu", "份数至少为1，价格不能为负数。")
    if menu_for(session, day=day, slot=slot) is not None:
        raise Problem(
            409, "menu-exists", f"{day.month}月{day.day}日的{SLOT_NAMES[slot]}已经排过菜单了。"
        )
    dishes = _dishes(session, dish_ids=dish_ids)
    cutoff = cutoff_at or default_cutoff(day=day, slot=slot, settings=settings)
    menu = Menu(
        day=day,
        slot=slot,
        capacity=capacity,
        price_cents=price_cents,
        cutoff_at=cutoff.astimezone(UTC),
        dishes=dishes,
    )
    session.add(menu)
    session.flush()
    return menu


def _dishes(session: Session, *, dish_ids: Sequence[int]) -> list[Dish]:
    wanted = list(dict.fromkeys(dish_ids))
    found = {d.id: d for d in session.scalars(select(Dish).where(Dish.id.in_(wanted)))}
    if len(found) != len(wanted):
        raise not_found("菜品")
    return [found[i] for i in wanted]


def get_menu(session: Session, *, menu_id: int) -> Menu:
    """A menu, or a 404 problem."""
    menu = session.get(Menu, menu_id)
    if menu is None:
        raise not_found("菜单")
    return menu


def menu_for(session: Session, *, day: date, slot: MealSlot) -> Menu | None:
    """The menu of one meal, if planned."""
    return session.scalar(select(Menu).where(Menu.day == day, Menu.slot == slot))


def menus_for(session: Session, *, day: date, slot: MealSlot | None = None) -> Sequence[Menu]:
    """The menus of one day (breakfast, lunch, dinner), optionally one slot only."""
    rows, _total = menus_between(session, first=day, last=day, slot=slot, limit=10, offset=0)
    return rows


def menus_between(
    session: Session,
    *,
    first: date,
    last: date,
    slot: MealSlot | None = None,
    limit: int,
    offset: int,
) -> tuple[Sequence[Menu], int]:
    """A page of menus from `first` to `last` inclusive, in serving order, and the total."""
    query = select(Menu).where(Menu.day >= first, Menu.day <= last)
    if slot is not None:
        query = query.where(Menu.slot == slot)
    serving_order = case(SLOT_ORDER, value=Menu.slot)
    return page(session, query.order_by(Menu.day, serving_order), limit=limit, offset=offset)


def booked_quantities(session: Session, *, menu_ids: Sequence[int]) -> dict[int, int]:
    """Portions booked (not cancelled) per menu."""
    rows = session.execute(
        select(Booking.menu_id, func.coalesce(func.sum(Booking.quantity), 0))
        .where(Booking.menu_id.in_(menu_ids), Booking.status == BookingStatus.booked)
        .group_by(Booking.menu_id)
    ).all()
    booked = {menu_id: 0 for menu_id in menu_ids}
    booked.update({menu_id: int(total) for menu_id, total in rows})
    return booked


# --- Bookings -------------------------------------------------------------------------------


def _booker(session: Session, *, identity: str) -> Resident:
    resident = identities_repo.resident_for(session, identity=identity)
    if resident is None:
        raise NOT_REGISTERED
    return resident


def _locked_menu(session: Session, *, day: date, slot: MealSlot, today: date) -> Menu:
    # Row lock on PostgreSQL so concurrent bookings count places one after another; SQLite
    # ignores FOR UPDATE but already serialises writers with BEGIN IMMEDIATE.
    menu = session.scalar(select(Menu).where(Menu.day == day, Menu.slot == slot).with_for_update())
    if menu is None:
        raise Problem(404, "no-menu", f"{meal_phrase(day, slot, today=today)}还没有排菜单。")
    return menu


def _refuse_if_closed(menu: Menu, *, now: datetime, settings: Settings, action: str) -> None:
    if now < menu.cutoff_at:
        return
    today = local_today(now=now, settings=settings)
    meal = meal_phrase(menu.day, menu.slot, today=today)
    when = cutoff_phrase(menu, today=today, settings=settings)
    if action == "book":
        raise Problem(409, "booking-closed", f"{meal}的预订已经在{when}截止了。")
    raise Problem(
        409,
        "cancel-closed",
        f"{meal}的预订已经在{when}截止了，现在不能取消了。如有需要请直接联系食堂。",
    )


def _check_quantity(quantity: int, *, settings: Settings) -> None:
    most = settings.canteen_max_quantity
    if not 1 <= quantity <= most:
        raise Problem(422, "bad-quantity", f"每次可以订1到{most}份，请重新说一下要几份。")


def _check_delivery(resident: Resident, *, delivery: bool) -> None:
    if delivery and resident.household is None:
        raise Problem(
            422,
            "no-address",
            "送餐需要知道您家的住址，您还没有登记住址。请联系社区工作人员登记，或者到食堂用餐。",
        )


def _active_booking(session: Session, *, menu_id: int, resident_id: int) -> Booking | None:
    return session.scalar(
        select(Booking).where(
            Booking.menu_id == menu_id,
            Booking.resident_id == resident_id,
            Booking.status == BookingStatus.booked,
        )
    )


def _check_not_booked(session: Session, *, menu: Menu, resident: Resident, today: date) -> None:
    existing = _active_booking(session, menu_id=menu.id, resident_id=resident.id)
    if existing is not None:
        meal = meal_phrase(menu.day, menu.slot, today=today)
        raise Problem(
            409,
            "already-booked",
            f"您已经订过{meal}了（{existing.quantity}份），要改份数请先取消再订。",
            extra={"booking_id": existing.id},
        )


def _check_places(session: Session, *, menu: Menu, quantity: int, today: date) -> None:
    left = menu.capacity - booked_quantities(session, menu_ids=[menu.id])[menu.id]
    meal = meal_phrase(menu.day, menu.slot, today=today)
    if left <= 0:
        raise Problem(409, "sold-out", f"{meal}已经订满了。", extra={"remaining": 0})
    if quantity > left:
        raise Problem(
            409, "not-enough-places", f"{meal}只剩{left}份了。", extra={"remaining": left}
        )


def subsidy_percent(resident: Resident, *, day: date, settings: Settings) -> int:
    """The age subsidy on the meal day: the highest tier the resident has reached, else 0."""
    age = residents_repo.age_on(resident, day)
    if age is None:
        return 0
    reached = [percent for min_age, percent in settings.subsidy_tiers() if min_age <= age]
    return reached[-1] if reached else 0


def book(
    session: Session,
    *,
    identity: str,
    day: date,
    slot: MealSlot,
    quantity: int,
    delivery: bool,
    dietary_notes: str | None,
    channel: str | None,
    now: datetime,
    settings: Settings,
) -> Booking:
    """Book portions of a meal for the resident behind `identity`, with the age subsidy."""
    resident = _booker(session, identity=identity)
    today = local_today(now=now, settings=settings)
    menu = _locked_menu(session, day=day, slot=slot, today=today)
    _refuse_if_closed(menu, now=now, settings=settings, action="book")
    _check_quantity(quantity, settings=settings)
    _check_delivery(resident, delivery=delivery)
    # Checked before places so a resident who already has a meal hears that, not "sold out".
    _check_not_booked(session, menu=menu, resident=resident, today=today)
    _check_places(session, menu=menu, quantity=quantity, today=today)
    gross = menu.price_cents * quantity
    subsidy = gross * subsidy_percent(resident, day=day, settings=settings) // 100
    booking = Booking(
        menu=menu,
        resident_id=resident.id,
        quantity=quantity,
        delivery=delivery,
        dietary_notes=_notes(dietary_notes, default=resident.dietary_notes),
        status=BookingStatus.booked,
        unit_price_cents=menu.price_cents,
        subsidy_cents=subsidy,
        total_cents=gross - subsidy,
        channel=channel or identities_repo.parse_identity(identity)[0].value,
    )
    session.add(booking)
    session.flush()
    if delivery:
        _delivery_task(session, booking=booking, resident=resident, now=now, settings=settings)
    return booking


def delivery_due(menu: Menu, *, settings: Settings) -> datetime | None:
    """When a delivered meal must arrive (`canteen_delivery_times`), in UTC."""
    at = settings.delivery_time(menu.slot.value)
    if at is None:
        return None
    return datetime.combine(menu.day, at, tzinfo=local_zone(settings)).astimezone(UTC)


def _delivery_task(
    session: Session, *, booking: Booking, resident: Resident, now: datetime, settings: Settings
) -> None:
    """A meal_delivery task for volunteers, once per booking; no room in its words."""
    menu = booking.menu
    where = resident.household.building.name if resident.household else ""
    dispatch.create_dispatched_task(
        session,
        kind=TaskKind.meal_delivery,
        title=(
            f"给{resident.name}送{menu.day.month}月{menu.day.day}日{SLOT_NAMES[menu.slot]}"
            f"（{booking.quantity}份，{where}）"
        ),
        details="到食堂取餐，送到家门口。门牌号接单后告诉您。",
        resident_id=resident.id,
        booking_id=booking.id,
        due_at=delivery_due(menu, settings=settings),
        source_key=f"booking:{booking.id}",
        now=now,
        settings=settings,
    )


def _notes(given: str | None, *, default: str | None) -> str | None:
    # None means "as usual" (the resident's own notes); an empty string means "none this time".
    if given is None:
        return default
    return given.strip() or None


def cancel(
    session: Session,
    *,
    identity: str,
    now: datetime,
    settings: Settings,
    booking_id: int | None = None,
    day: date | None = None,
    slot: MealSlot | None = None,
) -> Booking:
    """Cancel the sender's own booking before the cut-off; cancelling twice is harmless."""
    resident = _booker(session, identity=identity)
    booking = _own_booking(session, resident=resident, booking_id=booking_id, day=day, slot=slot)
    if booking.status == BookingStatus.cancelled:
        return booking
    _refuse_if_closed(booking.menu, now=now, settings=settings, action="cancel")
    booking.status = BookingStatus.cancelled
    booking.cancelled_at = now
    if booking.delivery:
        dispatch.cancel_for_source(
            session, source_key=f"booking:{booking.id}", reason="居民取消了订餐，", now=now
        )
    session.flush()
    return booking


def _own_booking(
    session: Session,
    *,
    resident: Resident,
    booking_id: int | None,
    day: date | None,
    slot: MealSlot | None,
) -> Booking:
    query = select(Booking).where(Booking.resident_id == resident.id)
    if booking_id is not None:
        query = query.where(Booking.id == booking_id)
    elif day is not None and slot is not None:
        query = query.join(Menu, Booking.menu_id == Menu.id).where(
            Menu.day == day, Menu.slot == slot
        )
    else:
        raise Problem(422, "which-booking", "请说一下要取消哪一天的哪顿饭。")
    # Someone else's booking id is "not found" too: bookings are not to be probed.
    candidates = session.scalars(query).all()
    active = [b for b in candidates if b.status == BookingStatus.booked]
    chosen = active or sorted(candidates, key=lambda b: b.id, reverse=True)
    if not chosen:
        raise not_found("订餐记录")
    return chosen[0]


def bookings_for_identity(session: Session, *, identity: str, from_day: date) -> Sequence[Booking]:
    """The sender's active bookings from `from_day` on, in serving order."""
    resident = _booker(session, identity=identity)
    rows = session.scalars(
        select(Booking)
        .join(Menu, Booking.menu_id == Menu.id)
        .where(
            Booking.resident_id == resident.id,
            Booking.status == BookingStatus.booked,
            Menu.day >= from_day,
        )
    ).all()
    return sorted(rows, key=lambda b: (b.menu.day, SLOT_ORDER[b.menu.slot]))


def list_bookings(
    session: Session,
    *,
    limit: int,
    offset: int,
    day: date | None = None,
    slot: MealSlot | None = None,
    status: BookingStatus | None = None,
) -> tuple[Sequence[Booking], int]:
    """A page of bookings for the canteen, newest meals first, and the total."""
    query = select(Booking).join(Menu, Booking.menu_id == Menu.id)
    if day is not None:
        query = query.where(Menu.day == day)
    if slot is not None:
        query = query.where(Menu.slot == slot)
    if status is not None:
        query = query.where(Booking.status == status)
    return page(session, query.order_by(Menu.day.desc(), Booking.id), limit=limit, offset=offset)


# --- The kitchen's day sheet ----------------------------------------------------------------


@dataclass(frozen=True)
class SheetLine:
    """One booking as the kitchen and the delivery volunteers need it."""

    booking_id: int
    resident_name: str
    quantity: int
    dietary_notes: str | None
    address: str | None


@dataclass(frozen=True)
class SlotSheet:
    """One meal of the day: how many portions, who eats in, where to deliver."""

    menu: Menu
    booked: int
    deliveries: list[SheetLine]
    dine_in: list[SheetLine]

    @property
    def remaining(self) -> int:
        """Places still free."""
        return max(self.menu.capacity - self.booked, 0)


def day_sheet(session: Session, *, day: date) -> list[SlotSheet]:
    """Per planned meal of `day`: portions booked and the lists to cook and deliver by."""
    sheets = []
    for menu in menus_for(session, day=day):
        rows = session.execute(
            select(Booking, Resident)
            .join(Resident, Booking.resident_id == Resident.id)
            .where(Booking.menu_id == menu.id, Booking.status == BookingStatus.booked)
            .order_by(Booking.id)
        ).all()
        lines = [(booking.delivery, _sheet_line(booking, resident)) for booking, resident in rows]
        sheets.append(
            SlotSheet(
                menu=menu,
                booked=sum(line.quantity for _, line in lines),
                deliveries=[line for delivery, line in lines if delivery],
                dine_in=[line for delivery, line in lines if not delivery],
            )
        )
    return sheets


def _sheet_line(booking: Booking, resident: Resident) -> SheetLine:
    return SheetLine(
        booking_id=booking.id,
        resident_name=resident.name,
        quantity=booking.quantity,
        dietary_notes=booking.dietary_notes,
        address=str(resident.household) if resident.household is not None else None,
    )


# --- Reminders (time-driven) ----------------------------------------------------------------


def reminder_key(booking_id: int) -> str:
    """The dedupe key that makes each booking's reminder go out once."""
    return f"booking:{booking_id}:reminder"


def remind_tomorrow(session: Session, *, settings: Settings, now: datetime) -> int:
    """From 18:00 local, queue one reminder per active booking for tomorrow; count queued."""
    local = now.astimezone(local_zone(settings))
    if local.time() < REMINDER_FROM:
        return 0
    today = local.date()
    rows = session.execute(
        select(Booking, Resident)
        .join(Menu, Booking.menu_id == Menu.id)
        .join(Resident, Booking.resident_id == Resident.id)
        .where(Menu.day == today + timedelta(days=1), Booking.status == BookingStatus.booked)
        .order_by(Booking.id)
    ).all()
    already = set(
        session.scalars(
            select(Notification.dedupe_key).where(
                Notification.dedupe_key.in_([reminder_key(b.id) for b, _ in rows])
            )
        )
    )
    queued = 0
    for booking, resident in rows:
        if reminder_key(booking.id) in already:
            continue
        sent = notifications_repo.notify_resident(
            session,
            resident=resident,
            kind="canteen.reminder",
            payload=_reminder_payload(booking, resident, now=now, settings=settings),
            dedupe_key=reminder_key(booking.id),
        )
        queued += sent is not None
    return queued


def _reminder_payload(
    booking: Booking, resident: Resident, *, now: datetime, settings: Settings
) -> dict[str, object]:
    menu = booking.menu
    today = local_today(now=now, settings=settings)
    how = "我们会送到您家" if booking.delivery else "请按时到食堂用餐"
    dishes = "、".join(d.name for d in menu.dishes)
    text = (
        f"{resident.name}您好，提醒您：{meal_phrase(menu.day, menu.slot, today=today)}"
        f"您订了{booking.quantity}份，{how}。"
    )
    if dishes:
        text += f"菜有：{dishes}。"
    if now < menu.cutoff_at:
        text += f"如果不需要了，请在{cutoff_phrase(menu, today=today, settings=settings)}前取消。"
    return {
        "text": text,
        "booking_id": booking.id,
        "day": menu.day.isoformat(),
        "slot": menu.slot.value,
        "quantity": booking.quantity,
        "delivery": booking.delivery,
        "dishes": [d.name for d in menu.dishes],
    }
