"""How the community is organised: the community, grids, buildings and household units."""

# sqladmin configures views through class-level lists and dicts, never mutated.
# ruff: noqa: RUF012

from collections.abc import Sequence
from typing import Any, ClassVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from records.admin.base import ConsoleContext, ConsoleModelView, ForeignKeyChoice, Lookups
from records.admin.views.common import ID, lookup, staff_choices, staff_names
from records.models import Building, Community, Grid, HouseholdUnit

STRUCTURE = "社区结构"


def _communities(session: Session) -> list[tuple[int, str]]:
    return [(c.id, c.name) for c in session.scalars(select(Community).order_by(Community.id))]


def _grids(session: Session) -> list[tuple[int, str]]:
    return [(g.id, g.name) for g in session.scalars(select(Grid).order_by(Grid.id))]


def _structure_lookups(session: Session) -> Lookups:
    return {
        "communities": dict(_communities(session)),
        "grids": dict(_grids(session)),
    }


class CommunityView(ConsoleModelView, model=Community):
    """The community itself (admins only)."""

    name = "社区"
    name_plural = "社区"
    icon = "fa-solid fa-city"
    category = STRUCTURE
    can_delete = False

    column_list = [Community.id, Community.name, Community.address]
    column_details_list = column_list
    form_columns = [Community.name, Community.address]
    column_labels = {"id": ID, "name": "名称", "address": "地址"}


class GridView(ConsoleModelView, model=Grid):
    """Grids and their grid workers (admins only)."""

    name = "网格"
    name_plural = "网格"
    icon = "fa-solid fa-border-all"
    category = STRUCTURE
    can_delete = False

    column_list = [Grid.id, Grid.name, "community", "worker"]
    column_details_list = column_list
    form_columns = [Grid.name, "community_id", "worker_id"]
    foreign_key_choices: ClassVar[dict[str, ForeignKeyChoice]] = {
        "community_id": ForeignKeyChoice("社区", _communities, required=True),
        "worker_id": ForeignKeyChoice("网格员", staff_choices),
    }
    column_labels = {
        "id": ID,
        "name": "名称",
        "community": "社区",
        "worker": "网格员",
        "community_id": "社区",
        "worker_id": "网格员",
    }
    column_formatters = {
        "community": lookup("communities", "community_id"),
        "worker": lookup("staff", "worker_id"),
    }
    column_formatters_detail = column_formatters

    def lookups(self, session: Session, rows: Sequence[Any], context: ConsoleContext) -> Lookups:
        """Community and grid worker names."""
        workers = staff_names(session, {g.worker_id for g in rows if g.worker_id})
        return {**_structure_lookups(session), "staff": workers}


class BuildingView(ConsoleModelView, model=Building):
    """Buildings (admins only)."""

    name = "楼栋"
    name_plural = "楼栋"
    icon = "fa-solid fa-building"
    category = STRUCTURE
    can_delete = False

    column_list = [Building.id, Building.number, Building.name, Building.entrances, "grid"]
    column_details_list = [*column_list, "community"]
    column_default_sort = "number"
    form_columns = [
        Building.number,
        Building.name,
        Building.entrances,
        "community_id",
        "grid_id",
    ]
    foreign_key_choices: ClassVar[dict[str, ForeignKeyChoice]] = {
        "community_id": ForeignKeyChoice("社区", _communities, required=True),
        "grid_id": ForeignKeyChoice("网格", _grids),
    }
    column_labels = {
        "id": ID,
        "number": "楼号",
        "name": "名称",
        "entrances": "单元数",
        "grid": "网格",
        "community": "社区",
        "community_id": "社区",
        "grid_id": "网格",
    }
    column_formatters = {
        "grid": lookup("grids", "grid_id"),
        "community": lookup("communities", "community_id"),
    }
    column_formatters_detail = column_formatters

    def lookups(self, session: Session, rows: Sequence[Any], context: ConsoleContext) -> Lookups:
        """Grid and community names."""
        return _structure_lookups(session)


class HouseholdUnitView(ConsoleModelView, model=HouseholdUnit):
    """Household units (联户单元) and their unit leaders (admins only)."""

    name = "联户单元"
    name_plural = "联户单元"
    icon = "fa-solid fa-people-roof"
    category = STRUCTURE
    can_delete = False

    column_list = [HouseholdUnit.id, HouseholdUnit.name, "grid", "leader"]
    column_details_list = column_list
    form_columns = [HouseholdUnit.name, "grid_id", "leader_id"]
    foreign_key_choices: ClassVar[dict[str, ForeignKeyChoice]] = {
        "grid_id": ForeignKeyChoice("网格", _grids, required=True),
        "leader_id": ForeignKeyChoice("联户长", staff_choices),
    }
    column_labels = {
        "id": ID,
        "name": "名称",
        "grid": "网格",
        "leader": "联户长",
        "grid_id": "网格",
        "leader_id": "联户长",
    }
    column_formatters = {
        "grid": lookup("grids", "grid_id"),
        "leader": lookup("staff", "leader_id"),
    }
    column_formatters_detail = column_formatters

    def lookups(self, session: Session, rows: Sequence[Any], context: ConsoleContext) -> Lookups:
        """Grid and unit leader names."""
        leaders = staff_names(session, {u.leader_id for u in rows if u.leader_id})
        return {**_structure_lookups(session), "staff": leaders}
