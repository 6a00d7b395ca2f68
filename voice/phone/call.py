"""One phone call: pjsua2's Call with its audio port, keypad digits, transfer and hang-up,
seen from asyncio.

pjsua2 calls the methods named ``on...`` on the thread that polls the library, which is the
event loop's thread (see :mod:`voice.phone.endpoint`); media frames arrive on pjmedia's own
thread (:mod:`voice.phone.media`). Everything that reaches asyncio objects goes through
``call_soon_threadsafe``, whichever thread it comes from.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pjsua2 as pj

from voice.phone.callerid import letters
from voice.phone.calllog import call_event, key_kind
from voice.phone.media import FRAME_BYTES, INBOUND_MAX_FRAMES, FramePort, PlayoutBuffer, PortPool

logger = logging.getLogger(__name__)

DtmfMethod = Literal["rfc4733", "sip-info", "other"]
_METHODS: dict[int, DtmfMethod] = {
    pj.PJSUA_DTMF_METHOD_RFC2833: "rfc4733",
    pj.PJSUA_DTMF_METHOD_SIP_INFO: "sip-info",
}
_KEYS = set("0123456789*#ABCD")


@dataclass(frozen=True)
class Digit:
    """A key pressed on the caller's keypad."""

    key: str
    method: DtmfMethod


