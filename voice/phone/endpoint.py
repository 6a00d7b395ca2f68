"""The SIP user agent of one worker process: pjsua2's Endpoint, polled from asyncio.

Settings that the phone-line spike found to work (docs in ../shared/docs/phone-line-notes.md):
no library worker threads (``threadCnt=0``) and every callback on the polling thread
(``mainThreadOnly``), which here is the event loop's own thread, so pjsua is only ever
touched from one thread; a null sound device (no hardware) with an 8 kHz conference bridge;
only G.711 (PCMU, then PCMA). ``libDestroy`` aborts the process while Python still holds a
Call or Account object, so :meth:`SipEndpoint.destroy` drops them all first.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Callable

import pjsua2 as pj  # type: ignore[import-untyped]

from records.core.logging import redact
from voice.phone.call import PhoneCall
from voice.phone.callerid import CallerHasher, caller_number
from voice.phone.calllog import call_event
from voice.phone.config import WHEEL_MAX_CALLS, PhoneSettings
from voice.phone.media import SAMPLE_RATE

logger = logging.getLogger(__name__)

CODEC_PRIORITIES = {"PCMU/8000/1": 255, "PCMA/8000/1": 254}
POLL_INTERVAL_S = 0.005
# RTP ports per worker: each call takes two (RTP, RTCP); workers get disjoint ranges.
RTP_PORTS_PER_WORKER = 40


class _PjLog(pj.LogWriter):  # type: ignore[misc]
    """PJSIP's log into Python logging, with numbers masked (SIP headers carry them)."""

    def write(self, entry: pj.LogEntry) -> None:
        """Forward one PJSIP log line."""
        try:
            level = logging.ERROR if entry.level <= 1 else logging.WARNING if entry.level == 2 \
                else logging.DEBUG
            logger.log(level, "pjsip: %s", redact(str(entry.msg).rstrip()))
        except Exception:  # never let an exception reach PJSIP's C++ code
            return


class _Account(pj.Account):  # type: ignore[misc]
    """The line's SIP account: hands incoming calls to the endpoint."""

    def __init__(self, endpoint: SipEndpoint) -> None:
        super().__init__()
        self._endpoint = endpoint

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        """A new INVITE."""
        try:
            self._endpoint.incoming(self, prm.callId, str(prm.rdata.wholeMsg))
        except Exception:
            logger.exception("phone: incoming call failed")

    def onRegState(self, prm: pj.OnRegStateParam) -> None:
        """Registration at the PBX or trunk changed."""
        try:
            info = self.getInfo()
            logger.info(
                "phone: registration %s (%s %s)",
                "active" if info.regIsActive else "inactive",
                prm.code,
                prm.reason,
            )
        except Exception:
            logger.exception("phone: registration callback failed")


