"""One turn with the bot, as every messaging channel takes it: send, and never fail silently."""

import logging
from typing import Any

from channels.rasa_client import RASA_DOWN_TEXT, BotReply, RasaClient, RasaUnavailable

logger = logging.getLogger(__name__)

TOO_LONG_TEXT = "消息太长了，请分几次说，每次不超过{limit}个字。"
EMPTY_CHOICE_TEXT = "请选择："
# Said when the bot answered nothing at all, so a message never meets silence.
NO_REPLY_TEXT = "抱歉，我没听明白，请换个说法，或者说“找人工”。"


async def ask_bot(
    rasa: RasaClient,
    sender: str,
    text: str,
    *,
    input_channel: str,
    metadata: dict[str, Any] | None = None,
) -> list[BotReply]:
    """The bot's replies to `text`; a Chinese apology when Rasa cannot be reached."""
    try:
        return await rasa.send(sender, text, input_channel=input_channel, metadata=metadata)
    except RasaUnavailable as error:
        logger.warning("%s turn failed, apology sent: %s", input_channel, error)
        return [BotReply(text=RASA_DOWN_TEXT)]


def never_silent(replies: list[BotReply], input_channel: str) -> list[BotReply]:
    """The replies, or a plea to rephrase when the bot said nothing."""
    if replies:
        return replies
    logger.warning("%s turn: the bot answered nothing; asked to rephrase", input_channel)
    return [BotReply(text=NO_REPLY_TEXT)]


def spoken_text(replies: list[BotReply]) -> str:
    """What a voice reply says: every reply's text, buttons read as the choices."""
    parts = []
    for reply in replies:
        if reply.text:
            parts.append(reply.text)
        titles = [b["title"] for b in reply.buttons if b.get("title")]
        if titles and not reply.text:
            parts.append("、".join(titles))
    return "\n".join(parts)


def speech_rate(replies: list[BotReply]) -> str:
    """The rate of the turn: slow when any reply asks for it."""
    return "slow" if any(r.speech_rate == "slow" for r in replies) else "normal"
