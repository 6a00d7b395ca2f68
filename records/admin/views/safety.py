"""Emergency alerts and requests to talk to a person, read-only in the console."""

# sqladmin configures views through class-level lists and dicts, never mutated.
# ruff: noqa: RUF012

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from records.admin.base import Access, ConsoleContext, ConsoleModelView, Lookups
from records.admin.views.common import (
    CREATED_AT,
    ID,
    channel_text,
    due,
    ids_of,
    lookup,
    resident_names,
    staff_names,
)
from records.models import (
    AlertStatus,
    EmergencyAlert,
    HandoffRequest,
    HandoffStatus,
    StaffRole,
)

SAFETY = "应急与回电"

_RESPONDERS = {StaffRole.grid_worker: Access.read, StaffRole.unit_leader: Access.read}


class EmergencyAlertView(ConsoleModelView, model=EmergencyAlert):
    """Emergency alerts (一键呼叫); a late acknowledgement is highlighted."""

    name = "紧急呼叫"
    name_plural = "紧急呼叫"
    icon = "fa-solid fa-bell"
    category = SAFETY
    access = _RESPONDERS
    can_create = can_edit = can_delete = False

    column_list = [
        EmergencyAlert.id,
        EmergencyAlert.kind,
        EmergencyAlert.status,
        "resident",
        EmergencyAlert.location_text,
        EmergencyAlert.ack_due_at,
        EmergencyAlert.acknowledged_at,
        EmergencyAlert.created_at,
    ]
    column_details_list = [
        *column_list,
        EmergencyAlert.channel,
        EmergencyAlert.description,
        "acknowledged_by",
        EmergencyAlert.resolved_at,
        EmergencyAlert.note,
    ]
    column_sortable_list = [EmergencyAlert.id, EmergencyAlert.status]
    column_default_sort = ("id", True)
    column_labels = {
        "id": ID,
        "kind": "情况",
        "status": "状态",
        "resident": "居民",
        "location_text": "地点",
        "ack_due_at": "响应时限",
        "acknowledged_at": "响应时间",
        "created_at": "呼叫时间",
        "channel": "来源渠道",
        "description": "描述",
        "acknowledged_by": "响应人",
        "resolved_at": "处理完毕",
        "note": "备注",
    }
    column_formatters = {
        "channel": channel_text,
        "resident": lookup("residents", "resident_id"),
        "acknowledged_by": lookup("staff", "acknowledged_by_id"),
        "ack_due_at": due("ack_due_at", done=lambda a: a.status != AlertStatus.open),
    }
    column_formatters_detail = column_formatters

    def lookups(self, session: Session, rows: Sequence[Any], context: ConsoleContext) -> Lookups:
        """Resident and responder names."""
        return {
            "residents": resident_names(session, ids_of(rows, "resident_id")),
            "staff": staff_names(session, ids_of(rows, "acknowledged_by_id")),
        }


class HandoffView(ConsoleModelView, model=HandoffRequest):
    """Requests for a person to call back; a late call-back is highlighted."""

    name = "人工回电"
    name_plural = "人工回电"
    icon = "fa-solid fa-phone"
    category = SAFETY
    access = _RESPONDERS
    can_create = can_edit = can_delete = False

    column_list = [
        HandoffRequest.id,
        HandoffRequest.status,
        "resident",
        HandoffRequest.reason,
        HandoffRequest.callback_phone,
        HandoffRequest.due_at,
        "handled_by",
        HandoffRequest.created_at,
    ]
    column_details_list = [
        *column_list,
        HandoffRequest.channel,
        HandoffRequest.handled_at,
        HandoffRequest.note,
    ]
    column_sortable_list = [HandoffRequest.id, HandoffRequest.status]
    column_default_sort = ("id", True)
    column_labels = {
        "id": ID,
        "status": "状态",
        "resident": "居民",
        "reason": "原因",
        "callback_phone": "回电号码",
        "due_at": "回电时限",
        "handled_by": "处理人",
        "created_at": CREATED_AT,
        "channel": "来源渠道",
        "handled_at": "处理时间",
        "note": "备注",
    }
    column_formatters = {
        "channel": channel_text,
        "resident": lookup("residents", "resident_id"),
        "handled_by": lookup("staff", "handled_by_id"),
        "due_at": due("due_at", done=lambda h: h.status == HandoffStatus.done),
    }
    column_formatters_detail = column_formatters

    def lookups(self, session: Session, rows: Sequence[Any], context: ConsoleContext) -> Lookups:
        """Resident and staff names."""
        return {
            "residents": resident_names(session, ids_of(rows, "resident_id")),
            "staff": staff_names(session, ids_of(rows, "handled_by_id")),
        }
