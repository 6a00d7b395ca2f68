"""Speech synthesis with both engines over the real espeak-ng Mandarin voice.

pyttsx3 (the default) and the streaming espeak-ng engine both drive the process's one
libespeak-ng and refuse to share a process (voice.tts.claim_espeak); other voice tests in this
pytest process may start the configured engine. So each engine is measured in a subprocess of
its own, `python -m tests.voice.test_tts <engine>`, which prints its measurements as JSON, and
the tests here check them.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from voice.audio import AudioFormatError, dbfs, duration_s, to_samples
from voice.config import SpeechSettings
from voice.espeak import Espeak
from voice.pyttsx3_tts import Pyttsx3Tts, _Pyttsx3Voice
from voice.speech_text import for_speech
from voice.tts import (
    ENGINES,
    EspeakNgTts,
    TtsEngineConflict,
    split_pieces,
    tts_from_settings,
)

ROOT = Path(__file__).resolve().parents[2]
QUESTION = "您好，请问您要报修什么？"
LONG = "您的报修已经登记：3栋2单元501，厨房水管漏水。师傅明天14:30上门，请保持电话畅通！"
STREAMED = "师傅已经出发，大约二十分钟后到达，请您在家等候。"
PROMPT = "请说“是”或者“不是”。"
# Spoken nowhere else here, so none of its pieces is cached when the listener goes away.
NOTICE = "物业通知：本周六上午九点，小区停电检修，电梯暂停使用，请提前做好准备，谢谢配合。"
Engine = EspeakNgTts | Pyttsx3Tts


# --- measurements, made in the engine's own process -----------------------------------------


def make_engine(kind: str, *, cache_bytes: int = 32 * 1024 * 1024) -> Engine:
    engine = EspeakNgTts if kind == "espeak-ng" else Pyttsx3Tts
    return engine(voice="cmn", rate_normal=175, rate_slow=125, cache_bytes=cache_bytes)


async def speak(engine: Engine, text: str, rate: int, speed: str = "normal") -> list[bytes]:
    return [chunk async for chunk in engine.synthesize(text, sample_rate=rate, rate=speed)]


def voiced_fraction(pcm: bytes, rate: int) -> float:
    """Share of 20 ms frames louder than -40 dBFS."""
    samples = to_samples(pcm)
    size = rate // 50
    levels = [dbfs(samples[i : i + size]) for i in range(0, samples.size - size + 1, size)]
    return float(np.mean([level > -40 for level in levels]))


def disturb_espeak_rate(kind: str, wpm: int) -> None:
    """Set the process's espeak-ng speed directly, past the engine of this kind."""
    if kind == "pyttsx3":
        _Pyttsx3Voice.get().engine.setProperty("rate", wpm)
    else:
        espeak = Espeak.get()
        with espeak.lock:
            espeak.set_rate(wpm)


async def error_of(engine: Engine, text: str, rate: int, speed: str = "normal") -> str:
    try:
        chunks = await speak(engine, text, rate, speed)
    except Exception as exc:  # reported by class and message
        return f"{type(exc).__name__}: {exc}"
    return f"{len(chunks)} chunks"


