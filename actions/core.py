"""The elderly rules everywhere: session start, repeat, slower, help, a person, emergencies,
and what to do when the assistant did not understand."""

import hashlib
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import (
    ActionExecuted,
    ActiveLoop,
    EventType,
    SessionStarted,
    SlotSet,
)
from rasa_sdk.executor import CollectingDispatcher

from actions.common import (
    NOT_UNDERSTOOD,
    ask_choice,
    ask_yes_no,
    identity_of,
    latest_text,
    resume_form,
    say_error,
    turn_key,
)
from actions.outbox import post_or_queue, start_background_delivery
from actions.records_client import RecordsError, RecordsRefused, get_client

CARRIED_SLOTS = ("speech_rate",)
HELP_TEXT = (
    "我可以帮您：报修、订老年食堂的饭、提建议、投票、查进度。"
    "您直接说要办什么就行，比如“我要报修”。"
)
HANDOFF_QUEUED = "已经记下了，系统恢复后会马上请工作人员给您回电话。"
HANDOFF_DONE = "工作人员会尽快给您回电话。"
EMERGENCY_DONE = "已经通知社区工作人员，马上有人联系您。情况危急请立即拨打120或119。"
MENU_OPTIONS = [
    ("报修", "/report_repair"),
    ("订餐", "/book_meal"),
    ("提建议", "/submit_proposal"),
    ("投票", "/list_votes"),
    ("找人工", "/human_handoff"),
]
EMERGENCY_WORDS = {
    "gas": ("煤气", "燃气", "天然气", "液化气"),
    "fire": ("着火", "失火", "火灾", "冒烟", "烧起来"),
    "trapped": ("困", "关在电梯", "电梯里出不来"),
    "fall": ("摔", "跌倒", "起不来"),
    "illness": ("心脏", "喘不上气", "晕", "胸口疼", "不舒服", "病"),
}


class ActionSessionStart(Action):
    """Start a session knowing who is speaking (when the records backend knows them)."""

    def name(self) -> str:
        return "action_session_start"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        start_background_delivery()
        events: list[EventType] = [SessionStarted()]
        events += [SlotSet(s, tracker.get_slot(s)) for s in CARRIED_SLOTS if tracker.get_slot(s)]
        events += await _who_is_speaking(identity_of(tracker))
        return [*events, ActionExecuted("action_listen")]


async def _who_is_speaking(identity: str) -> list[EventType]:
    try:
        found = await get_client().post("/api/v1/identities/resolve", {"identity": identity})
    except RecordsError:
        return []  # unknown for now; services ask for what they need
    resident = found.get("resident") or {}
    address = resident.get("address") or {}
    return [
        SlotSet("resident_known", bool(resident)),
        SlotSet("verified", bool(found.get("verified"))),
        SlotSet("resident_name", resident.get("name")),
        SlotSet("home_address", address.get("text")),
    ]


class ActionRepeat(Action):
    """Say the last message again (inside a form, the form asks its question again)."""

    def name(self) -> str:
        return "action_repeat"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        followup = resume_form(tracker)
        if followup:
            return followup
        for message in _last_bot_turn(tracker):
            dispatcher.utter_message(**message)
        if not _last_bot_turn(tracker):
            dispatcher.utter_message(text="我们还没开始说话呢。您要办什么事？")
        return []


def _last_bot_turn(tracker: Tracker) -> list[dict[str, Any]]:
    """The bot's messages since the user's previous message, with buttons and metadata."""
    events = tracker.events
    user_seen = 0
    turn: list[dict[str, Any]] = []
    for event in reversed(events):
        if event.get("event") == "user":
            user_seen += 1
            if user_seen == 2:
                break
        elif event.get("event") == "bot" and user_seen == 1:
            data = event.get("data") or {}
            message: dict[str, Any] = {"text": event.get("text")}
            if data.get("buttons"):
                message["buttons"] = data["buttons"]
            message.update({k: v for k, v in (event.get("metadata") or {}).items()
                            if k in ("expect",)})
            turn.insert(0, message)
    return [m for m in turn if m.get("text")]


class ActionSlower(Action):
    """Speak more slowly from now on (voice and phone read the speech_rate slot)."""

    def name(self) -> str:
        return "action_slower"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        dispatcher.utter_message(text="好的，我说慢一点。", speech_rate="slow")
        followup = resume_form(tracker)
        if not followup:
            for message in _last_bot_turn(tracker):
                dispatcher.utter_message(**message)
        return [SlotSet("speech_rate", "slow"), *followup]


