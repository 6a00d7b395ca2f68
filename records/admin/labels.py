"""Chinese names for the values staff see in the console, and how values are displayed."""

from collections.abc import Callable
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup
from sqladmin.formatters import BASE_FORMATTERS

from records.models import (
    AlertStatus,
    BookingStatus,
    ChannelKind,
    Eligibility,
    EmergencyKind,
    EscalationTier,
    HandoffStatus,
    MealSlot,
    OfferState,
    ProposalStatus,
    RepairCategory,
    RepairStatus,
    StaffRole,
    TaskKind,
    TaskStatus,
    Urgency,
    VerificationState,
    VoteKind,
    VoteScope,
)

ENUM_LABELS: dict[type[StrEnum], dict[str, str]] = {
    RepairStatus: {
        "submitted": "已提交",
        "acknowledged": "已受理",
        "assigned": "已派单",
        "in_progress": "维修中",
        "resolved": "已修好",
        "closed": "已办结",
        "reopened": "重新处理中",
    },
    RepairCategory: {
        "water": "水管",
        "electricity": "电路",
        "lift": "电梯",
        "door_access": "门禁",
        "lighting": "照明灯",
        "drain": "下水道",
        "gas_appliance": "燃气灶具",
        "public_facility": "公共设施",
        "other": "其他问题",
    },
    Urgency: {"normal": "一般", "urgent": "紧急"},
    EscalationTier: {
        "none": "未升级",
        "unit_leader": "联户长",
        "grid_worker": "网格员",
        "council": "社区议事会",
    },
    StaffRole: {
        "admin": "管理员",
        "grid_worker": "网格员",
        "canteen": "食堂",
        "unit_leader": "联户长",
    },
    ChannelKind: {"telegram": "Telegram", "wechat": "微信", "phone": "电话", "web": "网页"},
    VerificationState: {"unverified": "未验证", "verified": "已验证", "revoked": "已撤销"},
    MealSlot: {"breakfast": "早餐", "lunch": "午餐", "dinner": "晚餐"},
    BookingStatus: {"booked": "已预订", "cancelled": "已取消"},
    ProposalStatus: {
        "submitted": "已提交",
        "under_review": "审核中",
        "rejected": "未通过",
        "published": "征集支持中",
        "supported": "已达支持数",
        "answered": "已答复",
        "closed": "已办结",
        "voting": "投票中",
    },
    VoteKind: {"yes_no": "赞成/反对", "options": "多选一"},
    VoteScope: {"community": "全社区", "building": "本楼栋", "unit": "本联户"},
    Eligibility: {"resident": "每人一票", "household": "每户一票"},
    TaskKind: {
        "meal_delivery": "送餐",
        "visit": "探访",
        "repair_help": "维修帮忙",
        "escort": "陪同",
        "emergency_check": "应急查看",
    },
    TaskStatus: {
        "offered": "待接单",
        "accepted": "已接单",
        "done": "已完成",
        "expired": "已过期",
        "escalated": "已上报",
        "cancelled": "已取消",
    },
    OfferState: {
        "pending": "待答复",
        "accepted": "已接受",
        "declined": "已谢绝",
        "withdrawn": "已撤回",
    },
    EmergencyKind: {
        "fall": "跌倒",
        "illness": "突发疾病",
        "fire": "火情",
        "gas": "燃气泄漏",
        "trapped": "被困",
        "other": "其他",
    },
    AlertStatus: {"open": "待响应", "acknowledged": "已响应", "resolved": "已处理"},
    HandoffStatus: {"open": "待回电", "in_progress": "处理中", "done": "已完成"},
}


def label(value: StrEnum | str | None, enum: type[StrEnum] | None = None) -> str:
    """The Chinese name of an enum value (the raw value when none is known)."""
    if value is None:
        return ""
    kind = enum or (type(value) if isinstance(value, StrEnum) else None)
    labels = ENUM_LABELS.get(kind, {}) if kind else {}
    return labels.get(str(value), str(value))


def local_time_text(moment: datetime | None, timezone: ZoneInfo) -> str:
    """An instant as local wall-clock time, e.g. "2026-11-23 10:00"."""
    if moment is None:
        return ""
    return moment.astimezone(timezone).strftime("%Y-%m-%d %H:%M")


def yes_no(value: bool) -> str:
    """是 / 否."""
    return "是" if value else "否"


def type_formatters(timezone: ZoneInfo) -> dict[type, Callable[[Any], Any]]:
    """How values are shown in lists and details: enums in Chinese, times in local time."""
    formatters: dict[type, Callable[[Any], Any]] = dict(BASE_FORMATTERS)
    for enum in ENUM_LABELS:
        formatters[enum] = _enum_badge
    formatters[datetime] = lambda moment: local_time_text(moment, timezone)
    formatters[date] = lambda day: day.isoformat()
    return formatters


def _enum_badge(value: StrEnum) -> Markup:
    return Markup('<span class="badge bg-secondary-lt">{}</span>').format(label(value))
