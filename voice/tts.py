"""Speech synthesis: a swappable engine interface and the default espeak-ng Mandarin engine.

Text is normalised for speech (voice.speech_text), split into sentences and clauses, and each
piece is synthesised as a stream: the first audio leaves while the rest is still being made.
Pieces already spoken (fixed prompts, repeated questions) come from an LRU cache.
"""

from __future__ import annotations

import asyncio
import re
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
    """espeak-ng's Mandarin voice (the voice pyttsx3 drives on Linux), streamed piece by piece."""

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


# The voice contract's name for the default engine: pyttsx3's espeak driver cannot stream
# (see voice/espeak.py), so the default speaks through libespeak-ng directly.
Pyttsx3Tts = EspeakNgTts

ENGINES: Final = ("espeak-ng", "pyttsx3")


def tts_from_settings(settings: SpeechSettings | None = None) -> TtsEngine:
    """The configured synthesiser (call `warm_up()` on it at start-up if it has one)."""
    settings = settings or get_speech_settings()
    if settings.tts_engine not in ENGINES:
        raise ValueError(f"TTS_ENGINE must be one of {ENGINES}, got {settings.tts_engine!r}")
    return EspeakNgTts(
        voice=settings.tts_voice,
        rate_normal=settings.tts_rate_normal,
        rate_slow=settings.tts_rate_slow,
        cache_bytes=settings.tts_cache_bytes,
    )
