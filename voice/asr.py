"""Streaming speech recognition with Vosk: one shared model, one recogniser per stream.

Decoding is blocking C code (it releases the GIL), so it runs on a thread pool with
`max_streams` workers: at most that many streams decode at once, the rest wait their turn.
The recogniser supplies the words; `voice.endpoint.EnergyVad` supplies the timing (speech
started, trailing silence), because Vosk 0.3.45 cannot lengthen Kaldi's 0.5 s endpoint and its
partial results arrive too late for barge-in. The same detector gates decoding: stretches of
clear silence are skipped (with a pre-roll when sound comes back), which multiplies the number
of streams a machine can carry; anything loud enough to be quiet speech is decoded, so words
the level detector would miss still reach the recogniser.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Final, Literal, TypeVar

import vosk

from voice.audio import Samples, StreamResampler, check_rate, to_samples
from voice.config import SpeechSettings, get_speech_settings
from voice.endpoint import EnergyVad
from voice.models import resolve_model_path

T = TypeVar("T")

EventKind = Literal["speech_started", "partial", "final", "no_input"]

# Audio is decoded in steps of this length so that endpoints are found mid-buffer.
STEP_S: Final = 0.1
# Partial results cost a lattice search: ask for one at most this often (seconds of audio).
PARTIAL_EVERY_S: Final = 0.3
# Clear silence is not decoded (most of a call is the other side talking or nobody at all):
# decoding resumes with this much audio from before the first loud frame, and stops this long
# after the last one.
PREROLL_S: Final = 0.5
GATE_HANGOVER_S: Final = 1.0
# A turn longer than this is cut into a final (someone left the line open in a noisy room).
MAX_UTTERANCE_S: Final = 30.0
# Longest word the Chinese segmentation of grammar phrases looks up, in characters.
MAX_WORD_CHARS: Final = 6
UNK: Final = "[unk]"

_HAN: Final = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_SPACE_NEAR_HAN: Final = re.compile(rf"(?<=[{_HAN}])\s+|\s+(?=[{_HAN}])")
# Scripts whose runs without spaces may hold several words: Han, kana, Hangul syllables.
_CJK_RUN: Final = re.compile(rf"[{_HAN}\u3040-\u30ff\uac00-\ud7a3]+")


def join_words(text: str) -> str:
    """Recogniser output as people write it: no spaces next to Chinese characters, no [unk]."""
    words = [w for w in text.split() if w != UNK]
    return _SPACE_NEAR_HAN.sub("", " ".join(words))


@dataclass(frozen=True)
class AsrEvent:
    """Something the recogniser noticed: speech started, a partial or final text, no input."""

    kind: EventKind
    text: str = ""
    unknown_words: tuple[str, ...] = ()


@dataclass(frozen=True)
class Grammar:
    """A compiled phrase list: what Vosk gets, and the words the model does not know."""

    phrases: tuple[str, ...]
    unknown: tuple[str, ...]

    def to_json(self) -> str:
        """The JSON list Vosk expects; non-ASCII must stay literal (Vosk ignores \\u escapes)."""
        return json.dumps(list(self.phrases), ensure_ascii=False)


def _model_sample_rate(path: Path) -> int:
    """The rate the model's features expect (conf/mfcc.conf), Kaldi's 16 kHz by default."""
    conf = path / "conf" / "mfcc.conf"
    if conf.is_file():
        for line in conf.read_text(encoding="utf-8").splitlines():
            if line.strip().startswith("--sample-frequency="):
                return int(float(line.split("=", 1)[1]))
    return 16000


class SpeechModel:
    """A loaded Vosk model, shared by every stream; load() returns the same one per path."""

    _loaded: ClassVar[dict[Path, SpeechModel]] = {}
    _load_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, model: vosk.Model, path: Path, sample_rate: int) -> None:
        """Wrap an already loaded Vosk model; use `load` instead."""
        self._model = model
        self.path = path
        self.sample_rate = sample_rate
        self.has_unk = self.knows(UNK)

    @classmethod
    def load(cls, path: Path) -> SpeechModel:
        """The model at path, loaded once per process (a few seconds and ~100-300 MB)."""
        key = Path(path).resolve()
        with cls._load_lock:
            if key not in cls._loaded:
                vosk.SetLogLevel(-1)  # Kaldi's info lines go to stderr otherwise
                try:
                    model = vosk.Model(str(key))
                except Exception as exc:  # vosk raises a bare Exception
                    raise RuntimeError(f"Vosk could not load the model in {key}: {exc}") from exc
                cls._loaded[key] = cls(model, key, _model_sample_rate(key))
            return cls._loaded[key]

    def knows(self, word: str) -> bool:
        """True when the word is in the model's vocabulary."""
        return int(self._model.vosk_model_find_word(word)) >= 0

    def _segment(self, token: str) -> tuple[list[str], list[str]]:
        """Split a CJK run into vocabulary words, longest match first; unknown stretches apart."""
        words: list[str] = []
        unknown: list[str] = []
        stretch = ""
        i = 0
        while i < len(token):
            for size in range(min(MAX_WORD_CHARS, len(token) - i), 0, -1):
                if self.knows(token[i : i + size]):
                    words.append(token[i : i + size])
                    i += size
                    if stretch:
                        unknown.append(stretch)
                        stretch = ""
                    break
            else:
                stretch += token[i]
                i += 1
        if stretch:
            unknown.append(stretch)
        return words, unknown

    def compile_grammar(self, phrases: Sequence[str]) -> Grammar:
        """Phrases as vocabulary words; a phrase with an unknown word is left out and reported."""
        accepted: list[str] = []
        unknown: list[str] = []
        for phrase in phrases:
            words: list[str] = []
            missing: list[str] = []
            for token in phrase.split():
                if self.knows(token):
                    words.append(token)
                elif _CJK_RUN.fullmatch(token):
                    found, lost = self._segment(token)
                    words.extend(found)
                    missing.extend(lost)
                else:
                    missing.append(token)
            if missing:
                unknown.extend(w for w in missing if w not in unknown)
            elif words:
                joined = " ".join(words)
                if joined not in accepted:
                    accepted.append(joined)
        if accepted and self.has_unk:
            accepted.append(UNK)  # out-of-grammar speech becomes [unk], not a forced match
        return Grammar(tuple(accepted), tuple(unknown))

    def recognizer(self, sample_rate: int, grammar: Grammar | None) -> vosk.KaldiRecognizer:
        """A new recogniser, constrained to the grammar's phrases when one is given."""
        if grammar is not None and grammar.phrases:
            return vosk.KaldiRecognizer(self._model, float(sample_rate), grammar.to_json())
        return vosk.KaldiRecognizer(self._model, float(sample_rate))


