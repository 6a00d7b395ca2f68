"""The voice gateway: the one-button voice page, its WebSocket, and an emergency endpoint.

`create_app()` builds the app without side effects; the speech model, TTS engine and clients
are made when the app starts (or handed in, as tests and benchmarks do). Without a speech model
the gateway still starts: the page then says 语音识别暂不可用, and typing and 一键呼叫 work.
"""

import asyncio
import logging
import re
import uuid
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from channels.rasa_client import RasaClient
from voice.asr import AsrEngine
from voice.config import SpeechSettings, get_speech_settings
from voice.models import ModelNotFound
from voice.session import Audio, VoiceSession
from voice.tts import TtsEngine, tts_from_settings
from voice.web import protocol
from voice.web.alerts import AlertFailed, RecordsAlerts
from voice.web.config import WebVoiceSettings, get_web_settings

logger = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
DEVICE_PATTERN = r"^[A-Za-z0-9_-]{8,64}$"
_DEVICE = re.compile(DEVICE_PATTERN)
NO_STORE = {"Cache-Control": "no-store"}

BAD_DEVICE = "设备编号不对，请刷新页面再试。"
BAD_ORIGIN = "这个网页不能使用邻里语音助手。"
TOO_MANY = "现在使用的人太多了，请稍后再试。"
NO_ALERTS = "紧急呼叫现在发不出去！请马上拨打120或110。"
BAD_RATE = (
    "声音格式不对：只支持16000赫兹（16千赫）的声音，您的设备声明的是{rate}赫兹。"
    "请刷新页面再试，打字和一键呼叫仍然可以用。"
)
TEXT_TOO_LONG = "文字太长了，请分几次说（每次最多{limit}个字）。"


@dataclass
class Engines:
    """What every session shares: speech recognition (None without a model), TTS, clients."""

    asr: AsrEngine | None
    tts: TtsEngine
    rasa: RasaClient
    alerts: RecordsAlerts | None
    asr_problem: str | None = None
    sessions: set[VoiceSession] = field(default_factory=set)


class EmergencyIn(BaseModel):
    """A 一键呼叫 press sent over HTTP (when the WebSocket is down)."""

    device: str = Field(pattern=DEVICE_PATTERN)
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


def load_asr(speech: SpeechSettings) -> tuple[AsrEngine | None, str | None]:
    """The speech recogniser, or None and the reason (the gateway runs on without it)."""
    try:
        return AsrEngine.from_settings(speech), None
    except ModelNotFound as error:
        logger.error("speech recognition disabled: %s", error)
        return None, str(error)


def create_app(
    settings: WebVoiceSettings | None = None,
    *,
    speech: SpeechSettings | None = None,
    asr: AsrEngine | None = None,
    tts: TtsEngine | None = None,
    load_speech_model: bool = True,
) -> FastAPI:
    """The gateway app; engines not handed in are made from settings at startup."""
    config = settings or get_web_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        speech_settings = speech or get_speech_settings()
        found, problem = asr, None
        if found is None and load_speech_model:
            # Loading a model takes seconds: keep the event loop free meanwhile.
            found, problem = await asyncio.to_thread(load_asr, speech_settings)
        elif found is None:
            problem = "speech model loading disabled"
        token = config.service_token.get_secret_value() if config.service_token else None
        if token is None:
            logger.warning("no SERVICE_TOKEN: 一键呼叫 needs the dialogue engine to raise alerts")
        speaker = tts or tts_from_settings(speech_settings)
        warm_up = getattr(speaker, "warm_up", None)
        if warm_up is not None:
            await warm_up()  # load the voice now, not on the first caller's time
        engines = Engines(
            asr=found,
            tts=speaker,
            rasa=RasaClient(config.rasa_url, timeout=config.rasa_timeout_s),
            alerts=RecordsAlerts(config.records_url, token, timeout=config.records_timeout_s)
            if token
            else None,
            asr_problem=problem,
        )
        app.state.engines = engines
        try:
            yield
        finally:
            for session in list(engines.sessions):
                await session.close()
            await engines.rasa.aclose()
            if engines.alerts is not None:
                await engines.alerts.aclose()
            # Engines made here are closed here; ones handed in belong to the caller.
            if asr is None and found is not None:
                found.close()
            close_tts = getattr(speaker, "close", None)
            if tts is None and close_tts is not None:
                close_tts()

    app = FastAPI(title="Linli voice gateway", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        """Malformed requests: problem+json with a Chinese detail, like the records API."""
        fields = sorted({".".join(str(p) for p in e["loc"][1:]) for e in error.errors()})
        detail = f"请求内容不对：{'、'.join(fields) or '格式'}有误。"
        return _problem(422, detail, "invalid request")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        """The voice page."""
        return FileResponse(STATIC / "index.html", headers=NO_STORE)

    @app.get("/health")
    async def health(request: Request) -> dict[str, Any]:
        """Liveness, and whether speech recognition is available."""
        engines: Engines = request.app.state.engines
        return {"status": "ok", "asr": engines.asr is not None}

    @app.post("/api/emergency", response_model=None)
    async def emergency(body: EmergencyIn, request: Request) -> JSONResponse:
        """一键呼叫 without the WebSocket: the alert goes straight to the records backend."""
        engines: Engines = request.app.state.engines
        if engines.alerts is None:
            return _problem(503, NO_ALERTS)
        try:
            message = await engines.alerts.raise_alert(f"web:{body.device}", body.id)
        except AlertFailed:
            return _problem(503, NO_ALERTS)
        return JSONResponse({"message": message}, status_code=201)

    @app.websocket("/ws")
    async def websocket(
        ws: WebSocket, device: Annotated[str, Query(max_length=64)] = ""
    ) -> None:
        """One voice conversation: the protocol is described in voice/web/protocol.py."""
        await ws.accept()
        engines: Engines = ws.app.state.engines
        if not _origin_allowed(ws, config):
            await ws.send_json(protocol.error_message("bad-origin", BAD_ORIGIN))
            await ws.close(code=1008)
            return
        if not _DEVICE.match(device):
            await ws.send_json(protocol.error_message("bad-device", BAD_DEVICE))
            await ws.close(code=1008)
            return
        if len(engines.sessions) >= config.max_sessions:
            await ws.send_json(protocol.error_message("busy", TOO_MANY))
            await ws.close(code=1013)
            return
        await Conversation(ws, engines, config, device).run()

    return app


def _origin_allowed(ws: WebSocket, config: WebVoiceSettings) -> bool:
    """Same origin as the page (or configured); clients that send no Origin are not browsers."""
    origin = ws.headers.get("origin")
    if origin is None or origin in config.allowed_origins:
        return True
    host = ws.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


def _problem(status: int, detail: str, title: str = "emergency not raised") -> JSONResponse:
    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": detail},
        status_code=status,
        media_type="application/problem+json",
    )


