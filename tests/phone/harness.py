"""Real SIP peers and phone-line workers for the phone tests and the phone benchmark.

- :class:`Baresip`: Debian's baresip as a caller (or an auto-answering operator): a config
  directory of its own, a WAV as its microphone (``aufile``, padded to the call's length: it
  hangs up when the file ends), dumps of what it sends and hears (``sndfile``), and control
  over TCP (``ctrl_tcp``: netstring JSON commands and events).
- :class:`PhoneWorker`: ``python -m voice.phone`` as a process on its own port.
- :func:`run_sipp`: SIPp scenarios from tests/phone/sipp/.
- Audio checks that survive G.711 and jitter-buffer shifts: compare window by window.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import wave
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
SIPP_DIR = Path(__file__).resolve().parent / "sipp"
RATE = 8000
WINDOW_S = 0.05
NOT_FOUND = -(10**9)
REACQUIRE_S = 0.3

_port_lock = threading.Lock()
_next_port = 20000 + (os.getpid() % 500) * 40


def _bindable(port: int) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_sip_port(span: int = 2) -> int:
    """A port p with p..p+span-1 free for UDP and TCP (baresip also binds TLS on p+1)."""
    global _next_port
    with _port_lock:
        while True:
            port = _next_port
            _next_port += span
            if _next_port > 60000:
                _next_port = 20000
            if all(_bindable(p) for p in range(port, port + span)):
                return port


# --- audio ----------------------------------------------------------------------------------


def write_wav(path: Path, pcm: bytes, rate: int = RATE) -> Path:
    """Write s16le mono PCM as a WAV file."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm)
    return path


def read_samples(path: Path) -> np.ndarray:
    """The samples of a (possibly still growing) 16-bit mono WAV file, as float32."""
    data = path.read_bytes()
    if len(data) <= 44:
        return np.zeros(0, dtype=np.float32)
    body = data[44 : 44 + (len(data) - 44) // 2 * 2]
    return np.frombuffer(body, dtype="<i2").astype(np.float32)


def silence(seconds: float, rate: int = RATE) -> bytes:
    """Digital silence."""
    return bytes(int(seconds * rate) * 2)


def to_float(pcm: bytes) -> np.ndarray:
    """s16le bytes as float32 samples."""
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32)


def _norm_xcorr(haystack: np.ndarray, needle: np.ndarray) -> np.ndarray:
    """Normalised cross-correlation of `needle` at every offset of `haystack` (FFT)."""
    n, m = len(haystack), len(needle)
    if m == 0 or n < m:
        return np.zeros(0)
    size = 1 << int(np.ceil(np.log2(n + m)))
    corr = np.fft.irfft(np.fft.rfft(haystack, size) * np.conj(np.fft.rfft(needle, size)), size)
    corr = corr[: n - m + 1]
    energy = np.cumsum(np.concatenate(([0.0], haystack.astype(np.float64) ** 2)))
    needle_energy = float(np.sum(needle.astype(np.float64) ** 2))
    # Near-silent stretches of the haystack must not score by dividing by almost nothing.
    window_energy = np.maximum(energy[m:] - energy[:-m], needle_energy * 0.05)
    denom = np.sqrt(window_energy * needle_energy)
    return np.asarray(corr / np.maximum(denom, 1e-9))


def find_audio(
    heard: np.ndarray, expected: np.ndarray, *, start: int = 0, probe_s: float = 0.6
) -> tuple[int, float]:
    """Where `expected` begins in `heard` (its first voice at or after `start`).

    Returns (sample offset, correlation), or (NOT_FOUND, 0.0). The probe skips the leading
    silence of `expected`, so the offset may be a little below zero when the voice was
    heard from the very first sample.
    """
    voiced = np.nonzero(np.abs(expected) > 300)[0]
    lead = int(voiced[0]) if len(voiced) else 0
    probe = expected[lead : lead + int(probe_s * RATE)]
    scores = _norm_xcorr(heard[start:], probe)
    if len(scores) == 0:
        return NOT_FOUND, 0.0
    best = int(np.argmax(scores))
    return start + best - lead, float(scores[best])


@dataclass
class Match:
    """How well heard audio matched the expected audio, window by window."""

    offset: int
    windows: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        """Median correlation of the voiced windows."""
        return float(np.median(self.windows)) if self.windows else 0.0

    def fraction_above(self, threshold: float) -> float:
        """Share of voiced windows correlating above `threshold`."""
        if not self.windows:
            return 0.0
        return sum(w >= threshold for w in self.windows) / len(self.windows)

    def sounds_like(self) -> bool:
        """Heard as expected: most windows clearly correlate (other speech scores near 0.1).

        A loaded machine makes the jitter buffer skip or stretch a few windows of a second.
        """
        return self.median >= 0.75 and self.fraction_above(0.6) >= 0.7


