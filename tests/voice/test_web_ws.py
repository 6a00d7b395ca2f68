"""The voice gateway's WebSocket protocol, served by uvicorn, against the real stack.

Korean speech (the only model here) tests the audio path; the Mandarin dialogue is driven by
text frames. Bad audio gets a Chinese error event and the conversation goes on.
"""

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Origin

from tests.e2e.stack import Stack, free_port
from tests.voice.test_session import alert_count, chunks, korean_speech
from voice.asr import AsrEngine, SpeechModel
from voice.config import SpeechSettings
from voice.tts import TtsEngine, tts_from_settings
from voice.web.app import create_app
from voice.web.config import WebVoiceSettings

WAIT_S = 60.0  # a guard against hanging, not a timing assertion
FRAME_LIMIT = 8000


class Gateway:
    """A running gateway: its base URL."""

    def __init__(self, port: int) -> None:
        self.http = f"http://127.0.0.1:{port}"
        self.ws = f"ws://127.0.0.1:{port}/ws"


async def serve(
    stack: Stack,
    *,
    asr: AsrEngine | None,
    tts: TtsEngine,
    rasa_url: str | None = None,
    speech: SpeechSettings | None = None,
) -> AsyncIterator[Gateway]:
    """The gateway app on uvicorn in this event loop, until the test ends."""
    settings = WebVoiceSettings(
        rasa_url=rasa_url or stack.rasa_url,
        records_url=stack.records_url,
        service_token=stack.service_token,
        max_frame_bytes=FRAME_LIMIT,
        max_reprompts=2,
    )
    app = create_app(settings, speech=speech or SpeechSettings(), asr=asr, tts=tts)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield Gateway(port)
    finally:
        server.should_exit = True
        await task


@pytest.fixture(scope="module")
def tts() -> TtsEngine:
    """The default Mandarin TTS."""
    return tts_from_settings(SpeechSettings())


@pytest.fixture
def asr(ko_model: SpeechModel) -> Iterator[AsrEngine]:
    """A recogniser engine on the Korean model."""
    engine = AsrEngine(ko_model, max_streams=2, endpoint_silence_s=0.9, no_input_timeout_s=8)
    yield engine
    engine.close()


@pytest.fixture
async def gateway(stack: Stack, asr: AsrEngine, tts: TtsEngine) -> AsyncIterator[Gateway]:
    """The gateway with speech recognition."""
    async for running in serve(stack, asr=asr, tts=tts):
        yield running


class Client:
    """A page's side of the WebSocket: sends frames, reads events with a guard timeout."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.audio_bytes = 0
        self.seen: list[dict[str, Any]] = []

    async def send(self, **message: Any) -> None:
        """A JSON control frame."""
        await self.ws.send(json.dumps(message))

    async def next_event(self) -> dict[str, Any]:
        """The next JSON event; audio frames in between are counted."""
        while True:
            frame = await asyncio.wait_for(self.ws.recv(), WAIT_S)
            if isinstance(frame, bytes):
                self.audio_bytes += len(frame)
                continue
            event: dict[str, Any] = json.loads(frame)
            self.seen.append(event)
            return event

    async def wait_for(self, kind: str, **fields: Any) -> dict[str, Any]:
        """The next event of that type (and field values)."""
        while True:
            event = await self.next_event()
            if event["type"] == kind and all(event.get(k) == v for k, v in fields.items()):
                return event

    async def bot_turn(self) -> str:
        """The bot's text of one turn, once all of its speech has arrived."""
        texts = [(await self.wait_for("bot"))["text"]]
        ends = 0
        while ends < len(texts):
            event = await self.next_event()
            if event["type"] == "bot":
                texts.append(event["text"])
            elif event["type"] == "audio_end":
                ends += 1
        return "".join(texts)


async def open_client(gateway: Gateway, device: str | None = None) -> Client:
    """Connect as a fresh device (or the given one); the ready event has been read."""
    ws = await connect(f"{gateway.ws}?device={device or uuid.uuid4().hex}", max_size=None)
    client = Client(ws)
    ready = await client.wait_for("ready")
    assert ready["sample_rate"] == 16000
    return client


