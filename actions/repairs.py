"""Repairs (报修): report a repair, hear how it is going, rate the finished work.

The forms' validation lives in :mod:`actions.repairs_forms`; this module holds what both
need (understanding repair words, the questions) and the actions that talk to the backend.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import (
    ask_choice,
    ask_free_text,
    ask_yes_no,
    identity_of,
    say_error,
)
from actions.core import EMERGENCY_WORDS
from actions.normalize import Location, local_now, parse_location
from actions.outbox import post_or_queue
from actions.records_client import (
    RecordsError,
    RecordsRefused,
    form_idempotency_key,
    get_client,
)

REPAIRS_PATH = "/api/v1/repairs"
MINE_PATH = "/api/v1/repairs/mine"

REPAIR_FORM = "repair_form"
RATE_FORM = "repair_rate_form"

# Where it is: what the location question fills.
LOCATION_SLOTS = (
    "repair_location",
    "repair_at_home",
    "repair_building",
    "repair_unit",
    "repair_room",
    "repair_place",
)
# Everything repair_form fills, required or not; reset after each report.
REPAIR_SLOTS = (
    "repair_category",
    "repair_description",
    "repair_urgency",
    "repair_confirm",
    *LOCATION_SLOTS,
)
RATE_SLOTS = (
    "repair_rating",
    "repair_rate_confirm",
    "repair_rate_repair",
    "repair_rate_label",
    "repair_rate_comment",
)

# --- categories ---------------------------------------------------------------------------

CATEGORIES = (
    "water",
    "electricity",
    "lift",
    "door_access",
    "lighting",
    "drain",
    "gas_appliance",
    "public_facility",
    "other",
)
# As the backend names them (records CATEGORY_NAMES), for read-backs.
CATEGORY_NAMES = {
    "water": "水管",
    "electricity": "电路",
    "lift": "电梯",
    "door_access": "门禁",
    "lighting": "照明灯",
    "drain": "下水道",
    "gas_appliance": "燃气灶具",
    "public_facility": "公共设施",
    "other": "其他问题",
}
# The choices offered when asking, in this order (keypad 1-9).
CATEGORY_LABELS = ("水", "电", "电梯", "门禁", "照明", "下水道", "燃气灶", "公共设施", "其他")
CATEGORY_OPTIONS = [
    (label, f'/report_repair{{"repair_category":"{code}"}}')
    for label, code in zip(CATEGORY_LABELS, CATEGORIES, strict=True)
]

# Words that name a category (the NLU synonyms plus short answers and fault words).
# Longer words are tried first, so 电梯 wins over 电 and 下水道 over 水.
_CATEGORY_WORDS = {
    "water": "水管 水管子 自来水 水龙头 水笼头 龙头 水表 水阀 阀门 停水 没水 水压 热水管 "
    "进水管 漏水 滴水 水",
    "electricity": "电路 电闸 跳闸 停电 没电 断电 插座 电线 电表 空开 电箱 漏电 电热水器 电",
    "lift": "电梯 电题 电梯门 升降梯",
    "door_access": "门禁 门禁卡 门进 单元门 楼道门 小区大门 大门 对讲 可视对讲 门铃 人脸识别 "
    "刷脸 道闸 门",
    "lighting": "路灯 楼道灯 声控灯 感应灯 楼梯灯 走廊灯 灯泡 照明 电灯 庭院灯 草坪灯 不亮 灯",
    "drain": "下水道 下水 下水管 地漏 马桶 化粪池 排水管 洗菜池 水池 水槽 污水管 蹲坑 坐便器 堵",
    "gas_appliance": "燃气灶 煤气灶 燃气表 煤气表 燃气热水器 灶台 壁挂炉 燃气 煤气 灶",
    "public_facility": "健身器材 楼梯扶手 长椅 座椅 垃圾桶 垃圾箱 车棚 充电桩 井盖 扶手 栏杆 "
    "监控 摄像头 快递柜 围墙 路面 台阶 秋千 滑梯 花坛 公告栏 晾衣架 消防栓 灭火器 楼顶 "
    "外墙 公共设施 公共",
    "other": "窗户 门锁 暖气 暖气片 热水器 空调 纱窗 墙皮 瓷砖 油烟机 天花板 其他 其它 别的",
}
_CATEGORY_KEYWORDS = sorted(
    ((word, code) for code, words in _CATEGORY_WORDS.items() for word in words.split()),
    key=lambda pair: -len(pair[0]),
)


# One-character words (水, 电, 灯, 门…) only count in a short answer such as "水" or "灯坏了":
# in a longer sentence "门口的灯坏了" they would guess wrong.
_SHORT_ANSWER_CHARS = 4


def category_from_text(text: str) -> str | None:
    """The category a phrase names: "厨房水管漏了" water, "电梯" lift, "水" water, "其他" other."""
    cleaned = "".join(text.split())
    if cleaned in CATEGORIES:
        return cleaned
    short = len(cleaned) <= _SHORT_ANSWER_CHARS
    return next(
        (code for word, code in _CATEGORY_KEYWORDS if word in cleaned and (len(word) > 1 or short)),
        None,
    )


# --- what the words say -----------------------------------------------------------------

_NOT_URGENT_WORDS = (
    "不急", "不着急", "不用急", "不太急", "不怎么急", "没那么急", "不要紧", "不紧急", "慢慢",
    "不赶时间", "有空再", "不是很急",
)  # fmt: skip
_URGENT_WORDS = (
    "急", "马上", "立刻", "立即", "赶紧", "赶快", "尽快", "快点", "快来", "厉害", "喷", "淹",
    "漫", "一地", "止不住", "关不住", "停不下来",
)  # fmt: skip


def urgency_from_words(text: str) -> str | None:
    """urgent for 很急/马上/漏得厉害, normal for 不急/不着急, else None."""
    if any(word in text for word in _NOT_URGENT_WORDS):
        return "normal"
    if any(word in text for word in _URGENT_WORDS):
        return "urgent"
    return None


# A first message describes the problem when it says what is wrong, not only "报修".
_FAULT_WORDS = (
    "坏", "漏", "堵", "不亮", "不通", "停", "没水", "没电", "跳闸", "裂", "松", "响", "不热",
    "打不着", "点不着", "不着", "关不上", "关不严", "打不开", "开不了", "渗", "滴", "冒", "断",
    "不动", "没反应", "不走", "刷不开", "认不出", "掉", "爆", "不出", "返", "臭", "闪", "烧",
    "失灵", "不灵", "故障", "毛病", "用不了", "不能用", "不好使", "卡住", "卡死", "晃", "歪",
    "塌", "破", "脏", "听不见", "充不上", "冻",
)  # fmt: skip
_REQUEST_PREFIX_RE = re.compile(
    r"^[\s,，。.!！:：]*(?:哎|喂|你好|您好)?[\s,，]*"
    r"(?:(?:我要|我想|想|帮我|请|麻烦)?(?:报个?修|抱修|保修|维修|维休|申请维修))?[\s,，。.!！:：]*"
)


def describes_problem(text: str) -> bool:
    """Whether a message says what is wrong ("水管漏了"), not only that it wants a repair."""
    return any(word in text for word in _FAULT_WORDS)


# A flat said before the problem ("3栋2单元501 水管漏了"): the location question keeps it.
_LEADING_FLAT_RE = re.compile(
    r"^(?:我住|我家|俺家|俺是|地址是)?([0-9零〇一二两三四五六七八九十百幺号楼栋幢座单元室房间-]+)"
    r"的?[\s,，。]*"
)
_FLAT_SUFFIX_RE = re.compile("号|楼|栋|幢|单元|室")
_NUMERAL_RE = re.compile("[0-9零〇一二两三四五六七八九十百幺]")
_MIN_DESCRIPTION_CHARS = 2


def clean_description(text: str) -> str:
    """The description without a leading "我要报修" or flat, and without surrounding spaces."""
    stripped = _REQUEST_PREFIX_RE.sub("", text.strip(), count=1).strip()
    flat = _LEADING_FLAT_RE.match(stripped)
    if flat and _FLAT_SUFFIX_RE.search(flat.group(1)) and _NUMERAL_RE.search(flat.group(1)):
        rest = stripped[flat.end() :].strip()
        if len(rest) >= _MIN_DESCRIPTION_CHARS:
            stripped = rest
    return (stripped or text.strip())[:500]


# Phrases that contain an emergency word without being one (a stove that will not light).
_NOT_EMERGENCY = ("打不着火", "点不着火", "不着火", "困难", "犯困", "困扰")
# Gas is an emergency when it smells or leaks, not when the stove is broken.
_GAS_LEAK_WORDS = ("味", "漏气", "泄", "嘶", "漏了", "在漏")


def repair_emergency(text: str, *, lift: bool = False) -> bool:
    """Whether a repair answer is really an emergency: gas smell or leak, fire or smoke,
    someone trapped in a lift (the word lists are actions.core.EMERGENCY_WORDS).

    ``lift``: the report is about a lift, so "里面困着人" needs no 电梯 to be one.
    """
    masked = text
    for phrase in _NOT_EMERGENCY:
        masked = masked.replace(phrase, "")
    if any(word in masked for word in EMERGENCY_WORDS["fire"]):
        return True
    in_lift = lift or "梯" in masked or "轿厢" in masked
    if in_lift and any(word in masked for word in EMERGENCY_WORDS["trapped"]):
        return True
    if "漏气" in masked:
        return True
    gas = any(word in masked for word in EMERGENCY_WORDS["gas"])
    return gas and any(word in masked for word in _GAS_LEAK_WORDS)


# --- places ------------------------------------------------------------------------------


def location_words(location: Location) -> str:
    """How a flat is said: "3号楼2单元501"."""
    text = f"{location.building}号楼" if location.building is not None else ""
    if location.unit is not None:
        text += f"{location.unit}单元"
    if location.room:
        text += location.room
    return text


def home_location(home_address: str) -> Location | None:
    """The registered address as building/unit/room, if it parses with a building."""
    location = parse_location(home_address)
    return location if location is not None and location.building is not None else None


# --- time words --------------------------------------------------------------------------


def now_utc() -> datetime:
    """The current instant (tests replace it)."""
    return datetime.now(UTC)


def due_words(due: datetime, now: datetime) -> str:
    """A due time as people say it: "明天上午10点", "今天晚上8点半", "11月25日下午3点"."""
    local, today = local_now(due), local_now(now).date()
    days = (local.date() - today).days
    day = {0: "今天", 1: "明天", 2: "后天"}.get(days, f"{local.month}月{local.day}日")
    hour = local.hour
    if hour < 6:
        part = "凌晨"
    elif hour < 12:
        part = "上午"
    elif hour < 13:
        part = "中午"
    elif hour < 18:
        part = "下午"
    else:
        part = "晚上"
    hour12 = hour if hour <= 12 else hour - 12
    minutes = "" if local.minute == 0 else "半" if local.minute == 30 else f"{local.minute}分"
    return f"{day}{part}{hour12}点{minutes}"


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


# --- tracker helpers ---------------------------------------------------------------------


def latest_intent(tracker: Tracker) -> str | None:
    """The intent of the latest user message."""
    return ((tracker.latest_message or {}).get("intent") or {}).get("name")


def form_started_at(tracker: Tracker, form: str) -> str:
    """When the form was last activated (scopes its idempotency key to this report)."""
    for event in reversed(tracker.events):
        if event.get("event") == "active_loop" and event.get("name") == form:
            return str(event.get("timestamp") or "")
    return ""


def reset(slots: tuple[str, ...]) -> list[EventType]:
    """Empty the given slots."""
    return [SlotSet(slot, None) for slot in slots]


# --- questions ---------------------------------------------------------------------------


class ActionAskRepairCategory(Action):
    """Ask what is broken, with the common categories as choices."""

    def name(self) -> str:
        return "action_ask_repair_category"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        ask_choice(dispatcher, "请问是什么坏了？", CATEGORY_OPTIONS)
        return []


class ActionAskRepairLocation(Action):
    """Offer the registered home first; otherwise ask where."""

    def name(self) -> str:
        return "action_ask_repair_location"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        home = tracker.get_slot("home_address")
        at_home = tracker.get_slot("repair_at_home")
        if home and at_home is None:
            ask_yes_no(dispatcher, f"是在您家（{home}）吗？")
        elif at_home is False:
            ask_free_text(dispatcher, "那是在哪里？请说几号楼几单元几室，或者说个地方。")
        else:
            ask_free_text(
                dispatcher,
                "在哪里坏了？请说几号楼几单元几室，或者说个地方，比如“小区东门”。",
            )
        return []


class ActionAskRepairDescription(Action):
    """Ask what is wrong."""

    def name(self) -> str:
        return "action_ask_repair_description"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        ask_free_text(dispatcher, "请说一说是什么情况，比如“厨房水管漏水”。")
        return []


class ActionAskRepairUrgency(Action):
    """Ask whether it is urgent."""

    def name(self) -> str:
        return "action_ask_repair_urgency"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        ask_yes_no(dispatcher, "急不急？")
        return []


def repair_read_back(tracker: Tracker) -> str:
    """The read-back before a report is sent."""
    category = CATEGORY_NAMES.get(tracker.get_slot("repair_category") or "", "其他问题")
    urgent = "要尽快修" if tracker.get_slot("repair_urgency") == "urgent" else "不急"
    parts = [
        tracker.get_slot("repair_location") or "",
        category,
        tracker.get_slot("repair_description") or "",
        urgent,
    ]
    return f"我帮您记下了：{'，'.join(p for p in parts if p)}。对吗？"


class ActionAskRepairConfirm(Action):
    """Read the report back before sending it."""

    def name(self) -> str:
        return "action_ask_repair_confirm"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        ask_yes_no(dispatcher, repair_read_back(tracker))
        return []


RATING_OPTIONS = [
    ("满意", '/rate_service{"rating":"satisfied"}'),
    ("一般", '/rate_service{"rating":"3"}'),
    ("不满意", '/rate_service{"rating":"unsatisfied"}'),
]


def rate_label(tracker: Tracker) -> str:
    """Which repair is being rated: "编号12的水管维修"."""
    repair_id = tracker.get_slot("repair_rate_repair")
    what = tracker.get_slot("repair_rate_label") or ""
    return f"编号{repair_id}的{what}维修" if repair_id is not None else "这次维修"


class ActionAskRepairRating(Action):
    """Ask how satisfied the resident is."""

    def name(self) -> str:
        return "action_ask_repair_rating"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        ask_choice(dispatcher, f"{rate_label(tracker)}，您满意吗？也可以打1到5分。", RATING_OPTIONS)
        return []


class ActionAskRepairRateConfirm(Action):
    """Read the rating back before sending it."""

    def name(self) -> str:
        return "action_ask_repair_rate_confirm"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        rating = tracker.get_slot("repair_rating")
        ask_yes_no(dispatcher, f"您给{rate_label(tracker)}打{rating}分，对吗？")
        return []


# --- submitting a report -----------------------------------------------------------------

NOT_SUBMITTED = "好的，这次先不提交。"
REPAIR_QUEUED = "已经记下了，系统恢复后会马上转交。"
# Refusals about the place: ask where again instead of dropping the report.
LOCATION_PROBLEMS = frozenset(
    {"unknown-building", "no-such-entrance", "building-required", "location-required"}
)


def repair_payload(tracker: Tracker) -> dict[str, Any]:
    """The POST /repairs body from the form's slots."""
    identity = identity_of(tracker)
    body: dict[str, Any] = {
        "category": tracker.get_slot("repair_category") or "other",
        "description": tracker.get_slot("repair_description"),
        "urgency": tracker.get_slot("repair_urgency") or "normal",
        "identity": identity,
        "building": tracker.get_slot("repair_building"),
        "entrance": tracker.get_slot("repair_unit"),
        "room": tracker.get_slot("repair_room"),
        "location_text": tracker.get_slot("repair_place"),
        "channel": identity.split(":", 1)[0],
    }
    if body["building"] is not None:
        body["building"] = int(body["building"])
    if body["entrance"] is not None:
        body["entrance"] = int(body["entrance"])
    return {key: value for key, value in body.items() if value is not None}


