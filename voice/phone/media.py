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
from dataclasses import dataclass

import pjsua2 as pj

logger = logging.getLogger(__name__)

SAMPLE_RATE = 8000
FRAME_MS = 20
FRAME_BYTES = SAMPLE_RATE * FRAME_MS // 1000 * 2  # s16le mono: 320 bytes
# Caller audio kept while the recogniser is behind (several callers speaking at once cost more
# than real time; the silences after let it catch up). Beyond 10 s the oldest is dropped.
INBOUND_MAX_FRAMES = 500


class PlayoutBuffer:
    """Audio waiting to be sent: written by the event loop, read frame by frame by pjmedia."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data = bytearray()
        self._generation = 0
        self.frames_sent = 0
        self.first_audio_at: float | None = None  # perf_counter() of the first audio frame
        # Reply latency: marked when the caller finished (speech end, a key), measured when
        # the next audio frame goes out on the wire.
        self._mark_at: float | None = None
        self.latencies: list[float] = []

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

    def mark(self) -> None:
        """The caller has finished: time until the next audio frame leaves."""
        self._mark_at = time.perf_counter()

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
        now = time.perf_counter()
        if self.first_audio_at is None:
            self.first_audio_at = now
        if self._mark_at is not None:
            self.latencies.append(now - self._mark_at)
            self._mark_at = None
        if len(frame) < FRAME_BYTES:
            frame += bytes(FRAME_BYTES - len(frame))
        return frame


@dataclass
class _Binding:
    """The call a port serves right now."""

    loop: asyncio.AbstractEventLoop
    on_frame: Callable[[bytes], None]
    on_idle: Callable[[], None]
    playout: PlayoutBuffer
    was_playing: bool = False


class FramePort(pj.AudioMediaPort):  # type: ignore[misc]
    """A conference-bridge port serving one call at a time: caller audio in, playout out.

    Ports are made once per worker and reused (:class:`PortPool`), never destroyed while
    the library runs: pjmedia calls these methods on its own thread, and destroying a port
    from Python can free the Python object while that thread is inside one of them.
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self._binding: _Binding | None = None
        fmt = pj.MediaFormatAudio()
        fmt.init(pj.PJMEDIA_FORMAT_PCM, SAMPLE_RATE, 1, FRAME_MS * 1000, 16)
        self.createPort(name, fmt)  # registers it with the conference bridge

    @property
    def playout(self) -> PlayoutBuffer:
        """The current call's outgoing audio (an empty buffer when idle)."""
        binding = self._binding
        return binding.playout if binding is not None else PlayoutBuffer()

    def attach(
        self,
        loop: asyncio.AbstractEventLoop,
        on_frame: Callable[[bytes], None],
        on_idle: Callable[[], None],
    ) -> PlayoutBuffer:
        """Serve a call: its frames go to `on_frame`; a fresh playout buffer is returned."""
        playout = PlayoutBuffer()
        # One assignment: the media thread sees the old binding or the new, never a mix.
        self._binding = _Binding(loop, on_frame, on_idle, playout)
        return playout

    def detach(self) -> None:
        """Serve nobody (frames are dropped, silence goes out)."""
        self._binding = None

    def onFrameReceived(self, frame: pj.MediaFrame) -> None:
        """Caller audio, on pjmedia's thread: pass it to the event loop."""
        binding = self._binding
        if binding is None:
            return
        try:
            if frame.type != pj.PJMEDIA_FRAME_TYPE_AUDIO or frame.size == 0:
                pcm = bytes(FRAME_BYTES)
            else:
                pcm = bytes(frame.buf)
            binding.loop.call_soon_threadsafe(binding.on_frame, pcm)
        except RuntimeError:
            self._binding = None  # the loop is closed: the worker is stopping
        except Exception:  # an exception must never reach pjmedia's C++ thread
            logger.exception("phone: inbound frame dropped")

    def onFrameRequested(self, frame: pj.MediaFrame) -> None:
        """Audio for the caller, on pjmedia's thread: the next buffered frame or silence."""
        binding = self._binding
        try:
            pcm = binding.playout.read_frame() if binding is not None else None
            if pcm is None:
                frame.type = pj.PJMEDIA_FRAME_TYPE_NONE
                if binding is not None and binding.was_playing:
                    binding.was_playing = False
                    binding.loop.call_soon_threadsafe(binding.on_idle)
                return
            assert binding is not None
            binding.was_playing = True
            frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
            frame.buf = pj.ByteVector(pcm)
            frame.size = len(pcm)
        except RuntimeError:
            self._binding = None
        except Exception:
            with contextlib.suppress(Exception):
                frame.type = pj.PJMEDIA_FRAME_TYPE_NONE
            logger.exception("phone: outbound frame failed")


class PortPool:
    """The worker's frame ports, one per possible call, made once and reused."""

    def __init__(self, size: int) -> None:
        self._free = [FramePort(f"line-{i}") for i in range(size)]
        self._all = list(self._free)

    def acquire(self) -> FramePort:
        """A port for a new call (a new one only if the pool ran dry)."""
        if self._free:
            return self._free.pop()
        port = FramePort(f"line-{len(self._all)}")
        self._all.append(port)
        return port

    def release(self, port: FramePort) -> None:
        """Take a port back from a finished call."""
        port.detach()
        if port not in self._free:
            self._free.append(port)

    def abandon(self) -> None:
        """At shutdown: hand the ports to C++ for good (libDestroy takes them off the bridge;
        no Python object is freed while pjmedia may still call it)."""
        for port in self._all:
            port.detach()
            port.__disown__()
        self._free.clear()
        self._all.clear()
