"""The SIP layer against real peers: codecs, capacity, bad input, registration, the echo
diagnostics mode and the worker pool. Bad input never takes a worker down: after each attack a
real call is answered and heard."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tests.e2e.stack import Stack
from tests.phone.conftest import Speech
from tests.phone.harness import (
    RATE,
    Baresip,
    PhoneWorker,
    free_sip_port,
    run_sipp,
    silence,
    sipp_command,
    sipp_messages,
    windowed_match,
)


def answered_and_heard(worker: PhoneWorker, callers: Callable[..., Baresip], speech: Speech,
                       user: str) -> None:
    """A normal call still works: answered, and the greeting begins."""
    caller = callers(user)
    caller.dial(worker.uri)
    caller.wait_event("CALL_ESTABLISHED")
    caller.wait_heard(speech.audio("您好"), check_s=0.4, timeout=30)
    caller.hangup()


def test_unsupported_codecs_only_are_refused_with_488(line: PhoneWorker, tmp_path: Path) -> None:
    result = run_sipp("uac_codec_488.xml", f"127.0.0.1:{line.port}", workdir=tmp_path,
                      extra=["-s", "assistant"])
    assert result.returncode == 0, result.stdout[-2000:]
    assert "SIP/2.0 488" in sipp_messages(tmp_path, "uac_codec_488.xml")
    assert not line.call_events("start") or all(
        e.get("caller") != "anonymous" for e in line.call_events("start")
    )


def test_malformed_sip_and_rtp_garbage_leave_the_line_working(
    line: PhoneWorker, callers: Callable[..., Baresip], speech: Speech, tmp_path: Path
) -> None:
    # A body that is no SDP: 400.
    result = run_sipp("uac_bad_sdp.xml", f"127.0.0.1:{line.port}", workdir=tmp_path,
                      extra=["-s", "assistant"])
    assert result.returncode == 0, result.stdout[-2000:]
    # Datagrams and a TCP stream that are no SIP at all.
    junk = [os.urandom(n) for n in (1, 40, 700, 1400)] + [
        b"INVITE sip:x SIP/2.0\r\n\r\n",
        b"INVITE sip:assistant@127.0.0.1 SIP/2.0\r\nCSeq: one INVITE\r\n"
        b"Content-Length: 9999\r\n\r\n",
        b"\r\n\r\n" * 100,
    ]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        for payload in junk:
            udp.sendto(payload, ("127.0.0.1", line.port))
    with socket.create_connection(("127.0.0.1", line.port)) as tcp:
        for payload in junk:
            tcp.sendall(payload)
    # RTP garbage at a live call's media port, while the call holds.
    sipp = subprocess.Popen(
        sipp_command("uac_rtp_garbage.xml", f"127.0.0.1:{line.port}", port=free_sip_port(1),
                     workdir=tmp_path, extra=["-s", "assistant", "-set", "hold_ms", "3000"]),
        cwd=tmp_path, stdout=subprocess.DEVNULL,
    )
    log = tmp_path / "uac_rtp_garbage.xml.log"
    deadline = time.monotonic() + 20
    while not (found := re.search(r"RTP_PORT (\d+)", log.read_text() if log.exists() else "")):
        assert time.monotonic() < deadline, "no call for the RTP garbage"
        time.sleep(0.1)
    rtp_port = int(found.group(1))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        for n in range(1500):
            udp.sendto(os.urandom(n % 300), ("127.0.0.1", rtp_port))
            # RTP-shaped: version 2, odd payload types, CSRC counts past the packet's end
            udp.sendto(bytes([0x80 | (n % 16), n % 128]) + os.urandom(30), ("127.0.0.1", rtp_port))
            udp.sendto(os.urandom(64), ("127.0.0.1", rtp_port + 1))  # RTCP
    assert sipp.wait(timeout=30) == 0  # the call still ended normally (BYE answered)
    assert line.alive()
    answered_and_heard(line, callers, speech, "13900000021")


def test_twenty_calls_at_once_four_answered_the_rest_busy(
    line: PhoneWorker, callers: Callable[..., Baresip], speech: Speech, tmp_path: Path
) -> None:
    started = len(line.call_events("start"))
    result = run_sipp(
        "uac_busy.xml",
        f"127.0.0.1:{line.port}",
        workdir=tmp_path,
        calls=20,
        rate=200,
        extra=["-s", "assistant", "-set", "hold_ms", "3000"],
    )
    assert result.returncode == 0, result.stdout[-2000:]
    messages = sipp_messages(tmp_path, "uac_busy.xml")
    answered = re.findall(r"^SIP/2\.0 200 OK\r?\n(?:.*\r?\n)*?CSeq: 1 INVITE", messages, re.M)
    busy = re.findall(r"^SIP/2\.0 486 ", messages, re.M)
    assert (len(answered), len(busy)) == (4, 16)
    assert len(line.call_events("start")) == started + 4
    line.wait_log(r"event=end ", count=len(line.call_events("end")))
    assert line.alive()
    answered_and_heard(line, callers, speech, "13900000022")


def test_registers_at_a_registrar_with_digest_auth(stack: Stack, tmp_path: Path) -> None:
    registrar_port = free_sip_port(1)
    outcome: dict[str, int] = {}

    def registrar() -> None:
        result = run_sipp(
            "uas_registrar.xml",
            None,
            workdir=tmp_path,
            port=registrar_port,
            keys={"user": "linli-line", "password": "s3cret-word"},
        )
        outcome["code"] = result.returncode

    thread = threading.Thread(target=registrar)
    thread.start()
    time.sleep(0.5)
    worker = PhoneWorker(
        tmp_path / "w",
        env={
            **stack.env,
            "PHONE_REGISTRAR": f"sip:127.0.0.1:{registrar_port}",
            "PHONE_SIP_USERNAME": "linli-line",
            "PHONE_SIP_PASSWORD": "s3cret-word",
        },
        args=["--echo"],
    ).start()
    try:
        worker.wait_log(r"registration active \(200", timeout=20)
    finally:
        worker.stop()
        thread.join(timeout=30)
    assert outcome["code"] == 0
    messages = sipp_messages(tmp_path, "uas_registrar.xml")
    assert 'Authorization: Digest username="linli-line"' in messages
    assert "s3cret-word" not in messages + worker.log()


def test_echo_mode_sends_the_callers_audio_back_intact(
    stack: Stack, callers: Callable[..., Baresip], speech: Speech, tmp_path: Path
) -> None:
    worker = PhoneWorker(tmp_path / "w", env=dict(stack.env), args=["--echo"]).start()
    try:
        words = speech.audio("您好，我是邻里小助手。")
        caller = callers("13900000023", audio=silence(0.5) + words.astype("<i2").tobytes(),
                         call_seconds=2)
        caller.dial(worker.uri)
        caller.wait_event("CALL_ESTABLISHED")
        offset = caller.wait_heard(words, check_s=len(words) / RATE, timeout=30)
        match = windowed_match(caller.heard(), words, offset=offset)
        assert match.sounds_like(), match.windows
        caller.hangup()
    finally:
        worker.stop()


def test_pool_restarts_a_worker_that_died(stack: Stack, tmp_path: Path) -> None:
    pool = PhoneWorker(tmp_path / "pool", env=dict(stack.env), workers=2, args=["--echo"]).start()
    try:
        pids = dict(re.findall(r"worker (\d+) started on port \d+ \(pid (\d+)\)", pool.log()))
        os.kill(int(pids["1"]), signal.SIGKILL)
        pool.wait_log(r"worker 1 exited with -9; restarting", timeout=10)
        pool.wait_log(r"worker 1 started on port", count=2, timeout=10)
        pool.wait_log(r"worker listening on", count=3, timeout=30)
    finally:
        code = pool.stop()
    assert code == 0
    assert pool.log().count("stopped") >= 2  # SIGTERM reached both workers
