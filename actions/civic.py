"""Shared by proposals and votes: which item a resident means, yes/no answers, when in words,
refusals with the way to verify, and the form plumbing both services need."""

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import entity_value, latest_text
from actions.normalize import local_now, to_int, yes_no
from actions.records_client import RecordsRefused

# Intents the central rules handle; a form never takes them as an answer.
_CENTRAL_INTENTS = "repeat slower help human_handoff emergency greet goodbye thank out_of_scope"
NOT_AN_ANSWER = frozenset(_CENTRAL_INTENTS.split())
VERIFY_HOW = "请向社区工作人员要一个验证码，然后对我说“验证身份”。"
SAY_YES_OR_NO = "请说“是”或者“不是”。"
# Said in the middle of a form, these always mean "stop".
STOP_WORDS = frozenset(
    {"取消", "不弄了", "不办了", "不提了", "不投了", "不支持了", "不要了", "不查了"}
)
# A plain "no" is at most this long ("不用了", "算了吧"); longer text is an answer.
SHORT_NO = 6

_NUMERAL = "[0-9０-９一二两三四五六七八九十]+"
_POSITION_RES = (
    re.compile(f"第({_NUMERAL})(?:个|项|条|号|种)?"),
    re.compile(f"(?:方案|选项)({_NUMERAL})"),
    re.compile(f"^(?:我)?(?:选|投|要|支持)?({_NUMERAL})(?:个|号|项)?(?:吧|吗|啊)?[。.!！]?$"),
)
# Two-character pieces that say nothing about which item is meant.
_GENERIC = """
    投票 表决 提案 建议 提议 那个 这个 哪个 同意 反对 弃权 是否 方案 选项 小区 社区
    我们 大家 结果 支持 附议 一下 一个 咱们
"""
_GENERIC_PAIRS = frozenset(_GENERIC.split())
_WORD_CHARS = re.compile(r"[^\w]+")


# --- the conversation ---------------------------------------------------------------------


def latest_intent(tracker: Tracker) -> str | None:
    """The intent of the latest user message."""
    return ((tracker.latest_message or {}).get("intent") or {}).get("name")


def is_answer(tracker: Tracker) -> bool:
    """Whether the latest message may answer a form question (the central rules take the rest)."""
    return latest_intent(tracker) not in NOT_AN_ANSWER


def form_started_now(tracker: Tracker, form: str) -> bool:
    """Whether `form` was activated in this turn (its validation runs during activation).

    Rasa hands the validation action a tracker on which the form is already active, so the
    only sign is the form's activation event after the latest user message.
    """
    for event in reversed(tracker.events):
        kind = event.get("event")
        if kind == "user":
            return False
        if kind == "active_loop" and event.get("name") == form:
            return True
    return False


def answered_just_now(tracker: Tracker) -> bool:
    """Whether the form runs right after the user spoke, not resumed after another action.

    Validation gets the events with the form's own run appended; any other action between
    the user message and it (repeat, help, a fallback) means the message was not an answer.
    """
    form_run_seen = False
    for event in reversed(tracker.events):
        kind = event.get("event")
        if kind == "user":
            return True
        if kind == "action":
            if form_run_seen:
                return False
            form_run_seen = True
    return False


def requested(tracker: Tracker) -> str | None:
    """The slot the active form asked for."""
    return tracker.get_slot("requested_slot")


def bare(text: str) -> str:
    """The words without spaces, punctuation and trailing particles."""
    return _WORD_CHARS.sub("", text).rstrip("吧啊呀哈嘛")


def says_stop(tracker: Tracker) -> bool:
    """An explicit "stop" (取消, 不投了…) in the middle of a form."""
    return bare(latest_text(tracker)) in STOP_WORDS


def says_no(tracker: Tracker) -> bool:
    """A short plain "no / never mind" (不用了, 算了) or an explicit stop."""
    short_deny = latest_intent(tracker) == "deny" and len(bare(latest_text(tracker))) <= SHORT_NO
    return short_deny or says_stop(tracker)


def yes_or_no(tracker: Tracker) -> bool | None:
    """The answer to a yes/no question: the intent, keypad 1/2, else the words."""
    intent = latest_intent(tracker)
    if intent == "affirm":
        return True
    if intent == "deny":
        return False
    text = latest_text(tracker).strip()
    keypad = {"1": True, "１": True, "2": False, "２": False}
    if text in keypad:
        return keypad[text]
    return yes_no(text) if text else None


