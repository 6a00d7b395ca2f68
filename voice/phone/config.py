"""Settings of the phone line (SIP), read from PHONE_* environment variables and `.env`."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parents[2]

# The pjsua2 wheel is built with PJSUA_MAX_CALLS = 4: a process never holds more calls.
WHEEL_MAX_CALLS = 4


class PhoneSettings(BaseSettings):
    """Every knob of the phone line; `.env.example` documents the PHONE_* variables."""

    model_config = SettingsConfigDict(
        env_prefix="PHONE_", env_file=ROOT / ".env", env_file_encoding="utf-8", extra="ignore"
    )

    # Where the (first) worker listens for SIP, UDP and TCP. Further workers take the
    # following ports (5071, 5072, ...).
    sip_host: str = "127.0.0.1"
    sip_port: int = Field(default=5070, ge=1, le=65535)
    # The address written into Contact and SDP when it differs from sip_host (NAT, a proxy).
    public_host: str | None = None
    account_user: str = "assistant"
    # First RTP port; each worker takes the next 40 (UDP, both directions: open in firewalls).
    rtp_port: int = Field(default=16000, ge=1024, le=65000)

    # Optional registration at a PBX or SIP trunk, e.g. "sip:pbx.example.org".
    registrar: str | None = None
    sip_username: str | None = None
    sip_password: SecretStr | None = None
    sip_realm: str = "*"
    # Outbound proxy for everything sent (a trunk's edge proxy), e.g. "sip:10.0.0.1;lr".
    outbound_proxy: str | None = None

    # Where "a person, please" transfers the call (REFER); empty: a call-back request only.
    operator_uri: str | None = None

    # Recording: only when enabled, and always after a consent announcement.
    record_calls: bool = False
    recordings_dir: Path = ROOT / "var" / "recordings"

    # Worker processes (each its own SIP port) and calls per process (the wheel allows 4).
    workers: int = Field(default=1, ge=1, le=32)
    max_calls: int = Field(default=WHEEL_MAX_CALLS, ge=1, le=WHEEL_MAX_CALLS)

    # Older callers on a telephone: slower speech by default.
    speech_rate: Literal["normal", "slow"] = "slow"
    # Silences in a row before a person is offered (the voice session reprompts), and wrong
    # keys in a row before a person is offered.
    no_input_limit: int = Field(default=2, ge=0, le=10)
    no_match_limit: int = Field(default=3, ge=1, le=10)
    # Hang up after this many further silences once a person was offered.
    hangup_after_silences: int = Field(default=2, ge=1, le=10)
    # Seconds after the last key before collected digits are sent without '#'.
    digit_timeout_s: float = Field(default=5.0, gt=0, le=60)
    # Longest call; a stuck or forgotten call ends after this.
    max_call_s: float = Field(default=1800.0, gt=0)

    # The dialogue engine.
    rasa_url: str = Field(
        default="http://127.0.0.1:5005",
        validation_alias=AliasChoices("PHONE_RASA_URL", "RASA_URL"),
    )
    # The records backend, only for emergency alerts raised while the dialogue is down.
    records_url: str = Field(
        default="http://127.0.0.1:8000",
        validation_alias=AliasChoices("PHONE_RECORDS_URL", "RECORDS_URL"),
    )
    service_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("PHONE_SERVICE_TOKEN", "SERVICE_TOKEN")
    )
    # Keys the hashes of caller numbers in the call log; empty: a random key per process
    # (log lines of one run can be matched, nothing links them to a number later).
    log_hash_key: SecretStr | None = None
    # PJSIP's own log level (0-6) and whether it logs SIP messages (they carry numbers).
    pjsip_log_level: int = Field(default=1, ge=0, le=6)
    pjsip_log_messages: bool = False

    @field_validator("registrar", "operator_uri", "outbound_proxy", "public_host", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        """An empty variable in `.env` means "not configured"."""
        if isinstance(value, str) and not value.strip():
            return None
        return value

    def account_uri(self, port: int | None = None) -> str:
        """The SIP URI this line answers as."""
        host = self.public_host or self.sip_host
        return f"sip:{self.account_user}@{host}:{port or self.sip_port}"

    def worker_ports(self) -> list[int]:
        """The consecutive SIP ports of the worker processes."""
        return [self.sip_port + i for i in range(self.workers)]


@lru_cache
def get_phone_settings() -> PhoneSettings:
    """The process-wide phone settings, read once."""
    return PhoneSettings()
