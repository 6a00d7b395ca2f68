"""Lookups and formatters the console's tables share."""

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request

from records.admin.base import console_context, looked_up
from records.admin.labels import label, local_time_text
from records.models import Building, ChannelKind, Household, Resident, StaffRole, StaffUser

Formatter = Callable[[Any, str, Request], Any]

ID = "编号"
CREATED_AT = "创建时间"


def ids_of(rows: Iterable[Any], attribute: str) -> set[int]:
    """The distinct non-empty values of an id attribute across rows."""
    return {value for row in rows if (value := getattr(row, attribute, None)) is not None}


def resident_names(session: Session, ids: set[int]) -> dict[int, str]:
    """Resident id -> name."""
    if not ids:
        return {}
    rows = session.execute(select(Resident.id, Resident.name).where(Resident.id.in_(ids)))
    return {row.id: row.name for row in rows}


def staff_names(session: Session, ids: set[int]) -> dict[int, str]:
    """Staff user id -> display name."""
    if not ids:
        return {}
    rows = session.execute(
        select(StaffUser.id, StaffUser.display_name).where(StaffUser.id.in_(ids))
    )
    return {row.id: row.display_name for row in rows}


def building_names(session: Session, ids: set[int]) -> dict[int, str]:
    """Building id -> name."""
    if not ids:
        return {}
    rows = session.execute(select(Building.id, Building.name).where(Building.id.in_(ids)))
    return {row.id: row.name for row in rows}


def staff_choices(session: Session) -> list[tuple[int, str]]:
    """Active staff, for choosing a grid worker, unit leader or assignee."""
    staff = session.scalars(
        select(StaffUser).where(StaffUser.active.is_(True)).order_by(StaffUser.display_name)
    )
    return [(s.id, s.display_name) for s in staff]


def repair_staff_choices(session: Session) -> list[tuple[int, str]]:
    """Active staff who handle repairs: grid workers, unit leaders and admins."""
    staff = session.scalars(
        select(StaffUser)
        .where(
            StaffUser.active.is_(True),
            StaffUser.role.in_([StaffRole.grid_worker, StaffRole.unit_leader, StaffRole.admin]),
        )
        .order_by(StaffUser.display_name)
    )
    return [(s.id, f"{s.display_name}（{label(s.role)}）") for s in staff]


def channel_text(row: Any, _name: str) -> str:
    """The channel a request came in on, in Chinese."""
    channel = getattr(row, "channel", None)
    return label(channel, ChannelKind) if channel else ""


def building_choices(session: Session) -> list[tuple[int, str]]:
    """Every building, by number."""
    buildings = session.scalars(select(Building).order_by(Building.number))
    return [(b.id, b.name) for b in buildings]


def address_text(household: Household | None) -> str:
    """The address as text, e.g. 3号楼2单元501 (empty when unknown)."""
    return str(household) if household is not None else ""


def lookup(table: str, attribute: str) -> Formatter:
    """Show what `lookups` fetched into `table` for the row's `attribute` (an id)."""

    def format_value(row: Any, _name: str, request: Request) -> Any:
        key = getattr(row, attribute, None)
        return looked_up(request, table, key) if key is not None else ""

    return format_value


def due(attribute: str, *, done: Callable[[Any], bool]) -> Formatter:
    """A deadline in local time, flagged when passed and the work is not done."""

    def format_value(row: Any, _name: str, request: Request) -> Any:
        moment: datetime | None = getattr(row, attribute, None)
        if moment is None:
            return ""
        context = console_context(request)
        text = local_time_text(moment, context.timezone)
        if done(row) or moment > context.clock.now():
            return text
        return Markup('<span class="text-danger fw-bold">{} 已超时</span>').format(text)

    return format_value


def yuan(attribute: str) -> Formatter:
    """An amount in fen shown in yuan: ¥12.50."""

    def format_value(row: Any, _name: str, _request: Request) -> str:
        cents = getattr(row, attribute, None)
        return "" if cents is None else f"¥{cents / 100:.2f}"

    return format_value


def joined(items: Sequence[str]) -> str:
    """Items separated by the Chinese enumeration comma."""
    return "、".join(items)
