"""The WebSocket protocol between the voice page and the gateway (`/ws?device=<id>`).

Client → server
  binary frames: microphone audio, 16 kHz s16le mono PCM, at most `max_frame_bytes` each;
  text frames, JSON objects with a "type":
    {"type": "hello", "sample_rate": 16000}   declares the audio format; the bot then greets
    {"type": "text", "text": "我要报修"}       typed text or a button payload ("/affirm")
    {"type": "start"}                         talk button pressed: stop talking, listen
    {"type": "end"}                           talk button released: that was the answer
    {"type": "stop"}                          stop talking (playback only)
    {"type": "played"}                        everything received so far has been played
    {"type": "repeat"}                        say the last answer again
    {"type": "emergency", "id": "<uuid>"}     一键呼叫; the id makes a retried press harmless

Server → client
  binary frames: speech, s16le mono PCM at the rate of the preceding "audio_start";
  text frames:
    {"type": "ready", "device", "asr": bool, "sample_rate", "max_frame_bytes"}
    {"type": "heard", "text", "final": bool}
    {"type": "bot", "text", "buttons": [...], "expect": {...}|null, "reprompt": bool}
    {"type": "audio_start", "text", "sample_rate"} … binary … {"type": "audio_end"}
    {"type": "stop_playback"}
    {"type": "error", "code", "message"}   message is Chinese, fit to show to the user
"""

import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from voice.session import (
    AudioEnd,
    AudioStart,
    BotSaid,
    Heard,
    Reprompt,
    SessionError,
    SessionEvent,
    StopPlayback,
)

# Start bytes of container formats people send instead of raw PCM.
_CONTAINER_MAGIC = {
    b"RIFF": "WAV",
    b"OggS": "Ogg",
    b"\x1aE\xdf\xa3": "WebM",
    b"fLaC": "FLAC",
    b"ID3": "MP3",
    b"\xff\xfb": "MP3",
}
# Full-scale white noise is not a microphone: random bytes, or audio that is not 16-bit PCM.
_NOISE_MEAN_ABS = 0.45 * 32768
_NOISE_CROSSINGS = 0.35


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Hello(_Message):
    """The page declares its audio format."""

    type: Literal["hello"]
    sample_rate: int = 16000


class Text(_Message):
    """Typed text or a button payload."""

    type: Literal["text"]
    text: str = Field(min_length=1)


class Start(_Message):
    """The talk button was pressed."""

    type: Literal["start"]


class End(_Message):
    """The talk button was released."""

    type: Literal["end"]


class Stop(_Message):
    """Stop talking."""

    type: Literal["stop"]


class Played(_Message):
    """The page has played all the audio it received."""

    type: Literal["played"]


class Repeat(_Message):
    """Say the last answer again."""

    type: Literal["repeat"]


class Emergency(_Message):
    """一键呼叫."""

    type: Literal["emergency"]
    id: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


AnyMessage = Hello | Text | Start | End | Stop | Played | Repeat | Emergency
_CLIENT: TypeAdapter[AnyMessage] = TypeAdapter(
    Annotated[AnyMessage, Field(discriminator="type")]
)


@dataclass(frozen=True)
class ProtocolError(Exception):
    """A frame the gateway cannot use; `message` is Chinese, for the user."""

    code: str
    message: str


def parse_client_message(raw: str) -> AnyMessage:
    """Read one JSON text frame; ProtocolError with a Chinese message if it is not one."""
    try:
        data = json.loads(raw)
    except ValueError:
        raise ProtocolError("bad-json", "收到的消息看不懂：不是 JSON 格式。") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError("bad-message", "收到的消息看不懂：缺少 type。")
    try:
        return _CLIENT.validate_python(data)
    except ValidationError as error:
        kinds = {e["type"] for e in error.errors()}
        if "union_tag_invalid" in kinds:
            kind = data["type"][:30]
            raise ProtocolError("unknown-type", f"不认识的消息类型：{kind}。") from None
        raise ProtocolError("bad-message", "消息内容不完整或格式不对。") from None


def check_audio(frame: bytes, *, max_bytes: int) -> None:
    """Refuse audio that is not 16-bit mono PCM (ProtocolError, Chinese message)."""
    if len(frame) > max_bytes:
        raise ProtocolError(
            "frame-too-large",
            f"一段音频太长了（{len(frame)} 字节，最多 {max_bytes} 字节），这段没有识别。",
        )
    if len(frame) % 2:
        raise ProtocolError("odd-length", "音频数据不完整（字节数是单数），这段没有识别。")
    for magic, name in _CONTAINER_MAGIC.items():
        if frame.startswith(magic):
            raise ProtocolError(
                "not-pcm", f"收到的是 {name} 文件，请发送16千赫、16位单声道的原始声音数据。"
            )
    if len(frame) >= 320:
        samples = np.frombuffer(frame, dtype="<i2").astype(np.int32)
        crossings = np.count_nonzero(np.diff(np.signbit(samples))) / (len(samples) - 1)
        if np.abs(samples).mean() > _NOISE_MEAN_ABS and crossings > _NOISE_CROSSINGS:
            raise ProtocolError("garbage", "收到的声音数据无法识别（像是乱码，不是麦克风声音）。")


def event_message(event: SessionEvent) -> dict[str, Any] | None:
    """The JSON text frame for a session event (None for audio, which goes as binary)."""
    if isinstance(event, Heard):
        return {"type": "heard", "text": event.text, "final": event.final}
    if isinstance(event, BotSaid):
        reply = event.reply
        return {
            "type": "bot",
            "text": reply.text,
            "buttons": reply.buttons,
            "expect": reply.expect,
            "reprompt": False,
        }
    if isinstance(event, Reprompt):
        options = (event.expect or {}).get("options") or []
        buttons = [{"title": o["label"], "payload": o["payload"]} for o in options]
        return {
            "type": "bot",
            "text": event.text,
            "buttons": buttons,
            "expect": event.expect,
            "reprompt": True,
        }
    if isinstance(event, AudioStart):
        return {"type": "audio_start", "text": event.text, "sample_rate": event.sample_rate}
    if isinstance(event, AudioEnd):
        return {"type": "audio_end"}
    if isinstance(event, StopPlayback):
        return {"type": "stop_playback"}
    if isinstance(event, SessionError):
        return error_message("session", event.text_zh)
    return None


def error_message(code: str, message: str) -> dict[str, Any]:
    """An error event for the page."""
    return {"type": "error", "code": code, "message": message}
