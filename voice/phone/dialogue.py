"""The dialogue as heard on the telephone: Rasa's replies with keypad hints added.

A question that expects yes/no, a choice, a number or digits gets the keys to press when its
text names none ("要送到家里吗？请说“是”或按1，“不是”按2。"), and the greeting gets the main
menu. The hints become part of the reply, so repeating and reprompting say them too.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from channels.rasa_client import RASA_DOWN_TEXT, BotReply, RasaClient
from voice.phone.keypad import HANDOFF, MENU_HINT, with_hint

GREET = "/greet"
KEYPAD_ONLY_NOTE = "现在听不清语音，请用按键。"
# What the dialogue says once a call-back request stands (actions/core.py, records'
# handoffs); replies may also carry metadata {"handoff": ...}.
HANDOFF_PHRASES = ("给您回电话", "回复您", "请工作人员给您回电话")
GOODBYE_PHRASES = ("再见",)


class PhoneRasaClient(RasaClient):
    """The shared Rasa client of a worker, adding keypad hints to what is spoken."""

    def __init__(self, base_url: str, *, timeout: float = 30.0, keypad_only: bool = False) -> None:
        super().__init__(base_url, timeout=timeout)
        self.keypad_only = keypad_only

    async def send(
        self,
        sender: str,
        text: str,
        *,
        input_channel: str,
        metadata: dict[str, Any] | None = None,
    ) -> list[BotReply]:
        """Send one message; the replies with keypad hints."""
        replies = await super().send(sender, text, input_channel=input_channel, metadata=metadata)
        return phone_replies(replies, greeting=text == GREET, keypad_only=self.keypad_only)


def phone_replies(
    replies: list[BotReply], *, greeting: bool = False, keypad_only: bool = False
) -> list[BotReply]:
    """The replies as said on the phone: hints on questions, the key menu after a greeting."""
    out = [
        dataclasses.replace(r, text=with_hint(r.text, r.expect)) if r.expect and r.text else r
        for r in replies
    ]
    if greeting and out and not any(r.expect for r in out):
        last = out[-1]
        note = KEYPAD_ONLY_NOTE if keypad_only else ""
        out[-1] = dataclasses.replace(last, text=f"{last.text}{note}{MENU_HINT}")
    return out


def is_handoff(reply: BotReply) -> bool:
    """Whether this reply says a person will call back (a call-back request stands)."""
    if reply.metadata.get("handoff"):
        return True
    return any(phrase in reply.text for phrase in HANDOFF_PHRASES) and not reply.expect


def is_goodbye(reply: BotReply) -> bool:
    """Whether the bot said goodbye (the call can end once it is heard)."""
    return not reply.expect and any(p in reply.text for p in GOODBYE_PHRASES)


def is_rasa_down(reply: BotReply) -> bool:
    """Whether this is the session's "dialogue unreachable" apology."""
    return reply.text == RASA_DOWN_TEXT


__all__ = ["HANDOFF", "PhoneRasaClient", "is_goodbye", "is_handoff", "phone_replies"]