def windowed_match(
    heard: np.ndarray,
    expected: np.ndarray,
    *,
    start: int = 0,
    max_shift_s: float = 0.04,
    length_s: float | None = None,
    offset: int | None = None,
) -> Match:
    """Compare `expected` with what was heard, in 50 ms windows.

    The utterance is located first; then each window is searched within ``max_shift_s`` of
    where the previous one was found, so jitter-buffer jumps (10-30 ms) and the synthesiser's
    small run-to-run timing differences do not count, while other speech does. Silent
    windows are skipped.
    """
    if offset is None:
        offset, _ = find_audio(heard, expected, start=start)
    match = Match(offset)
    if offset == NOT_FOUND:
        return match
    window = int(WINDOW_S * RATE)
    shift = int(max_shift_s * RATE)
    end = len(expected) if length_s is None else min(len(expected), int(length_s * RATE))
    lag = 0
    wide = int(REACQUIRE_S * RATE)
    for begin in range(0, end - window + 1, window):
        piece = expected[begin : begin + window]
        if np.sqrt(np.mean(piece**2)) < 300:
            continue  # silence between words: nothing to compare
        if offset + begin + lag < 0:
            continue  # before the first sample heard
        score, found = _best_near(heard, piece, offset + begin + lag, shift)
        if score < 0.6:
            # A bigger jump (two jitter buffers in a row, a late frame): look around the
            # utterance's own position, never drifting further than REACQUIRE_S from it.
            wider, found_wide = _best_near(heard, piece, offset + begin, wide)
            if wider > 0.8:
                score, found = wider, found_wide
        match.windows.append(score)
        if score > 0.6:
            lag = found - (offset + begin)  # follow the drift
    return match


def _best_near(heard: np.ndarray, piece: np.ndarray, at: int, shift: int) -> tuple[float, int]:
    """The best correlation of `piece` within `shift` samples of `at`, and where."""
    lo = max(0, at - shift)
    hi = min(len(heard), at + len(piece) + shift)
    scores = _norm_xcorr(heard[lo:hi], piece)
    if len(scores) == 0:
        return 0.0, at
    best = int(np.argmax(scores))
    return float(scores[best]), lo + best


def voiced_after(heard: np.ndarray, start: int, *, level: float = 300.0) -> int | None:
    """The first sample index at or after `start` in a voiced 20 ms frame, if any."""
    frame = RATE // 50
    for begin in range(start, len(heard) - frame + 1, frame):
        if np.sqrt(np.mean(heard[begin : begin + frame] ** 2)) > level:
            return begin
    return None


# --- baresip ----------------------------------------------------------------------------------


