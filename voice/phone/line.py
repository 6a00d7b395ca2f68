"""The phone line: one voice session per call, with the keypad, transfers and the call log.

Per call: the caller ID becomes the dialogue sender ``phone:<E.164>`` (so registered residents
are recognised); a consent announcement precedes any recording; the bot speaks first; caller
audio (8 kHz) goes to the speech recogniser, replies come back as slow speech; keys work
wherever the dialogue expects yes/no, a choice or a number; ``0`` asks for a person and, when
an operator is configured, the call is transferred (REFER) once the call-back request stands.

Nothing is said while a turn is with the dialogue engine: an emergency's alert goes out
through the backend before the caller hears anything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from channels.rasa_client import BotReply, RasaClient, RasaUnavailable
from voice.asr import AsrEngine, AsrStream
from voice.phone.call import PhoneCall
from voice.phone.calllog import call_event
from voice.phone.config import PhoneSettings
from voice.phone.dialogue import is_goodbye, is_handoff
from voice.phone.keypad import (
    HANDOFF,
    Handoff,
    KeyAction,
    Keypad,
    NoMatch,
    Pending,
    Repeat,
    Send,
)
from voice.phone.media import SAMPLE_RATE
from voice.session import (
    ALERT_FAILED,
    ASR_UNAVAILABLE,
    TTS_FAILED,
    AlertRaiser,
    Audio,
    AudioEnd,
    AudioStart,
    BotSaid,
    Heard,
    Reprompt,
    SessionError,
    StopPlayback,
    VoiceSession,
)
from voice.tts import TtsEngine

logger = logging.getLogger(__name__)

INPUT_CHANNEL = "phone"
SESSION_START = "/session_start"
RECORDING_NOTICE = "本次通话会录音。"
TRANSFERRING = "正在为您转接工作人员，请稍等。"
TRANSFER_FAILED = "暂时没能接通工作人员。您的回电请求已经记下了，工作人员会给您回电话。"
SILENCE_GOODBYE = "好像没有声音了。需要帮助请再打过来。再见。"
TOO_MANY_WRONG_KEYS = "按键好像不太方便。"
# Caller audio is handed to the recogniser in 100 ms pieces (five 20 ms frames).
FEED_FRAMES = 5
FEED_MAX_FRAMES = 50
MEDIA_TIMEOUT_S = 10.0

# Optional observer for tests and benchmarks: (call, what, detail).
Observer = Callable[[PhoneCall, str, object], None]


@dataclass
class CallStats:
    """What one call did, for the end-of-call log line."""

    turns: int = 0
    keys: int = 0
    wrong_keys: int = 0
    transfer: str = "none"
    first_audio_at: float | None = None  # perf_counter of the first frame heard
    replies: list[str] = field(default_factory=list)


class PhoneAsr(AsrEngine):
    """The recogniser of a phone worker: no partial results, nobody sees them on a phone
    (a tenth less decoding)."""

    def open_stream(
        self, *, sample_rate: int, grammar: Sequence[str] | None = None, partials: bool = False
    ) -> AsrStream:
        """A stream without partial results."""
        return super().open_stream(sample_rate=sample_rate, grammar=grammar, partials=False)


def sender_for(call: PhoneCall) -> str:
    """The dialogue sender: ``phone:+86…`` for a number, else a one-off anonymous id."""
    if call.caller:
        return f"phone:{call.caller}"
    return f"phone:anonymous-{uuid.uuid4().hex[:12]}"


class PhoneLine:
    """Runs a voice session for each call a worker answers."""

    def __init__(
        self,
        settings: PhoneSettings,
        *,
        rasa: RasaClient,
        asr: AsrEngine | None,
        tts: TtsEngine,
        raise_alert: AlertRaiser | None = None,
        silence_s: float = 8.0,
        observer: Observer | None = None,
    ) -> None:
        self.settings = settings
        self.rasa = rasa
        self.asr = asr
        self.tts = tts
        self.raise_alert = raise_alert
        self.silence_s = silence_s
        self.observer = observer
        self.calls: dict[str, CallRun] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.on_done: Callable[[PhoneCall], None] = lambda call: None

    def answer(self, call: PhoneCall) -> None:
        """Start handling an answered call (called by the SIP endpoint)."""
        run = CallRun(self, call)
        self.calls[call.name] = run
        task = asyncio.get_running_loop().create_task(run.run(), name=f"call-{call.name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def finished(self, run: CallRun) -> None:
        """A call's handler is done."""
        self.calls.pop(run.call.name, None)
        self.on_done(run.call)

    async def close(self) -> None:
        """Hang up and wind down every call."""
        for run in list(self.calls.values()):
            run.call.hangup_now()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)

    def notify(self, call: PhoneCall, what: str, detail: object = None) -> None:
        """Tell the observer (tests, benchmarks), never failing the call."""
        if self.observer is not None:
            try:
                self.observer(call, what, detail)
            except Exception:
                logger.exception("phone: observer failed")


