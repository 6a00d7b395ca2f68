"""deploy/kamailio/kamailio.cfg in front of a pool of phone-line workers: Debian's kamailio
started with the repository's configuration (foreground, as this user, its own port), two
workers (python -m voice.phone --workers 2) behind it, real SIP callers in front."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.stack import Stack
from tests.phone.conftest import Speech
from tests.phone.harness import (
    ROOT,
    Baresip,
    PhoneWorker,
    free_sip_port,
    run_sipp,
    silence,
    sipp_messages,
    windowed_match,
)

CONFIG = ROOT / "deploy" / "kamailio" / "kamailio.cfg"


@pytest.fixture(scope="module")
def pool(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PhoneWorker]:
    """Two echo workers on consecutive ports (the SIP path is what is tested here)."""
    workers = PhoneWorker(
        tmp_path_factory.mktemp("pool"), env=dict(stack.env), workers=2, args=["--echo"]
    ).start()
    try:
        yield workers
    finally:
        workers.stop()


@pytest.fixture(scope="module")
def proxy(pool: PhoneWorker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Kamailio with the repository's config, dispatching to the pool; its SIP URI."""
    workdir = tmp_path_factory.mktemp("kamailio")
    listing = workdir / "dispatcher.list"
    listing.write_text(
        "".join(f"1 sip:127.0.0.1:{pool.port + i}\n" for i in range(pool.workers))
    )
    port = free_sip_port(1)
    log_path = workdir / "kamailio.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                "kamailio", "-f", str(CONFIG), "-DD", "-E", "-Y", str(workdir),
                "-w", str(workdir), "-m", "32", "-M", "4",
                "-A", f"SIP_PORT={port}", "-A", f'DISPATCHER_LIST="{listing}"',
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 15
        while "Listening on" not in log_path.read_text(errors="replace"):
            assert process.poll() is None, log_path.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "kamailio did not start"
            time.sleep(0.1)
        time.sleep(0.5)  # its worker processes take a moment after printing the listing
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert "ERROR" not in re.sub(r"(?m)^.*(ob_load_api|outbound module).*$", "",
                                 log_path.read_text(errors="replace"))


def test_calls_through_kamailio_land_on_both_workers_with_their_audio(
    pool: PhoneWorker, proxy: str, callers: Callable[..., Baresip], speech: Speech
) -> None:
    words = speech.audio("您好，我是邻里小助手。")
    pcm = silence(0.5) + words.astype("<i2").tobytes()
    agents = [callers(f"1390000003{i}", audio=pcm, call_seconds=3) for i in range(4)]
    for agent in agents:
        agent.dial(f"sip:assistant@{proxy}")
    for agent in agents:
        agent.wait_event("CALL_ESTABLISHED")
    for agent in agents:
        offset = agent.wait_heard(words, check_s=len(words) / 8000, timeout=30)
        assert windowed_match(agent.heard(), words, offset=offset).sounds_like()
        agent.hangup()
    per_worker = re.findall(r"call=w(\d+)-\w+ event=start", pool.log())
    assert {int(p) for p in per_worker} == {pool.port, pool.port + 1}
    assert len(per_worker) == 4
    pool.wait_log(r"event=end ", count=4)  # the BYEs went through the proxy


def test_when_every_worker_is_full_callers_get_busy(
    pool: PhoneWorker, proxy: str, tmp_path: Path
) -> None:
    started = len(re.findall(r"event=start", pool.log()))
    result = run_sipp(
        "uac_busy.xml", proxy, workdir=tmp_path, calls=10, rate=200,
        extra=["-s", "assistant", "-set", "hold_ms", "2000"],
    )
    assert result.returncode == 0, result.stdout[-2000:]
    messages = sipp_messages(tmp_path, "uac_busy.xml")
    answered = re.findall(r"^SIP/2\.0 200 OK\r?\n(?:.*\r?\n)*?CSeq: 1 INVITE", messages, re.M)
    busy = re.findall(r"^SIP/2\.0 486 ", messages, re.M)
    # 4 calls per worker: the proxy moved on to the other worker when one said busy
    assert (len(answered), len(busy)) == (8, 2)
    assert len(re.findall(r"event=start", pool.log())) == started + 8
