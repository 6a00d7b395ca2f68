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
import sys
from collections.abc import Callable

import pjsua2 as pj

from records.core.logging import redact
from voice.phone.call import PhoneCall
from voice.phone.callerid import CallerHasher, caller_number
from voice.phone.calllog import call_event
from voice.phone.config import WHEEL_MAX_CALLS, PhoneSettings
from voice.phone.media import SAMPLE_RATE, PortPool

logger = logging.getLogger(__name__)

CODEC_PRIORITIES = {"PCMU/8000/1": 255, "PCMA/8000/1": 254}
POLL_INTERVAL_S = 0.005
# Python's cyclic garbage collector is switched off in a worker and run here instead, on the
# polling thread: a PJSUA2 object destroyed by a collection on another thread (a recogniser
# or synthesiser thread) calls into PJSIP from a thread it does not know, which asserts, or
# waits for a media lock while holding the GIL the media thread needs (a deadlock).
GC_INTERVAL_S = 2.0
# RTP ports per worker: each call takes two (RTP, RTCP); workers get disjoint ranges.
RTP_PORTS_PER_WORKER = 40


class _PjLog(pj.LogWriter):  # type: ignore[misc]
    """PJSIP's log into Python logging, with numbers masked (SIP headers carry them)."""

    def write(self, entry: pj.LogEntry) -> None:
        """Forward one PJSIP log line."""
        try:
            # PHONE_PJSIP_LOG_LEVEL decides how much PJSIP says; all of it is shown.
            level = {0: logging.ERROR, 1: logging.ERROR, 2: logging.WARNING}.get(
                int(entry.level), logging.INFO
            )
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
        self.ports: PortPool | None = None
        self.calls: list[PhoneCall] = []  # answered, until their handler is done
        self._refused: list[PhoneCall] = []  # answered 486, until pjsua reports them gone
        # Finished calls wait here until destroying them is harmless (see _bury).
        self._graveyard: list[PhoneCall] = []
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
        self.ports = PortPool(self.settings.max_calls)
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
        """Poll the library from the event loop until `stopping` is set; collect garbage
        here too (see GC_INTERVAL_S)."""
        gc.disable()
        gc.collect()
        gc.freeze()  # what start-up made lives for good: later collections skip it (fast)
        next_gc = self.loop.time() + GC_INTERVAL_S
        try:
            while not stopping.is_set():
                if self.poll(0) <= 0:
                    await asyncio.sleep(POLL_INTERVAL_S)
                else:
                    await asyncio.sleep(0)
                if self.loop.time() >= next_gc:
                    gc.collect()
                    self._bury()
                    next_gc = self.loop.time() + GC_INTERVAL_S
        finally:
            gc.unfreeze()
            gc.enable()

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
            call.drop_port()
        # Every call is over (shutdown hung them up): no slot can be reused any more.
        self._graveyard += self.calls + self._refused
        self.calls.clear()
        self._refused.clear()
        self._bury(final=True)
        if self.ports is not None:
            self.ports.abandon()
            self.ports = None
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
        assert self.ports is not None
        call = PhoneCall(
            account,
            call_id,
            loop=self.loop,
            caller=None,
            caller_tag="",
            worker=self.name,
            ports=self.ports,
        )
        info = call.getInfo()
        caller = caller_number(str(info.remoteUri), whole_msg)
        call.caller = caller
        call.caller_tag = self._hasher.tag(caller)
        active = self.active_calls()
        if active >= self.settings.max_calls:
            self.rejected_busy += 1
            call_event("busy", call.name, caller=call.caller_tag, active=active)
            self._refused.append(call)
            call.answer_with(486, "Busy Here")
            return
        self.calls.append(call)
        call_event("start", call.name, caller=call.caller_tag, active=active + 1)
        call.answer_with(200)
        self._on_call(call)

    def forget(self, call: PhoneCall) -> None:
        """A finished call's handler is done with it: free its media, bury the object."""
        if call in self.calls:
            self.calls.remove(call)
        call.release_media()
        call.drop_port()
        call.on_idle = None
        self._graveyard.append(call)
        self._bury()

    def _bury(self, *, final: bool = False) -> None:
        """Destroy finished Call objects, but only when that is harmless.

        pjsua2's ``Call`` destructor unhooks and hangs up whatever call now has the object's
        slot number, and pjsua reuses slots: a Call object destroyed after its slot went to
        a new call would cut that call off (a BYE, or a 603 while it rings). So an object is
        destroyed only while its slot is free, and only here, where this is the sole
        reference (so no garbage collection elsewhere can destroy it at another moment).
        """
        self._graveyard += [c for c in self._refused if c.disconnected]
        self._refused = [c for c in self._refused if not c.disconnected]
        busy = {c.slot for c in (*self.calls, *self._refused) if not c.disconnected}
        keep: list[PhoneCall] = []
        while self._graveyard:
            call = self._graveyard.pop()
            # References: `call` here and getrefcount's argument; any more and someone
            # else still holds it (it stays, and so cannot be destroyed elsewhere).
            if (final or (call.disconnected and call.slot not in busy)) and (
                sys.getrefcount(call) <= 2
            ):
                del call  # the destructor runs now, on this thread
            elif final:
                # Still referenced somewhere at shutdown: hand it to C++ for good, so that
                # no destructor runs after the library is gone.
                logger.warning("phone: call %s still referenced at shutdown", call.name)
                call.__disown__()
            else:
                keep.append(call)
        self._graveyard = keep

    def active_calls(self) -> int:
        """Calls not yet disconnected (as pjsua reported it, before the loop hears of it)."""
        return sum(1 for c in self.calls if not c.disconnected)


def registrar_host(registrar: str) -> str:
    """The host part of a registrar URI (sip:pbx.example.org:5060 -> pbx.example.org:5060)."""
    host = registrar.split(":", 1)[1] if ":" in registrar else registrar
    return host.split(";", 1)[0].lstrip("/")