class ActionRepairSubmit(Action):
    """Send the confirmed report (queued if the backend is down), or drop it on a no."""

    def name(self) -> str:
        return "action_repair_submit"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        confirmed = tracker.get_slot("repair_confirm")
        if confirmed is False:
            dispatcher.utter_message(text=NOT_SUBMITTED)
            return reset(REPAIR_SLOTS)
        if confirmed is not True or not tracker.get_slot("repair_description"):
            return reset(REPAIR_SLOTS)  # the form was stopped, nothing to send
        body = repair_payload(tracker)
        key = form_idempotency_key(
            tracker.sender_id,
            REPAIR_FORM,
            {slot: tracker.get_slot(slot) for slot in REPAIR_SLOTS},
            scope=form_started_at(tracker, REPAIR_FORM),
        )
        try:
            created, queued = await post_or_queue(REPAIRS_PATH, body, idempotency_key=key)
        except RecordsRefused as error:
            dispatcher.utter_message(text=error.detail_zh)
            if error.code in LOCATION_PROBLEMS:
                # Keep what and how urgent; ask where again (not the home this time).
                return [
                    *reset(LOCATION_SLOTS),
                    SlotSet("repair_confirm", None),
                    SlotSet("repair_at_home", False),
                    FollowupAction(REPAIR_FORM),
                ]
            return reset(REPAIR_SLOTS)
        except RecordsError as error:
            say_error(dispatcher, error)
            return reset(REPAIR_SLOTS)
        if queued:
            dispatcher.utter_message(text=REPAIR_QUEUED)
        else:
            dispatcher.utter_message(text=_created_reply(created or {}))
        return reset(REPAIR_SLOTS)