class AsrStreamClosed(RuntimeError):
    """Audio was fed to a stream after close()."""


class AsrEngine:
    """Opens recognition streams on one shared model and decodes them on a bounded pool."""

    def __init__(
        self,
        model: SpeechModel,
        *,
        max_streams: int = 8,
        endpoint_silence_s: float = 0.9,
        no_input_timeout_s: float = 8.0,
    ) -> None:
        """An engine whose pool decodes at most max_streams streams at the same time."""
        if max_streams < 1:
            raise ValueError("max_streams must be at least 1")
        self.model = model
        self.max_streams = max_streams
        self.endpoint_silence_s = endpoint_silence_s
        self.no_input_timeout_s = no_input_timeout_s
        self._pool = ThreadPoolExecutor(max_workers=max_streams, thread_name_prefix="asr")
        self._stats_lock = threading.Lock()
        self._active = 0
        self.peak_concurrency = 0

    @classmethod
    def from_settings(cls, settings: SpeechSettings | None = None) -> AsrEngine:
        """The engine on the configured model (blocking: loads the model on first use)."""
        settings = settings or get_speech_settings()
        model = SpeechModel.load(resolve_model_path(settings))
        return cls(
            model,
            max_streams=settings.asr_max_streams,
            endpoint_silence_s=settings.asr_endpoint_silence_s,
            no_input_timeout_s=settings.asr_no_input_timeout_s,
        )

    def open_stream(
        self, *, sample_rate: int, grammar: Sequence[str] | None = None, partials: bool = True
    ) -> AsrStream:
        """A recognition stream for s16le mono audio at sample_rate (resampled as needed).

        partials=False saves the cost of partial results (about a tenth of decoding) where
        nobody shows them, e.g. on the phone.
        """
        stream = AsrStream(self, sample_rate=sample_rate, partials=partials)
        if grammar is not None:
            stream.set_grammar(grammar)
        return stream

    async def run(self, fn: Callable[[], T]) -> T:
        """Run blocking decoder work on the pool, counting how many run at once."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._counted, fn)

    def _counted(self, fn: Callable[[], T]) -> T:
        with self._stats_lock:
            self._active += 1
            self.peak_concurrency = max(self.peak_concurrency, self._active)
        try:
            return fn()
        finally:
            with self._stats_lock:
                self._active -= 1

    def close(self) -> None:
        """Stop the decoding pool (queued work is cancelled)."""
        self._pool.shutdown(wait=False, cancel_futures=True)


class AsrStream:
    """One speaker's audio in, AsrEvents out; reset/set_grammar apply before the next audio.

    Events: `speech_started` when speech begins (barge-in); `partial` while speaking; `final`
    once the trailing silence reaches endpoint_silence_s (every speech_started is followed by
    exactly one final, whose text may be empty for a cough); `no_input` after no_input_timeout_s
    of audio without speech, counted from open, reset(), the last final or the last no_input.
    Times are audio times (samples fed), not wall-clock times.
    """

    def __init__(self, engine: AsrEngine, *, sample_rate: int, partials: bool = True) -> None:
        """Use AsrEngine.open_stream."""
        self.sample_rate = check_rate(sample_rate)
        self.partials = partials
        self._engine = engine
        self._model = engine.model
        self._rate = engine.model.sample_rate
        self._resampler = StreamResampler(sample_rate, self._rate)
        self._vad = EnergyVad(self._rate)
        self._lock = threading.Lock()  # one decode at a time per stream, in order
        self._pending: deque[Callable[[], None]] = deque()
        # Created in a pool thread on first use: making one takes tens of milliseconds.
        self._rec: vosk.KaldiRecognizer | None = None
        self._grammar: Grammar | None = None
        self._samples = 0
        self._armed_at = 0.0
        self._in_speech = False
        self._speech_start = 0.0
        self._segments: list[str] = []
        self._last_partial = ""
        self._last_partial_at = 0.0
        self._closed = False
        self._gate_until = -1.0
        self._decoding = False
        self._preroll: deque[Samples] = deque(maxlen=max(1, round(PREROLL_S / STEP_S)))

    # -- public API ---------------------------------------------------------------------------

    @property
    def grammar(self) -> Grammar | None:
        """The phrase list in force, None for free speech."""
        return self._grammar

    async def feed(self, pcm: bytes) -> list[AsrEvent]:
        """Decode s16le mono PCM at the stream's rate; the events it caused, in order."""
        if self._closed:
            raise AsrStreamClosed("feed() after close()")
        samples = to_samples(pcm)
        if samples.size == 0 and not self._pending:
            return []
        return await self._engine.run(lambda: self._feed_sync(samples))

    async def finish(self) -> AsrEvent:
        """End the current utterance now (push-to-talk released): its final, possibly empty."""
        if self._closed:
            raise AsrStreamClosed("finish() after close()")
        return await self._engine.run(self._finish_sync)

    def set_grammar(self, phrases: Sequence[str] | None) -> tuple[str, ...]:
        """Constrain recognition to the phrases (None: free speech); returns unknown words.

        Phrases containing a word the model does not know are left out of the grammar; if no
        phrase is left, recognition stays free. Words are separated by spaces; a Chinese (or
        other CJK) run that is not itself a word is split into the model's words.
        """
        grammar = None if phrases is None else self._model.compile_grammar(phrases)
        if grammar is not None and not grammar.phrases:
            unknown = grammar.unknown
            grammar = None
        else:
            unknown = grammar.unknown if grammar else ()

        def swap() -> None:
            self._grammar = grammar
            self._rec = None  # the next step makes one with the new grammar
            self._decoding = False

        self._defer(swap)
        return unknown

    def reset(self) -> None:
        """Forget the current utterance and restart the no-input clock."""
        self._defer(self._reset_now)

    def close(self) -> None:
        """Release the recogniser; feeding afterwards raises AsrStreamClosed."""
        self._closed = True

        def free() -> None:
            self._rec = None

        self._defer(free)

    # -- worker side --------------------------------------------------------------------------

    def _defer(self, op: Callable[[], None]) -> None:
        """Run op now if no decode is running, else just before the next one."""
        self._pending.append(op)
        if self._lock.acquire(blocking=False):
            try:
                self._apply_pending()
            finally:
                self._lock.release()

    def _apply_pending(self) -> None:
        while self._pending:
            self._pending.popleft()()

    @property
    def _now(self) -> float:
        return self._samples / self._rate

    def _recognizer(self) -> vosk.KaldiRecognizer:
        if self._rec is None:
            self._rec = self._model.recognizer(self._rate, self._grammar)
        return self._rec

    def _feed_sync(self, samples: Samples) -> list[AsrEvent]:
        with self._lock:
            self._apply_pending()
            if self._closed:
                return []
            events: list[AsrEvent] = []
            audio = self._resampler.process(samples)
            step = int(self._rate * STEP_S)
            for start in range(0, audio.size, step):
                self._step(audio[start : start + step], events)
            self._maybe_partial(events)
            return events

    def _step(self, chunk: Samples, events: list[AsrEvent]) -> None:
        """Decode one step of audio (unless clearly silent) and apply the turn rules."""
        self._vad.process(chunk)
        self._samples += chunk.size
        now = self._now
        if self._vad.maybe_speech():
            self._gate_until = now + GATE_HANGOVER_S
        if self._in_speech or now <= self._gate_until:
            while self._preroll:
                self._decode(self._preroll.popleft(), now, events)
            self._decode(chunk, now, events)
            self._decoding = True
        else:
            self._preroll.append(chunk)
            if self._decoding:
                self._close_gate(now, events)
        if not self._in_speech and self._vad.onset():
            self._start_speech(now, events)
        if self._in_speech:
            last_voice = max(self._vad.last_voiced_s or 0.0, self._speech_start)
            silence = now - last_voice
            if (
                silence >= self._engine.endpoint_silence_s
                or now - self._speech_start >= MAX_UTTERANCE_S
            ):
                events.append(self._finalize())
        elif now - self._armed_at >= self._engine.no_input_timeout_s:
            events.append(AsrEvent("no_input"))
            self._armed_at = now

    def _decode(self, chunk: Samples, now: float, events: list[AsrEvent]) -> None:
        rec = self._recognizer()
        if rec.AcceptWaveform(chunk.tobytes()):
            # Kaldi's own endpoint (>= 0.5 s): keep the words, the turn may go on.
            text = self._text(rec.Result())
            if text:
                self._segments.append(text)
                if not self._in_speech:
                    self._start_speech(now, events)  # speech the level detector missed

    def _close_gate(self, now: float, events: list[AsrEvent]) -> None:
        """Silence again: close Kaldi's utterance; words in it were quiet speech after all."""
        self._decoding = False
        text = self._text(self._recognizer().FinalResult())
        if text and not self._in_speech:
            self._start_speech(now, events)
            self._segments.append(text)
            events.append(self._finalize())

    def _maybe_partial(self, events: list[AsrEvent]) -> None:
        """A partial result when speaking, at most every PARTIAL_EVERY_S of audio."""
        if not self.partials or not self._in_speech:
            return
        if self._now - self._last_partial_at < PARTIAL_EVERY_S:
            return
        self._last_partial_at = self._now
        raw = json.loads(self._recognizer().PartialResult()).get("partial", "")
        text = join_words(" ".join([*self._segments, raw]))
        if text and text != self._last_partial:
            self._last_partial = text
            events.append(AsrEvent("partial", text))

    def _start_speech(self, now: float, events: list[AsrEvent]) -> None:
        self._in_speech = True
        self._speech_start = now
        events.append(AsrEvent("speech_started"))

    def _finalize(self) -> AsrEvent:
        """Close the utterance: Kaldi finishes decoding; the next audio starts a new one."""
        tail = self._text(self._recognizer().FinalResult())
        text = join_words(" ".join([*self._segments, tail]))
        unknown = self._grammar.unknown if self._grammar else ()
        self._segments = []
        self._in_speech = False
        self._armed_at = self._now
        self._last_partial = ""
        self._vad.clear_speech()
        return AsrEvent("final", text, unknown)

    def _finish_sync(self) -> AsrEvent:
        with self._lock:
            self._apply_pending()
            rest = self._resampler.process(to_samples(b""), last=True)
            if rest.size:
                self._samples += rest.size
                if self._recognizer().AcceptWaveform(rest.tobytes()):
                    text = self._text(self._recognizer().Result())
                    if text:
                        self._segments.append(text)
            return self._finalize()

    def _reset_now(self) -> None:
        if self._rec is not None:
            self._rec.Reset()
        self._decoding = False
        self._segments = []
        self._in_speech = False
        self._armed_at = self._now
        self._last_partial = ""
        self._vad.clear_speech()

    @staticmethod
    def _text(result_json: str) -> str:
        return join_words(str(json.loads(result_json).get("text", "")))