async def measure(kind: str) -> dict[str, Any]:
    """Everything the tests check, for one engine kind."""
    out: dict[str, Any] = {}
    engine = make_engine(kind)
    try:
        await engine.warm_up()
        for rate in (16000, 8000):
            chunks = await speak(engine, QUESTION, rate)
            pcm = b"".join(chunks)
            out[f"question_{rate}"] = {
                "even": all(len(c) % 2 == 0 for c in chunks),
                "seconds": duration_s(pcm, rate),
                "dbfs": dbfs(to_samples(pcm)),
                "voiced": voiced_fraction(pcm, rate),
            }
            if rate == 16000:
                samples = to_samples(pcm).astype(np.float64)
                spectrum = np.abs(np.fft.rfft(samples))
                freqs = np.fft.rfftfreq(samples.size, 1 / 16000)
                out["above_4200hz"] = float(spectrum[freqs > 4200].sum() / spectrum.sum())

        out["long_normal_s"] = duration_s(b"".join(await speak(engine, LONG, 16000)), 16000)
        slow = b"".join(await speak(engine, LONG, 16000, "slow"))
        out["long_slow_s"] = duration_s(slow, 16000)

        chunks = await speak(engine, STREAMED, 16000)
        out["streamed"] = {
            "chunks": len(chunks),
            "pieces": len(split_pieces(for_speech(STREAMED))),
            "first_share": len(chunks[0]) / sum(len(c) for c in chunks),
        }

        first = b"".join(await speak(engine, PROMPT, 8000))
        hits = engine.cache.info.hits
        again = b"".join(await speak(engine, PROMPT, 8000))
        out["cache"] = {"same_audio": again == first, "hits": engine.cache.info.hits - hits}
        await speak(engine, PROMPT, 16000)  # another sample rate is another entry
        out["cache"]["hits_after_other_rate"] = engine.cache.info.hits - hits

        misses = engine.cache.info.misses
        stream = engine.synthesize(NOTICE, sample_rate=16000)
        async for _ in stream:
            break  # barge-in: the listener goes away after the first chunk
        await stream.aclose()
        await asyncio.sleep(0.2)  # anything still running on the engine's thread shows now
        out["early_stop"] = {
            "pieces_started": engine.cache.info.misses - misses,
            "pieces_in_text": len(split_pieces(for_speech(NOTICE))),
            "next_seconds": duration_s(b"".join(await speak(engine, "好的。", 16000)), 16000),
        }

        out["errors"] = {
            "speed": await error_of(engine, QUESTION, 16000, "fast"),
            "sample_rate": await error_of(engine, QUESTION, 2000),
            "nothing_to_say": await error_of(engine, "。。！", 16000),
        }
    finally:
        engine.close()

    # Texts of clearly different lengths: mixed-up clauses would show in the durations.
    texts = ["停水通知。", "一号楼明天上午停水，请提前储水。", "三号楼电梯检修。"]
    cold = make_engine(kind, cache_bytes=0)
    try:
        alone = [b"".join(await speak(cold, t, 16000)) for t in texts]
        together = await asyncio.gather(*(speak(cold, t, 16000) for t in texts))
        # espeak-ng's rate changed behind the engine's back (as a Cancel's rollback does).
        disturb_espeak_rate(kind, 300)
        out["after_rate_change_s"] = duration_s(b"".join(await speak(cold, QUESTION, 16000)), 16000)
    finally:
        cold.close()
    out["concurrent"] = [
        [duration_s(solo, 16000), duration_s(b"".join(chunks), 16000)]
        for solo, chunks in zip(alone, together, strict=True)
    ]

    configured = tts_from_settings(
        SpeechSettings(_env_file=None, tts_engine=kind, tts_rate_slow=100)
    )
    assert isinstance(configured, EspeakNgTts | Pyttsx3Tts)
    out["from_settings"] = {"class": type(configured).__name__, "slow": configured.wpm["slow"]}
    other = next(k for k in ENGINES if k != kind)
    try:
        tts_from_settings(SpeechSettings(_env_file=None, tts_engine=other))
    except TtsEngineConflict as exc:
        out["other_from_settings"] = str(exc)
    intruder = make_engine(other)
    try:
        out["other_direct"] = await error_of(intruder, QUESTION, 16000)
    finally:
        intruder.close()
    # The engine that runs here still works after the refusals.
    survivor = make_engine(kind)
    try:
        out["after_refusal_s"] = duration_s(b"".join(await speak(survivor, "好的。", 8000)), 8000)
    finally:
        survivor.close()
    return out


