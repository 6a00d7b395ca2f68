"""The phone line under load: concurrent real-time calls from baresip callers, spread over a
pool of workers by Kamailio (deploy/kamailio/kamailio.cfg), against the real stack (records,
actions, Rasa) with real Vosk (the Korean test model) and real TTS.

Reported:
- calls sustained at once, and how many heard intact audio (the greeting, window by window
  against the line's own synthesis) and got an answer to what they said;
- INVITE -> 200 OK p50/p95, measured by SIPp (its response-time trace) with the callers'
  calls up, and the same for an echo worker (the SIP stack alone) as the run's baseline;
- end of speech -> first audio byte on the wire p50/p95: from the recogniser deciding the
  caller has finished to the first frame of the answer leaving the worker (the line logs
  it per turn); and, as the caller experiences it, from the caller's last voiced sample to
  the first voiced sample heard back (this one includes the recogniser's end-of-speech
  silence, ASR_ENDPOINT_SILENCE_S, 0.9 s by default);
- frames dropped and worker CPU.

    .venv/bin/python -m bench.phone_bench [--calls 8] [--workers 3] [--seconds 45]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import re
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from channels.rasa_client import BotReply
from tests.e2e.stack import Stack, running_stack, trained_model
from tests.phone.conftest import KOREAN_MODEL, Speech, phone_env
from tests.phone.harness import (
    NOT_FOUND,
    RATE,
    Baresip,
    PhoneWorker,
    find_audio,
    free_sip_port,
    read_samples,
    silence,
    sipp_command,
    voiced_after,
    windowed_match,
)
from voice.audio import read_wav, resample
from voice.phone.dialogue import phone_replies

CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "kamailio" / "kamailio.cfg"
KOREAN = "안녕하세요 수리를 신청하고 싶습니다"
# Each caller listens to the greeting first, then speaks once. Callers take turns in four
# groups 3 s apart (people on different calls do not all speak in the same second).
SPEAK_AT_S = 10.0
SPEAK_STAGGER_S = 3.0


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children that were waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(f) for f in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def worker_pids(pool: PhoneWorker) -> list[int]:
    """The pool's worker processes."""
    return [int(p) for p in re.findall(r"started on port \d+ \(pid (\d+)\)", pool.log())]