class Baresip:
    """One baresip user agent with its own config directory, driven over ctrl_tcp."""

    def __init__(
        self,
        workdir: Path,
        *,
        user: str = "caller",
        audio: bytes = b"",
        call_seconds: float = 60.0,
        auto_answer: bool = False,
    ) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.user = user
        self.sip_port = free_sip_port(2)
        self.ctrl_port = free_sip_port(1)
        self.auto_answer = auto_answer
        self.mic = write_wav(self.dir / "mic.wav", audio + silence(max(0.0, call_seconds)))
        self.events: list[dict[str, Any]] = []
        self._responses: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._sock: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._token = 0

    def _write_config(self) -> None:
        config = f"""
poll_method             epoll
sip_listen              127.0.0.1:{self.sip_port}
net_interface           127.0.0.1
audio_player            alsa,null
audio_source            aufile,{self.mic}
audio_alert             alsa,null
audio_srate             8000
audio_channels          1
module_path             /usr/lib/baresip/modules
module                  g711.so
module                  aufile.so
module                  alsa.so
module                  sndfile.so
module                  ctrl_tcp.so
module_app              account.so
module_app              menu.so
module_app              uuid.so
snd_path                {self.dir}/
ctrl_tcp_listen         127.0.0.1:{self.ctrl_port}
"""
        (self.dir / "config").write_text(config)
        answer = ";answermode=auto" if self.auto_answer else ""
        (self.dir / "accounts").write_text(
            f"<sip:{self.user}@127.0.0.1:{self.sip_port}>;regint=0{answer}\n"
        )

    @property
    def uri(self) -> str:
        """This agent's SIP URI (a transfer target)."""
        return f"sip:{self.user}@127.0.0.1:{self.sip_port}"

    def start(self) -> Baresip:
        """Start baresip and connect to its control port."""
        self._write_config()
        log = (self.dir / "baresip.log").open("wb")  # menu floods stdout
        # The only playback device without hardware is ALSA's null device, which never
        # blocks: baresip then spins a core per call. At the lowest priority the spinning
        # only takes CPU that nothing else wants (the line under test comes first).
        self._process = subprocess.Popen(
            ["nice", "-n", "19", "baresip", "-f", str(self.dir)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.dir,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                self._sock = socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    raise RuntimeError(f"baresip did not start: {self.log()[-2000:]}") from None
                time.sleep(0.05)
        self._sock.settimeout(None)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def log(self) -> str:
        """baresip's own output."""
        with contextlib.suppress(OSError):
            return (self.dir / "baresip.log").read_text(errors="replace")
        return ""

    def _read(self) -> None:
        buffer = b""
        assert self._sock is not None
        while True:
            try:
                chunk = self._sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while (colon := buffer.find(b":")) > 0:
                length = int(buffer[:colon])
                if len(buffer) < colon + 1 + length + 1:
                    break
                body = buffer[colon + 1 : colon + 1 + length]
                buffer = buffer[colon + 1 + length + 1 :]
                message = json.loads(body)
                with self._cond:
                    if message.get("event"):
                        self.events.append(message)
                    else:
                        self._responses.append(message)
                    self._cond.notify_all()

    def command(self, name: str, params: str = "", *, timeout: float = 10) -> dict[str, Any]:
        """Send a command; its response."""
        assert self._sock is not None
        self._token += 1
        token = f"t{self._token}"
        body = json.dumps({"command": name, "params": params, "token": token}).encode()
        self._sock.sendall(str(len(body)).encode() + b":" + body + b",")
        with self._cond:
            ok = self._cond.wait_for(
                lambda: any(r.get("token") == token for r in self._responses), timeout
            )
            if not ok:
                raise TimeoutError(f"baresip did not answer {name}")
            return next(r for r in self._responses if r.get("token") == token)

    def wait_event(self, kind: str, *, timeout: float = 20, after: int = 0) -> dict[str, Any]:
        """The first event of this type (from index `after` on), waiting for it."""

        def found() -> dict[str, Any] | None:
            return next((e for e in self.events[after:] if e.get("type") == kind), None)

        with self._cond:
            if not self._cond.wait_for(lambda: found() is not None, timeout):
                seen = [e.get("type") for e in self.events]
                raise TimeoutError(f"no {kind} from baresip within {timeout} s (saw {seen})")
            event = found()
            assert event is not None
            return event

    def has_event(self, kind: str) -> bool:
        """Whether an event of this type arrived."""
        with self._cond:
            return any(e.get("type") == kind for e in self.events)

    def dial(self, uri: str) -> None:
        """Call `uri`."""
        self.command("dial", uri)

    def send_digits(self, digits: str, *, gap_s: float = 0.25) -> None:
        """Press keys (RFC 4733), one at a time."""
        for digit in digits:
            self.command("sndcode", digit)
            time.sleep(gap_s)

    def hangup(self) -> None:
        """Hang up the current call."""
        with contextlib.suppress(TimeoutError, OSError):
            self.command("hangup", timeout=5)

    def dump(self, direction: str = "dec") -> Path | None:
        """The newest sndfile dump: "dec" what it heard, "enc" what it sent."""
        dumps = sorted(self.dir.glob(f"dump-*-{direction}.wav"))
        return dumps[-1] if dumps else None

    def heard(self) -> np.ndarray:
        """Everything heard so far in the current (latest) call."""
        path = self.dump("dec")
        return read_samples(path) if path else np.zeros(0, dtype=np.float32)

    def wait_heard(
        self,
        expected: np.ndarray,
        *,
        start: int = 0,
        timeout: float = 30.0,
        check_s: float = 1.0,
    ) -> int:
        """Wait until the first `check_s` seconds of `expected` have been heard after `start`
        (window by window, see :func:`windowed_match`); where they begin."""
        deadline = time.monotonic() + timeout
        voiced = np.nonzero(np.abs(expected) > 300)[0]
        lead = int(voiced[0]) if len(voiced) else 0
        length_s = min(check_s, (len(expected) - lead) / RATE)
        best, share, offset, heard = 0.0, 0.0, -1, np.zeros(0, dtype=np.float32)
        while time.monotonic() < deadline:
            heard = self.heard()
            offset, _ = find_audio(heard, expected, start=start)
            if offset != NOT_FOUND and offset + lead + int(length_s * RATE) <= len(heard):
                match = windowed_match(
                    heard, expected[: lead + int(length_s * RATE)], offset=offset
                )
                if match.median > best:
                    best, share = match.median, match.fraction_above(0.6)
                if match.sounds_like():
                    return offset
            time.sleep(0.2)
        raise TimeoutError(
            f"expected audio not heard within {timeout} s (best median {best:.2f} with "
            f"{share:.0%} of windows above 0.6; last found at "
            f"{offset / RATE:.2f} s of {len(heard) / RATE:.2f} s heard, searched from "
            f"{start / RATE:.2f} s)"
        )

    def stop(self) -> None:
        """Quit baresip."""
        if self._process is None:
            return
        with contextlib.suppress(Exception):
            self.command("quit", timeout=2)
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._process = None


# --- phone workers ---------------------------------------------------------------------------


class PhoneWorker:
    """`python -m voice.phone` as a process (one worker, or a pool with --workers)."""

    def __init__(
        self,
        workdir: Path,
        *,
        env: Mapping[str, str],
        port: int | None = None,
        workers: int = 1,
        args: Sequence[str] = (),
        name: str = "phone",
    ) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_sip_port(workers)
        self.workers = workers
        self.env = dict(env)
        self.args = list(args)
        self.log_path = self.dir / f"{name}-{self.port}.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        """Where to call the (first) worker."""
        return f"sip:assistant@127.0.0.1:{self.port}"

    def start(self, *, timeout: float = 60) -> PhoneWorker:
        """Start and wait until every worker listens."""
        argv = [PYTHON, "-m", "voice.phone", "--port", str(self.port), *self.args]
        if self.workers > 1:
            argv += ["--workers", str(self.workers)]
        else:
            argv += ["--worker-index", "0"]
        log = self.log_path.open("wb")
        self._process = subprocess.Popen(
            argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while self.log().count("worker listening on") < self.workers:
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"phone worker did not start:\n{self.log()[-3000:]}")
            time.sleep(0.1)
        return self

    def log(self) -> str:
        """The worker's log so far."""
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def call_events(self, event: str | None = None) -> list[dict[str, str]]:
        """The call log lines (`phone call=… event=…`) as dicts."""
        found = []
        for line in self.log().splitlines():
            if "voice.phone.calls" not in line:
                continue
            fields = dict(re.findall(r"(\w+)=(\S+)", line.split("phone ", 1)[-1]))
            if event is None or fields.get("event") == event:
                found.append(fields)
        return found

    def wait_log(self, pattern: str, *, count: int = 1, timeout: float = 30) -> None:
        """Until `pattern` (a regex) appears `count` times in the log."""
        deadline = time.monotonic() + timeout
        while len(re.findall(pattern, self.log())) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{pattern!r} not logged {count}x:\n{self.log()[-3000:]}")
            time.sleep(0.1)

    def alive(self) -> bool:
        """Whether the process still runs."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int:
        """The process id."""
        assert self._process is not None
        return self._process.pid

    def stop(self) -> int | None:
        """SIGTERM and wait; the exit code."""
        if self._process is None:
            return None
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        code = self._process.returncode
        self._process = None
        return code


@contextlib.contextmanager
def running(*agents: Baresip | PhoneWorker) -> Iterator[None]:
    """Stop the agents afterwards, whatever happens."""
    try:
        yield
    finally:
        for agent in reversed(agents):
            agent.stop()


# --- SIPp ------------------------------------------------------------------------------------


def sipp_command(
    scenario: str,
    target: str | None,
    *,
    port: int,
    workdir: Path,
    calls: int = 1,
    rate: int = 10,
    keys: Mapping[str, str] | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """The argument list for SIPp with a scenario from tests/phone/sipp/."""
    argv = [
        "sipp",
        *([target] if target else []),
        "-sf", str(SIPP_DIR / scenario),
        "-i", "127.0.0.1",
        "-p", str(port),
        "-m", str(calls),
        "-r", str(rate),
        "-l", str(calls),
        "-timeout", "60s",
        "-timeout_error",
        "-nostdin",
        "-trace_err", "-error_file", str(workdir / f"{scenario}.errors.log"),
        "-trace_msg", "-message_file", str(workdir / f"{scenario}.messages.log"),
        "-trace_logs", "-log_file", str(workdir / f"{scenario}.log"),
    ]
    for name, value in (keys or {}).items():
        argv += ["-key", name, value]
    return [*argv, *extra]


def run_sipp(
    scenario: str,
    target: str | None,
    *,
    workdir: Path,
    timeout: float = 90,
    **options: Any,
) -> subprocess.CompletedProcess[str]:
    """Run a SIPp scenario to its end; stdout, stderr and exit code (0: every call passed)."""
    port = options.pop("port", None) or free_sip_port(1)
    argv = sipp_command(scenario, target, port=port, workdir=workdir, **options)
    return subprocess.run(
        argv, cwd=workdir, capture_output=True, text=True, timeout=timeout, check=False
    )


def sipp_messages(workdir: Path, scenario: str) -> str:
    """Every SIP message SIPp sent and received in a run."""
    path = workdir / f"{scenario}.messages.log"
    return path.read_text(errors="replace") if path.exists() else ""
