"""Speech synthesis: a swappable engine interface, and the streaming espeak-ng engine.

Text is normalised for speech (voice.speech_text) and split into sentences and clauses;
pieces already spoken (fixed prompts, repeated questions) come from an LRU cache. Two engines
speak with espeak-ng's Mandarin voice: the default, voice.pyttsx3_tts.Pyttsx3Tts (pyttsx3,
one whole clause at a time), and EspeakNgTts here (libespeak-ng directly, streamed inside each
clause). Both drive the process's one libespeak-ng, so a process uses only one of them.
"""

from __future__ import annotations

import asyncio
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final, Protocol

import numpy as np

from voice.audio import StreamResampler, check_rate, to_samples
from voice.config import SpeechSettings, get_speech_settings
from voice.espeak import Espeak
from voice.speech_text import for_speech

RATES: Final = ("normal", "slow")
# Split after these; the punctuation stays with its piece (it shapes intonation and pauses).
_PIECE_END: Final = re.compile(r"(?<=[。！？，；、,;!?\n])")
_SPEAKABLE: Final = re.compile(r"\w")


class TtsEngine(Protocol):
    """What every synthesiser offers: streamed s16le mono PCM at the rate the caller needs."""

    # Declared without `async` so that an async generator implements it; call as
    # `async for chunk in tts.synthesize(text, sample_rate=16000, rate="slow")`.
    def synthesize(
        self, text: str, *, sample_rate: int, rate: str = "normal"
    ) -> AsyncIterator[bytes]:
        """s16le mono PCM chunks at sample_rate; the first as early as possible."""
        ...

    async def warm_up(self) -> None:
        """Load voices and dictionaries now, so the first answer is not slow."""
        ...

    def close(self) -> None:
        """Release the engine (its thread, its temporary files)."""
        ...


def split_pieces(text: str) -> list[str]:
    """Sentences and clauses to synthesise one by one; pieces with nothing to say are merged."""
    pieces: list[str] = []
    carry = ""
    for part in _PIECE_END.split(text):
        carry += part
        if _SPEAKABLE.search(carry):
            pieces.append(carry.strip())
            carry = ""
    if carry.strip():
        if pieces:
            pieces[-1] += carry.strip()
        elif _SPEAKABLE.search(carry):
            pieces.append(carry.strip())
    return pieces


class TtsEngineConflict(RuntimeError):
    """A second espeak-ng based engine in a process where the other kind already runs."""


_espeak_lock = threading.Lock()
_espeak_user: str | None = None


def espeak_user() -> str | None:
    """Which engine kind ("espeak-ng" or "pyttsx3") has started libespeak-ng here, if any."""
    if _espeak_user is not None:
        return _espeak_user
    # Also notice a start that bypassed claim_espeak (Espeak.get() or pyttsx3 used directly).
    if Espeak._instance is not None:
        return "espeak-ng"
    driver = sys.modules.get("pyttsx3.drivers.espeak")
    if driver is not None and getattr(driver.EspeakDriver, "_moduleInitialized", False):
        return "pyttsx3"
    return None


def claim_espeak(kind: str) -> None:
    """Record that `kind` is about to start libespeak-ng; TtsEngineConflict for a second kind.

    The two kinds initialise the library differently (synchronous with short buffers vs
    pyttsx3's asynchronous one-second buffers) and each installs the one global synthesis
    callback: sharing a process, one steals the other's audio and pyttsx3 waits forever.
    """
    global _espeak_user
    with _espeak_lock:
        user = espeak_user()
        if user is not None and user != kind:
            raise TtsEngineConflict(
                f"TTS engine {kind!r} cannot start: {user!r} already drives libespeak-ng in "
                "this process, and the two corrupt each other's state; use one TTS_ENGINE "
                "per process"
            )
        _espeak_user = kind


@dataclass
class CacheInfo:
    """Cache counters, for tests and benchmarks."""

    hits: int = 0
    misses: int = 0
    entries: int = 0
    bytes: int = 0


CacheKey = tuple[str, int, int, str]


