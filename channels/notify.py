"""The notifications worker: drains the records outbox and delivers to each recipient's channel.

Delivery guarantee (at least once, duplicates only after a crash):

- `claim` leases messages to this worker for `NOTIFY_LEASE_S`; while the lease holds no other
  worker gets them, so two live workers never send the same message.
- A message is reported sent right after it was sent. If that report cannot be made (records
  down), the worker remembers the id and keeps reporting; should the lease expire meanwhile and
  the message come back to this worker, it is reported, not sent again.
- A transient failure (network, Telegram 5xx or 429) is retried a few times within the lease,
  then reported failed: the outbox retries after 30 s, 60 s, 120 s… and gives up after its
  last attempt, keeping the error. Permanent refusals (the user blocked the bot, no such chat)
  are reported failed at once, marked "permanent".
- Only a crash between a send and its report, or a send whose answer was lost (a timeout
  after the request went out), can deliver a message twice; the outbox re-offers it when the
  lease ends. Messaging APIs offer no idempotency key, so at-least-once is the best that holds.

Recipients: `telegram:<user id>` → a Telegram message with the payload's buttons as an inline
keyboard; `wechat:<openid>` → a customer-service message with tappable choices; `web:` rows are
reported failed (the web app has no push channel; staff see the error in the outbox); `phone:`
rows are not claimed here: the phone line calls out for those.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from telegram import Bot
from telegram.error import BadRequest, Forbidden, InvalidToken, RetryAfter, TelegramError

from channels.config import ChannelSettings
from channels.rasa_client import BotReply
from channels.records_api import Claimed, RecordsApi, RecordsRefused, RecordsUnavailable
from channels.telegram import keyboard, seconds
from channels.wechat import render_reply, split_reply
from channels.wechat_api import WeChatApi, WeChatSendError

logger = logging.getLogger(__name__)

WEB_NO_PUSH = "permanent: web identities have no push channel; reach this resident another way"
# Attempts to report a delivery while records is unreachable, before leaving it to the lease.
REPORT_RETRIES = 5


class DeliveryError(Exception):
    """A message could not be delivered; `permanent` when retrying cannot help."""

    def __init__(self, reason: str, *, permanent: bool = False, retry_after: float = 0) -> None:
        super().__init__(reason)
        self.permanent = permanent
        self.retry_after = retry_after


class Sender(Protocol):
    """Delivers outbox messages of one channel."""

    async def send(self, recipient: str, payload: Mapping[str, Any]) -> None:
        """Deliver one message, or raise DeliveryError."""
        ...


def message_of(payload: Mapping[str, Any]) -> BotReply:
    """The text and buttons of an outbox payload."""
    text = payload.get("text")
    if not isinstance(text, str) or not text.strip():
        raise DeliveryError("permanent: payload has no text", permanent=True)
    raw = payload.get("buttons")
    buttons = [
        {"title": str(b["title"]), "payload": str(b.get("payload") or b["title"])}
        for b in raw if isinstance(b, dict) and b.get("title")
    ] if isinstance(raw, list) else []
    return BotReply(text=text, buttons=buttons)


def external_id(recipient: str, kind: str) -> str:
    """`<kind>:<id>` → id, or a permanent DeliveryError."""
    prefix, _, rest = recipient.partition(":")
    if prefix != kind or not rest:
        raise DeliveryError(f"permanent: recipient is not a {kind} identity", permanent=True)
    return rest


class TelegramSender:
    """Sends to `telegram:<user id>` (a private chat's id is the user's id)."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def send(self, recipient: str, payload: Mapping[str, Any]) -> None:
        """A message with the payload's buttons as an inline keyboard."""
        chat = external_id(recipient, "telegram")
        if not chat.lstrip("-").isdigit():
            raise DeliveryError("permanent: telegram id is not a number", permanent=True)
        message = message_of(payload)
        try:
            await self.bot.send_message(int(chat), message.text,
                                        reply_markup=keyboard(message.buttons))
        except RetryAfter as error:
            raise DeliveryError("telegram rate limit",
                                retry_after=seconds(error.retry_after)) from error
        except (Forbidden, BadRequest, InvalidToken) as error:
            raise DeliveryError(f"permanent: telegram refused: {error.message}",
                                permanent=True) from error
        except TelegramError as error:
            raise DeliveryError(f"telegram: {error.message}") from error


class WeChatSender:
    """Sends to `wechat:<openid>` as customer-service messages."""

    def __init__(self, api: WeChatApi) -> None:
        self.api = api

    async def send(self, recipient: str, payload: Mapping[str, Any]) -> None:
        """The text, with the payload's buttons as tappable choices."""
        openid = external_id(recipient, "wechat")
        for piece in split_reply(render_reply(message_of(payload))):
            try:
                await self.api.send_text(openid, piece)
            except WeChatSendError as error:
                prefix = "permanent: " if error.permanent else ""
                raise DeliveryError(f"{prefix}{error}", permanent=error.permanent) from error


