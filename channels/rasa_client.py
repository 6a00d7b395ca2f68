"""The one client of Rasa's REST channel that every channel (chat, voice, phone) uses.

Channels keep no dialogue state: they send what the user said (or a button payload) and
render what comes back. A message is never re-sent after Rasa may have seen it, because
Rasa would process it twice; only a refused connection is retried.
"""

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import httpx

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/rest/webhook"
RASA_DOWN_TEXT = "抱歉，系统暂时连不上，请稍后再试。如有紧急情况，请直接拨打110、119或120。"
CONNECT_RETRIES = 2
RETRY_PAUSE_S = 0.3


class RasaUnavailable(Exception):
    """Rasa could not be reached or answered with an error; nothing is known to have happened."""


@dataclass(frozen=True)
class BotReply:
    """One bot message: its text, buttons and the metadata channels need to speak or render it."""

    text: str
    buttons: list[dict[str, str]] = field(default_factory=list)
    expect: dict[str, Any] | None = None
    speech_rate: str = "normal"
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, message: dict[str, Any]) -> "BotReply":
        """Read one message of the REST channel's answer."""
        metadata = message.get("metadata")
        metadata = metadata if isinstance(metadata, dict) else {}
        expect = metadata.get("expect")
        buttons = [
            {"title": str(b.get("title", "")), "payload": str(b.get("payload", ""))}
            for b in message.get("buttons") or []
            if isinstance(b, dict)
        ]
        return cls(
            text=str(message.get("text") or ""),
            buttons=buttons,
            expect=expect if isinstance(expect, dict) else None,
            speech_rate=str(metadata.get("speech_rate") or "normal"),
            metadata=metadata,
        )


class RasaClient:
    """Sends user messages to Rasa's REST channel and returns the bot's replies."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), timeout=timeout, transport=transport
        )

    async def send(
        self,
        sender: str,
        text: str,
        *,
        input_channel: str,
        metadata: dict[str, Any] | None = None,
    ) -> list[BotReply]:
        """Send one message as `sender`; the replies, or RasaUnavailable."""
        body: dict[str, Any] = {"sender": sender, "message": text, "input_channel": input_channel}
        if metadata:
            body["metadata"] = metadata
        response = await self._post(body)
        if response.status_code >= 400:
            logger.warning("rasa answered %s for a %s message", response.status_code, input_channel)
            raise RasaUnavailable(f"rasa answered {response.status_code}")
        try:
            messages = response.json()
        except ValueError as error:
            raise RasaUnavailable("rasa answered something that is not JSON") from error
        if not isinstance(messages, list):
            raise RasaUnavailable("rasa answered something that is not a list")
        return [BotReply.from_json(m) for m in messages if isinstance(m, dict)]

    async def _post(self, body: dict[str, Any]) -> httpx.Response:
        for attempt in range(CONNECT_RETRIES + 1):
            try:
                return await self._http.post(WEBHOOK_PATH, json=body)
            except httpx.ConnectError as error:
                # Refused before anything was sent: safe to try again.
                if attempt == CONNECT_RETRIES:
                    raise RasaUnavailable("rasa refused the connection") from error
                await asyncio.sleep(RETRY_PAUSE_S * (attempt + 1))
            except httpx.HTTPError as error:
                # Rasa may have seen the message: never send it twice.
                reason = type(error).__name__
                raise RasaUnavailable(f"rasa could not be reached: {reason}") from error
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()
