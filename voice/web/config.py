"""Settings of the voice gateway (web app), read from VOICE_* environment variables and `.env`."""

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parents[2]


class WebVoiceSettings(BaseSettings):
    """Every knob of the voice gateway; `.env.example` documents the VOICE_* variables."""

    model_config = SettingsConfigDict(
        env_prefix="VOICE_",
        env_file=ROOT / ".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)

    # The dialogue engine and the records backend (the latter only for emergencies raised
    # while the dialogue engine is unreachable).
    rasa_url: str = Field(
        default="http://127.0.0.1:5005",
        validation_alias=AliasChoices("VOICE_RASA_URL", "RASA_URL"),
    )
    records_url: str = Field(
        default="http://127.0.0.1:8000",
        validation_alias=AliasChoices("VOICE_RECORDS_URL", "RECORDS_URL"),
    )
    service_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("VOICE_SERVICE_TOKEN", "SERVICE_TOKEN")
    )
    rasa_timeout_s: float = Field(default=30.0, gt=0)
    records_timeout_s: float = Field(default=10.0, gt=0)

    # Audio from the browser: 16 kHz s16le mono. One frame may hold at most this many bytes
    # (the page sends 20-100 ms frames; 1 s is 32000 bytes).
    sample_rate: int = 16000
    max_frame_bytes: int = Field(default=32000, ge=640, le=1_048_576)
    # Longest text message accepted from the page (the REST channel takes 1000 characters).
    max_text_chars: int = Field(default=500, ge=1, le=1000)
    # Connections at once; each holds a speech recogniser.
    max_sessions: int = Field(default=32, ge=1, le=1000)
    # Silences in a row before a person is offered.
    max_reprompts: int = Field(default=2, ge=0, le=10)
    # Pages on other origins allowed to open the WebSocket (e.g. "https://linli.example.org"
    # behind a proxy); the gateway's own origin always is. Browsers send no CORS preflight
    # for WebSockets, so without this any website could raise alerts through a visitor.
    allowed_origins: list[str] = Field(default_factory=list)


@lru_cache
def get_web_settings() -> WebVoiceSettings:
    """The process-wide gateway settings, read once."""
    return WebVoiceSettings()