class NoPushSender:
    """Channels we cannot push to: every message is reported failed with the reason."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def send(self, recipient: str, payload: Mapping[str, Any]) -> None:
        """Always a permanent failure."""
        raise DeliveryError(self.reason, permanent=True)


@dataclass
class WorkerStats:
    """What the worker did since it started."""

    sent: int = 0
    failed: int = 0
    reported_again: int = 0


class NotifyWorker:
    """Claims due outbox messages channel by channel and delivers them."""

    def __init__(
        self,
        settings: ChannelSettings,
        records: RecordsApi,
        senders: Mapping[str, Sender],
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.records = records
        self.senders = dict(senders)
        self.stats = WorkerStats()
        self._sleep = sleep
        # Sent, but the report did not reach records yet: never send these again.
        self._unreported: set[int] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set; back off while records cannot be reached."""
        logger.info("notify worker delivering %s", ", ".join(sorted(self.senders)))
        pause = self.settings.notify_poll_interval_s
        failures = 0
        while not stop.is_set():
            try:
                busy = await self.run_once()
                failures = 0
                pause = 0 if busy else self.settings.notify_poll_interval_s
            except RecordsUnavailable as error:
                failures += 1
                pause = min(self.settings.notify_poll_interval_s * 2**failures,
                            self.settings.notify_backoff_max_s)
                logger.warning("notify: records unreachable (%s); next try in %.1f s",
                               error, pause)
            except RecordsRefused as error:
                pause = self.settings.notify_backoff_max_s
                logger.error("notify: records refused the claim (%s %s); check SERVICE_TOKEN",
                             error.status, error.detail)
            if pause:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=pause)

    async def run_once(self) -> bool:
        """One claim per channel and its deliveries; True when a batch came back full."""
        full = False
        for channel, sender in self.senders.items():
            batch = await self.records.claim(
                channel=channel,
                limit=self.settings.notify_batch,
                lease_seconds=self.settings.notify_lease_s,
            )
            for item in batch:
                await self._deliver(item, sender)
            full = full or len(batch) >= self.settings.notify_batch
        return full

    async def _deliver(self, item: Claimed, sender: Sender) -> None:
        if item.id in self._unreported:
            logger.info("notification %s was sent before; reporting it, not sending again",
                        item.id)
            self.stats.reported_again += 1
            await self._report_sent(item.id)
            return
        error = await self._send_with_retries(item, sender)
        if error is None:
            self._unreported.add(item.id)
            self.stats.sent += 1
            await self._report_sent(item.id)
            return
        self.stats.failed += 1
        logger.warning("notification %s (%s) not delivered: %s", item.id, item.kind, error)
        try:
            await self.records.mark_failed(item.id, str(error))
        except (RecordsUnavailable, RecordsRefused) as report_error:
            # Nothing was sent: when the lease ends the message is simply offered again.
            logger.warning("notification %s failure not reported: %s", item.id, report_error)

    async def _send_with_retries(self, item: Claimed, sender: Sender) -> DeliveryError | None:
        retries = self.settings.notify_send_retries
        budget = self.settings.notify_lease_s / 2  # leave the lease time to report the outcome
        spent = 0.0
        for attempt in range(retries + 1):
            try:
                await sender.send(item.recipient, item.payload)
                return None
            except DeliveryError as error:
                if error.permanent or attempt == retries:
                    return error
                pause = max(error.retry_after,
                            self.settings.notify_retry_pause_s * 2**attempt)
                if spent + pause > budget:
                    return error
                logger.info("notification %s: %s; retrying in %.1f s", item.id, error, pause)
                spent += pause
                await self._sleep(pause)
        raise AssertionError("unreachable")

    async def _report_sent(self, notification_id: int) -> None:
        for attempt in range(REPORT_RETRIES):
            try:
                await self.records.mark_sent(notification_id)
            except RecordsUnavailable as error:
                logger.warning("notification %s sent but not reported yet: %s",
                               notification_id, error)
                await self._sleep(self.settings.notify_retry_pause_s * 2**attempt)
                continue
            except RecordsRefused as error:
                logger.error("records refused the sent report of %s: %s",
                             notification_id, error.detail)
            self._unreported.discard(notification_id)
            return


def build_senders(
    settings: ChannelSettings, *, bot: Bot | None, wechat: WeChatApi | None
) -> dict[str, Sender]:
    """A sender for each configured outbox channel this worker can serve."""
    senders: dict[str, Sender] = {}
    for channel in settings.notify_channel_list():
        if channel == "telegram" and bot is not None:
            senders[channel] = TelegramSender(bot)
        elif channel == "wechat" and wechat is not None:
            senders[channel] = WeChatSender(wechat)
        elif channel == "web":
            senders[channel] = NoPushSender(WEB_NO_PUSH)
        else:
            logger.warning("notify: channel %s listed but not configured; left in the outbox",
                           channel)
    return senders