@contextlib.contextmanager
def kamailio(pool: PhoneWorker, workdir: Path) -> Iterator[str]:
    """Kamailio in front of the pool; its host:port."""
    workdir.mkdir(parents=True, exist_ok=True)
    listing = workdir / "dispatcher.list"
    listing.write_text("".join(f"1 sip:127.0.0.1:{pool.port + i}\n" for i in range(pool.workers)))
    port = free_sip_port(1)
    log = (workdir / "kamailio.log").open("wb")
    process = subprocess.Popen(
        ["kamailio", "-f", str(CONFIG), "-DD", "-E", "-Y", str(workdir), "-w", str(workdir),
         "-m", "32", "-M", "4", "-A", f"SIP_PORT={port}", "-A", f'DISPATCHER_LIST="{listing}"'],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 15
        while "Listening on" not in (workdir / "kamailio.log").read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("kamailio did not start")
            time.sleep(0.1)
        time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def invite_times(target: str, workdir: Path, *, calls: int, rate: int) -> list[float]:
    """INVITE -> 200 OK in ms for `calls` short calls (SIPp's response-time trace)."""
    argv = sipp_command(
        "uac_busy.xml", target, port=free_sip_port(1), workdir=workdir, calls=calls, rate=rate,
        extra=["-s", "assistant", "-set", "hold_ms", "300", "-trace_rtt", "-rtt_freq", "1"],
    )
    argv[argv.index("-l") + 1] = "3"  # at most 3 at once: measure answering, not refusing
    subprocess.run(argv, cwd=workdir, capture_output=True, timeout=120, check=False)
    times: list[float] = []
    for path in workdir.glob("uac_busy*_rtt.csv"):
        with path.open() as handle:
            for row in csv.DictReader(handle, delimiter=";"):
                value = row.get("response_time_ms") or ""  # whole milliseconds
                if value.strip():
                    times.append(float(value))
        path.unlink()
    return times


@dataclass
class CallResult:
    """What one caller experienced."""

    greeting_ok: bool = False
    answered: bool = False
    heard_reply_after_s: float | None = None


def korean_speech() -> bytes:
    """The caller's words (Korean: the only model here), 8 kHz s16le."""
    wav = subprocess.run(
        ["espeak-ng", "-v", "ko", "--stdout", KOREAN], capture_output=True, check=True
    ).stdout
    pcm, rate = read_wav(wav)
    return resample(pcm, rate, RATE)


def run_calls(
    stack: Stack, target: str, workdir: Path, speech: Speech, *, calls: int, seconds: float
) -> list[CallResult]:
    """`calls` callers at once, each listening, speaking once, listening, then hanging up."""
    words = korean_speech()
    greeting_text = stack.chat("phone:+8613999999999", "/greet")[0]["text"]
    greeting = speech.audio(phone_replies([BotReply(text=greeting_text)], greeting=True)[0].text)
    # What the dialogue answers words it does not understand (Korean, here), as spoken.
    answer_text = stack.chat("phone:+8613999999998", KOREAN)[0]["text"]
    answer = speech.audio(answer_text)
    agents = [
        Baresip(
            workdir / f"caller{i}",
            user=f"139{i:08d}",
            audio=silence(SPEAK_AT_S + (i % 4) * SPEAK_STAGGER_S) + words,
            call_seconds=seconds,
        ).start()
        for i in range(calls)
    ]
    results = [CallResult() for _ in agents]
    try:
        for agent in agents:
            agent.dial(f"sip:assistant@{target}")
        for agent, result in zip(agents, results, strict=True):
            with contextlib.suppress(TimeoutError):
                agent.wait_event("CALL_ESTABLISHED", timeout=20)
                result.answered = True
        # the last group's words, the end-of-speech silence, the answer
        time.sleep(SPEAK_AT_S + 3 * SPEAK_STAGGER_S + len(words) / 2 / RATE + 10)
        for agent, result in zip(agents, results, strict=True):
            if not result.answered:
                continue
            heard = agent.heard()
            match = windowed_match(heard, greeting, length_s=SPEAK_AT_S - 2)
            result.greeting_ok = match.sounds_like()
            sent_path = agent.dump("enc")
            sent = read_samples(sent_path) if sent_path else np.zeros(0)
            spoken = np.nonzero(np.abs(sent) > 300)[0]
            if len(spoken):
                end = int(spoken[-1])
                offset, _ = find_audio(heard, answer, start=end)
                if offset != NOT_FOUND and windowed_match(
                    heard, answer, offset=offset, length_s=1.0
                ).sounds_like():
                    reply = voiced_after(heard, max(end, offset)) or offset
                    result.heard_reply_after_s = (reply - end) / RATE
    finally:
        for agent in agents:
            agent.hangup()
        for agent in agents:
            agent.stop()
    return results


def main() -> None:
    """Run the benchmark and print its numbers."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=8, help="concurrent callers (default 8)")
    parser.add_argument("--workers", type=int, default=3, help="worker processes (default 3)")
    parser.add_argument("--seconds", type=float, default=45, help="length of each call")
    parser.add_argument("--verbose", action="store_true", help="print the workers' call log")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="phone-bench-") as tmp:
        workdir = Path(tmp)
        print("starting the stack (records, actions, Rasa) ...", flush=True)
        with running_stack(workdir / "stack", trained_model()) as stack:
            run(stack, workdir, args)


def run(stack: Stack, workdir: Path, args: argparse.Namespace) -> None:
    """The phases, with the stack up."""
    speech = Speech()
    echo = PhoneWorker(workdir / "echo", env=dict(stack.env), args=["--echo"], name="echo")
    echo.start()
    try:
        baseline = invite_times(f"127.0.0.1:{echo.port}", workdir, calls=60, rate=20)
    finally:
        echo.stop()

    pool = PhoneWorker(
        workdir / "pool", env=phone_env(stack, workdir, VOSK_MODEL_PATH=str(KOREAN_MODEL)),
        workers=args.workers,
    ).start()
    try:
        with kamailio(pool, workdir / "kamailio") as target:
            idle = invite_times(target, workdir, calls=12, rate=2)
            pids = worker_pids(pool) or [pool.pid]
            cpu_before = sum(cpu_seconds(p) for p in pids)
            started = time.monotonic()
            results: list[CallResult] = []
            runner = threading.Thread(
                target=lambda: results.extend(
                    run_calls(stack, target, workdir, speech, calls=args.calls,
                              seconds=args.seconds)
                )
            )
            runner.start()
            time.sleep(6)  # the callers are in their calls: measure answering under load
            loaded = invite_times(target, workdir, calls=12, rate=2)
            runner.join()
            elapsed = time.monotonic() - started
            cpu_used = sum(cpu_seconds(p) for p in pids) - cpu_before
        time.sleep(2)
        log = pool.log()
    finally:
        pool.stop()

    server = [float(v) for v in re.findall(r"event=reply trigger=speech latency_ms=(\d+)", log)]
    dropped = [int(v) for v in re.findall(r"frames_dropped=(\d+)", log)]
    answered = sum(r.answered for r in results)
    intact = sum(r.greeting_ok for r in results)
    replied = [r.heard_reply_after_s * 1000 for r in results if r.heard_reply_after_s is not None]
    print()
    print(f"phone line: {args.calls} concurrent calls, {args.workers} workers behind Kamailio")
    print(f"  answered                    {answered}/{args.calls}")
    print(f"  greeting heard intact       {intact}/{answered}")
    print(f"  answer heard after speaking {len(replied)}/{answered}")
    print(f"  frames dropped (inbound)    {sum(dropped)} (worst call {max(dropped, default=0)})")
    print(f"  worker CPU                  {cpu_used / elapsed * 100:.0f}% of one core "
          f"({cpu_used / elapsed * 100 / max(1, answered):.1f}% per call)")
    print("INVITE -> 200 OK (SIPp, ms)")
    print(f"  echo worker, idle (baseline) p50 {pct(baseline, 50):.1f}  p95 {pct(baseline, 95):.1f}"
          f"  n={len(baseline)}")
    print(f"  pool via Kamailio, idle      p50 {pct(idle, 50):.1f}  p95 {pct(idle, 95):.1f}"
          f"  n={len(idle)}")
    print(f"  pool via Kamailio, loaded    p50 {pct(loaded, 50):.1f}  p95 {pct(loaded, 95):.1f}"
          f"  n={len(loaded)}  ({args.calls} calls up)")
    print("end of speech -> first audio byte on the wire (ms)")
    print(f"  recogniser's end of speech -> first answer frame sent  p50 {pct(server, 50):.0f}"
          f"  p95 {pct(server, 95):.0f}  n={len(server)}  (goal <= 300/600)")
    print(f"  caller's last word -> first answer sound heard          p50 {pct(replied, 50):.0f}"
          f"  p95 {pct(replied, 95):.0f}  n={len(replied)}  (includes the 0.9 s end-of-speech"
          " silence)")
    if server:
        print(f"  mean {statistics.mean(server):.0f} ms")
    if getattr(args, "verbose", False):
        print("\n".join(line for line in log.splitlines() if "voice.phone.calls" in line))


if __name__ == "__main__":
    main()
