"""Call events for operations, with no personal data: numbers are keyed hashes, digits are
logged only as the kind of key (a code typed on the keypad is personal)."""

from __future__ import annotations

import logging

logger = logging.getLogger("voice.phone.calls")

CONTROL_KEYS = {"0": "operator", "*": "repeat", "#": "enter"}


def key_kind(digit: str) -> str:
    """What a key means for the log: operator, repeat, enter or just "digit"."""
    return CONTROL_KEYS.get(digit, "digit")


def call_event(event: str, call: str, **fields: object) -> None:
    """One log line per call event: ``phone call=<id> event=<name> key=value ...``."""
    rendered = " ".join(f"{name}={value}" for name, value in fields.items())
    logger.info("phone call=%s event=%s %s", call, event, rendered)
