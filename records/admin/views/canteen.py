"""The canteen's dishes, menus and bookings."""

# sqladmin configures views through class-level lists and dicts, never mutated.
# ruff: noqa: RUF012

from collections.abc import Sequence
from typing import Any

import anyio
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request

from records.admin.base import Access, ConsoleContext, ConsoleModelView, Lookups
from records.admin.labels import label
from records.admin.views.common import (
    ID,
    channel_text,
    ids_of,
    joined,
    lookup,
    resident_names,
    yuan,
)
from records.models import Booking, Dish, Menu, StaffRole

CANTEEN = "老年食堂"


def meal_text(menu: Menu) -> str:
    """The meal as text, e.g. 2026-11-23 午餐."""
    return f"{menu.day.isoformat()} {label(menu.slot)}"


class DishView(ConsoleModelView, model=Dish):
    """Dishes the canteen cooks; retire one by unticking 在售 (menus refer to it)."""

    name = "菜品"
    name_plural = "菜品"
    icon = "fa-solid fa-bowl-rice"
    category = CANTEEN
    access = {StaffRole.canteen: Access.write}
    can_delete = False

    column_list = [Dish.id, Dish.name, Dish.tags, Dish.active]
    column_details_list = [Dish.id, Dish.name, Dish.description, Dish.tags, Dish.active]
    column_searchable_list = [Dish.name]
    form_columns = [Dish.name, Dish.description, Dish.tags, Dish.active]
    form_args = {"tags": {"description": '标签，例如 ["软烂", "少盐"]'}}
    column_labels = {
        "id": ID,
        "name": "菜名",
        "description": "说明",
        "tags": "标签",
        "active": "在售",
    }
    column_formatters = {"tags": lambda dish, _name: joined(dish.tags or [])}
    column_formatters_detail = column_formatters


def _dish_names(menu: Menu, _name: str) -> str:
    return joined([dish.name for dish in menu.dishes])


class MenuView(ConsoleModelView, model=Menu):
    """One day's meal: dishes, capacity, booking cut-off (local time) and price."""

    name = "菜单"
    name_plural = "菜单"
    icon = "fa-solid fa-utensils"
    category = CANTEEN
    access = {StaffRole.canteen: Access.write}
    can_delete = False  # bookings refer to menus

    column_list = [
        Menu.id,
        Menu.day,
        Menu.slot,
        "dish_names",
        Menu.capacity,
        Menu.cutoff_at,
        "price",
    ]
    column_details_list = column_list
    column_sortable_list = [Menu.day]
    column_default_sort = ("day", True)
    form_columns = [
        Menu.day,
        Menu.slot,
        Menu.dishes,
        Menu.capacity,
        Menu.cutoff_at,
        Menu.price_cents,
    ]
    column_labels = {
        "id": ID,
        "day": "日期",
        "slot": "餐次",
        "dish_names": "菜品",
        "dishes": "菜品",
        "capacity": "份数上限",
        "cutoff_at": "预订截止",
        "price": "单价",
        "price_cents": "单价（分）",
    }
    column_formatters = {"dish_names": _dish_names, "price": yuan("price_cents")}
    column_formatters_detail = column_formatters

    async def on_model_change(
        self, data: dict[str, Any], model: Any, is_created: bool, request: Request
    ) -> None:
        """One menu per day and meal."""
        day, slot = data.get("day"), data.get("slot")

        def taken() -> bool:
            with self.console.session_factory() as session:
                holder = session.scalar(select(Menu.id).where(Menu.day == day, Menu.slot == slot))
                return holder is not None and holder != model.id

        if await anyio.to_thread.run_sync(taken):
            raise ValueError("这一天的这一餐已经有菜单了，请直接修改那一份。")


def _meal(booking: Booking, _name: str) -> str:
    return meal_text(booking.menu)


def _delivery(booking: Booking, _name: str, _request: Request) -> str:
    return "送餐上门" if booking.delivery else "堂食/自取"


class BookingView(ConsoleModelView, model=Booking):
    """Meal bookings, read-only: booking and cancelling follow the canteen's rules."""

    name = "订餐"
    name_plural = "订餐记录"
    icon = "fa-solid fa-receipt"
    category = CANTEEN
    access = {StaffRole.canteen: Access.read}
    can_create = can_edit = can_delete = False

    column_list = [
        Booking.id,
        "meal",
        "resident",
        Booking.quantity,
        "delivery_text",
        Booking.status,
        "total",
    ]
    column_details_list = [
        *column_list,
        Booking.dietary_notes,
        "unit_price",
        "subsidy",
        Booking.channel,
        Booking.created_at,
        Booking.cancelled_at,
    ]
    column_default_sort = ("id", True)
    column_labels = {
        "id": ID,
        "meal": "餐次",
        "resident": "居民",
        "quantity": "份数",
        "delivery_text": "取餐方式",
        "status": "状态",
        "total": "应付",
        "dietary_notes": "饮食备注",
        "unit_price": "单价",
        "subsidy": "补贴",
        "channel": "来源渠道",
        "created_at": "预订时间",
        "cancelled_at": "取消时间",
    }
    column_formatters = {
        "channel": channel_text,
        "meal": _meal,
        "resident": lookup("residents", "resident_id"),
        "delivery_text": _delivery,
        "total": yuan("total_cents"),
        "unit_price": yuan("unit_price_cents"),
        "subsidy": yuan("subsidy_cents"),
    }
    column_formatters_detail = column_formatters

    def lookups(self, session: Session, rows: Sequence[Any], context: ConsoleContext) -> Lookups:
        """Resident names."""
        return {"residents": resident_names(session, ids_of(rows, "resident_id"))}
