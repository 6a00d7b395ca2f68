"""Residents, households, staff users and channel identities."""

# sqladmin configures views through class-level lists and dicts, never mutated.
# ruff: noqa: RUF012

from collections.abc import Sequence
from typing import Any, ClassVar

import anyio
from markupsafe import Markup
from sqlalchemy import Select, select
from sqlalchemy.orm import Session
from starlette.requests import Request
from wtforms import Form, PasswordField
from wtforms.validators import Length, Optional

from records.admin.auth import current_staff
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
    address_text,
    ids_of,
    lookup,
    resident_names,
)
from records.core.security import hash_password
from records.models import (
    Building,
    ChannelIdentity,
    Household,
    HouseholdUnit,
    Resident,
    StaffRole,
    StaffUser,
)
from records.repository.community import address_key

PEOPLE = "居民与住户"
SYSTEM = "系统管理"


def _phones(resident: Resident, _name: str, _request: Request) -> str:
    return "、".join(phone.number for phone in resident.phones)


def _contacts(resident: Resident, _name: str, _request: Request) -> Markup:
    lines = [
        Markup("{}（{}）{}").format(c.get("name", ""), c.get("relation", ""), c.get("phone", ""))
        for c in resident.emergency_contacts or []
    ]
    return Markup("<br>").join(lines)


def _address(resident: Resident, _name: str, _request: Request) -> str:
    return address_text(resident.household)


class ResidentView(ConsoleModelView, model=Resident):
    """Residents; phones and emergency contacts are shown decrypted, and changed via the API."""

    name = "居民"
    name_plural = "居民"
    icon = "fa-solid fa-user"
    category = PEOPLE
    access = {StaffRole.grid_worker: Access.write, StaffRole.unit_leader: Access.read}
    can_delete = False

    column_list = [
        Resident.id,
        Resident.name,
        "address",
        Resident.is_elderly,
        Resident.lives_alone,
        "phone_numbers",
    ]
    column_details_list = [
        Resident.id,
        Resident.name,
        "address",
        Resident.birth_date,
        Resident.is_elderly,
        Resident.lives_alone,
        "phone_numbers",
        "contacts",
        Resident.dietary_notes,
        Resident.preferred_channel,
        Resident.created_at,
    ]
    column_searchable_list = [Resident.name]
    column_sortable_list = [Resident.id, Resident.name]
    column_default_sort = ("id", True)
    form_columns = [
        Resident.name,
        Resident.household,
        Resident.birth_date,
        Resident.is_elderly,
        Resident.lives_alone,
        Resident.dietary_notes,
        Resident.preferred_channel,
    ]
    column_labels = {
        "id": ID,
        "name": "姓名",
        "address": "住址",
        "household": "住户",
        "birth_date": "出生日期",
        "is_elderly": "老年人",
        "lives_alone": "独居",
        "phone_numbers": "电话",
        "contacts": "紧急联系人",
        "dietary_notes": "饮食备注",
        "preferred_channel": "常用渠道",
        "created_at": "登记时间",
    }
    column_formatters = {"address": _address, "phone_numbers": _phones, "contacts": _contacts}
    column_formatters_detail = column_formatters

    def list_query(self, request: Request) -> Select[Any]:
        """Unit leaders see the residents of their own units only (least privilege)."""
        return _own_units_only(request, super().list_query(request))

    def details_query(self, request: Request) -> Select[Any]:
        """As for the list."""
        return _own_units_only(request, super().details_query(request))


def _own_units_only(request: Request, query: Select[Any]) -> Select[Any]:
    staff = current_staff(request)
    if staff is None or staff.role != StaffRole.unit_leader:
        return query
    units = select(HouseholdUnit.id).where(HouseholdUnit.leader_id == staff.id)
    households = select(Household.id).where(Household.unit_id.in_(units))
    return query.where(Resident.household_id.in_(households))


class HouseholdView(ConsoleModelView, model=Household):
    """Households; the address's blind index is computed here, never shown."""

    name = "住户"
    name_plural = "住户"
    icon = "fa-solid fa-house"
    category = PEOPLE
    access = {StaffRole.grid_worker: Access.write}
    can_delete = False

    column_list = [Household.id, "address", "unit"]
    column_details_list = [
        Household.id,
        "address",
        Household.building,
        Household.entrance,
        Household.room,
        "unit",
    ]
    column_default_sort = ("id", True)
    form_columns = [Household.building, Household.entrance, Household.room, "unit_id"]
    foreign_key_choices: ClassVar[dict[str, ForeignKeyChoice]] = {
        "unit_id": ForeignKeyChoice(
            "联户单元",
            lambda session: [
                (u.id, u.name) for u in session.scalars(select(HouseholdUnit).order_by("id"))
            ],
        )
    }
    column_labels = {
        "id": ID,
        "address": "住址",
        "building": "楼栋",
        "entrance": "单元",
        "room": "室",
        "unit": "联户单元",
        "unit_id": "联户单元",
    }
    column_formatters = {
        "address": lambda household, _name: str(household),
        "unit": lookup("units", "unit_id"),
    }
    column_formatters_detail = column_formatters

    def lookups(self, session: Session, rows: Sequence[Any], context: ConsoleContext) -> Lookups:
        """Unit names."""
        units = session.scalars(select(HouseholdUnit))
        return {"units": {u.id: u.name for u in units}}

    async def on_model_change(
        self, data: dict[str, Any], model: Any, is_created: bool, request: Request
    ) -> None:
        """Check the address and keep its blind index in step with it."""
        building_id = int(str(data["building"]))
        entrance, room = int(data.get("entrance") or 1), str(data["room"]).strip()
        data["room"] = room

        def check() -> str:
            with self.console.session_factory() as session:
                return _checked_address_key(
                    session, building_id=building_id, entrance=entrance, room=room, own=model.id
                )

        model.address_index = await anyio.to_thread.run_sync(check)


