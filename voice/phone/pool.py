"""A supervisor running the phone line's worker processes, one SIP port each.

The pjsua2 wheel holds at most 4 calls per process, so capacity comes from processes:
worker i listens on ``PHONE_SIP_PORT + i``. A SIP load balancer (deploy/kamailio/) or a PBX
hunt group spreads calls over them behind one address. A worker that dies is started again
(with a growing pause if it keeps dying); SIGTERM or SIGINT stops them all.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType

from voice.phone.config import PhoneSettings

logger = logging.getLogger(__name__)

STOP_GRACE_S = 10.0
MAX_BACKOFF_S = 30.0
# A worker that ran this long counts as healthy again (its restart pause resets).
HEALTHY_AFTER_S = 60.0


@dataclass
class Worker:
    """One worker process and its restart bookkeeping."""

    index: int
    port: int
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    next_start: float = 0.0
    backoff_s: float = field(default=1.0)


class WorkerPool:
    """Starts, watches and stops the worker processes."""

    def __init__(
        self,
        settings: PhoneSettings,
        *,
        command: Sequence[str] | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.settings = settings
        self.command = list(command or [sys.executable, "-m", "voice.phone"])
        self.extra_args = list(extra_args)
        self.workers = [
            Worker(index, port) for index, port in enumerate(settings.worker_ports())
        ]
        self._stopping = False

    def start(self) -> None:
        """Start every worker."""
        for worker in self.workers:
            self._spawn(worker)

    def _spawn(self, worker: Worker) -> None:
        argv = [*self.command, "--worker-index", str(worker.index), *self.extra_args]
        worker.process = subprocess.Popen(argv)  # noqa: S603 (our own interpreter and module)
        worker.started_at = time.monotonic()
        logger.info("phone: worker %d started on port %d (pid %d)",
                    worker.index, worker.port, worker.process.pid)

    def check(self) -> None:
        """Restart workers that exited (after their pause)."""
        now = time.monotonic()
        for worker in self.workers:
            process = worker.process
            if process is not None and process.poll() is None:
                if now - worker.started_at > HEALTHY_AFTER_S:
                    worker.backoff_s = 1.0
                continue
            if process is not None:
                code = process.returncode
                worker.process = None
                worker.next_start = now + worker.backoff_s
                logger.error("phone: worker %d exited with %s; restarting in %.0f s",
                             worker.index, code, worker.backoff_s)
                worker.backoff_s = min(worker.backoff_s * 2, MAX_BACKOFF_S)
            if not self._stopping and now >= worker.next_start:
                worker.restarts += 1
                self._spawn(worker)

    def stop(self) -> None:
        """SIGTERM every worker, wait for them, SIGKILL the ones that hang."""
        self._stopping = True
        running = [w.process for w in self.workers if w.process and w.process.poll() is None]
        for process in running:
            process.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for process in running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def run(self) -> int:
        """Supervise until SIGTERM/SIGINT; the exit code."""
        stop = False

        def request_stop(signum: int, frame: FrameType | None) -> None:
            nonlocal stop
            stop = True

        signals = (signal.SIGTERM, signal.SIGINT)
        previous = {sig: signal.signal(sig, request_stop) for sig in signals}
        try:
            self.start()
            while not stop:
                time.sleep(0.5)
                self.check()
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0