def slot_events(values: dict[str, Any]) -> list[EventType]:
    """SlotSet events for a mapping of slot values."""
    return [SlotSet(name, value) for name, value in values.items()]


def cleared(slots: Iterable[str], **values: Any) -> dict[str, Any]:
    """Every slot emptied, then the given values."""
    return {**dict.fromkeys(slots, None), **values}


def stop(slots: Iterable[str]) -> dict[str, Any]:
    """Slot values that end a form at once, empty (the submit action then says nothing)."""
    return cleared(slots, requested_slot=None)


# --- which item the resident means ----------------------------------------------------------


def position_said(tracker: Tracker) -> int | None:
    """A position such as 第二个 / 方案三 / 2: the choice entity's digit, else the words."""
    value = entity_value(tracker, "choice")
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return position_in_text(latest_text(tracker))


def position_in_text(text: str) -> int | None:
    """第二个 2, 方案三 3, a bare "2" or "二" 2; None when no position is said."""
    cleaned = "".join(text.split())
    for pattern in _POSITION_RES:
        match = pattern.search(cleaned)
        if match:
            return to_int(match.group(1))
    return None


def pick(ids: Sequence[Any], position: int | None) -> Any | None:
    """The item at a 1-based position, if there is one."""
    if position is None or not 1 <= position <= len(ids):
        return None
    return ids[position - 1]


def _pairs(text: str) -> set[str]:
    chars = _WORD_CHARS.sub("", text)
    return {chars[i : i + 2] for i in range(len(chars) - 1)} - _GENERIC_PAIRS


def match_title(text: str, items: Iterable[tuple[Any, str]]) -> Any | None:
    """The one item whose title shares the most words with what was said ("凉棚那个")."""
    said = _pairs(text)
    if not said:
        return None
    scored = sorted(
        ((len(said & _pairs(title)), item_id) for item_id, title in items),
        key=lambda pair: pair[0],
        reverse=True,
    )
    if not scored or scored[0][0] == 0:
        return None
    if len(scored) > 1 and scored[1][0] == scored[0][0]:
        return None  # two fit as well: ask
    return scored[0][1]


def short(title: str, limit: int = 14) -> str:
    """A title short enough for a button."""
    return title if len(title) <= limit else title[: limit - 1] + "…"


def numbered(lines: Sequence[str]) -> str:
    """1. a；2. b。"""
    return "；".join(f"{n}. {line}" for n, line in enumerate(lines, start=1)) + "。"


# --- time and refusals ------------------------------------------------------------------------


def now() -> datetime:
    """The current instant (tests replace it)."""
    return datetime.now(UTC)


def when_words(moment: datetime | str, current: datetime | None = None) -> str:
    """A moment as people say it: 今天晚上6点, 明天上午9点半, 12月1日下午3点."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    local = local_now(moment)
    today = local_now(current or now()).date()
    day = local.date()
    if local.hour == 0 and local.minute == 0:  # midnight is the end of the day before
        day -= timedelta(days=1)
        clock = "晚上12点"
    else:
        hour = local.hour
        if hour < 6:
            period = "凌晨"
        elif hour < 12:
            period = "上午"
        elif hour < 13:
            period = "中午"
        elif hour < 18:
            period = "下午"
        else:
            period = "晚上"
        shown = hour - 12 if hour > 12 else hour
        minutes = "" if local.minute == 0 else "半" if local.minute == 30 else f"{local.minute}分"
        clock = f"{period}{shown}点{minutes}"
    names = {today: "今天", today + timedelta(days=1): "明天", today + timedelta(days=2): "后天"}
    return names.get(day, f"{day.month}月{day.day}日") + clock


def refusal(error: RecordsRefused) -> str:
    """The backend's Chinese reason, with how to verify when that is what is missing."""
    if error.code == "not-verified":
        return f"{error.detail_zh.split('。')[0]}。{VERIFY_HOW}"
    return error.detail_zh


def say_refusal(dispatcher: CollectingDispatcher, error: RecordsRefused) -> None:
    """Tell the resident kindly why the backend said no."""
    dispatcher.utter_message(text=refusal(error))
