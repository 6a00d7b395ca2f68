"""One spoken conversation: audio in → speech recognition → Rasa → replies → synthesized audio out.

The session is transport-free: the web gateway and the phone line feed it PCM and read its
events. It keeps what a spoken conversation needs beyond the dialogue engine itself:

- barge-in: speech (or a press of the talk button) while the bot is still talking stops the
  playback at once;
- grammar mode: while the bot waits for a yes/no, a choice or digits, recognition is
  constrained to the expected phrases, and a recognised label is sent as its button payload;
- no-input: silence after a question repeats the question; after `max_reprompts` repeats the
  session offers a person (a "yes" then asks the dialogue for a call-back);
- speech rate: once a reply says "slow", every later answer is spoken slowly;
- emergencies at any moment, also when the dialogue engine is down (see `AlertRaiser`).

Dialogue turns run one at a time, in order; emergencies never wait behind them.
"""

import asyncio
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from channels.rasa_client import RASA_DOWN_TEXT, BotReply, RasaClient, RasaUnavailable
from voice.asr import AsrEngine, AsrEvent, AsrStream
from voice.tts import TtsEngine

logger = logging.getLogger(__name__)

# Metadata naming an emergency press; actions/core.py keys its alert by it (see alert_key).
ALERT_PRESS_KEY = "alert_press"

# --- what the session says by itself -------------------------------------------------------
NOT_HEARD = "对不起，我没听清。"
ASK_AGAIN = "您要办什么事，直接跟我说就行。"
OFFER_PERSON = "我一直没听到您说话。要不要请工作人员给您打电话？请说“是”或者“不是”。"
OFFER_DECLINED = "好的。您要办什么事，直接跟我说就行。"
ASR_UNAVAILABLE = "语音识别暂不可用，请打字，或者按“一键呼叫”。"
TTS_FAILED = "声音播放出了问题，请看屏幕上的文字。"
ALERT_FAILED = "紧急呼叫没有发出去！请马上拨打120或110。"
ALERT_SENT_DIRECTLY = "已经通知社区工作人员，马上有人联系您。情况危急请立即拨打120或119。"
NOTHING_TO_REPEAT = "我们还没开始说话呢。您要办什么事？"

# An emergency waits this long for the dialogue before raising the alert directly.
EMERGENCY_DIALOGUE_TIMEOUT_S = 6.0

GREET = "/greet"
EMERGENCY = "/emergency"
HANDOFF = "/human_handoff"

# --- grammar mode vocabulary ----------------------------------------------------------------
YES_WORDS = ("是", "是的", "对", "对的", "好", "好的", "要", "行", "可以", "嗯")
NO_WORDS = ("不是", "不", "不对", "不要", "不用", "不行", "没有", "算了")
DIGIT_WORDS = ("零", "幺", "一", "二", "两", "三", "四", "五", "六", "七", "八", "九", "十", "百")
# Words that work in any question (the dialogue handles them everywhere): grammar mode hears
# nothing outside its phrases, so emergencies and requests for a person must always be in.
ANYTIME_WORDS = (
    "救命", "紧急", "着火", "摔倒", "找人工", "人工", "重复", "再说一遍", "慢一点", "帮助",
)
_FILLERS = re.compile(r"[\s，。,.!！?？、~～…啊呀吧呢嘛哦噢]+")

YES_NO_OPTIONS = (
    {"key": "1", "label": "是", "payload": "/affirm"},
    {"key": "2", "label": "不是", "payload": "/deny"},
)


# --- events ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Heard:
    """What the recogniser heard: partial while speaking, final at the end of speech."""

    text: str
    final: bool


@dataclass(frozen=True)
class BotSaid:
    """A bot message, shown as text; its speech follows as AudioStart, Audio…, AudioEnd."""

    reply: BotReply


@dataclass(frozen=True)
class AudioStart:
    """Speech of `text` begins; Audio chunks follow."""

    text: str
    sample_rate: int