class ActionHelp(Action):
    """Explain what can be done; inside a form, go on with its question."""

    def name(self) -> str:
        return "action_help"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        followup = resume_form(tracker)
        if followup:
            dispatcher.utter_message(text="您回答我的问题就行，说“找人工”可以请工作人员帮忙。")
            return followup
        dispatcher.utter_message(text=HELP_TEXT)
        return []


class ActionHumanHandoff(Action):
    """Ask staff to call back, and say who will call and when."""

    def name(self) -> str:
        return "action_human_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        body = {
            "identity": identity_of(tracker),
            "reason": latest_text(tracker)[:200] or "请求人工",
            "channel": identity_of(tracker).split(":", 1)[0],
        }
        try:
            created, queued = await post_or_queue(
                "/api/v1/handoffs", body, idempotency_key=turn_key(tracker, "handoff")
            )
        except RecordsRefused as error:
            say_error(dispatcher, error)
            return [SlotSet("offered_handoff", False)]
        reply = HANDOFF_QUEUED if queued else (created or {}).get("message") or HANDOFF_DONE
        # `handoff` tells the phone line a call-back request stands (it may transfer the call).
        dispatcher.utter_message(text=reply, handoff=True)
        return [SlotSet("offered_handoff", False), *stop_form(tracker, domain)]


class ActionDenyHandoff(Action):
    """The user does not want a person after all."""

    def name(self) -> str:
        return "action_deny_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        dispatcher.utter_message(text="好的。您还需要我帮什么？")
        return [SlotSet("offered_handoff", False)]


def alert_key(tracker: Tracker) -> str:
    """One alert per emergency press: the voice gateway's direct alert shares this key."""
    press = ((tracker.latest_message or {}).get("metadata") or {}).get("alert_press")
    if isinstance(press, str) and press:
        # Same formula as voice/web/alerts.py alert_key (actions never import voice).
        return hashlib.sha256(f"voice-alert|{tracker.sender_id}|{press}".encode()).hexdigest()
    return turn_key(tracker, "alert")


class ActionEmergency(Action):
    """Alert through the backend first, then tell the user help is coming and offer a person."""

    def name(self) -> str:
        return "action_emergency"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        text = latest_text(tracker)
        body = {
            "kind": emergency_kind(text),
            "identity": identity_of(tracker),
            "description": text[:500] or None,
            "channel": identity_of(tracker).split(":", 1)[0],
        }
        message: str | None = None
        try:
            created, queued = await post_or_queue(
                "/api/v1/alerts", body, idempotency_key=alert_key(tracker)
            )
            message = None if queued else (created or {}).get("message")
        except RecordsRefused:
            message = None  # an alert is never refused; keep the safety advice below
        dispatcher.utter_message(text=message or EMERGENCY_DONE)
        ask_yes_no(dispatcher, "要不要我请工作人员马上给您打电话？")
        return [*stop_form(tracker, domain), SlotSet("offered_handoff", True)]


def stop_form(tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
    """End the active form and forget what it collected, so nothing pre-fills the next one."""
    events: list[EventType] = [ActiveLoop(None), SlotSet("requested_slot", None)]
    loop = (tracker.active_loop or {}).get("name")
    form = ((domain.get("forms") or {}).get(loop) or {}) if loop else {}
    events += [SlotSet(slot, None) for slot in form.get("required_slots") or []]
    return events


def emergency_kind(text: str) -> str:
    """The alert kind the words suggest (other when unclear)."""
    for kind, words in EMERGENCY_WORDS.items():
        if any(word in text for word in words):
            return kind
    return "other"


class ActionHandleFallback(Action):
    """Not understood: ask again; the second time offer the choices; the third a person."""

    def name(self) -> str:
        return "action_handle_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        misses = consecutive_fallbacks(tracker)
        if misses >= 3:
            # Stop any form first: the next "是" must accept the offer, not answer the form.
            ask_yes_no(dispatcher, f"{NOT_UNDERSTOOD}要不要请工作人员给您打电话？")
            return [*stop_form(tracker, domain), SlotSet("offered_handoff", True)]
        followup = resume_form(tracker)
        if misses == 2 and not followup:
            ask_choice(dispatcher, f"{NOT_UNDERSTOOD}您是想办下面哪件事？", MENU_OPTIONS)
            return []
        dispatcher.utter_message(text=f"{NOT_UNDERSTOOD}请换个说法再说一遍。")
        return followup


def consecutive_fallbacks(tracker: Tracker) -> int:
    """How many of the latest user messages in a row were not understood."""
    count = 0
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
        if intent != "nlu_fallback":
            break
        count += 1
    return count