class SipEndpoint:
    """One worker's SIP stack: answers calls on one port, at most ``max_calls`` at a time."""

    def __init__(
        self,
        settings: PhoneSettings,
        *,
        loop: asyncio.AbstractEventLoop,
        on_call: Callable[[PhoneCall], None],
        port: int | None = None,
        worker_index: int = 0,
    ) -> None:
        self.settings = settings
        self.loop = loop
        self.port = port or settings.sip_port
        self.worker_index = worker_index
        self.name = f"w{self.port}"
        self._on_call = on_call
        self._hasher = CallerHasher(
            settings.log_hash_key.get_secret_value() if settings.log_hash_key else None
        )
        self._ep: pj.Endpoint | None = None
        self._account: _Account | None = None
        self._log_writer = _PjLog()
        self.calls: list[PhoneCall] = []  # answered, until their handler is done
        self._refused: list[PhoneCall] = []  # kept until pjsua reports them disconnected
        self.rejected_busy = 0

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Create the library, the UDP and TCP transports and the account."""
        settings = self.settings
        ep = pj.Endpoint()
        ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = WHEEL_MAX_CALLS
        cfg.uaConfig.userAgent = "Linli phone line"
        if settings.outbound_proxy:
            cfg.uaConfig.outboundProxies.append(settings.outbound_proxy)
        cfg.logConfig.level = settings.pjsip_log_level
        cfg.logConfig.consoleLevel = 0
        cfg.logConfig.msgLogging = settings.pjsip_log_messages
        cfg.logConfig.writer = self._log_writer
        cfg.medConfig.clockRate = SAMPLE_RATE
        cfg.medConfig.sndClockRate = SAMPLE_RATE
        cfg.medConfig.channelCount = 1
        cfg.medConfig.noVad = True
        cfg.medConfig.ecTailLen = 0
        ep.libInit(cfg)
        self._ep = ep
        for kind in (pj.PJSIP_TRANSPORT_UDP, pj.PJSIP_TRANSPORT_TCP):
            transport = pj.TransportConfig()
            transport.port = self.port
            transport.boundAddress = settings.sip_host
            if settings.public_host:
                transport.publicAddress = settings.public_host
            ep.transportCreate(kind, transport)
        ep.libStart()
        ep.audDevManager().setNullDev()
        for codec in ep.codecEnum2():
            ep.codecSetPriority(codec.codecId, CODEC_PRIORITIES.get(codec.codecId, 0))
        self._account = self._create_account()
        logger.info("phone: worker listening on sip:%s:%s", settings.sip_host, self.port)

    def _create_account(self) -> _Account:
        settings = self.settings
        acfg = pj.AccountConfig()
        acfg.idUri = settings.account_uri(self.port)
        media = acfg.mediaConfig.transportConfig
        media.port = settings.rtp_port + self.worker_index * RTP_PORTS_PER_WORKER
        media.portRange = RTP_PORTS_PER_WORKER
        media.boundAddress = settings.sip_host
        if settings.public_host:
            media.publicAddress = settings.public_host
        if settings.registrar:
            acfg.regConfig.registrarUri = settings.registrar
            user = settings.sip_username or settings.account_user
            if settings.sip_username:
                acfg.idUri = f"sip:{user}@{registrar_host(settings.registrar)}"
            if settings.sip_password is not None:
                acfg.sipConfig.authCreds.append(
                    pj.AuthCredInfo(
                        "digest", settings.sip_realm, user, 0,
                        settings.sip_password.get_secret_value(),
                    )
                )
        account = _Account(self)
        account.create(acfg, True)
        return account

    def poll(self, timeout_ms: int = 0) -> int:
        """Handle pending SIP events and callbacks; how many were handled."""
        if self._ep is None:
            return 0
        handled: int = self._ep.libHandleEvents(timeout_ms)
        return handled

    async def run(self, stopping: asyncio.Event) -> None:
        """Poll the library from the event loop until `stopping` is set."""
        while not stopping.is_set():
            if self.poll(0) <= 0:
                await asyncio.sleep(POLL_INTERVAL_S)
            else:
                await asyncio.sleep(0)

    async def shutdown(self, *, grace_s: float = 2.0) -> None:
        """Hang up every call, give the BYEs time to go out, then destroy the library."""
        for call in list(self.calls):
            call.hangup_now()
        deadline = self.loop.time() + grace_s
        while self.active_calls() and self.loop.time() < deadline:
            self.poll(0)
            await asyncio.sleep(0.02)
        self.destroy()

    def destroy(self) -> None:
        """Drop every pjsua2 object, then destroy the library (safe to call twice)."""
        if self._ep is None:
            return
        for call in self.calls:
            call.release_media()
        self.calls.clear()
        self._refused.clear()
        if self._account is not None:
            with contextlib.suppress(pj.Error):
                self._account.shutdown()
        self._account = None
        gc.collect()
        ep, self._ep = self._ep, None
        ep.libDestroy()
        del ep
        gc.collect()

    # --- calls ------------------------------------------------------------------------------

    def incoming(self, account: _Account, call_id: int, whole_msg: str) -> None:
        """Answer a new call, or refuse it with 486 when this worker is full."""
        call = PhoneCall(
            account,
            call_id,
            loop=self.loop,
            caller=None,
            caller_tag="",
            worker=self.name,
        )
        info = call.getInfo()
        caller = caller_number(str(info.remoteUri), whole_msg)
        call.caller = caller
        call.caller_tag = self._hasher.tag(caller)
        active = self.active_calls()
        if active >= self.settings.max_calls:
            self.rejected_busy += 1
            call_event("busy", call.name, caller=call.caller_tag, active=active)
            self._refused = [c for c in self._refused if not c.ended.is_set()]
            self._refused.append(call)
            call.answer_with(486, "Busy Here")
            return
        self.calls.append(call)
        call_event("start", call.name, caller=call.caller_tag, active=active + 1)
        call.answer_with(200)
        self._on_call(call)

    def forget(self, call: PhoneCall) -> None:
        """Drop a finished call (its handler is done with it)."""
        if call in self.calls:
            self.calls.remove(call)
        call.release_media()
        call.drop_port()

    def active_calls(self) -> int:
        """Calls not yet ended."""
        return sum(1 for c in self.calls if not c.ended.is_set())


def registrar_host(registrar: str) -> str:
    """The host part of a registrar URI (sip:pbx.example.org:5060 -> pbx.example.org:5060)."""
    host = registrar.split(":", 1)[1] if ":" in registrar else registrar
    return host.split(";", 1)[0].lstrip("/")
