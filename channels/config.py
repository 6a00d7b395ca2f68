"""Settings of the messaging channels and the notifications worker, from env vars and `.env`."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parents[1]

TELEGRAM_API = "https://api.telegram.org/bot"
TELEGRAM_FILES = "https://api.telegram.org/file/bot"
WECHAT_API = "https://api.weixin.qq.com/cgi-bin/"


class ChannelSettings(BaseSettings):
    """Every knob of `channels/`; `.env.example` documents the variables."""

    model_config = SettingsConfigDict(
        env_file=ROOT / ".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    rasa_url: str = "http://127.0.0.1:5005"
    records_url: str = "http://127.0.0.1:8000"
    service_token: SecretStr | None = None
    rasa_timeout_s: float = Field(default=30.0, gt=0)

    # Where the webhooks app (`python -m channels serve`) listens.
    host: str = Field(default="127.0.0.1", validation_alias=AliasChoices("CHANNELS_HOST", "host"))
    port: int = Field(
        default=8090, ge=1, le=65535, validation_alias=AliasChoices("CHANNELS_PORT", "port")
    )
    # Longest request body the webhooks accept; Telegram updates and WeChat XML are small.
    max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    # Longest text forwarded to the bot (the REST channel refuses longer ones).
    max_text_chars: int = Field(default=1000, ge=1)

    # --- Telegram -------------------------------------------------------------------------
    telegram_token: SecretStr | None = None
    telegram_mode: Literal["webhook", "polling"] = "webhook"
    # Telegram sends it in X-Telegram-Bot-Api-Secret-Token; required in webhook mode.
    telegram_webhook_secret: SecretStr | None = None
    # Public HTTPS URL of /telegram/webhook; when set, the app registers it at startup.
    telegram_webhook_url: str | None = None
    # The Bot API server (a local Bot API server, or a fake one in tests).
    telegram_base_url: str = TELEGRAM_API
    telegram_base_file_url: str = TELEGRAM_FILES
    # Voice notes longer than this are refused rather than transcribed.
    telegram_max_voice_s: int = Field(default=120, ge=1)
    telegram_max_voice_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)

    # --- WeChat Official Account ----------------------------------------------------------
    wechat_token: SecretStr | None = None
    wechat_app_id: str | None = None
    wechat_app_secret: SecretStr | None = None
    # The 43-character EncodingAESKey; set it to accept safe (encrypted) mode.
    wechat_aes_key: SecretStr | None = None
    wechat_api_base: str = WECHAT_API
    # WeChat waits 5 s for the passive reply; a slower turn is answered by customer-service
    # message instead, so the passive reply must leave time for the network.
    wechat_reply_deadline_s: float = Field(default=4.0, ge=0, le=4.8)
    # Requests whose timestamp is further off than this are refused as replays.
    wechat_max_clock_skew_s: int = Field(default=300, ge=1)

    # --- Notifications worker -------------------------------------------------------------
    # Outbox channels this worker delivers ("telegram", "wechat"; "web" rows are marked failed,
    # "phone" rows are left to the phone line).
    notify_channels: str = "telegram,wechat,web"
    notify_batch: int = Field(default=10, ge=1, le=100)
    notify_lease_s: int = Field(default=60, ge=5, le=3600)
    # Pause between claims when the outbox is empty.
    notify_poll_interval_s: float = Field(default=2.0, gt=0)
    # Records unreachable: wait poll interval × 2ⁿ, at most this long.
    notify_backoff_max_s: float = Field(default=60.0, gt=0)
    # Quick in-lease retries of a transient send failure before reporting it failed (the
    # outbox then retries after 30 s, 60 s, 120 s…).
    notify_send_retries: int = Field(default=2, ge=0, le=5)
    notify_retry_pause_s: float = Field(default=1.0, ge=0)

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _telegram_secret_chars(cls, value: SecretStr | None) -> SecretStr | None:
        """Telegram accepts 1-256 characters of A-Z, a-z, 0-9, _ and -."""
        if value is None:
            return None
        secret = value.get_secret_value()
        if not secret:
            return None
        if len(secret) > 256 or not all(c.isascii() and (c.isalnum() or c in "_-") for c in secret):
            raise ValueError("TELEGRAM_WEBHOOK_SECRET: 1-256 characters of A-Z a-z 0-9 _ -")
        return value

    def notify_channel_list(self) -> list[str]:
        """The outbox channels this worker claims."""
        return [c.strip() for c in self.notify_channels.split(",") if c.strip()]

    def telegram_enabled(self) -> bool:
        """Whether a Telegram bot token is configured."""
        return bool(self.telegram_token and self.telegram_token.get_secret_value())

    def wechat_enabled(self) -> bool:
        """Whether the WeChat Official Account is configured (its token at least)."""
        return bool(self.wechat_token and self.wechat_token.get_secret_value())


@lru_cache
def get_channel_settings() -> ChannelSettings:
    """The process-wide settings, read once."""
    return ChannelSettings()
