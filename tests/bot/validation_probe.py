"""Run in Rasa's Python (.venv-rasa) from bot/: stock and prepared reply validation side by side.

Prints one JSON object: for each reply, what Rasa's own `_validate_action_result` and ours
answer ("ok" or the error's class and message), and the time per validation of each.
"""

import json
import sys
import time
from typing import Any

from rasa.core.actions.action import RemoteAction
from rasa_speedups.action_validation import install_cached_action_validation

REPLIES: dict[str, Any] = {
    "form_turn": {
        "events": [
            {"event": "slot", "timestamp": None, "name": "repair_category", "value": "lighting"},
            {"event": "active_loop", "name": "repair_form"},
            {"event": "slot", "name": "requested_slot", "value": "location"},
        ],
        "responses": [{"text": "请问在哪里？", "expect": {"type": "text"}}],
    },
    "no_events": {"events": [], "responses": []},
    "unknown_event": {"events": [{"event": "teleport", "where": "moon"}], "responses": []},
    "slot_without_name": {"events": [{"event": "slot", "value": 1}], "responses": []},
    "responses_not_a_list": {"events": [], "responses": "你好"},
    "many_kinds": {
        "events": [
            {"event": "bot", "text": "好的", "data": {}, "metadata": {"utter_action": "utter_ok"}},
            {"event": "followup", "name": "action_listen"},
            {"event": "user", "text": "修灯", "parse_data": {"intent": {"name": "report_repair",
                                                                      "confidence": 0.9}}},
            {"event": "reset_slots"},
        ],
        "responses": [],
    },
    "event_without_kind": {"events": [{"name": "x", "value": 1}], "responses": []},
    "event_not_an_object": {"events": ["slot"], "responses": []},
    "events_not_a_list": {"events": {"event": "slot"}, "responses": []},
    "timestamp_as_text": {"events": [{"event": "restart", "timestamp": "now"}], "responses": []},
    "user_ranking_not_a_list": {
        "events": [{"event": "user", "text": "修灯", "parse_data": {"intent_ranking": "x"}}],
        "responses": [],
    },
}


def outcome(action: RemoteAction, reply: Any) -> str:
    """"ok", or the refusal as class and message."""
    try:
        action._validate_action_result(reply)
    except Exception as error:  # compared as text by the test
        return f"{type(error).__name__}: {getattr(error, 'message', error)}"
    return "ok"


def per_call_ms(action: RemoteAction, reply: Any, rounds: int = 30) -> float:
    """Mean time of one validation."""
    started = time.perf_counter()
    for _ in range(rounds):
        outcome(action, reply)
    return (time.perf_counter() - started) / rounds * 1000


def main() -> None:
    """Measure the stock validation, install ours, measure again."""
    action = RemoteAction("action_probe", None)
    stock = {name: outcome(action, reply) for name, reply in REPLIES.items()}
    stock_ms = per_call_ms(action, REPLIES["form_turn"])
    install_cached_action_validation()
    install_cached_action_validation()  # twice: idempotent
    ours = {name: outcome(action, reply) for name, reply in REPLIES.items()}
    ours_ms = per_call_ms(action, REPLIES["form_turn"])
    json.dump({"stock": stock, "ours": ours, "stock_ms": stock_ms, "ours_ms": ours_ms}, sys.stdout)


if __name__ == "__main__":
    main()
