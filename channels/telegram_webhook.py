"""Telegram updates in: a webhook route inside our own app, or polling through the library.

Webhook: Telegram POSTs each update with the secret set at registration in the
X-Telegram-Bot-Api-Secret-Token header; anything else is refused (403) and logged. An update
is answered 200 only once it has been handled (Telegram re-delivers when it gets no answer),
and re-deliveries are recognised by their update id, so an update is handled once.
"""

import asyncio
import hmac
import json
import logging
from collections import OrderedDict
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from telegram import Update

from channels.bodies import read_limited
from channels.config import ChannelSettings
from channels.telegram import ALLOWED_UPDATES, TelegramApp

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
WEBHOOK_PATH = "/telegram/webhook"
# Update ids remembered to drop Telegram's re-deliveries.
REMEMBERED_UPDATES = 2048


def _problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse(
        {"type": "about:blank", "title": detail, "status": status, "detail": detail},
        status_code=status,
        media_type="application/problem+json",
    )


class TelegramWebhook:
    """Receives the webhook requests of one bot application."""

    def __init__(self, app: TelegramApp, *, secret: str, max_body_bytes: int) -> None:
        if not secret:
            raise ValueError("webhook mode needs TELEGRAM_WEBHOOK_SECRET")
        self.app = app
        self._secret = secret.encode()
        self._max_body = max_body_bytes
        self._seen: OrderedDict[int, None] = OrderedDict()

    async def handle(self, request: Request) -> Response:
        """Check the secret token, read the update, handle it, then answer 200."""
        client = request.client.host if request.client else "?"
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, self._secret):
            logger.warning("telegram webhook: %s secret token from %s; rejected",
                           "wrong" if given else "missing", client)
            return _problem(403, "forbidden")
        body = await read_limited(request, self._max_body)
        if body is None:
            logger.warning("telegram webhook: body over %d bytes from %s; rejected",
                           self._max_body, client)
            return _problem(413, "update too large")
        data = self._json(body)
        if data is None:
            return _problem(400, "malformed update")
        update = self._update(data)
        if update is None:
            # It came with the secret, so from Telegram: a 4xx would only make Telegram
            # deliver it again and again. Logged and dropped.
            return Response(status_code=200)
        if update.update_id in self._seen:
            logger.info("telegram update %s delivered again; ignored", update.update_id)
            return Response(status_code=200)
        self._remember(update.update_id)
        # Handler errors go to the application's error handler, which tells the user.
        await self.app.process_update(update)
        return Response(status_code=200)

    @staticmethod
    def _json(body: bytes) -> dict[str, Any] | None:
        try:
            data = json.loads(body)
        except ValueError:
            logger.warning("telegram webhook: body is not JSON; rejected")
            return None
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            logger.warning("telegram webhook: JSON without an update_id; rejected")
            return None
        return data

    def _update(self, data: dict[str, Any]) -> Update | None:
        try:
            return Update.de_json(data, self.app.bot)
        except Exception as error:  # the library raises many kinds on malformed fields
            logger.error("telegram webhook: malformed update %s (%s: %s); dropped",
                         data.get("update_id"), type(error).__name__, error)
            return None

    def _remember(self, update_id: int) -> None:
        self._seen[update_id] = None
        while len(self._seen) > REMEMBERED_UPDATES:
            self._seen.popitem(last=False)


async def start_webhook_mode(app: TelegramApp, settings: ChannelSettings) -> None:
    """Initialise the bot (getMe) and register the webhook when its public URL is configured."""
    await app.initialize()
    await app.start()
    if settings.telegram_webhook_url:
        secret = settings.telegram_webhook_secret
        await app.bot.set_webhook(
            settings.telegram_webhook_url,
            secret_token=secret.get_secret_value() if secret else None,
            allowed_updates=ALLOWED_UPDATES,
        )
        logger.info("telegram webhook registered")


async def stop_application(app: TelegramApp) -> None:
    """Stop handling updates and close the bot's connections."""
    if app.updater is not None and app.updater.running:
        await app.updater.stop()
    if app.running:
        await app.stop()
    await app.shutdown()


async def run_polling(app: TelegramApp, stop: asyncio.Event, *, poll_timeout: int = 10) -> None:
    """Fetch updates with getUpdates (the library's updater) until `stop` is set."""
    if app.updater is None:
        raise ValueError("polling needs an application built with an updater")
    await app.initialize()
    try:
        await app.updater.start_polling(
            timeout=poll_timeout, allowed_updates=ALLOWED_UPDATES, error_callback=_polling_error
        )
        await app.start()
        logger.info("telegram polling started")
        await stop.wait()
    finally:
        await stop_application(app)


def _polling_error(error: Any) -> None:
    logger.warning("telegram polling: %s", error)
