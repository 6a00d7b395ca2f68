"""`python -m voice phone`: run the phone line.

With one worker (the default) the line runs in this process on PHONE_SIP_PORT. With
``--workers N`` this process supervises N worker processes on consecutive ports (each holds at
most 4 calls); put deploy/kamailio/ or a PBX hunt group in front of them. ``--echo`` answers
every call by sending the caller's audio back: a check of SIP, RTP and codecs without the
dialogue engine.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from records.core.logging import install_redaction
from voice.phone.call import PhoneCall
from voice.phone.calllog import call_event
from voice.phone.config import PhoneSettings, get_phone_settings
from voice.phone.endpoint import SipEndpoint
from voice.phone.pool import WorkerPool

if TYPE_CHECKING:  # the dialogue's modules load speech models: imported when needed
    from voice.phone.line import PhoneLine

logger = logging.getLogger(__name__)


def _parser(settings: PhoneSettings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m voice phone", description=__doc__)
    parser.add_argument("--workers", type=int, default=settings.workers,
                        help="worker processes on consecutive ports (default PHONE_WORKERS)")
    parser.add_argument("--port", type=int, default=settings.sip_port,
                        help="SIP port of the first worker (default PHONE_SIP_PORT)")
    parser.add_argument("--host", default=settings.sip_host, help="address to listen on")
    parser.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--echo", action="store_true",
                        help="echo the caller's audio instead of running the dialogue")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the line (one worker, or a supervised pool) until SIGTERM or Ctrl-C."""
    base = get_phone_settings()
    args = _parser(base).parse_args(argv)
    settings = base.model_copy(
        update={"sip_port": args.port, "sip_host": args.host, "workers": max(1, args.workers)}
    )
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    install_redaction()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per dialogue turn is noise
    if args.worker_index is None and settings.workers > 1:
        extra = ["--port", str(settings.sip_port), "--host", settings.sip_host]
        if args.echo:
            extra.append("--echo")
        return WorkerPool(settings, extra_args=extra).run()
    index = args.worker_index or 0
    try:
        asyncio.run(run_worker(settings, index=index, echo=args.echo))
    except WorkerStartError as error:
        logger.error("phone: %s", error)
        return 1
    return 0


class WorkerStartError(RuntimeError):
    """The worker could not start (port taken, bad settings)."""


async def run_worker(settings: PhoneSettings, *, index: int = 0, echo: bool = False) -> None:
    """One worker: the SIP endpoint on port sip_port + index, until SIGTERM/SIGINT."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    port = settings.sip_port + index
    if echo:
        app: CallApp = EchoApp()
    else:
        app = await DialogueApp.create(settings)
    endpoint = SipEndpoint(settings, loop=loop, on_call=app.answer, port=port, worker_index=index)
    app.attach(endpoint)
    try:
        endpoint.start()
    except Exception as error:
        endpoint.destroy()
        await app.close()
        reason = getattr(error, "reason", "") or type(error).__name__
        raise WorkerStartError(
            f"cannot listen on {settings.sip_host}:{port} ({reason}); is the port in use?"
        ) from error
    polling = asyncio.Event()
    poller = asyncio.create_task(endpoint.run(polling))
    try:
        await stopping.wait()
        await app.close()  # calls wind down while SIP is still polled (their BYEs go out)
    finally:
        polling.set()
        await poller
        await endpoint.shutdown()
        logger.info("phone: worker on port %d stopped", port)


class CallApp:
    """What a worker does with answered calls."""

    endpoint: SipEndpoint | None = None

    def attach(self, endpoint: SipEndpoint) -> None:
        """Remember the endpoint (finished calls are handed back to it)."""
        self.endpoint = endpoint

    def answer(self, call: PhoneCall) -> None:
        """Handle an answered call."""
        raise NotImplementedError

    async def close(self) -> None:
        """Release what the app holds."""


class DialogueApp(CallApp):
    """The real line: a voice session with the dialogue engine per call."""

    def __init__(self, line: PhoneLine, closers: list[object]) -> None:
        self.line = line
        self._closers = closers

    @classmethod
    async def create(cls, settings: PhoneSettings) -> DialogueApp:
        """Load the recogniser (if a model is installed), the synthesiser and the clients."""
        from voice.asr import AsrEngine, SpeechModel
        from voice.config import get_speech_settings
        from voice.models import ModelNotFound, resolve_model_path
        from voice.phone.dialogue import PhoneRasaClient
        from voice.phone.line import PhoneAsr, PhoneLine
        from voice.tts import tts_from_settings
        from voice.web.alerts import RecordsAlerts

        speech = get_speech_settings()
        asr: AsrEngine | None
        try:
            model = await asyncio.to_thread(SpeechModel.load, resolve_model_path(speech))
            # One decoder thread per call this worker can hold.
            asr = PhoneAsr(
                model,
                max_streams=settings.max_calls,
                endpoint_silence_s=speech.asr_endpoint_silence_s,
                no_input_timeout_s=speech.asr_no_input_timeout_s,
            )
        except ModelNotFound as error:
            logger.warning("phone: no speech model, keypad only: %s", error)
            asr = None
        tts = tts_from_settings(speech)
        warm_up = getattr(tts, "warm_up", None)
        if warm_up is not None:
            await warm_up()
        rasa = PhoneRasaClient(settings.rasa_url, keypad_only=asr is None)
        closers: list[object] = [rasa]
        alerts = None
        if settings.service_token is not None:
            alerts = RecordsAlerts(settings.records_url, settings.service_token.get_secret_value())
            closers.append(alerts)
        line = PhoneLine(
            settings,
            rasa=rasa,
            asr=asr,
            tts=tts,
            raise_alert=alerts.raise_alert if alerts else None,
            silence_s=speech.asr_no_input_timeout_s,
        )
        if asr is not None:
            closers.append(asr)
        return cls(line, closers)

    def attach(self, endpoint: SipEndpoint) -> None:
        """Finished calls go back to the endpoint."""
        super().attach(endpoint)
        self.line.on_done = endpoint.forget

    def answer(self, call: PhoneCall) -> None:
        """Start the call's voice session."""
        self.line.answer(call)

    async def close(self) -> None:
        """Hang up every call, then close the clients."""
        await self.line.close()
        for closer in self._closers:
            aclose = getattr(closer, "aclose", None)
            if aclose is not None:
                await aclose()
            elif (close := getattr(closer, "close", None)) is not None:
                close()


class EchoApp(CallApp):
    """Diagnostics: every call hears itself (about 40 ms later)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def answer(self, call: PhoneCall) -> None:
        """Echo this call until it ends."""
        task = asyncio.get_running_loop().create_task(self._echo(call))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _echo(self, call: PhoneCall) -> None:
        try:
            await call.media_ready.wait()
            while (frame := await call.next_frame()) is not None:
                call.play(frame)
        finally:
            call.hangup_now()
            call_event("end", call.name, caller=call.caller_tag,
                       duration_s=f"{call.duration():.1f}", mode="echo")
            if self.endpoint is not None:
                self.endpoint.forget(call)

    async def close(self) -> None:
        """Stop echoing."""
        for task in list(self._tasks):
            task.cancel()


if __name__ == "__main__":
    sys.exit(main())