@dataclass(frozen=True)
class Audio:
    """A chunk of synthesized speech: s16le mono PCM at sample_rate."""

    pcm: bytes
    sample_rate: int


@dataclass(frozen=True)
class AudioEnd:
    """The speech begun by the latest AudioStart is complete."""


@dataclass(frozen=True)
class StopPlayback:
    """Stop playing at once and drop queued audio (barge-in)."""


@dataclass(frozen=True)
class Reprompt:
    """The session speaks on its own: a question repeated after silence, or a person offered."""

    text: str
    expect: dict[str, Any] | None = None


@dataclass(frozen=True)
class SessionError:
    """Something went wrong that the user should know; the session goes on."""

    text_zh: str


SessionEvent = (
    Heard | BotSaid | AudioStart | Audio | AudioEnd | StopPlayback | Reprompt | SessionError
)

# Raises an emergency alert without the dialogue engine; returns what to tell the user.
AlertRaiser = Callable[[str, str | None], Awaitable[str]]


@dataclass
class TurnTimes:
    """Monotonic times of the latest spoken turn (for benchmarks and logs)."""

    end_of_speech: float | None = None
    first_audio: float | None = None
    history: list[tuple[float, float]] = field(default_factory=list)


def _clean(text: str) -> str:
    return _FILLERS.sub("", text)


def answer_payload(expect: dict[str, Any] | None, text: str) -> str | None:
    """The button payload a recognised answer stands for ("是" → "/affirm"), if any.

    Only whole answers count: "是" or "报修" is the option, "我要报修的是水管" is left to the
    dialogue engine's understanding.
    """
    if not expect:
        return None
    said = _clean(text)
    if not said:
        return None
    options = [o for o in expect.get("options") or [] if isinstance(o, dict)]
    for option in options:
        names = (_clean(str(option.get("label", ""))), str(option.get("key", "")))
        if said in names or text.strip() == option.get("payload"):
            return str(option.get("payload") or "") or None
    if expect.get("type") == "yes_no":
        payloads = {str(o.get("key")): str(o.get("payload")) for o in options}
        if said in NO_WORDS:
            return payloads.get("2", "/deny")
        if said in YES_WORDS:
            return payloads.get("1", "/affirm")
    return None


def grammar_for(expect: dict[str, Any] | None) -> list[str] | None:
    """The phrases to constrain recognition to while `expect` is pending; None = free speech."""
    if not expect:
        return None
    kind = expect.get("type")
    labels = [str(o.get("label", "")) for o in expect.get("options") or [] if isinstance(o, dict)]
    if kind == "yes_no":
        phrases = [*labels, *YES_WORDS, *NO_WORDS]
    elif kind == "choice":
        phrases = labels
    elif kind in ("digits", "number"):
        phrases = list(DIGIT_WORDS)
    else:
        return None
    # Keep the words that work anywhere (repeat, slower, a person, help), without duplicates.
    return list(dict.fromkeys(p for p in [*phrases, *ANYTIME_WORDS] if p))


