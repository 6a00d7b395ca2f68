"""Volunteers, the tasks dispatched to them, and the points ledger."""

# sqladmin configures views through class-level lists and dicts, never mutated.
# ruff: noqa: RUF012

from collections.abc import Sequence
from typing import Any, ClassVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from records.admin.base import (
    Access,
    ConsoleContext,
    ConsoleModelView,
    ForeignKeyChoice,
    Lookups,
)
from records.admin.views.common import (
    CREATED_AT,
    ID,
    building_choices,
    building_names,
    ids_of,
    joined,
    lookup,
    resident_names,
)
from records.models import PointsEntry, StaffRole, Task, Volunteer

VOLUNTEERING = "志愿服务"


def volunteer_names(session: Session, ids: set[int]) -> dict[int, str]:
    """Volunteer id -> the volunteer's name."""
    if not ids:
        return {}
    volunteers = session.scalars(select(Volunteer).where(Volunteer.id.in_(ids)))
    return {v.id: v.resident.name for v in volunteers}


def points_balances(session: Session, ids: set[int]) -> dict[int, int]:
    """Volunteer id -> points earned so far."""
    if not ids:
        return {}
    rows = session.execute(
        select(PointsEntry.volunteer_id, func.sum(PointsEntry.delta))
        .where(PointsEntry.volunteer_id.in_(ids))
        .group_by(PointsEntry.volunteer_id)
    )
    return {volunteer_id: int(total or 0) for volunteer_id, total in rows}


class VolunteerView(ConsoleModelView, model=Volunteer):
    """Volunteers with their skills, home building and points."""

    name = "志愿者"
    name_plural = "志愿者"
    icon = "fa-solid fa-hands-helping"
    category = VOLUNTEERING
    access = {StaffRole.grid_worker: Access.write}
    can_delete = False

    column_list = [
        Volunteer.id,
        "volunteer_name",
        Volunteer.skills,
        "home_building",
        Volunteer.active,
        "points",
    ]
    column_details_list = [*column_list, Volunteer.availability, Volunteer.created_at]
    column_default_sort = ("id", True)
    form_columns = [Volunteer.resident, Volunteer.skills, "home_building_id", Volunteer.active]
    foreign_key_choices: ClassVar[dict[str, ForeignKeyChoice]] = {
        "home_building_id": ForeignKeyChoice("住在哪栋楼", building_choices)
    }
    form_args = {"skills": {"description": '技能，例如 ["送餐", "维修"]'}}
    column_labels = {
        "id": ID,
        "volunteer_name": "姓名",
        "resident": "居民",
        "skills": "技能",
        "home_building": "住在哪栋楼",
        "home_building_id": "住在哪栋楼",
        "active": "在岗",
        "points": "积分",
        "availability": "可服务时间",
        "created_at": "登记时间",
    }
    column_formatters = {
        "volunteer_name": lambda volunteer, _name: volunteer.resident.name,
        "skills": lambda volunteer, _name: joined(volunteer.skills or []),
        "home_building": lookup("buildings", "home_building_id"),
        "points": lookup("points", "id"),
    }
    column_formatters_detail = column_formatters

    def lookups(self, session: Session, rows: Sequence[Any], context: ConsoleContext) -> Lookups:
        """Home buildings and points balances."""
        return {
            "buildings": building_names(session, ids_of(rows, "home_building_id")),
            "points": points_balances(session, ids_of(rows, "id")),
        }


class TaskView(ConsoleModelView, model=Task):
    """Volunteer tasks, read-only: offers and completion follow the dispatch rules."""

    name = "志愿任务"
    name_plural = "志愿任务"
    icon = "fa-solid fa-list-check"
    category = VOLUNTEERING
    access = {StaffRole.grid_worker: Access.read}
    can_create = can_edit = can_delete = False

    column_list = [
        Task.id,
        Task.title,
        Task.kind,
        Task.status,
        "volunteer",
        Task.points,
        Task.due_at,
        Task.done_at,
    ]
    column_details_list = [
        *column_list,
        Task.details,
        "resident",
        Task.expires_at,
        Task.accepted_at,
        Task.done_note,
        Task.confirmed_at,
        Task.created_at,
    ]
    column_sortable_list = [Task.id, Task.status, Task.due_at]
    column_default_sort = ("id", True)
    column_labels = {
        "id": ID,
        "title": "任务",
        "kind": "类型",
        "status": "状态",
        "volunteer": "志愿者",
        "points": "积分",
        "due_at": "完成期限",
        "done_at": "完成时间",
        "details": "详情",
        "resident": "服务对象",
        "expires_at": "接单截止",
        "accepted_at": "接单时间",
        "done_note": "完成说明",
        "confirmed_at": "确认时间",
        "created_at": CREATED_AT,
    }
    column_formatters = {
        "volunteer": lookup("volunteers", "volunteer_id"),
        "resident": lookup("residents", "resident_id"),
    }
    column_formatters_detail = column_formatters

    def lookups(self, session: Session, rows: Sequence[Any], context: ConsoleContext) -> Lookups:
        """Volunteer and resident names."""
        return {
            "volunteers": volunteer_names(session, ids_of(rows, "volunteer_id")),
            "residents": resident_names(session, ids_of(rows, "resident_id")),
        }


class PointsEntryView(ConsoleModelView, model=PointsEntry):
    """The points ledger (read-only: points are credited by completed tasks)."""

    name = "积分记录"
    name_plural = "积分记录"
    icon = "fa-solid fa-coins"
    category = VOLUNTEERING
    access = {StaffRole.grid_worker: Access.read}
    can_create = can_edit = can_delete = False

    column_list = [
        PointsEntry.id,
        "volunteer",
        PointsEntry.task_id,
        PointsEntry.delta,
        PointsEntry.reason,
        PointsEntry.created_at,
    ]
    column_details_list = column_list
    column_default_sort = ("id", True)
    column_labels = {
        "id": ID,
        "volunteer": "志愿者",
        "task_id": "任务编号",
        "delta": "积分变动",
        "reason": "原因",
        "created_at": "记账时间",
    }
    column_formatters = {"volunteer": lookup("volunteers", "volunteer_id")}
    column_formatters_detail = column_formatters

    def lookups(self, session: Session, rows: Sequence[Any], context: ConsoleContext) -> Lookups:
        """Volunteer names."""
        return {"volunteers": volunteer_names(session, ids_of(rows, "volunteer_id"))}