def _created_reply(created: dict[str, Any]) -> str:
    number = created.get("id")
    done = f"已经帮您报修了，编号{number}。" if number is not None else "已经帮您报修了。"
    due = _parse_time(created.get("first_response_due_at"))
    when = f"在{due_words(due, now_utc())}前" if due is not None else "在24小时内"
    return f"{done}工作人员会{when}联系您。"


# --- progress ----------------------------------------------------------------------------

STATUS_WORDS = {
    "submitted": "已提交",
    "acknowledged": "已受理",
    "assigned": "已派人",
    "in_progress": "正在维修",
    "resolved": "已修好",
    "closed": "已办结",
    "reopened": "重新处理中",
}
NO_REPAIRS = "没有查到您的报修记录。要报修，请说“我要报修”。"


def repair_line(repair: dict[str, Any]) -> str:
    """One repair in plain words: "编号12，水管，正在维修"."""
    code = str(repair.get("category"))
    category = repair.get("category_name") or CATEGORY_NAMES.get(code, "报修")
    status = STATUS_WORDS.get(repair.get("status") or "", repair.get("status_name") or "处理中")
    return f"编号{repair.get('id')}，{category}，{status}"


async def my_repairs(tracker: Tracker, limit: int) -> list[dict[str, Any]]:
    """The caller's latest repairs, newest first."""
    found = await get_client().post(MINE_PATH, {"identity": identity_of(tracker), "limit": limit})
    return [r for r in found or [] if isinstance(r, dict)]


