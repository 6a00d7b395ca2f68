"""Settings of the speech engine (recognition and synthesis), from env vars and `.env`."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parents[1]


class SpeechSettings(BaseSettings):
    """Every knob of the speech engine; `.env.example` documents the variables."""

    model_config = SettingsConfigDict(
        env_file=ROOT / ".env", env_file_encoding="utf-8", extra="ignore"
    )

    # An explicit model directory wins over every other place (env VOSK_MODEL_PATH).
    vosk_model_path: Path | None = None
    vosk_model_name: str = "vosk-model-small-cn-0.22"
    vosk_model_url: str = "https://alphacephei.com/vosk/models/vosk-model-small-cn-0.22.zip"
    # Models shared between checkouts on one machine, then models downloaded by setup.
    shared_models_dir: Path = ROOT.parent / "shared" / "models"
    models_dir: Path = ROOT / "var" / "models"

    # Streams decoded at the same time; more wait their turn (see bench/asr_bench.py).
    asr_max_streams: int = Field(default=8, ge=1, le=64)
    # Elderly speakers pause longer: Kaldi's 0.5 s cuts them off mid-sentence.
    asr_endpoint_silence_s: float = Field(default=0.9, gt=0.1, le=5.0)
    asr_no_input_timeout_s: float = Field(default=8.0, gt=0.5, le=120.0)

    # "pyttsx3" (default: pyttsx3 over espeak-ng, a clause at a time, voice/pyttsx3_tts.py) or
    # "espeak-ng" (libespeak-ng directly, streamed within clauses, voice/tts.py). One per process.
    tts_engine: str = "pyttsx3"
    tts_voice: str = "cmn"
    # Words per minute; espeak-ng's own default is 175.
    tts_rate_normal: int = Field(default=175, ge=80, le=450)
    tts_rate_slow: int = Field(default=125, ge=80, le=450)
    # Bytes of synthesised audio kept for repeated sentences (fixed prompts).
    tts_cache_bytes: int = Field(default=32 * 1024 * 1024, ge=0)

    @field_validator("vosk_model_path", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """`VOSK_MODEL_PATH=` (empty, as in .env.example) means not set, not the current dir."""
        return None if isinstance(value, str) and not value.strip() else value


@lru_cache
def get_speech_settings() -> SpeechSettings:
    """The process-wide speech settings, read once."""
    return SpeechSettings()