# --- the tests --------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=ENGINES)
def report(request: pytest.FixtureRequest) -> dict[str, Any]:
    kind: str = request.param
    done = subprocess.run(
        [sys.executable, "-m", "tests.voice.test_tts", kind],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["kind"] = kind
    return result


@pytest.mark.parametrize("rate", [16000, 8000])
def test_speech_comes_out_at_the_channels_rate(report: dict[str, Any], rate: int) -> None:
    question = report[f"question_{rate}"]
    assert question["even"]
    # 11 syllables: a plausible Mandarin length at either rate (same audio, other sample rate).
    assert 1.5 < question["seconds"] < 8.0
    assert question["dbfs"] > -35
    assert question["voiced"] > 0.3


def test_both_rates_carry_the_same_speech(report: dict[str, Any]) -> None:
    wide, narrow = report["question_16000"]["seconds"], report["question_8000"]["seconds"]
    assert narrow == pytest.approx(wide, rel=0.02)
    # Wideband audio has content above the 4 kHz telephone Nyquist limit.
    assert report["above_4200hz"] > 0.001


def test_speed_holds_whatever_espeak_ngs_rate_parameter_says(report: dict[str, Any]) -> None:
    assert report["after_rate_change_s"] == pytest.approx(
        report["question_16000"]["seconds"], rel=0.02
    )


def test_slow_speech_is_longer(report: dict[str, Any]) -> None:
    assert report["long_slow_s"] > 1.2 * report["long_normal_s"]


def test_audio_comes_piece_by_piece(report: dict[str, Any]) -> None:
    streamed = report["streamed"]
    if report["kind"] == "espeak-ng":
        # Streamed within each clause: many small chunks.
        assert streamed["chunks"] > 10
        assert streamed["first_share"] < 0.1
    else:
        # One chunk per clause, the first one out before the rest are made.
        assert streamed["chunks"] == streamed["pieces"] > 1
        assert streamed["first_share"] < 0.6


def test_repeated_prompts_come_from_the_cache(report: dict[str, Any]) -> None:
    assert report["cache"] == {"same_audio": True, "hits": 1, "hits_after_other_rate": 1}


def test_stopping_early_stops_synthesis_and_leaves_the_engine_usable(
    report: dict[str, Any],
) -> None:
    stop = report["early_stop"]
    assert stop["pieces_in_text"] > 3
    assert stop["pieces_started"] == 1
    assert 0.3 < stop["next_seconds"] < 3.0


def test_concurrent_callers_get_whole_undisturbed_speech(report: dict[str, Any]) -> None:
    for alone, together in report["concurrent"]:
        # espeak-ng varies its output by a few samples from run to run.
        assert together == pytest.approx(alone, abs=0.01)


def test_bad_requests_are_refused(report: dict[str, Any]) -> None:
    errors = report["errors"]
    assert errors["speed"].startswith("ValueError: rate must be one of")
    assert errors["sample_rate"].startswith(f"{AudioFormatError.__name__}:")
    assert errors["nothing_to_say"] == "0 chunks"


def test_engine_from_settings(report: dict[str, Any]) -> None:
    expected = {"pyttsx3": "Pyttsx3Tts", "espeak-ng": "EspeakNgTts"}[report["kind"]]
    assert report["from_settings"] == {"class": expected, "slow": 100}


def test_the_other_engine_is_refused_in_the_same_process(report: dict[str, Any]) -> None:
    assert "use one TTS_ENGINE per process" in report["other_from_settings"]
    assert report["other_direct"].startswith("TtsEngineConflict:")
    assert 0.3 < report["after_refusal_s"] < 3.0


def test_pyttsx3_is_the_default_and_unknown_engines_are_refused() -> None:
    assert SpeechSettings.model_fields["tts_engine"].default == "pyttsx3"
    with pytest.raises(ValueError, match="TTS_ENGINE"):
        tts_from_settings(SpeechSettings(_env_file=None, tts_engine="festival"))


def test_text_is_split_into_sentences_and_clauses() -> None:
    assert split_pieces("您好，请问有什么可以帮您？好的。") == [
        "您好，",
        "请问有什么可以帮您？",
        "好的。",
    ]
    assert split_pieces("好的！！……") == ["好的！！……"]
    assert split_pieces("没有标点") == ["没有标点"]
    assert split_pieces("") == []


if __name__ == "__main__":
    print(json.dumps(asyncio.run(measure(sys.argv[1]))))
