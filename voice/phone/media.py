"""Audio between a call's conference port (pjmedia's clock thread) and asyncio.

PJSIP asks for and delivers one 20 ms frame at a time on its own media thread. Incoming
frames are handed to the event loop with ``call_soon_threadsafe``; outgoing audio waits in a
locked byte buffer the media thread drains, so neither side ever blocks the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable

import pjsua2 as pj  # type: ignore[import-untyped]

logger = logging.getLogger(__name__)

SAMPLE_RATE = 8000
FRAME_MS = 20
FRAME_BYTES = SAMPLE_RATE * FRAME_MS // 1000 * 2  # s16le mono: 320 bytes
# Caller audio kept when the consumer falls behind (then the oldest is dropped): 2 s.
INBOUND_MAX_FRAMES = 100


class PlayoutBuffer:
    """Audio waiting to be sent: written by the event loop, read frame by frame by pjmedia."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data = bytearray()
        self._generation = 0
        self.frames_sent = 0
        self.first_audio_at: float | None = None  # perf_counter() of the first audio frame

    def write(self, pcm: bytes) -> None:
        """Queue audio (s16le mono at 8 kHz) behind what is already waiting."""
        with self._lock:
            self._data += pcm

    def clear(self) -> int:
        """Drop everything not yet sent (barge-in); how many bytes were dropped."""
        with self._lock:
            dropped = len(self._data)
            self._data.clear()
            self._generation += 1
            return dropped

    def pending(self) -> int:
        """Bytes not yet sent."""
        with self._lock:
            return len(self._data)

    def read_frame(self) -> bytes | None:
        """The next 20 ms frame, zero-padded at the end of the audio; None when idle."""
        with self._lock:
            if not self._data:
                return None
            frame = bytes(self._data[:FRAME_BYTES])
            del self._data[:FRAME_BYTES]
        self.frames_sent += 1
        if self.first_audio_at is None:
            self.first_audio_at = time.perf_counter()
        if len(frame) < FRAME_BYTES:
            frame += bytes(FRAME_BYTES - len(frame))
        return frame


class FramePort(pj.AudioMediaPort):  # type: ignore[misc]
    """A conference-bridge port: what the caller says comes in, the playout buffer goes out."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_frame: Callable[[bytes], None],
        on_idle: Callable[[], None],
    ) -> None:
        super().__init__()
        self._loop = loop
        self._on_frame = on_frame
        self._on_idle = on_idle
        self.playout = PlayoutBuffer()
        self._was_playing = False
        self._closed = False

    def open(self, name: str) -> None:
        """Register the port with the conference bridge (8 kHz, 16 bit, mono, 20 ms)."""
        fmt = pj.MediaFormatAudio()
        fmt.init(pj.PJMEDIA_FORMAT_PCM, SAMPLE_RATE, 1, FRAME_MS * 1000, 16)
        self.createPort(name, fmt)

    def close(self) -> None:
        """Stop delivering frames to the loop (the port itself goes with the object)."""
        self._closed = True

    def onFrameReceived(self, frame: pj.MediaFrame) -> None:
        """Caller audio, on pjmedia's thread: pass it to the event loop."""
        # getattr: pjmedia may call in while Python is already tearing the object down.
        if getattr(self, "_closed", True):
            return
        try:
            if frame.type != pj.PJMEDIA_FRAME_TYPE_AUDIO or frame.size == 0:
                pcm = bytes(FRAME_BYTES)
            else:
                pcm = bytes(frame.buf)
            self._loop.call_soon_threadsafe(self._on_frame, pcm)
        except RuntimeError:
            self._closed = True  # the loop is closed: the call is being torn down
        except Exception:  # an exception must never reach pjmedia's C++ thread
            logger.exception("phone: inbound frame dropped")

    def onFrameRequested(self, frame: pj.MediaFrame) -> None:
        """Audio for the caller, on pjmedia's thread: the next buffered frame or silence."""
        if getattr(self, "_closed", True):
            frame.type = pj.PJMEDIA_FRAME_TYPE_NONE
            return
        try:
            pcm = self.playout.read_frame()
            if pcm is None:
                frame.type = pj.PJMEDIA_FRAME_TYPE_NONE
                if self._was_playing and not self._closed:
                    self._was_playing = False
                    self._loop.call_soon_threadsafe(self._on_idle)
                return
            self._was_playing = True
            frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
            frame.buf = pj.ByteVector(pcm)
            frame.size = len(pcm)
        except RuntimeError:
            self._closed = True
        except Exception:
            with contextlib.suppress(Exception):
                frame.type = pj.PJMEDIA_FRAME_TYPE_NONE
            logger.exception("phone: outbound frame failed")