class ActionRepairStatus(Action):
    """Say how the latest one or two repairs are going."""

    def name(self) -> str:
        return "action_repair_status"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        try:
            repairs = await my_repairs(tracker, limit=3)
        except RecordsError as error:
            say_error(dispatcher, error)
            return []
        if not repairs:
            dispatcher.utter_message(text=NO_REPAIRS)
            return []
        lines = "；".join(repair_line(r) for r in repairs[:2])
        text = f"您最近的报修：{lines}。"
        if repairs[0].get("status") == "resolved":
            text += "修好了的话，请说“满意”或“不满意”评价一下。"
        dispatcher.utter_message(text=text)
        return []


# --- rating ------------------------------------------------------------------------------

NOTHING_TO_RATE = "没有找到已经修好、等您评价的报修。"
RATING_SORRY = "很抱歉，已经重新安排处理。"
RATING_THANKS = "谢谢您的评价！"
NOT_RATED = "好的，这次先不提交。"
UNSATISFIED_MAX = 2


def rateable(repairs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest repair waiting for a rating: resolved, or closed and never rated."""
    for repair in repairs:
        status = repair.get("status")
        if status == "resolved" or (status == "closed" and repair.get("rating") is None):
            return repair
    return None


def rating_path(repair_id: Any) -> str:
    """POST path of a repair's rating."""
    return f"{REPAIRS_PATH}/{int(repair_id)}/rating"


class ActionRepairRateSubmit(Action):
    """Send the confirmed rating; 1-2 reopens the repair."""

    def name(self) -> str:
        return "action_repair_rate_submit"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        confirmed = tracker.get_slot("repair_rate_confirm")
        repair_id = tracker.get_slot("repair_rate_repair")
        rating = tracker.get_slot("repair_rating")
        if confirmed is False:
            dispatcher.utter_message(text=NOT_RATED)
            return reset(RATE_SLOTS)
        if confirmed is not True or repair_id is None or rating is None:
            return reset(RATE_SLOTS)  # the form was stopped, nothing to send
        body = {
            "identity": identity_of(tracker),
            "rating": int(rating),
            "comment": tracker.get_slot("repair_rate_comment"),
        }
        # One key per rating form run: a retry (or a lost answer) never rates twice.
        key = form_idempotency_key(
            tracker.sender_id,
            RATE_FORM,
            {"repair": repair_id, **{k: v for k, v in body.items() if k != "identity"}},
            scope=form_started_at(tracker, RATE_FORM),
        )
        try:
            await get_client().post(rating_path(repair_id), body, idempotency_key=key)
        except RecordsError as error:
            say_error(dispatcher, error)
            return reset(RATE_SLOTS)
        sorry = int(rating) <= UNSATISFIED_MAX
        dispatcher.utter_message(text=RATING_SORRY if sorry else RATING_THANKS)
        return reset(RATE_SLOTS)


def stop_form(slots: tuple[str, ...]) -> list[EventType]:
    """End the active form now and empty its slots."""
    return [ActiveLoop(None), SlotSet("requested_slot", None), *reset(slots)]