class VoiceSession:
    """A spoken conversation of one sender with the dialogue engine."""

    def __init__(
        self,
        *,
        sender_id: str,
        rasa: RasaClient,
        asr: AsrEngine | None,
        tts: TtsEngine,
        sample_rate: int,
        input_channel: str,
        default_rate: str = "normal",
        max_reprompts: int = 2,
        raise_alert: AlertRaiser | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.sender_id = sender_id
        self.sample_rate = sample_rate
        self.input_channel = input_channel
        self.times = TurnTimes()
        self._rasa = rasa
        self._tts = tts
        self._rate = default_rate
        self._max_reprompts = max_reprompts
        self._raise_alert = raise_alert
        self._metadata = metadata or {}
        self._stream: AsrStream | None = (
            asr.open_stream(sample_rate=sample_rate) if asr is not None else None
        )
        self._events: asyncio.Queue[SessionEvent | None] = asyncio.Queue()
        self._turn_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._speaker: asyncio.Task[None] | None = None
        self._playing_until = 0.0
        self._reset_after_playback = False
        self._last_turn: list[BotReply] = []
        self._expect: dict[str, Any] | None = None
        self._grammar: list[str] | None = None  # what the stream was last told
        self._grammar_lock = asyncio.Lock()
        self._no_inputs = 0
        self._offer_pending = False
        self._asr_error_told = False
        self._answered_since_press = False
        self._closed = False

    # --- public API -------------------------------------------------------------------------
    @property
    def expect(self) -> dict[str, Any] | None:
        """The expected answer of the bot's latest question (None when it asked nothing)."""
        return self._expect

    @property
    def speech_rate(self) -> str:
        """The rate answers are spoken at: "normal", or "slow" once the user asked for it."""
        return self._rate

    def expect_constrains_speech(self) -> bool:
        """Whether recognition is limited to the expected answers right now (grammar mode)."""
        return self._stream is not None and self._stream.grammar is not None

    @property
    def asr_available(self) -> bool:
        """Whether speech can be recognised (a speech model was loaded)."""
        return self._stream is not None

    @property
    def playing(self) -> bool:
        """Whether the bot is (as far as the session can tell) still talking."""
        speaking = self._speaker is not None and not self._speaker.done()
        return speaking or time.monotonic() < self._playing_until

    async def start(self) -> None:
        """Open the conversation: the bot speaks first."""
        await self._turn(GREET)

    async def feed_audio(self, pcm: bytes) -> None:
        """Recognise a chunk of the user's audio (s16le mono at the session's rate)."""
        if self._closed:
            return
        if self._stream is None:
            if not self._asr_error_told:
                self._asr_error_told = True
                self._emit(SessionError(ASR_UNAVAILABLE))
            return
        if self._reset_after_playback and not self.playing:
            # The silence timer starts when the bot has finished its question, not before.
            self._reset_after_playback = False
            self._stream.reset()
        for event in await self._stream.feed(pcm):
            self._on_asr(event)

    async def begin_speech(self) -> None:
        """The user pressed the talk button: stop the bot talking and listen afresh."""
        self.stop_playback()
        self._reset_after_playback = False
        self._answered_since_press = False
        if self._stream is not None:
            self._stream.reset()

    async def end_speech(self) -> None:
        """The user released the talk button: what was said so far is the answer."""
        if self._stream is None:
            return
        event = await self._stream.finish()
        self._stream.reset()
        if event.text:
            self._on_asr(event)
        elif not self._answered_since_press:
            # Nothing at all since the press (a pause may already have ended the answer).
            self._spawn(self._on_no_input(NOT_HEARD))

    async def send_text(self, text: str) -> None:
        """Answer with typed text or a button payload ("/affirm"), as a keypad or a tap does."""
        self.stop_playback()
        await self._answer(text)

    async def repeat_last(self) -> None:
        """Say the bot's latest turn again (without asking the dialogue engine)."""
        self.stop_playback()
        if not self._last_turn:
            self._say_local(NOTHING_TO_REPEAT)
            return
        for reply in self._last_turn:
            self._emit(BotSaid(reply))
        self._speak([r.text for r in self._last_turn])

    async def emergency(self, press_id: str | None = None) -> None:
        """Raise an emergency now: through the dialogue, or directly when it cannot answer."""
        self.stop_playback()
        self._offer_pending = False
        # One press, one alert: the dialogue and the direct path use the same idempotency key.
        press = press_id or uuid.uuid4().hex
        try:
            # Not behind the turn lock: an emergency never waits for a slow turn.
            replies = await asyncio.wait_for(
                self._rasa.send(
                    self.sender_id, EMERGENCY, input_channel=self.input_channel,
                    metadata={**self._metadata, ALERT_PRESS_KEY: press},
                ),
                EMERGENCY_DIALOGUE_TIMEOUT_S,
            )
        except (RasaUnavailable, TimeoutError) as error:
            # A slow dialogue may still raise the alert too: the shared key keeps it to one.
            logger.warning("emergency: dialogue unavailable (%r); alerting directly", error)
            replies = []
        if any(r.text for r in replies):
            self._on_replies(replies)
            return
        await self._alert_directly(press)

    def playback_finished(self) -> None:
        """The listener has heard everything sent so far (the page or phone says so)."""
        if self._speaker is None or self._speaker.done():
            self._playing_until = 0.0

    def stop_playback(self) -> bool:
        """Stop the bot talking (barge-in); whether it was talking."""
        was_playing = self.playing
        if self._speaker is not None and not self._speaker.done():
            self._speaker.cancel()
        self._speaker = None
        self._playing_until = 0.0
        if was_playing:
            self._emit(StopPlayback())
        return was_playing

    async def events(self) -> AsyncIterator[SessionEvent]:
        """What the session does, in order, until it is closed."""
        while (event := await self._events.get()) is not None:
            yield event

    async def wait_idle(self) -> None:
        """Wait until every pending turn and speech has finished (tests and benchmarks)."""
        while pending := [t for t in (*self._tasks, self._speaker) if t and not t.done()]:
            await asyncio.gather(*pending, return_exceptions=True)

    async def close(self) -> None:
        """End the session: stop talking, drop pending turns, free the recogniser."""
        if self._closed:
            return
        self._closed = True
        tasks = [t for t in (*self._tasks, self._speaker) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._events.put_nowait(None)
        if self._stream is not None:
            # Freeing a Kaldi decoder takes tens of ms: not on the loop other sessions share.
            await asyncio.to_thread(self._stream.close)

    # --- recognition ------------------------------------------------------------------------
    def _on_asr(self, event: AsrEvent) -> None:
        if event.kind == "speech_started":
            self.stop_playback()
        elif event.kind == "partial":
            if event.text:
                self._emit(Heard(event.text, final=False))
        elif event.kind == "final":
            if not event.text and self.expect_constrains_speech():
                # Speech outside the expected answers comes back empty in grammar mode.
                self._answered_since_press = True
                self._spawn(self._on_no_input(NOT_HEARD))
            elif event.text:
                self.times.end_of_speech = time.monotonic()
                self.times.first_audio = None
                self._no_inputs = 0
                self._answered_since_press = True
                self._emit(Heard(event.text, final=True))
                self._spawn(self._answer(event.text))
        elif event.kind == "no_input" and not self.playing and not self._turn_lock.locked():
            self._spawn(self._on_no_input(""))

    async def _on_no_input(self, lead: str) -> None:
        """Silence: say the question again; after max_reprompts offer a person, then wait."""
        self._no_inputs += 1
        if self._no_inputs <= self._max_reprompts:
            question = "".join(r.text for r in self._last_turn if r.expect) or ASK_AGAIN
            self._say_local(lead + question, reprompt=True)
        elif self._no_inputs == self._max_reprompts + 1:
            self._offer_pending = True
            self._set_expect({"type": "yes_no", "options": [dict(o) for o in YES_NO_OPTIONS]})
            self._say_local(OFFER_PERSON, reprompt=True)
        # Later silences: the offer stands; nagging an elderly person helps no one.

    # --- dialogue turns ---------------------------------------------------------------------
    async def _answer(self, text: str) -> None:
        """Send what the user said, as a button payload when it is a whole expected answer."""
        if self._offer_pending:
            self._offer_pending = False
            payload = answer_payload(self._expect, text)
            if payload == "/affirm":
                await self._turn(HANDOFF)
                return
            if payload == "/deny":
                self._set_expect(None)
                self._say_local(OFFER_DECLINED)
                return
        payload = answer_payload(self._expect, text)
        await self._turn(payload or text)

    async def _turn(self, message: str) -> None:
        async with self._turn_lock:
            try:
                replies = await self._rasa.send(
                    self.sender_id, message, input_channel=self.input_channel,
                    metadata=self._metadata,
                )
            except RasaUnavailable as error:
                logger.warning("dialogue unavailable for a %s turn: %s", self.input_channel, error)
                replies = [BotReply(text=RASA_DOWN_TEXT)]
            if not self._closed:
                self._on_replies(replies)

    def _on_replies(self, replies: Sequence[BotReply]) -> None:
        spoken = [r for r in replies if r.text]
        if not spoken:
            return
        if any(r.speech_rate == "slow" for r in spoken):
            self._rate = "slow"  # for the rest of the session
        self._last_turn = spoken
        self._no_inputs = 0
        self._set_expect(next((r.expect for r in reversed(spoken) if r.expect), None))
        for reply in spoken:
            self._emit(BotSaid(reply))
        self._speak([r.text for r in spoken])

    def _set_expect(self, expect: dict[str, Any] | None) -> None:
        self._expect = expect
        phrases = grammar_for(expect)
        if self._stream is None or phrases == self._grammar:
            return
        self._grammar = phrases
        self._spawn(self._apply_grammar(self._stream, phrases))

    async def _apply_grammar(self, stream: AsrStream, phrases: list[str] | None) -> None:
        # Swapping recognisers costs tens of ms (Kaldi frees one decoder and builds another):
        # off the event loop, so the answer's speech is not held up. In order, one at a time.
        async with self._grammar_lock:
            unknown = await asyncio.to_thread(stream.set_grammar, phrases)
        if unknown:
            logger.info("grammar words unknown to the speech model: %s", "、".join(unknown))

    def _say_local(self, text: str, *, reprompt: bool = False) -> None:
        if reprompt:
            self._emit(Reprompt(text, self._expect))
        else:
            self._emit(BotSaid(BotReply(text=text, speech_rate=self._rate)))
        self._speak([text])

    async def _alert_directly(self, press_id: str | None) -> None:
        if self._raise_alert is None:
            self._emit(SessionError(ALERT_FAILED))
            return
        try:
            message = await self._raise_alert(self.sender_id, press_id)
        except Exception:
            logger.exception("raising an alert directly failed")
            self._emit(SessionError(ALERT_FAILED))
            return
        self._say_local(message or ALERT_SENT_DIRECTLY)

    # --- speech -----------------------------------------------------------------------------
    def _speak(self, texts: list[str]) -> None:
        """Speak the texts in order, replacing whatever the bot was still saying."""
        self.stop_playback()
        self._speaker = asyncio.create_task(self._speak_all(texts))

    async def _speak_all(self, texts: list[str]) -> None:
        rate = self._rate
        try:
            for text in texts:
                self._emit(AudioStart(text, self.sample_rate))
                # The engine reads numbers, dates and rooms the spoken way (voice.speech_text).
                stream = self._tts.synthesize(text, sample_rate=self.sample_rate, rate=rate)
                try:
                    async for chunk in stream:
                        if chunk:
                            self._on_audio(chunk)
                finally:
                    # Closed at once on barge-in, so the engine stops synthesising.
                    close = getattr(stream, "aclose", None)
                    if close is not None:
                        await close()
                self._emit(AudioEnd())
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("speech synthesis failed")
            self._emit(SessionError(TTS_FAILED))
        finally:
            self._reset_after_playback = True

    def _on_audio(self, chunk: bytes) -> None:
        now = time.monotonic()
        if self.times.end_of_speech is not None and self.times.first_audio is None:
            self.times.first_audio = now
            self.times.history.append((self.times.end_of_speech, now))
        # The listener hears chunks back to back: extend the estimated end of playback.
        self._playing_until = max(now, self._playing_until) + len(chunk) / 2 / self.sample_rate
        self._emit(Audio(chunk, self.sample_rate))

    # --- plumbing ---------------------------------------------------------------------------
    def _emit(self, event: SessionEvent) -> None:
        if not self._closed:
            self._events.put_nowait(event)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.error("a voice turn failed", exc_info=error)
            self._emit(SessionError("出了点问题，请再说一遍。"))
