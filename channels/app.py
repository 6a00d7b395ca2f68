"""The channels web app: Telegram's webhook, WeChat's callback URL and a health check."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from channels.config import ChannelSettings, get_channel_settings
from channels.rasa_client import RasaClient
from channels.records_api import RecordsApi
from channels.telegram import TelegramBridge, build_application
from channels.telegram_webhook import (
    WEBHOOK_PATH,
    TelegramWebhook,
    start_webhook_mode,
    stop_application,
)
from channels.voice_notes import VoiceNotes
from channels.wechat import PATH as WECHAT_PATH
from channels.wechat import WeChatBridge
from channels.wechat_api import WeChatApi
from voice.config import get_speech_settings

logger = logging.getLogger(__name__)


@dataclass
class Shared:
    """What every channel of one process uses: Rasa, records, voice notes."""

    rasa: RasaClient
    records: RecordsApi | None
    voice: VoiceNotes | None

    async def aclose(self) -> None:
        """Close the connection pools."""
        await self.rasa.aclose()
        if self.records is not None:
            await self.records.aclose()


def shared_clients(settings: ChannelSettings, *, voice: VoiceNotes | None = None) -> Shared:
    """The Rasa and records clients and the voice-note pipeline (its model loads on first use)."""
    token = settings.service_token.get_secret_value() if settings.service_token else ""
    if not token:
        logger.warning("SERVICE_TOKEN is not set: /start codes cannot link accounts")
    return Shared(
        rasa=RasaClient(settings.rasa_url, timeout=settings.rasa_timeout_s),
        records=RecordsApi(settings.records_url, token) if token else None,
        voice=voice if voice is not None else VoiceNotes(get_speech_settings()),
    )


def wechat_api(settings: ChannelSettings) -> WeChatApi | None:
    """The customer-service API client, when the account's app id and secret are set."""
    secret = settings.wechat_app_secret.get_secret_value() if settings.wechat_app_secret else ""
    if not settings.wechat_app_id or not secret:
        return None
    return WeChatApi(settings.wechat_app_id, secret, api_base=settings.wechat_api_base)


def _problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse(
        {"type": "about:blank", "title": detail, "status": status, "detail": detail},
        status_code=status,
        media_type="application/problem+json",
    )


def create_app(
    settings: ChannelSettings | None = None, *, voice: VoiceNotes | None = None
) -> FastAPI:
    """The app; channels without settings stay off (their routes answer 404)."""
    config = settings or get_channel_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        shared = shared_clients(config, voice=voice)
        telegram: TelegramWebhook | None = None
        wechat: WeChatBridge | None = None
        api = wechat_api(config)
        try:
            if config.telegram_enabled() and config.telegram_mode == "webhook":
                bridge = TelegramBridge(
                    config, rasa=shared.rasa, records=shared.records, voice=shared.voice
                )
                secret = config.telegram_webhook_secret
                telegram = TelegramWebhook(
                    build_application(config, bridge, polling=False),
                    secret=secret.get_secret_value() if secret else "",
                    max_body_bytes=config.max_body_bytes,
                )
                await start_webhook_mode(telegram.app, config)
            elif config.telegram_enabled():
                logger.info("telegram in polling mode: run `python -m channels telegram-polling`")
            if config.wechat_enabled():
                wechat = WeChatBridge(config, rasa=shared.rasa, voice=shared.voice, api=api)
            app.state.telegram = telegram
            app.state.wechat = wechat
            yield
        finally:
            if wechat is not None:
                await wechat.aclose()
            if telegram is not None:
                await stop_application(telegram.app)
            if api is not None:
                api.close()
            await shared.aclose()

    app = FastAPI(title="Linli channels", version="1.0", lifespan=lifespan)

    @app.get("/health")
    async def health(request: Request) -> dict[str, object]:
        """Up, and which channels this process serves."""
        return {
            "status": "ok",
            "telegram": request.app.state.telegram is not None,
            "wechat": request.app.state.wechat is not None,
        }

    @app.post(WEBHOOK_PATH, include_in_schema=False)
    async def telegram_webhook(request: Request) -> Response:
        """Telegram's webhook (secret-token checked)."""
        hook: TelegramWebhook | None = request.app.state.telegram
        if hook is None:
            return _problem(404, "telegram webhook is not enabled")
        return await hook.handle(request)

    @app.get(WECHAT_PATH, include_in_schema=False)
    async def wechat_check(request: Request) -> Response:
        """WeChat's URL verification."""
        bridge: WeChatBridge | None = request.app.state.wechat
        if bridge is None:
            return _problem(404, "wechat is not enabled")
        return await bridge.verify_url(request)

    @app.post(WECHAT_PATH, include_in_schema=False)
    async def wechat_message(request: Request) -> Response:
        """WeChat's messages and events."""
        bridge: WeChatBridge | None = request.app.state.wechat
        if bridge is None:
            return _problem(404, "wechat is not enabled")
        return await bridge.receive(request)

    return app
