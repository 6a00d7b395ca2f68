"""The default synthesiser: pyttsx3 driving espeak-ng's Mandarin voice, one clause at a time.

pyttsx3 only hands out whole utterances (save_to_file + runAndWait writes a WAV file), so the
text is split into sentences and clauses and each one is rendered, read back, resampled to the
caller's rate and yielded as soon as it exists. espeak-ng renders a clause in ~10 ms, so the
first audio still leaves quickly; voice.tts.EspeakNgTts streams inside a clause instead.

pyttsx3 keeps global state (one Engine per driver, one espeak-ng instance per process, whose
synthesis callback is a single global) and is not thread-safe: each engine runs it on its own
worker thread, and a process-wide lock lets one clause through at a time.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from collections.abc import AsyncGenerator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

from voice.audio import check_rate, read_wav, resample
from voice.speech_text import for_speech
from voice.tts import RATES, CacheKey, PcmCache, TtsEngine, claim_espeak, split_pieces

# The driver's event loop polls every 10 ms; this only guards against a lost end-of-utterance.
_FINISH_TIMEOUT_S: Final = 30.0
# espeak-ng's command queue empties within a millisecond once it has nothing to synthesise.
_IDLE_TIMEOUT_S: Final = 2.0


class Pyttsx3Error(RuntimeError):
    """pyttsx3 failed to render a clause (bad voice, no audio, no end of utterance)."""


def _quiet(*_args: object, **_kwargs: object) -> None:
    """Stands in for print() inside pyttsx3's espeak driver only."""


def _at_speed(text: str, wpm: int) -> str:
    """The text led by espeak-ng's embedded speed command (Ctrl-A, words per minute, S).

    The speed travels inside the synthesis command itself. pyttsx3's rate property is a
    separate command in espeak-ng's queue, which a Cancel (pyttsx3 sends one whenever espeak-ng
    looks busy) drops or rolls back to saved parameters: under load whole clauses came out at
    pyttsx3's default 200 words per minute.
    """
    # A Ctrl-A inside the text would start a command of its own.
    return f"\x01{wpm}S{text.replace(chr(1), '')}"


class _Pyttsx3Voice:
    """The process's one pyttsx3 espeak engine; use every method under `lock`."""

    _instance: _Pyttsx3Voice | None = None
    _instance_lock = threading.Lock()

    def __init__(self) -> None:
        """Start pyttsx3's espeak driver; use `_Pyttsx3Voice.get()`."""
        claim_espeak("pyttsx3")
        import pyttsx3
        import pyttsx3.drivers._espeak as espeak_binding
        import pyttsx3.drivers.espeak as driver

        # The driver prints "Audio saved to ..." for every file, from espeak-ng's own thread.
        # Shadowing print in that module only silences it without swapping sys.stdout, which
        # would swallow every other thread's output too.
        driver.print = _quiet
        self.engine: Any = pyttsx3.init("espeak")
        self._espeak: Any = espeak_binding
        self.lock = threading.Lock()
        self._finished = threading.Event()
        self._errors: list[BaseException] = []
        self.engine.connect("finished-utterance", self._on_finished)
        self.engine.connect("error", self._on_error)
        self._voice: str | None = None

    @classmethod
    def get(cls) -> _Pyttsx3Voice:
        """The one instance (pyttsx3 keeps one espeak engine per process anyway)."""
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def _on_finished(self, **_event: object) -> None:
        self._finished.set()

    def _on_error(self, *, exception: BaseException, **_event: object) -> None:
        self._errors.append(exception)

    def _wait_idle(self) -> None:
        """Wait until espeak-ng's command queue (its own thread) has run everything queued.

        pyttsx3 initialises espeak-ng asynchronously: setProperty only queues the change, and
        runAndWait begins with a stop() that cancels whatever is still queued, so without this
        wait a new voice's settings are dropped (and espeak-ng falls back to saved parameters).
        """
        deadline = time.monotonic() + _IDLE_TIMEOUT_S
        while self._espeak.IsPlaying():
            if time.monotonic() > deadline:
                raise Pyttsx3Error("espeak-ng stayed busy; pyttsx3 cannot start a new clause")
            time.sleep(0.0005)

    def render(self, text: str, *, voice: str, wpm: int, path: Path) -> tuple[bytes, int]:
        """One utterance as (s16le mono PCM, sample rate), through a WAV file at path."""
        self._finished.clear()
        self._errors.clear()
        if voice != self._voice:
            self.engine.setProperty("voice", voice)
            self._voice = voice
        self._wait_idle()
        # save_to_file, never say(): say() plays through `aplay` on the server's speakers.
        self.engine.save_to_file(_at_speed(text, wpm), str(path))
        self.engine.runAndWait()
        # runAndWait can return before espeak-ng (on its own thread) finished the file: the
        # driver's first loop ends early. Its end-of-utterance notice comes after the write.
        finished = self._finished.wait(_FINISH_TIMEOUT_S)
        self._wait_idle()
        if self._errors:
            self._voice = None
            raise Pyttsx3Error(f"pyttsx3 failed: {self._errors[0]}") from self._errors[0]
        if not finished or not path.exists():
            raise Pyttsx3Error(f"pyttsx3 produced no audio for {text!r}")
        try:
            return read_wav(path)
        finally:
            path.unlink(missing_ok=True)


