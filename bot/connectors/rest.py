"""The REST channel with metadata kept on each message.

Rasa's stock REST output drops the extra keys an action gives `utter_message` and sends a
`custom` payload as a separate message. Channels need both with the text they belong to:
the expected answer of a question (yes/no, digits, options) constrains speech recognition
and lets the phone accept keypad digits, and the speech rate slows voice replies.
"""

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import rasa_speedups
from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from connectors.turn_state import SPEECH_RATE_SLOT, TurnState, begin_turn, install_turn_state

logger = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 1000
MAX_SENDER_CHARS = 140
_STANDARD_KEYS = {
    "text", "buttons", "image", "attachment", "custom", "elements", "quick_replies",
    "timestamp", "template_name", "response", "utter_action", "recipient_id",
}


class MetadataCollectingOutputChannel(CollectingOutputChannel):
    """Collects one message per bot utterance, its text and metadata together."""

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        """Persist a message with its buttons, and custom payload and extra keys as metadata."""
        metadata: dict[str, Any] = {}
        custom = message.get("custom")
        if isinstance(custom, dict):
            metadata.update(custom)
        for key, value in message.items():
            if key not in _STANDARD_KEYS and value is not None:
                metadata[key] = value
        entry: dict[str, Any] = {"recipient_id": recipient_id}
        for key in ("text", "buttons", "image", "attachment"):
            if message.get(key):
                entry[key] = message[key]
        if metadata:
            entry["metadata"] = metadata
        await self._persist_message(entry)


def _bad_request(detail: str) -> HTTPResponse:
    return response.json(
        {"type": "about:blank", "title": "bad request", "status": 400, "detail": detail},
        status=400,
        content_type="application/problem+json",
    )


class LinliRestInput(InputChannel):
    """REST input at /webhooks/rest/webhook whose replies keep their metadata."""

    @classmethod
    def name(cls) -> str:
        """Same name, and so the same URL, as Rasa's REST channel."""
        return "rest"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        """The channel, made once per Rasa process (so the place to speed up Rasa itself)."""
        rasa_speedups.install()
        install_turn_state()
        return cls()

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """The health and webhook routes."""
        webhook = Blueprint("linli_rest_webhook", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(_request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            try:
                body = request.json
            except Exception:  # sanic raises on malformed JSON
                body = None
            if not isinstance(body, dict):
                return _bad_request("请求内容必须是 JSON 对象。")
            sender, text = body.get("sender"), body.get("message")
            if not isinstance(sender, str) or not sender or len(sender) > MAX_SENDER_CHARS:
                return _bad_request("缺少发送者，或发送者太长。")
            if not isinstance(text, str) or len(text) > MAX_MESSAGE_CHARS:
                return _bad_request("消息必须是文字，且不超过1000个字。")
            metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else None
            collector = MetadataCollectingOutputChannel()
            turn = begin_turn(sender)
            try:
                await on_new_message(
                    UserMessage(
                        text, collector, sender,
                        input_channel=body.get("input_channel") or "rest", metadata=metadata,
                    )
                )
            except Exception:  # like Rasa's own channel: answer with what was said so far
                logger.exception("handling a REST message failed")
            await _add_conversation_state(request, turn, collector.messages)
            return response.json(collector.messages)

        return webhook


async def _add_conversation_state(
    request: Request, turn: TurnState, messages: list[dict[str, Any]]
) -> None:
    """Tell channels how to speak: the conversation's speech rate goes on every message."""
    if not messages:
        return
    rate: Any | None = turn.speech_rate
    agent = getattr(request.app.ctx, "agent", None)
    if not turn.saved and agent is not None:  # the turn failed before Rasa saved it
        tracker = await agent.tracker_store.retrieve(turn.sender)
        rate = tracker.get_slot(SPEECH_RATE_SLOT) if tracker else None
    for message in messages:
        message.setdefault("metadata", {})["speech_rate"] = rate or "normal"
