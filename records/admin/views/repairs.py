"""Repair requests, read-only: every change goes through the triage page and its rules."""

# sqladmin configures views through class-level lists and dicts, never mutated.
# ruff: noqa: RUF012

from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup
from sqlalchemy.orm import Session
from starlette.requests import Request

from records.admin.base import (
    Access,
    ConsoleContext,
    ConsoleModelView,
    Lookups,
    console_context,
    looked_up,
)
from records.admin.labels import label, local_time_text
from records.admin.views.common import (
    CREATED_AT,
    ID,
    building_names,
    channel_text,
    due,
    ids_of,
    lookup,
    resident_names,
    staff_names,
)
from records.models import Repair, RepairEvent, RepairStatus, StaffRole

REPAIRS = "报修"

# Kinds of event the repairs rules record; unknown ones are shown as they are.
_EVENT_KINDS = {
    "created": "提交",
    "status": "状态变更",
    "assign": "派单",
    "rate": "评价",
    "escalate": "升级",
}

_RESPONDED = frozenset(RepairStatus) - {RepairStatus.submitted}
_FINISHED = frozenset({RepairStatus.resolved, RepairStatus.closed})


def repair_location(repair: Repair, building_name: str | None) -> str:
    """The address (e.g. 1号楼2单元302) when known, and what the resident said."""
    parts = []
    if building_name:
        parts.append(building_name)
        if repair.entrance:
            parts.append(f"{repair.entrance}单元")
        if repair.room:
            parts.append(repair.room)
    address = "".join(parts)
    if repair.location_text and repair.location_text != address:
        return f"{address}（{repair.location_text}）" if address else repair.location_text
    return address


def _location(repair: Repair, _name: str, request: Request) -> str:
    return repair_location(repair, looked_up(request, "buildings", repair.building_id))


def _event_text(event: RepairEvent, timezone: ZoneInfo) -> Markup:
    kind = _EVENT_KINDS.get(event.kind, event.kind)
    moved = event.to_status is not None and event.to_status != event.from_status
    change = (
        f"：{label(event.from_status, RepairStatus) or '新报修'} → "
        f"{label(event.to_status, RepairStatus)}"
        if moved
        else ""
    )
    return Markup("{} {}{} {}（{}）").format(
        local_time_text(event.created_at, timezone), kind, change, event.note or "", event.actor
    )


def _history(repair: Repair, _name: str, request: Request) -> Markup:
    timezone = console_context(request).timezone
    return Markup("<br>").join(_event_text(event, timezone) for event in repair.events)


class RepairView(ConsoleModelView, model=Repair):
    """Repair requests and their history."""

    name = "报修单"
    name_plural = "报修单"
    icon = "fa-solid fa-screwdriver-wrench"
    category = REPAIRS
    access = {StaffRole.grid_worker: Access.read, StaffRole.unit_leader: Access.read}
    can_create = can_edit = can_delete = False

    column_list = [
        Repair.id,
        Repair.category,
        "location",
        Repair.urgency,
        Repair.status,
        Repair.escalation_tier,
        "assignee",
        Repair.first_response_due_at,
        Repair.closure_due_at,
    ]
    column_details_list = [
        *column_list,
        Repair.description,
        "reporter",
        Repair.channel,
        Repair.created_at,
        Repair.acknowledged_at,
        Repair.resolved_at,
        Repair.closed_at,
        Repair.rating,
        Repair.rating_comment,
        "history",
    ]
    column_sortable_list = [Repair.id, Repair.status, Repair.closure_due_at]
    column_default_sort = ("id", True)
    column_labels = {
        "id": ID,
        "category": "类别",
        "location": "地点",
        "urgency": "紧急程度",
        "status": "状态",
        "escalation_tier": "升级层级",
        "assignee": "负责人",
        "first_response_due_at": "首次响应时限",
        "closure_due_at": "办结时限",
        "description": "描述",
        "reporter": "报修人",
        "channel": "来源渠道",
        "created_at": CREATED_AT,
        "acknowledged_at": "受理时间",
        "resolved_at": "解决时间",
        "closed_at": "关闭时间",
        "rating": "满意度（1-5）",
        "rating_comment": "评价",
        "history": "处理记录",
    }
    column_formatters = {
        "channel": channel_text,
        "location": _location,
        "assignee": lookup("staff", "assignee_id"),
        "reporter": lookup("residents", "reporter_id"),
        "first_response_due_at": due(
            "first_response_due_at", done=lambda r: r.status in _RESPONDED
        ),
        "closure_due_at": due("closure_due_at", done=lambda r: r.status in _FINISHED),
        "history": _history,
    }
    column_formatters_detail = column_formatters

    def lookups(self, session: Session, rows: Sequence[Any], context: ConsoleContext) -> Lookups:
        """Building, assignee and reporter names."""
        return {
            "buildings": building_names(session, ids_of(rows, "building_id")),
            "staff": staff_names(session, ids_of(rows, "assignee_id")),
            "residents": resident_names(session, ids_of(rows, "reporter_id")),
        }