class CallRun:
    """One call: its session, its keypad, its playback and its end."""

    def __init__(self, line: PhoneLine, call: PhoneCall) -> None:
        self.line = line
        self.call = call
        self.settings = line.settings
        self.sender = sender_for(call)
        self.session: VoiceSession | None = None
        self.keypad = Keypad()
        self.stats = CallStats()
        self._tasks: list[asyncio.Task[None]] = []
        self._local: asyncio.Task[None] | None = None  # speech the line says by itself
        self._digit_timer: asyncio.TimerHandle | None = None
        self._last_activity = time.monotonic()
        self._speaking_text = ""
        self._handoff_reply: str | None = None
        self._goodbye_reply: str | None = None
        self._transferring = False
        self._latency_trigger = "speech"

    # --- lifecycle --------------------------------------------------------------------------

    async def run(self) -> None:
        """The whole call, from media up to hang-up."""
        call = self.call
        try:
            if not await self._media_up():
                return
            if self.settings.record_calls:
                await self._say_and_wait(RECORDING_NOTICE)
                call.start_recording(self._recording_path())
            self.session = VoiceSession(
                sender_id=self.sender,
                rasa=self.line.rasa,
                asr=self.line.asr,
                tts=self.line.tts,
                sample_rate=SAMPLE_RATE,
                input_channel=INPUT_CHANNEL,
                default_rate=self.settings.speech_rate,
                max_reprompts=self.settings.no_input_limit,
                raise_alert=self.line.raise_alert,
            )
            self.line.notify(call, "session", self.session)
            call.on_idle = self.session.playback_finished  # no-input counts from here
            await self._new_conversation()
            self._spawn(self._events())
            self._spawn(self._audio_in())
            self._spawn(self._keys())
            self._spawn(self._watchdog())
            await self.session.start()
            await call.ended.wait()
        except Exception:
            logger.exception("phone: call %s failed", call.name)
            call.hangup_now(500)
        finally:
            await self._wind_down()

    async def _new_conversation(self) -> None:
        """A call is a conversation of its own: nothing half-done from an earlier call is
        picked up (Rasa's session start; it keeps the speech rate, see actions/core.py)."""
        # If the dialogue is down, the greeting turn finds out and apologises.
        with contextlib.suppress(RasaUnavailable):
            await self.line.rasa.send(self.sender, SESSION_START, input_channel=INPUT_CHANNEL)

    async def _media_up(self) -> bool:
        try:
            await asyncio.wait_for(self.call.media_ready.wait(), MEDIA_TIMEOUT_S)
        except TimeoutError:
            call_event("no-media", self.call.name)
            self.call.hangup_now()
            return False
        return not self.call.ended.is_set()

    async def _wind_down(self) -> None:
        call = self.call
        self._report_latency()
        if self._digit_timer is not None:
            self._digit_timer.cancel()
        for task in [*self._tasks, self._local]:
            if task is not None:
                task.cancel()
        await asyncio.gather(*[t for t in [*self._tasks, self._local] if t], return_exceptions=True)
        if self.session is not None:
            await self.session.close()
        call.hangup_now()
        call_event(
            "end",
            call.name,
            caller=call.caller_tag,
            duration_s=f"{call.duration():.1f}",
            turns=self.stats.turns,
            keys=self.stats.keys,
            transfer=self.stats.transfer,
            reason=call.end_reason.replace(" ", "_") or "hangup",
            frames_dropped=call.frames_dropped,
        )
        self.line.notify(call, "end", self.stats)
        self.line.finished(self)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        self._tasks.append(asyncio.ensure_future(work))

    def _recording_path(self) -> Path:
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        return self.settings.recordings_dir / day / f"{self.call.name}.wav"

    # --- caller audio -----------------------------------------------------------------------

    async def _audio_in(self) -> None:
        """Caller audio to the recogniser, 100 ms at a time, or all that waits (up to
        FEED_MAX_FRAMES) when it has fallen behind; paused during a transfer."""
        session = self.session
        assert session is not None
        if not session.asr_available:
            return  # keypad only; the greeting said so
        frames = self.call.frames
        while not frames.empty():
            frames.get_nowait()  # said before the session began (the notice)
        while (frame := await self.call.next_frame()) is not None:
            pending = [frame]
            while len(pending) < FEED_MAX_FRAMES:
                if not frames.empty():
                    pending.append(frames.get_nowait())  # catching up: take what waits
                elif len(pending) < FEED_FRAMES:
                    more = await self.call.next_frame()
                    if more is None:
                        return  # the call ended
                    pending.append(more)
                else:
                    break
            if self._transferring:
                continue
            await session.feed_audio(b"".join(pending))

    # --- what the session says --------------------------------------------------------------

    async def _events(self) -> None:
        session = self.session
        assert session is not None
        async for event in session.events():
            if isinstance(event, Audio):
                self._play(event.pcm, event.sample_rate)
            elif isinstance(event, AudioStart):
                self._speaking_text = event.text
                self.line.notify(self.call, "audio_start", event.text)
            elif isinstance(event, AudioEnd):
                self._after_speech(self._speaking_text)
                self._report_latency()
            elif isinstance(event, StopPlayback):
                self._stop_all_playback()
            elif isinstance(event, BotSaid):
                self._bot_said(event.reply)
            elif isinstance(event, Heard):
                self._last_activity = time.monotonic()
                if event.final:
                    self._mark("speech")
                if self._local is not None and not self._local.done():
                    self._stop_all_playback()  # barge-in over the line's own words
                self.line.notify(self.call, "heard", event)
            elif isinstance(event, Reprompt):
                self.line.notify(self.call, "reprompt", event.text)
            elif isinstance(event, SessionError):
                self._session_error(event.text_zh)

    def _mark(self, trigger: str) -> None:
        """The caller finished a turn: the reply's first frame on the wire is timed."""
        self._report_latency()
        self._latency_trigger = trigger
        self.call.playout.mark()

    def _report_latency(self) -> None:
        """Log the reply latencies measured so far (no content, just the numbers)."""
        latencies = self.call.playout.latencies
        while latencies:
            call_event("reply", self.call.name, trigger=self._latency_trigger,
                       latency_ms=round(latencies.pop(0) * 1000))

    def _play(self, pcm: bytes, rate: int) -> None:
        if rate != SAMPLE_RATE:
            logger.warning("phone: audio at %d Hz dropped (expected %d)", rate, SAMPLE_RATE)
            return
        if self.stats.first_audio_at is None:
            self.stats.first_audio_at = time.perf_counter()
        self.call.play(pcm)

    def _stop_all_playback(self) -> None:
        if self._local is not None and not self._local.done():
            self._local.cancel()
        self.call.stop_playback()

    def _bot_said(self, reply: BotReply) -> None:
        self.stats.turns += 1
        self.stats.replies.append(reply.text)
        self.keypad.reset()
        self.line.notify(self.call, "bot_said", reply)
        if is_handoff(reply):
            if self.settings.operator_uri and not self._transferring:
                # A person is on hand: transfer now instead of promising a call-back. The
                # request stands, and is only mentioned if the transfer fails.
                self._transferring = True
                if self.session is not None:
                    self.session.stop_playback()
                self._stop_all_playback()
                self._spawn(self._transfer())
            else:
                self._handoff_reply = reply.text
        elif is_goodbye(reply):
            self._goodbye_reply = reply.text

    def _after_speech(self, text: str) -> None:
        """A reply has been synthesised: transfer or hang up once it has been heard."""
        if self._handoff_reply is not None and self._handoff_reply in text:
            self._handoff_reply = None
            self.stats.transfer = "callback"  # no operator: the call-back request stands
        elif self._goodbye_reply is not None and self._goodbye_reply in text:
            self._goodbye_reply = None
            self._spawn(self._hang_up_after_playback())

    def _session_error(self, text: str) -> None:
        if text in (ASR_UNAVAILABLE, TTS_FAILED):
            logger.warning("phone: call %s: %s", self.call.name, text)
            return
        if text == ALERT_FAILED:
            logger.error("phone: call %s: an emergency alert could not be raised", self.call.name)
        self._say(text)

    # --- the line's own words ---------------------------------------------------------------

    def _say(self, text: str) -> None:
        """Say something outside the dialogue (after whatever the session is playing)."""
        if self._local is not None and not self._local.done():
            self._local.cancel()
        self._local = asyncio.ensure_future(self._speak(text))

    async def _say_and_wait(self, text: str) -> None:
        await self._speak(text)
        await self.call.wait_played()

    async def _speak(self, text: str) -> None:
        rate = self.session.speech_rate if self.session else self.settings.speech_rate
        try:
            # The synthesiser reads numbers and dates aloud itself (voice.speech_text).
            async for chunk in self.line.tts.synthesize(text, sample_rate=SAMPLE_RATE, rate=rate):
                self._play(chunk, SAMPLE_RATE)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("phone: speech synthesis failed")

    # --- keypad -----------------------------------------------------------------------------

    async def _keys(self) -> None:
        while True:
            digit = await self.call.digits.get()
            self._last_activity = time.monotonic()
            self.stats.keys += 1
            if self._transferring or self.session is None:
                continue
            if self._digit_timer is not None:
                self._digit_timer.cancel()
                self._digit_timer = None
            action = self.keypad.press(digit.key, self.session.expect)
            await self._do(action)
            if self.keypad.collecting():
                loop = asyncio.get_running_loop()
                self._digit_timer = loop.call_later(
                    self.settings.digit_timeout_s, lambda: self._spawn(self._digit_timeout())
                )

    async def _digit_timeout(self) -> None:
        self._digit_timer = None
        if self.session is not None:
            await self._do(self.keypad.timeout(self.session.expect))

    async def _do(self, action: KeyAction) -> None:
        session = self.session
        assert session is not None
        if isinstance(action, Pending):
            self._stop_all_playback()  # typing: the question has been understood
            return
        if isinstance(action, NoMatch):
            self.stats.wrong_keys += 1
            self._stop_all_playback()
            session.stop_playback()
            if self.stats.wrong_keys >= self.settings.no_match_limit:
                self.stats.wrong_keys = 0
                self._say(TOO_MANY_WRONG_KEYS)
                await session.send_text(HANDOFF)
                return
            self._say(action.hint)
            return
        self.stats.wrong_keys = 0
        self._stop_all_playback()
        if isinstance(action, Send):
            self._mark("key")
            await session.send_text(action.text)
        elif isinstance(action, Handoff):
            await session.send_text(HANDOFF)
        elif isinstance(action, Repeat):
            await session.repeat_last()

    # --- transfer and hang-up ---------------------------------------------------------------

    async def _transfer(self) -> None:
        """Transfer the caller to the operator (REFER); if that fails, say the call-back
        request stands."""
        operator = self.settings.operator_uri
        assert operator is not None
        self._transferring = True
        await self._say_and_wait(TRANSFERRING)
        ok = await self.call.transfer(operator)
        self.line.notify(self.call, "transfer", ok)
        if ok:
            self.stats.transfer = "done"
            self.call.hangup_now()
            return
        self.stats.transfer = "failed"
        self._transferring = False
        await self._say_and_wait(TRANSFER_FAILED)

    async def _hang_up_after_playback(self) -> None:
        """After a goodbye that ends the turn (no question follows it), once it was heard."""
        turns = self.stats.turns
        await self.call.wait_played()
        await asyncio.sleep(0.3)
        if self.stats.turns != turns or (self.session is not None and self.session.expect):
            return  # the dialogue went on (a question came with or after the goodbye)
        call_event("bot-hangup", self.call.name, reason="goodbye")
        self.call.hangup_now()

    async def _watchdog(self) -> None:
        """End calls that have gone silent for good, and calls that run too long."""
        limit = (self.settings.no_input_limit + 1 + self.settings.hangup_after_silences)
        quiet_limit = limit * self.line.silence_s
        while not self.call.ended.is_set():
            await asyncio.sleep(1.0)
            self._report_latency()
            if self.call.duration() > self.settings.max_call_s:
                call_event("bot-hangup", self.call.name, reason="max-duration")
                self.call.hangup_now()
                return
            playing = not self.call.playback_idle.is_set() or (
                self.session is not None and self.session.playing
            )
            if playing or self._transferring:
                self._last_activity = time.monotonic()  # silence counts from the end of speech
                continue
            if time.monotonic() - self._last_activity > quiet_limit:
                await self._say_and_wait(SILENCE_GOODBYE)
                call_event("bot-hangup", self.call.name, reason="silence")
                self.call.hangup_now()
                return

