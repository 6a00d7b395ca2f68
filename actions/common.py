"""What every action needs: who is speaking, asking questions with expected-answer metadata,
and turning backend refusals or outages into plain Chinese."""

from collections.abc import Sequence
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, FollowupAction
from rasa_sdk.executor import CollectingDispatcher

from actions.records_client import RecordsError, RecordsUnavailable, form_idempotency_key

CHANNELS = ("telegram", "wechat", "phone", "web")
NOT_UNDERSTOOD = "对不起，我没听明白。"
BACKEND_DOWN = "系统暂时连不上，这件事还没有办成。请稍后再试，或者说“找人工”。"

YES_NO_OPTIONS = [
    {"key": "1", "label": "是", "payload": "/affirm"},
    {"key": "2", "label": "不是", "payload": "/deny"},
]


def identity_of(tracker: Tracker) -> str:
    """The sender's channel identity (`telegram:…`, `phone:+86…`); others count as web."""
    sender = tracker.sender_id or "anonymous"
    kind, sep, rest = sender.partition(":")
    if sep and kind in CHANNELS and rest:
        return sender
    return f"web:{sender}"


def _buttons(options: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    return [{"title": o["label"], "payload": o["payload"]} for o in options]


def ask_yes_no(dispatcher: CollectingDispatcher, text: str) -> None:
    """Ask a yes/no question (keypad: 1 yes, 2 no)."""
    expect = {"type": "yes_no", "options": YES_NO_OPTIONS}
    dispatcher.utter_message(text=text, buttons=_buttons(YES_NO_OPTIONS), expect=expect)


def ask_choice(
    dispatcher: CollectingDispatcher, text: str, options: Sequence[tuple[str, str]]
) -> None:
    """Ask to choose one of a few options given as (label, payload); keypad 1..n."""
    listed = [
        {"key": str(i), "label": label, "payload": payload}
        for i, (label, payload) in enumerate(options, start=1)
    ]
    dispatcher.utter_message(
        text=text, buttons=_buttons(listed), expect={"type": "choice", "options": listed}
    )


def ask_number(dispatcher: CollectingDispatcher, text: str, low: int, high: int) -> None:
    """Ask for a whole number in a range (keypad digits then #)."""
    dispatcher.utter_message(text=text, expect={"type": "number", "min": low, "max": high})


def ask_digits(dispatcher: CollectingDispatcher, text: str, length: int) -> None:
    """Ask for a fixed number of digits, such as a verification code."""
    dispatcher.utter_message(text=text, expect={"type": "digits", "length": length})


def ask_free_text(dispatcher: CollectingDispatcher, text: str) -> None:
    """Ask an open question."""
    dispatcher.utter_message(text=text, expect={"type": "free_text"})


def say_error(dispatcher: CollectingDispatcher, error: RecordsError) -> None:
    """Tell the user plainly why something was not done."""
    if isinstance(error, RecordsUnavailable):
        dispatcher.utter_message(text=BACKEND_DOWN)
    else:
        dispatcher.utter_message(text=error.detail_zh)


def resume_form(tracker: Tracker) -> list[EventType]:
    """Continue the active form, if any: it asks its question again."""
    loop = (tracker.active_loop or {}).get("name")
    return [FollowupAction(loop)] if loop else []


def entity_value(tracker: Tracker, name: str) -> Any | None:
    """The latest message's value for an entity, if present."""
    return next(tracker.get_latest_entity_values(name), None)


def latest_text(tracker: Tracker) -> str:
    """The text of the latest user message."""
    return (tracker.latest_message or {}).get("text") or ""


def turn_key(tracker: Tracker, what: str) -> str:
    """An idempotency key for this user turn: a retried turn never creates anything twice."""
    message_id = (tracker.latest_message or {}).get("message_id") or ""
    stamp = next(
        (str(e.get("timestamp")) for e in reversed(tracker.events) if e.get("event") == "user"),
        "",
    )
    return form_idempotency_key(tracker.sender_id, what, {"message": message_id, "at": stamp})