class PcmCache:
    """LRU of synthesised pieces, bounded in bytes, keyed by voice, rate, sample rate and text."""

    def __init__(self, max_bytes: int) -> None:
        """An empty cache holding at most max_bytes of audio; 0 disables it."""
        self.max_bytes = max_bytes
        self._items: OrderedDict[CacheKey, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self.info = CacheInfo()

    def get(self, key: CacheKey) -> bytes | None:
        """The audio for key (now most recently used), or None."""
        with self._lock:
            pcm = self._items.get(key)
            if pcm is None:
                self.info.misses += 1
                return None
            self._items.move_to_end(key)
            self.info.hits += 1
            return pcm

    def put(self, key: CacheKey, pcm: bytes) -> None:
        """Store audio, evicting the least recently used; oversized pieces are not kept."""
        if len(pcm) > self.max_bytes // 4:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.info.bytes -= len(old)
            self._items[key] = pcm
            self.info.bytes += len(pcm)
            while self.info.bytes > self.max_bytes:
                _, evicted = self._items.popitem(last=False)
                self.info.bytes -= len(evicted)
            self.info.entries = len(self._items)


class EspeakNgTts:
    """espeak-ng's Mandarin voice through libespeak-ng directly, streamed within each piece."""

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
        # espeak-ng is one global instance: one thread here, and Espeak's lock across engines.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tts")

    def _rate(self, rate: str) -> int:
        if rate not in self.wpm:
            raise ValueError(f"rate must be one of {RATES}, got {rate!r}")
        return self.wpm[rate]

    async def warm_up(self) -> None:
        """Load espeak-ng and the voice's dictionary now, not on the first caller's time."""
        async for _ in self._stream_piece("您好。", self.wpm["normal"], 16000):
            pass

    async def synthesize(
        self, text: str, *, sample_rate: int, rate: str = "normal"
    ) -> AsyncGenerator[bytes, None]:
        """s16le mono PCM chunks at sample_rate; cached pieces come back whole.

        Pieces are made lazily: leaving the loop early (barge-in) synthesises nothing more.
        """
        check_rate(sample_rate)
        wpm = self._rate(rate)
        for piece in split_pieces(for_speech(text)):
            key: CacheKey = (self.voice, wpm, sample_rate, piece)
            cached = self.cache.get(key)
            if cached is not None:
                yield cached
                continue
            chunks: list[bytes] = []
            async for chunk in self._stream_piece(piece, wpm, sample_rate):
                chunks.append(chunk)
                yield chunk
            self.cache.put(key, b"".join(chunks))

    async def _stream_piece(self, piece: str, wpm: int, sample_rate: int) -> AsyncIterator[bytes]:
        """One piece synthesised on the espeak thread, its chunks relayed as they come."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()
        stop = threading.Event()

        def put(item: bytes | BaseException | None) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        def job() -> None:
            try:
                claim_espeak("espeak-ng")
                engine = Espeak.get()
                resampler = StreamResampler(engine.sample_rate, sample_rate)

                def sink(data: bytes) -> bool:
                    if stop.is_set():
                        return False  # the listener went away (barge-in): stop synthesising
                    out = resampler.process(to_samples(data))
                    if out.size:
                        put(out.tobytes())
                    return True

                with engine.lock:
                    engine.set_voice(self.voice)
                    engine.set_rate(wpm)
                    engine.synth(piece, sink)
                rest = resampler.process(np.zeros(0, dtype=np.int16), last=True)
                if rest.size and not stop.is_set():
                    put(rest.tobytes())
                put(None)
            except BaseException as exc:  # relayed to the consumer, raised there
                put(exc)

        self._pool.submit(job)
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()

    def close(self) -> None:
        """Stop the synthesis thread (espeak-ng itself stays loaded for the process)."""
        self._pool.shutdown(wait=False, cancel_futures=True)


ENGINES: Final = ("pyttsx3", "espeak-ng")


def tts_from_settings(settings: SpeechSettings | None = None) -> TtsEngine:
    """The configured synthesiser (call `warm_up()` on it at start-up if it has one).

    TtsEngineConflict when the process already runs the other espeak-ng based engine.
    """
    settings = settings or get_speech_settings()
    kind = settings.tts_engine
    if kind not in ENGINES:
        raise ValueError(f"TTS_ENGINE must be one of {ENGINES}, got {kind!r}")
    user = espeak_user()
    if user is not None and user != kind:
        raise TtsEngineConflict(
            f"TTS_ENGINE={kind} refused: this process already runs the {user!r} engine, and "
            "both drive the one libespeak-ng; use one TTS_ENGINE per process"
        )
    # Imported here: voice.pyttsx3_tts builds on this module (and pyttsx3 loads only if used).
    from voice.pyttsx3_tts import Pyttsx3Tts

    engine: type[EspeakNgTts] | type[Pyttsx3Tts] = (
        EspeakNgTts if kind == "espeak-ng" else Pyttsx3Tts
    )
    return engine(
        voice=settings.tts_voice,
        rate_normal=settings.tts_rate_normal,
        rate_slow=settings.tts_rate_slow,
        cache_bytes=settings.tts_cache_bytes,
    )