class Conversation:
    """One WebSocket connection: frames in to the session, session events out to the page."""

    def __init__(
        self, ws: WebSocket, engines: Engines, config: WebVoiceSettings, device: str
    ) -> None:
        self.ws = ws
        self.config = config
        self.engines = engines
        self.device = device
        alerts = engines.alerts
        self.session = VoiceSession(
            sender_id=f"web:{device}",
            rasa=engines.rasa,
            asr=engines.asr,
            tts=engines.tts,
            sample_rate=config.sample_rate,
            input_channel="web",
            max_reprompts=config.max_reprompts,
            raise_alert=alerts.raise_alert if alerts is not None else None,
        )
        self.rate_ok = True
        self.rate_told = False
        self.declared = config.sample_rate
        # Frames go out from two tasks (events and replies to control messages): one at a time.
        self.send_lock = asyncio.Lock()
        self.started = False
        self.tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Serve the connection until the page goes away."""
        self.engines.sessions.add(self.session)
        pump = asyncio.create_task(self._pump())
        try:
            await self._send_json({
                "type": "ready",
                "device": self.device,
                "asr": self.engines.asr is not None,
                "sample_rate": self.config.sample_rate,
                "max_frame_bytes": self.config.max_frame_bytes,
            })
            await self._receive()
        except WebSocketDisconnect:
            pass
        finally:
            self.engines.sessions.discard(self.session)
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            await self.session.close()
            await asyncio.gather(pump, return_exceptions=True)

    async def _receive(self) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            if (data := message.get("bytes")) is not None:
                await self._audio(data)
            elif (text := message.get("text")) is not None:
                await self._control(text)

    async def _audio(self, frame: bytes) -> None:
        if not self.rate_ok:
            if not self.rate_told:
                self.rate_told = True
                await self._error("bad-sample-rate", BAD_RATE.format(rate=self.declared))
            return
        try:
            protocol.check_audio(frame, max_bytes=self.config.max_frame_bytes)
        except protocol.ProtocolError as error:
            await self._error(error.code, error.message)
            return
        await self.session.feed_audio(frame)

    async def _control(self, raw: str) -> None:
        try:
            message = protocol.parse_client_message(raw)
        except protocol.ProtocolError as error:
            await self._error(error.code, error.message)
            return
        session = self.session
        if isinstance(message, protocol.Hello):
            self.declared = message.sample_rate
            self.rate_ok = message.sample_rate == self.config.sample_rate
            self.rate_told = False  # audio refused later is reported once more
            if not self.rate_ok:
                await self._error("bad-sample-rate", BAD_RATE.format(rate=message.sample_rate))
            if not self.started:
                self.started = True
                self._spawn(session.start())
        elif isinstance(message, protocol.Text):
            if len(message.text) > self.config.max_text_chars:
                limit = self.config.max_text_chars
                await self._error("text-too-long", TEXT_TOO_LONG.format(limit=limit))
                return
            self._spawn(session.send_text(message.text.strip()))
        elif isinstance(message, protocol.Emergency):
            self._spawn(session.emergency(message.id or uuid.uuid4().hex))
        elif isinstance(message, protocol.Start):
            await session.begin_speech()
        elif isinstance(message, protocol.End):
            await session.end_speech()
        elif isinstance(message, protocol.Stop):
            session.stop_playback()
        elif isinstance(message, protocol.Played):
            session.playback_finished()
        elif isinstance(message, protocol.Repeat):
            self._spawn(session.repeat_last())

    async def _pump(self) -> None:
        """Session events to the page; audio as binary frames."""
        try:
            async for event in self.session.events():
                if isinstance(event, Audio):
                    async with self.send_lock:
                        await self.ws.send_bytes(event.pcm)
                elif (payload := protocol.event_message(event)) is not None:
                    await self._send_json(payload)
        except (WebSocketDisconnect, RuntimeError):
            pass  # the page went away; run() cleans up

    async def _send_json(self, payload: dict[str, Any]) -> None:
        async with self.send_lock:
            await self.ws.send_json(payload)

    async def _error(self, code: str, message: str) -> None:
        await self._send_json(protocol.error_message(code, message))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: "asyncio.Task[None]") -> None:
        self.tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.error("a voice request failed", exc_info=error)
