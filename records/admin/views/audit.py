"""The audit trail, read-only for admins."""

# sqladmin configures views through class-level lists and dicts, never mutated.
# ruff: noqa: RUF012

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import Request

from records.admin.base import ConsoleContext, ConsoleModelView, Lookups, looked_up
from records.admin.views.common import ID, joined, staff_names
from records.models import AuditEntry

_ACTIONS = {"create": "新建", "update": "修改", "delete": "删除"}


def _actor(entry: AuditEntry, _name: str, request: Request) -> str:
    name = looked_up(request, "staff", entry.actor)
    return f"{name}（{entry.actor}）" if name else entry.actor


class AuditEntryView(ConsoleModelView, model=AuditEntry):
    """Who changed which record when (field names only, never values)."""

    name = "操作记录"
    name_plural = "操作记录"
    icon = "fa-solid fa-clipboard-list"
    category = "系统管理"
    can_create = can_edit = can_delete = False

    column_list = [
        AuditEntry.id,
        AuditEntry.created_at,
        AuditEntry.actor,
        AuditEntry.action,
        AuditEntry.entity,
        AuditEntry.entity_id,
        AuditEntry.fields,
    ]
    column_details_list = column_list
    column_searchable_list = [AuditEntry.actor, AuditEntry.entity]
    column_default_sort = ("id", True)
    page_size = 50
    column_labels = {
        "id": ID,
        "created_at": "时间",
        "actor": "操作人",
        "action": "操作",
        "entity": "数据表",
        "entity_id": "记录编号",
        "fields": "涉及字段",
    }
    column_formatters = {
        "actor": _actor,
        "action": lambda entry, _name: _ACTIONS.get(entry.action, entry.action),
        "fields": lambda entry, _name: joined(entry.fields or []),
    }
    column_formatters_detail = column_formatters

    def lookups(self, session: Session, rows: Sequence[Any], context: ConsoleContext) -> Lookups:
        """Staff names behind "staff:<id>" actors."""
        ids = {
            int(actor.removeprefix("staff:"))
            for actor in {row.actor for row in rows}
            if actor.startswith("staff:") and actor.removeprefix("staff:").isdigit()
        }
        return {"staff": {f"staff:{k}": v for k, v in staff_names(session, ids).items()}}