class Pyttsx3Tts(TtsEngine):
    """pyttsx3 over espeak-ng's Mandarin voice, yielded clause by clause (the default engine)."""

    def __init__(
        self,
        *,
        voice: str = "cmn",
        rate_normal: int = 175,
        rate_slow: int = 125,
        cache_bytes: int = 32 * 1024 * 1024,
    ) -> None:
        """An engine speaking with the espeak-ng voice at the given words-per-minute rates."""
        self.voice = voice
        self.wpm = {"normal": rate_normal, "slow": rate_slow}
        self.cache = PcmCache(cache_bytes)
        # Clauses rendered (cache misses that reached pyttsx3), for tests and benchmarks.
        self.rendered = 0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pyttsx3")
        # Made on the worker thread at first use: no side effects in the constructor.
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def _rate(self, rate: str) -> int:
        if rate not in self.wpm:
            raise ValueError(f"rate must be one of {RATES}, got {rate!r}")
        return self.wpm[rate]

    def _render(self, piece: str, wpm: int, sample_rate: int) -> bytes:
        """One clause at sample_rate (runs on the worker thread)."""
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="linli-pyttsx3-")
        folder = Path(self._tmp.name)
        # A missing folder would make the driver fail inside espeak-ng's callback and hang.
        folder.mkdir(parents=True, exist_ok=True)
        engine = _Pyttsx3Voice.get()
        with engine.lock:
            pcm, source_rate = engine.render(
                piece, voice=self.voice, wpm=wpm, path=folder / "clause.wav"
            )
        self.rendered += 1
        return resample(pcm, source_rate, sample_rate)

    def _render_cached(self, key: CacheKey) -> bytes:
        """Render a clause and keep it, even if its listener has gone meanwhile."""
        _voice, wpm, sample_rate, piece = key
        pcm = self._render(piece, wpm, sample_rate)
        self.cache.put(key, pcm)
        return pcm

    async def warm_up(self) -> None:
        """Start pyttsx3 and load the voice's dictionary now, not on the first caller's time."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, self._render, "您好。", self.wpm["normal"], 16000)

    async def synthesize(
        self, text: str, *, sample_rate: int, rate: str = "normal"
    ) -> AsyncGenerator[bytes, None]:
        """s16le mono PCM at sample_rate, one chunk per clause, each as soon as it exists.

        Clauses are made lazily: leaving the loop early (barge-in) stops after the clause
        being rendered.
        """
        check_rate(sample_rate)
        wpm = self._rate(rate)
        loop = asyncio.get_running_loop()
        for piece in split_pieces(for_speech(text)):
            key: CacheKey = (self.voice, wpm, sample_rate, piece)
            pcm = self.cache.get(key)
            if pcm is None:
                pcm = await loop.run_in_executor(self._pool, self._render_cached, key)
            if pcm:
                yield pcm

    def close(self) -> None:
        """Stop the worker thread once its clause is done, then remove the temporary files."""
        # Waiting (one clause, tens of ms) matters: the driver hangs if its file vanishes.
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