def _checked_address_key(
    session: Session, *, building_id: int, entrance: int, room: str, own: int | None
) -> str:
    building = session.get(Building, building_id)
    if building is None or not 1 <= entrance <= building.entrances:
        raise ValueError("这栋楼没有这个单元，请核对。")
    key = address_key(building_id=building_id, entrance=entrance, room=room)
    holder = session.scalar(select(Household.id).where(Household.address_index == key))
    if holder is not None and holder != own:
        raise ValueError("这个地址已经登记过住户了。")
    return key


class StaffUserView(ConsoleModelView, model=StaffUser):
    """Staff users (admins only). A password typed here is hashed; hashes are never shown."""

    name = "工作人员"
    name_plural = "工作人员"
    icon = "fa-solid fa-id-badge"
    category = SYSTEM
    can_delete = False  # deactivate instead: the audit trail refers to staff ids

    column_list = [
        StaffUser.id,
        StaffUser.username,
        StaffUser.display_name,
        StaffUser.role,
        StaffUser.active,
        StaffUser.last_login_at,
    ]
    column_details_list = [*column_list, "resident", StaffUser.created_at]
    column_searchable_list = [StaffUser.username, StaffUser.display_name]
    form_columns = [
        StaffUser.username,
        StaffUser.display_name,
        StaffUser.role,
        StaffUser.active,
    ]
    column_labels = {
        "id": ID,
        "username": "用户名",
        "display_name": "姓名",
        "role": "角色",
        "active": "启用",
        "last_login_at": "上次登录",
        "resident": "对应居民",
        "created_at": CREATED_AT,
        "password": "密码",
    }
    column_formatters_detail = {"resident": lookup("residents", "resident_id")}

    async def scaffold_form(self, rules: list[str] | None = None) -> type[Form]:
        """The form plus a password field; blank on edit keeps the current password."""
        form = await super().scaffold_form(rules)
        password = PasswordField(
            "密码（新建时必填；编辑时留空则不改）",
            validators=[Optional(), Length(min=8, max=200, message="密码至少8位。")],
        )
        return type(form.__name__, (form,), {"password": password})

    async def on_model_change(
        self, data: dict[str, Any], model: Any, is_created: bool, request: Request
    ) -> None:
        """Hash a new password; a new user must get one. Usernames are unique."""
        password = data.pop("password", None)
        username = str(data.get("username", "")).strip()

        def taken() -> bool:
            with self.console.session_factory() as session:
                holder = session.scalar(select(StaffUser.id).where(StaffUser.username == username))
                return holder is not None and holder != model.id

        if await anyio.to_thread.run_sync(taken):
            raise ValueError("这个用户名已经有人用了，请换一个。")
        if password:
            model.password_hash = await anyio.to_thread.run_sync(hash_password, password)
        elif is_created:
            raise ValueError("请为新用户设置密码（至少8位）。")

    def lookups(self, session: Session, rows: Sequence[Any], context: ConsoleContext) -> Lookups:
        """Names of the residents staff users are."""
        return {"residents": resident_names(session, ids_of(rows, "resident_id"))}


class ChannelIdentityView(ConsoleModelView, model=ChannelIdentity):
    """Who reaches Linli on which channel (admins only, read-only)."""

    name = "渠道账号"
    name_plural = "渠道账号"
    icon = "fa-solid fa-mobile-screen"
    category = SYSTEM
    can_create = can_edit = can_delete = False

    column_list = [
        ChannelIdentity.id,
        ChannelIdentity.kind,
        "resident_name",
        ChannelIdentity.state,
        ChannelIdentity.verified_at,
        ChannelIdentity.created_at,
    ]
    column_details_list = [
        *column_list,
        ChannelIdentity.external_id,
        ChannelIdentity.failed_attempts,
        ChannelIdentity.locked_until,
    ]
    column_default_sort = ("id", True)
    column_labels = {
        "id": ID,
        "kind": "渠道",
        "resident_name": "居民",
        "state": "验证状态",
        "verified_at": "验证时间",
        "created_at": "首次联系",
        "external_id": "账号",
        "failed_attempts": "验证失败次数",
        "locked_until": "锁定至",
    }
    column_formatters = {
        "resident_name": lambda identity, _name: (
            identity.resident.name if identity.resident else ""
        ),
    }
    column_formatters_detail = column_formatters
