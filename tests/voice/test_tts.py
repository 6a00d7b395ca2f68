"""Speech synthesis with the real espeak-ng Mandarin voice: rates, durations, streaming, cache."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import numpy as np
import pytest

from voice.audio import AudioFormatError, dbfs, duration_s, to_samples
from voice.config import SpeechSettings
from voice.tts import EspeakNgTts, TtsEngine, split_pieces, tts_from_settings

QUESTION = "您好，请问您要报修什么？"
LONG = "您的报修已经登记：3栋2单元501，厨房水管漏水。师傅明天14:30上门，请保持电话畅通！"


@pytest.fixture(scope="module")
def tts() -> Iterator[EspeakNgTts]:
    engine = EspeakNgTts(voice="cmn", rate_normal=175, rate_slow=125)
    yield engine
    engine.close()


async def speak(engine: TtsEngine, text: str, rate: int, speed: str = "normal") -> list[bytes]:
    return [chunk async for chunk in engine.synthesize(text, sample_rate=rate, rate=speed)]


def voiced_fraction(pcm: bytes, rate: int) -> float:
    """Share of 20 ms frames louder than -40 dBFS."""
    samples = to_samples(pcm)
    size = rate // 50
    levels = [dbfs(samples[i : i + size]) for i in range(0, samples.size - size + 1, size)]
    return float(np.mean([level > -40 for level in levels]))


@pytest.mark.parametrize("rate", [16000, 8000])
async def test_speech_comes_out_at_the_channels_rate(tts: EspeakNgTts, rate: int) -> None:
    chunks = await speak(tts, QUESTION, rate)
    pcm = b"".join(chunks)
    assert all(len(c) % 2 == 0 for c in chunks)
    seconds = duration_s(pcm, rate)
    # 11 syllables: a plausible Mandarin length at either rate (same audio, other sample rate).
    assert 1.5 < seconds < 8.0
    assert dbfs(to_samples(pcm)) > -35
    assert voiced_fraction(pcm, rate) > 0.3


async def test_both_rates_carry_the_same_speech(tts: EspeakNgTts) -> None:
    wide = b"".join(await speak(tts, QUESTION, 16000))
    narrow = b"".join(await speak(tts, QUESTION, 8000))
    assert duration_s(narrow, 8000) == pytest.approx(duration_s(wide, 16000), rel=0.02)
    # Telephone audio has nothing above its 4 kHz Nyquist limit, wideband audio does.
    spectrum = np.abs(np.fft.rfft(to_samples(wide).astype(np.float64)))
    freqs = np.fft.rfftfreq(len(to_samples(wide)), 1 / 16000)
    assert spectrum[freqs > 4200].sum() > 0.001 * spectrum.sum()


async def test_slow_speech_is_longer(tts: EspeakNgTts) -> None:
    normal = duration_s(b"".join(await speak(tts, LONG, 16000, "normal")), 16000)
    slow = duration_s(b"".join(await speak(tts, LONG, 16000, "slow")), 16000)
    assert slow > 1.2 * normal


async def test_long_text_streams_in_many_chunks(tts: EspeakNgTts) -> None:
    chunks = await speak(tts, "师傅已经出发，大约二十分钟后到达，请您在家等候。", 16000)
    total = sum(len(c) for c in chunks)
    assert len(chunks) > 10
    assert len(chunks[0]) < total / 10


async def test_repeated_prompts_come_from_the_cache(tts: EspeakNgTts) -> None:
    first = b"".join(await speak(tts, "请说“是”或者“不是”。", 8000))
    hits = tts.cache.info.hits
    again = b"".join(await speak(tts, "请说“是”或者“不是”。", 8000))
    assert again == first
    assert tts.cache.info.hits == hits + 1
    # Another sample rate or speed is another entry.
    await speak(tts, "请说“是”或者“不是”。", 16000)
    assert tts.cache.info.hits == hits + 1


async def test_stopping_early_leaves_the_engine_usable(tts: EspeakNgTts) -> None:
    stream = tts.synthesize(LONG + "谢谢。", sample_rate=16000)
    async for _ in stream:
        break  # barge-in: the listener goes away after the first chunk
    await stream.aclose()
    pcm = b"".join(await speak(tts, "好的。", 16000))
    assert 0.3 < duration_s(pcm, 16000) < 3.0


async def test_concurrent_callers_get_whole_undisturbed_speech() -> None:
    # Texts of clearly different lengths: interleaved chunks would show in the durations.
    texts = ["停水通知。", "一号楼明天上午停水，请提前储水。", "三号楼电梯检修。"]
    cold = EspeakNgTts(cache_bytes=0)
    try:
        alone = [b"".join(await speak(cold, t, 16000)) for t in texts]
        together = await asyncio.gather(*(speak(cold, t, 16000) for t in texts))
    finally:
        cold.close()
    for solo, chunks in zip(alone, together, strict=True):
        # espeak-ng varies its output by a few samples from run to run.
        assert duration_s(b"".join(chunks), 16000) == pytest.approx(
            duration_s(solo, 16000), abs=0.01
        )


async def test_bad_requests_are_refused(tts: EspeakNgTts) -> None:
    with pytest.raises(ValueError, match="rate must be one of"):
        await speak(tts, QUESTION, 16000, "fast")
    with pytest.raises(AudioFormatError):
        await speak(tts, QUESTION, 2000)
    assert await speak(tts, "。。！", 16000) == []


def test_engine_from_settings() -> None:
    engine = tts_from_settings(SpeechSettings(tts_engine="pyttsx3", tts_rate_slow=100))
    assert isinstance(engine, EspeakNgTts)
    assert engine.wpm["slow"] == 100
    with pytest.raises(ValueError, match="TTS_ENGINE"):
        tts_from_settings(SpeechSettings(tts_engine="festival"))


def test_text_is_split_into_sentences_and_clauses() -> None:
    assert split_pieces("您好，请问有什么可以帮您？好的。") == [
        "您好，",
        "请问有什么可以帮您？",
        "好的。",
    ]
    assert split_pieces("好的！！……") == ["好的！！……"]
    assert split_pieces("没有标点") == ["没有标点"]
    assert split_pieces("") == []
