"""报修分派: open repairs, each with a form to assign it and move its status."""

# sqladmin configures views through class-level lists and dicts, never mutated.
# ruff: noqa: RUF012

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio
from sqladmin import expose
from sqlalchemy import case, select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from records.admin.auth import ConsoleStaff, current_staff
from records.admin.base import Access, ConsoleContext, ConsolePage, console_context
from records.admin.csrf import csrf_token, csrf_valid
from records.admin.labels import label, local_time_text
from records.admin.views.common import building_names, repair_staff_choices, staff_choices
from records.admin.views.repairs import REPAIRS, repair_location
from records.core.audit import set_actor
from records.core.problems import Problem
from records.models import Repair, RepairStatus, StaffRole, Urgency
from records.repository import repairs as repairs_repo

_NOTICE_KEY = "triage_notice"
# Statuses staff may move a repair to (reopening is the resident's, through a rating).
STAFF_MOVES = (
    RepairStatus.acknowledged,
    RepairStatus.assigned,
    RepairStatus.in_progress,
    RepairStatus.resolved,
    RepairStatus.closed,
)
_NOTE_MAX = 500
_RESPONDED = frozenset(RepairStatus) - {RepairStatus.submitted}
_FINISHED = frozenset({RepairStatus.resolved, RepairStatus.closed})


@dataclass(frozen=True)
class Deadline:
    """A due time as shown, and whether it has passed with the work undone."""

    text: str
    overdue: bool


@dataclass(frozen=True)
class TriageRow:
    """One open repair as the triage page shows it."""

    id: int
    category: str
    location: str
    description: str
    urgent: bool
    urgency: str
    status: str
    first_response: Deadline
    closure: Deadline
    tier: str
    assignee_id: int | None
    assignee: str


@dataclass(frozen=True)
class TriageChange:
    """What a triage form asks for."""

    repair_id: int
    assignee_id: int | None
    to_status: RepairStatus | None
    note: str | None


def open_repairs(session: Session, *, now: datetime, context: ConsoleContext) -> list[TriageRow]:
    """Repairs not yet closed: urgent first, then the soonest due."""
    repairs = session.scalars(
        select(Repair)
        .where(Repair.status != RepairStatus.closed)
        .order_by(
            case((Repair.urgency == Urgency.urgent, 0), else_=1),
            Repair.closure_due_at,
            Repair.id,
        )
    ).all()
    buildings = building_names(session, {r.building_id for r in repairs if r.building_id})
    staff = dict(staff_choices(session))
    return [_row(r, buildings, staff, now=now, context=context) for r in repairs]


def _row(
    repair: Repair,
    buildings: dict[int, str],
    staff: dict[int, str],
    *,
    now: datetime,
    context: ConsoleContext,
) -> TriageRow:
    building = buildings.get(repair.building_id) if repair.building_id else None
    return TriageRow(
        id=repair.id,
        category=label(repair.category),
        location=repair_location(repair, building),
        description=repair.description,
        urgent=repair.urgency == Urgency.urgent,
        urgency=label(repair.urgency),
        status=label(repair.status),
        first_response=_deadline(
            repair.first_response_due_at, repair.status in _RESPONDED, now, context
        ),
        closure=_deadline(repair.closure_due_at, repair.status in _FINISHED, now, context),
        tier=label(repair.escalation_tier),
        assignee_id=repair.assignee_id,
        assignee=staff.get(repair.assignee_id, "") if repair.assignee_id else "",
    )


def _deadline(due: datetime, done: bool, now: datetime, context: ConsoleContext) -> Deadline:
    return Deadline(local_time_text(due, context.timezone), overdue=not done and due < now)


def apply_change(
    session: Session, change: TriageChange, *, staff: ConsoleStaff, now: datetime
) -> str:
    """Assign and/or move a repair through the repairs rules; commits. Returns the outcome."""
    set_actor(session, staff.actor)
    # One note, one event: it explains the status change when there is one.
    assign_note = change.note if change.to_status is None else None
    if change.assignee_id is not None:
        repairs_repo.assign(
            session,
            repair_id=change.repair_id,
            assignee_id=change.assignee_id,
            note=assign_note,
            actor=staff.actor,
            now=now,
        )
    if change.to_status is not None:
        repairs_repo.change_status(
            session,
            repair_id=change.repair_id,
            to_status=change.to_status,
            note=change.note,
            actor=staff.actor,
            now=now,
        )
    session.commit()
    return f"报修#{change.repair_id}已更新。"


def parse_change(form: FormData) -> TriageChange:
    """Read a triage form; a ValueError carries a message for staff."""
    try:
        repair_id = int(str(form.get("repair_id", "")))
        assignee = str(form.get("assignee_id", "")).strip()
        status = str(form.get("to_status", "")).strip()
        assignee_id = int(assignee) if assignee else None
        to_status = RepairStatus(status) if status else None
    except ValueError as exc:
        raise ValueError("表单内容有误，请刷新页面后再试。") from exc
    note = str(form.get("note", "")).strip()[:_NOTE_MAX] or None
    if assignee_id is None and to_status is None:
        raise ValueError("请先选择负责人或新的状态。")
    return TriageChange(repair_id, assignee_id, to_status, note)


class TriagePage(ConsolePage):
    """Grid workers and unit leaders dispatch repairs and move them along."""

    name = "报修分派"
    icon = "fa-solid fa-route"
    category = REPAIRS
    access = {StaffRole.grid_worker: Access.write, StaffRole.unit_leader: Access.write}

    @expose("/triage", methods=["GET"], identity="triage")
    async def triage(self, request: Request) -> Response:
        """The open repairs with their forms."""
        context = console_context(request)

        def load() -> tuple[list[TriageRow], list[tuple[int, str]]]:
            with context.session_factory() as session:
                rows = open_repairs(session, now=context.clock.now(), context=context)
                return rows, repair_staff_choices(session)

        rows, staff = await anyio.to_thread.run_sync(load)
        page: dict[str, Any] = {
            "title": self.name,
            "rows": rows,
            "staff": staff,
            "statuses": [(s.value, label(s)) for s in STAFF_MOVES],
            "csrf_token": csrf_token(request),
            "notice": request.session.pop(_NOTICE_KEY, None),
        }
        return await self.templates.TemplateResponse(request, "linli/triage.html", page)

    @expose("/triage/change", methods=["POST"], identity="triage_change")
    async def change(self, request: Request) -> Response:
        """Apply one repair's form, then show the list again with the outcome."""
        form = await request.form()
        staff = current_staff(request)
        if staff is None or not csrf_valid(request, form.get("csrf_token")):
            raise HTTPException(status_code=403, detail="页面已过期，请刷新后再试。")
        request.session[_NOTICE_KEY] = await self._outcome(request, form, staff)
        return RedirectResponse(request.url_for("admin:view-triage"), status_code=303)

    async def _outcome(
        self, request: Request, form: FormData, staff: ConsoleStaff
    ) -> dict[str, Any]:
        try:
            change = parse_change(form)
        except ValueError as exc:
            return {"error": True, "text": str(exc)}
        context = console_context(request)

        def run() -> str:
            with context.session_factory() as session:
                return apply_change(session, change, staff=staff, now=context.clock.now())

        try:
            return {"error": False, "text": await anyio.to_thread.run_sync(run)}
        except Problem as problem:
            return {"error": True, "text": problem.detail}