class PhoneCall(pj.Call):  # type: ignore[misc]
    """An incoming call: audio frames, digits and its end as asyncio queues and events."""

    def __init__(
        self,
        account: pj.Account,
        call_id: int,
        *,
        loop: asyncio.AbstractEventLoop,
        caller: str | None,
        caller_tag: str,
        worker: str,
        ports: PortPool,
    ) -> None:
        super().__init__(account, call_id)
        self.loop = loop
        self._ports = ports
        self.caller = caller  # E.164 or None (anonymous / not a number)
        self.caller_tag = caller_tag  # log-safe
        self.name = f"{worker}-{letters(uuid.uuid4().bytes, 8)}"
        self.frames: asyncio.Queue[bytes] = asyncio.Queue(maxsize=INBOUND_MAX_FRAMES)
        self.digits: asyncio.Queue[Digit] = asyncio.Queue()
        self.media_ready = asyncio.Event()
        self.ended = asyncio.Event()
        self.playback_idle = asyncio.Event()
        self.playback_idle.set()
        self.created_at = time.monotonic()
        self.connected_at: float | None = None
        self.end_reason = ""
        self.port: FramePort | None = None
        self.playout = PlayoutBuffer()  # replaced by the port's once media is up
        self._recorder: pj.AudioMediaRecorder | None = None
        self._record_to: Path | None = None
        self._call_audio: pj.AudioMedia | None = None
        self._transfer: asyncio.Future[int] | None = None
        self.frames_dropped = 0
        self.slot = call_id  # pjsua's call id; pjsua gives it to a new call once this ends
        self.disconnected = False  # set in pjsua's callback itself, before any slot reuse
        # Called on the loop when everything queued has been sent.
        self.on_idle: Callable[[], None] | None = None

    # --- used from asyncio ----------------------------------------------------------------

    def answer_with(self, code: int, reason: str = "") -> None:
        """Send a final (or provisional) response to the INVITE."""
        prm = pj.CallOpParam(True)
        prm.statusCode = code
        if reason:
            prm.reason = reason
        self.answer(prm)

    def play(self, pcm: bytes) -> None:
        """Queue audio (s16le mono, 8 kHz) for the caller."""
        if self.port is None or self.ended.is_set() or not pcm:
            return
        self.playback_idle.clear()
        self.playout.write(pcm)

    def stop_playback(self) -> None:
        """Drop the audio not yet sent (the caller started speaking, or a new turn)."""
        self.playout.clear()
        self.playback_idle.set()

    async def wait_played(self) -> None:
        """Until everything queued has gone out (or the call ended)."""
        idle = asyncio.ensure_future(self.playback_idle.wait())
        ended = asyncio.ensure_future(self.ended.wait())
        try:
            await asyncio.wait({idle, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            idle.cancel()
            ended.cancel()

    def start_recording(self, path: Path) -> None:
        """Record both directions into a WAV file (only after consent was announced)."""
        self._record_to = path
        self._attach_recorder()

    async def transfer(self, uri: str, *, wait_s: float = 30.0) -> bool:
        """Blind transfer (REFER) to `uri`; True once the target answered."""
        if self.ended.is_set():
            return False
        self._transfer = self.loop.create_future()
        call_event("transfer", self.name, status="refer")
        try:
            self.xfer(uri, pj.CallOpParam(True))
        except pj.Error as error:
            call_event("transfer", self.name, status="failed", reason=error.status)
            return False
        try:
            code = await asyncio.wait_for(asyncio.shield(self._transfer), wait_s)
        except TimeoutError:
            code = 408
        ok = 200 <= code < 300
        call_event("transfer", self.name, status="done" if ok else "failed", code=code)
        return ok

    def hangup_now(self, code: int = 200) -> None:
        """End the call (BYE, or a final response if it was never answered)."""
        if self.ended.is_set():
            return
        prm = pj.CallOpParam(True)
        prm.statusCode = code
        with contextlib.suppress(pj.Error):
            self.hangup(prm)

    async def next_frame(self) -> bytes | None:
        """The next 20 ms of caller audio; None once the call has ended."""
        if not self.frames.empty():
            return self.frames.get_nowait()
        if self.ended.is_set():
            return None
        getter = asyncio.ensure_future(self.frames.get())
        ended = asyncio.ensure_future(self.ended.wait())
        try:
            await asyncio.wait({getter, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
            if not getter.done():
                getter.cancel()
        if getter.done() and not getter.cancelled():
            return getter.result()
        return None

    def duration(self) -> float:
        """Seconds since the call was answered (0 if it never was)."""
        return 0.0 if self.connected_at is None else time.monotonic() - self.connected_at

    # --- pjsua2 callbacks (polling thread) ------------------------------------------------

    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        """Track answer and end of the call."""
        try:
            info = self.getInfo()
            if info.state == pj.PJSIP_INV_STATE_CONFIRMED:
                self.loop.call_soon_threadsafe(self._confirmed)
            elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
                self.disconnected = True
                reason = f"{info.lastStatusCode} {info.lastReason}"
                self.loop.call_soon_threadsafe(self._disconnected, reason)
        except Exception:
            logger.exception("phone: call state callback failed")

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        """Connect the caller's audio to our frame port once media is up."""
        try:
            info = self.getInfo()
            for index, media in enumerate(info.media):
                if (
                    media.type == pj.PJMEDIA_TYPE_AUDIO
                    and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE
                ):
                    self._connect_audio(self.getAudioMedia(index))
                    return
        except Exception:
            logger.exception("phone: media state callback failed")

    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:
        """A key, by RFC 4733 telephone-event or SIP INFO."""
        try:
            key = str(prm.digit).upper()
            if key not in _KEYS:
                return
            digit = Digit(key, _METHODS.get(int(prm.method), "other"))
            self.loop.call_soon_threadsafe(self._got_digit, digit)
        except Exception:
            logger.exception("phone: DTMF callback failed")

    def onCallTransferStatus(self, prm: pj.OnCallTransferStatusParam) -> None:
        """NOTIFYs of a REFER: the final one says whether the target answered."""
        try:
            code = int(prm.statusCode)
            if prm.finalNotify or code >= 200:
                prm.cont = False
                self.loop.call_soon_threadsafe(self._transfer_done, code)
        except Exception:
            logger.exception("phone: transfer status callback failed")

    # --- on the loop ------------------------------------------------------------------------

    def _connect_audio(self, audio: pj.AudioMedia) -> None:
        if self.port is None:
            self.port = self._ports.acquire()
            self.playout = self.port.attach(self.loop, self._got_frame, self._played)
        self._call_audio = audio
        audio.startTransmit(self.port)
        self.port.startTransmit(audio)
        if self._record_to is not None:
            self._attach_recorder()
        self.loop.call_soon_threadsafe(self.media_ready.set)

    def _attach_recorder(self) -> None:
        if self._recorder is not None or self._call_audio is None or self.port is None:
            return
        assert self._record_to is not None
        self._record_to.parent.mkdir(parents=True, exist_ok=True)
        recorder = pj.AudioMediaRecorder()
        recorder.createRecorder(str(self._record_to))
        self._call_audio.startTransmit(recorder)
        self.port.startTransmit(recorder)
        self._recorder = recorder
        call_event("recording", self.name, status="started")

    def _got_frame(self, pcm: bytes) -> None:
        if len(pcm) != FRAME_BYTES:
            pcm = pcm[:FRAME_BYTES].ljust(FRAME_BYTES, b"\0")
        if self.frames.full():
            self.frames.get_nowait()  # the consumer is behind: keep the newest audio
            self.frames_dropped += 1
        self.frames.put_nowait(pcm)

    def _played(self) -> None:
        if self.playout.pending() == 0:
            self.playback_idle.set()
            if self.on_idle is not None and not self.ended.is_set():
                try:
                    self.on_idle()
                except Exception:
                    logger.exception("phone: idle callback failed")

    def _got_digit(self, digit: Digit) -> None:
        call_event("dtmf", self.name, key=key_kind(digit.key), method=digit.method)
        self.digits.put_nowait(digit)

    def _confirmed(self) -> None:
        if self.connected_at is None:
            self.connected_at = time.monotonic()

    def _transfer_done(self, code: int) -> None:
        if self._transfer is not None and not self._transfer.done():
            self._transfer.set_result(code)

    def _disconnected(self, reason: str) -> None:
        if self.ended.is_set():
            return
        self.end_reason = reason
        self.release_media()
        self._transfer_done(487)
        self.ended.set()
        self.playback_idle.set()

    def drop_port(self) -> None:
        """Give the audio port back to the pool (the call's connections to it are gone)."""
        port, self.port = self.port, None
        if port is not None:
            self._ports.release(port)

    def release_media(self) -> None:
        """Stop frame delivery and close the recording (safe to call twice).

        pjsua has already removed the call's own conference slot, with every connection to
        it, when the call is disconnected; its slot number may soon belong to another call,
        so it is never touched here. Dropping the recorder finishes its WAV file.
        """
        if self.port is not None:
            self.port.detach()
        if self._recorder is not None:
            call_event("recording", self.name, status="stopped")
        self._recorder = None
        self._call_audio = None