async def greeted(gateway: Gateway) -> Client:
    """A connected page whose hello has been answered by the bot's greeting."""
    client = await open_client(gateway)
    await client.send(type="hello", sample_rate=16000)
    assert "邻里" in await client.bot_turn()
    return client



async def test_hello_is_answered_by_a_spoken_greeting(gateway: Gateway) -> None:
    client = await open_client(gateway)
    await client.send(type="hello", sample_rate=16000)
    bot = await client.wait_for("bot")
    assert "邻里" in bot["text"]
    start = await client.wait_for("audio_start")
    assert start["sample_rate"] == 16000
    await client.wait_for("audio_end")
    assert client.audio_bytes > 16000  # half a second of speech at least
    await client.ws.close()


async def test_korean_speech_frames_are_heard_and_answered_aloud(gateway: Gateway) -> None:
    client = await greeted(gateway)
    await client.send(type="played")
    for frame in chunks(korean_speech()):
        await client.ws.send(frame)
    heard = await client.wait_for("heard", final=True)
    assert heard["text"].strip()
    before = client.audio_bytes
    assert await client.bot_turn()
    assert client.audio_bytes > before
    await client.ws.close()


async def test_talk_button_interrupts_the_bot_and_release_ends_the_answer(
    gateway: Gateway,
) -> None:
    client = await open_client(gateway)
    await client.send(type="hello", sample_rate=16000)
    await client.wait_for("audio_start")
    await client.send(type="start")  # pressed while the greeting plays
    await client.wait_for("stop_playback")
    for frame in chunks(korean_speech(pause_s=0.0)):
        await client.ws.send(frame)
    await client.send(type="end")  # released: no need to wait for the trailing silence
    heard = await client.wait_for("heard", final=True)
    assert heard["text"].strip()
    await client.ws.close()


async def test_bad_audio_gets_chinese_errors_and_the_session_goes_on(
    gateway: Gateway,
) -> None:
    client = await greeted(gateway)
    bad_frames = {
        "frame-too-large": bytes(FRAME_LIMIT + 2),
        "odd-length": bytes(321),
        "not-pcm": b"RIFF\x24\x08\x00\x00WAVEfmt " + bytes(100),
        "garbage": os.urandom(3200),
    }
    for code, frame in bad_frames.items():
        await client.ws.send(frame)
        error = await client.wait_for("error")
        assert error["code"] == code
        assert any("\u4e00" <= ch <= "\u9fff" for ch in error["message"])
    for code, text in {
        "bad-json": "{not json",
        "unknown-type": json.dumps({"type": "dance"}),
        "bad-message": json.dumps({"type": "text"}),
    }.items():
        await client.ws.send(text)
        assert (await client.wait_for("error"))["code"] == code
    await client.send(type="hello", sample_rate=44100)
    error = await client.wait_for("error")
    assert error["code"] == "bad-sample-rate"
    assert "16000" in error["message"]
    await client.ws.send(bytes(3200))  # audio at a rate we cannot use is refused, once told
    assert (await client.wait_for("error"))["code"] == "bad-sample-rate"
    # The conversation goes on: typed text, and audio again after a correct hello.
    await client.send(type="text", text="你好")
    assert "邻里" in await client.bot_turn()
    await client.send(type="hello", sample_rate=16000)
    await client.ws.send(bytes(3200))
    await client.send(type="text", text="/help")
    assert "报修" in await client.bot_turn()
    assert not [e for e in client.seen[-6:] if e["type"] == "error"]
    await client.ws.close()


async def test_emergency_frame_raises_an_alert_and_speaks_the_answer(
    stack: Stack, gateway: Gateway
) -> None:
    client = await greeted(gateway)
    before = alert_count(stack)
    await client.send(type="emergency", id=uuid.uuid4().hex)
    said = await client.bot_turn()
    assert "通知" in said
    assert alert_count(stack) == before + 1
    await client.ws.close()


async def test_emergency_with_the_dialogue_down_is_raised_by_the_gateway_once(
    stack: Stack, asr: AsrEngine, tts: TtsEngine
) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    async for gateway in serve(stack, asr=asr, tts=tts, rasa_url=down):
        client = await open_client(gateway)
        before = alert_count(stack)
        press = uuid.uuid4().hex
        await client.send(type="emergency", id=press)
        assert "通知" in await client.bot_turn()
        await client.send(type="emergency", id=press)  # the page retried the same press
        await client.bot_turn()
        async with httpx.AsyncClient(base_url=gateway.http) as http:
            body = {"device": "device-" + press[:12], "id": press}
            first = await http.post("/api/emergency", json=body)
            again = await http.post("/api/emergency", json=body)
            bad = await http.post("/api/emergency", json={"device": "x", "id": press})
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json()
        assert bad.status_code == 422
        assert bad.headers["content-type"] == "application/problem+json"
        assert "device" in bad.json()["detail"]
        assert alert_count(stack) == before + 2  # one per press, never a duplicate
        await client.ws.close()


async def test_a_device_is_linked_with_the_staff_code_through_the_dialogue(
    stack: Stack, gateway: Gateway
) -> None:
    device = uuid.uuid4().hex
    with stack.records() as records:
        resident = records.get("/api/v1/residents", params={"limit": 1}).json()["items"][0]
        code = records.post(f"/api/v1/residents/{resident['id']}/verification-codes").json()
    client = await open_client(gateway, device)
    await client.send(type="text", text=f"我的验证码是{code['code']}")  # what the 绑定 form sends
    said = await client.bot_turn()
    if "成功" not in said:  # the form asked for the code first
        await client.send(type="text", text=code["code"])
        said = await client.bot_turn()
    assert "成功" in said
    with stack.records() as records:
        identity = records.post("/api/v1/identities/resolve", json={"identity": f"web:{device}"})
    assert identity.json()["verified"] is True
    assert identity.json()["resident"]["id"] == resident["id"]
    await client.ws.close()


async def test_a_bad_device_id_or_a_foreign_page_is_refused_in_chinese(
    gateway: Gateway,
) -> None:
    async with connect(f"{gateway.ws}?device=x") as ws:
        event = json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))
        assert event["type"] == "error"
        assert event["code"] == "bad-device"
    url = f"{gateway.ws}?device={uuid.uuid4().hex}"
    async with connect(url, origin=Origin("https://evil.example")) as ws:
        event = json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))
        assert event["code"] == "bad-origin"
    async with connect(url, origin=Origin(gateway.http)) as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))["type"] == "ready"


async def test_without_a_speech_model_typing_and_emergency_still_work(
    stack: Stack, tts: TtsEngine, tmp_path: Path
) -> None:
    nowhere = SpeechSettings(
        vosk_model_path=None, shared_models_dir=tmp_path, models_dir=tmp_path
    )  # ModelNotFound at startup: the gateway logs it and starts anyway
    async for gateway in serve(stack, asr=None, tts=tts, speech=nowhere):
        async with httpx.AsyncClient(base_url=gateway.http) as http:
            assert (await http.get("/health")).json() == {"status": "ok", "asr": False}
            page = await http.get("/")
        assert page.status_code == 200
        assert 'lang="zh-CN"' in page.text
        ws = await connect(f"{gateway.ws}?device={uuid.uuid4().hex}")
        client = Client(ws)
        ready = await client.wait_for("ready")
        assert ready["asr"] is False
        await client.ws.send(bytes(3200))
        assert "语音识别暂不可用" in (await client.wait_for("error"))["message"]
        await client.send(type="text", text="你好")
        assert "邻里" in await client.bot_turn()
        before = alert_count(stack)
        await client.send(type="emergency", id=uuid.uuid4().hex)
        assert "通知" in await client.bot_turn()
        assert alert_count(stack) == before + 1
        await ws.close()
