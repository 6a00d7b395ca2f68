"""Run Linli locally: prepare the database, start every service, supervise them.

Usage: ``.venv/bin/python scripts/run.py`` (what ``make run`` does).

Reads ``.env`` (variables already in the environment win), runs
``python -m records migrate`` and ``python -m records demo``, then starts the
services in SERVICES order, waiting for each one's health URL before starting
the next. Output of every child is prefixed with its name. Ctrl-C or SIGTERM
stops all of them; if one dies, the others are stopped and this exits non-zero.

Stdlib only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.client import HTTPException
from pathlib import Path
from types import FrameType
from typing import IO

from envfile import EnvFileError, read_env_file

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
STOP_GRACE_SECONDS = 10.0


# How long a service without a health URL must stay up to count as started.
NO_HEALTH_GRACE_S = 2.0


@dataclass(frozen=True)
class Link:
    """A line of the "where things are" table printed once everything is up."""

    label: str
    url: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Service:
    """A long-running child process."""

    name: str
    command: tuple[str, ...]
    host: str
    port: int
    health_url: str
    links: tuple[Link, ...] = field(default=())
    startup_timeout: float = 60.0
    cwd: str = "."
    extra_env: Mapping[str, str] = field(default_factory=dict)


def probe_host(host: str) -> str:
    """The address to connect to for a service bound to ``host``."""
    return "127.0.0.1" if host in ("", "0.0.0.0") else host  # noqa: S104 - not binding


def services(env: Mapping[str, str]) -> list[Service]:
    """The services ``make run`` starts, in start order.

    Later services may depend on earlier ones (Rasa needs the action server, voice
    needs Rasa and records), so each is started once the previous one is healthy.
    Adding one (Rasa 5005, actions 5055, voice 8080, phone 5070) is one entry, e.g.::

        Service(
            name="rasa",
            command=(str(ROOT / ".venv-rasa" / "bin" / "rasa"), "run", ...),
            host=env.get("RASA_HOST", "127.0.0.1"),
            port=int(env.get("RASA_PORT", "5005")),
            health_url=f"http://{probe_host(rasa_host)}:{rasa_port}/",
            links=(Link("Rasa", f"http://{probe_host(rasa_host)}:{rasa_port}"),),
            startup_timeout=180,
        )
    """
    python = str(VENV_PYTHON)
    records_host = env.get("RECORDS_HOST", "127.0.0.1")
    records_port = int(env.get("RECORDS_PORT", "8000"))
    records = f"http://{probe_host(records_host)}:{records_port}"
    return [
        Service(
            name="records",
            command=(python, "-m", "records", "serve"),
            host=records_host,
            port=records_port,
            health_url=f"{records}/health",
            links=(
                Link("records API", f"{records}/api/v1"),
                Link("OpenAPI docs", f"{records}/docs"),
                Link(
                    "staff console",
                    f"{records}/admin",
                    (
                        "users: admin, grid1, canteen1, leader1",
                        "password: see DEMO_STAFF_PASSWORD in .env",
                    ),
                ),
            ),
        ),
        *dialogue_services(env, records),
        *channel_services(env, records),
    ]


def dialogue_services(env: Mapping[str, str], records_url: str) -> list[Service]:
    """The action server and Rasa (with the model `scripts/model.py` trained or found)."""
    actions_host = env.get("ACTIONS_HOST", "127.0.0.1")
    actions_port = int(env.get("ACTIONS_PORT", "5055"))
    actions = f"http://{probe_host(actions_host)}:{actions_port}"
    rasa_host = env.get("RASA_HOST", "127.0.0.1")
    rasa_port = int(env.get("RASA_PORT", "5005"))
    rasa = f"http://{probe_host(rasa_host)}:{rasa_port}"
    rasa_bin = str(ROOT / ".venv-rasa" / "bin" / "rasa")
    return [
        Service(
            name="actions",
            command=(str(VENV_PYTHON), "-m", "rasa_sdk", "--actions", "actions",
                     "--port", str(actions_port)),
            host=actions_host,
            port=actions_port,
            health_url=f"{actions}/health",
            extra_env={"SANIC_HOST": actions_host, "RECORDS_URL": records_url},
        ),
        Service(
            name="rasa",
            # --auth-token=…: a random token may start with "-", which argparse takes for an option
            command=(rasa_bin, "run", "--enable-api", f"--auth-token={env.get('RASA_TOKEN', '')}",
                     "--interface", rasa_host, "--port", str(rasa_port),
                     "--model", env.get("RASA_MODEL", ""),
                     "--credentials", "credentials.yml", "--endpoints", "endpoints.yml"),
            host=rasa_host,
            port=rasa_port,
            health_url=f"{rasa}/",
            links=(
                Link("chat (REST)", f"{rasa}/webhooks/rest/webhook",
                     ("POST {\"sender\": \"web:me\", \"message\": \"我要报修\"}",)),
                Link("Rasa HTTP API", rasa, ("token: RASA_TOKEN in .env",)),
            ),
            startup_timeout=180,
            cwd="bot",
            extra_env={"ACTIONS_URL": f"{actions}/webhook", "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
                       "TF_CPP_MIN_LOG_LEVEL": "3"},
        ),
    ]


def channel_services(env: Mapping[str, str], records_url: str) -> list[Service]:
    """The voice web app, the phone line and the messaging channels, all talking to Rasa."""
    python = str(VENV_PYTHON)
    rasa_host = probe_host(env.get("RASA_HOST", "127.0.0.1"))
    rasa_url = f"http://{rasa_host}:{env.get('RASA_PORT', '5005')}"
    urls = {"RASA_URL": rasa_url, "RECORDS_URL": records_url}
    voice_host = env.get("VOICE_HOST", "127.0.0.1")
    voice_port = int(env.get("VOICE_PORT", "8080"))
    voice = f"http://{probe_host(voice_host)}:{voice_port}"
    channels_host = env.get("CHANNELS_HOST", "127.0.0.1")
    channels_port = int(env.get("CHANNELS_PORT", "8090"))
    channels = f"http://{probe_host(channels_host)}:{channels_port}"
    phone_port = int(env.get("PHONE_SIP_PORT", "5070"))
    return [
        Service(
            name="voice",
            command=(python, "-m", "voice", "web"),
            host=voice_host,
            port=voice_port,
            health_url=f"{voice}/health",
            links=(Link("voice web app", voice, ("one big button: 按住说话",)),),
            extra_env=urls,
        ),
        Service(
            name="phone",
            command=(python, "-m", "voice", "phone"),
            host=env.get("PHONE_SIP_HOST", "127.0.0.1"),
            port=phone_port,
            health_url="",
            links=(Link("phone line (SIP)", f"sip:assistant@127.0.0.1:{phone_port}",
                        ("e.g. baresip: /dial sip:assistant@127.0.0.1:" + str(phone_port),)),),
            extra_env=urls,
        ),
        Service(
            name="channels",
            command=(python, "-m", "channels", "serve"),
            host=channels_host,
            port=channels_port,
            health_url=f"{channels}/health",
            links=(Link("Telegram / WeChat webhooks", channels,
                        ("set TELEGRAM_TOKEN or WECHAT_* in .env to enable",)),),
            extra_env=urls,
        ),
        Service(
            name="notify",
            command=(python, "-m", "channels", "notify"),
            host="",
            port=0,
            health_url="",
            extra_env=urls,
        ),
    ]


def prepare_commands() -> list[tuple[str, ...]]:
    """One-off commands run before the services start; each must be idempotent."""
    python = str(VENV_PYTHON)
    return [
        (python, "-m", "records", "migrate"),
        (python, "-m", "records", "demo"),
    ]


def load_environment(env_file: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment for the children: ``.env`` values overridden by ``environ``."""
    merged = read_env_file(env_file)
    merged.update(environ)
    merged["PYTHONUNBUFFERED"] = "1"  # line-by-line output from Python children
    return merged


def port_in_use(host: str, port: int) -> bool:
    """True if something already accepts connections on host:port."""
    try:
        with socket.create_connection((probe_host(host), port), timeout=0.5):
            return True
    except OSError:
        return False


def is_healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - http only
            return 200 <= int(response.status) < 300
    except (OSError, HTTPException, ValueError):  # URLError is an OSError
        return False


def format_table(started: Sequence[Service]) -> str:
    """The "where things are" table."""
    links = [link for service in started for link in service.links]
    width = max((len(link.label) for link in links), default=0) + 2
    lines = ["", "Linli is running. Ctrl-C stops everything.", ""]
    for link in links:
        lines.append(f"  {link.label:<{width}}{link.url}")
        lines.extend(f"  {'':<{width}}{note}" for note in link.notes)
    lines.append("")
    return "\n".join(lines)


def pump_output(name: str, stream: IO[str], width: int) -> None:
    """Copy a child's output to ours, each line prefixed with its name."""
    prefix = f"{name:<{width}} | "
    for line in stream:
        sys.stdout.write(prefix + line if line.endswith("\n") else f"{prefix}{line}\n")
        sys.stdout.flush()


class Supervisor:
    """Starts services as child process groups and stops them all together."""

    def __init__(self, env: Mapping[str, str], prefix_width: int) -> None:
        self.env = dict(env)
        self.prefix_width = prefix_width
        self.children: list[tuple[Service, subprocess.Popen[str]]] = []
        self.pumps: list[threading.Thread] = []
        self.stop_requested = threading.Event()

    def request_stop(self, signum: int, _frame: FrameType | None) -> None:
        print(f"\nrun: {signal.Signals(signum).name} received, stopping", flush=True)
        self.stop_requested.set()

    def start(self, service: Service) -> subprocess.Popen[str]:
        # Own process group: a terminal Ctrl-C reaches only us, and stop() can
        # signal a service together with any processes it spawned.
        process = subprocess.Popen(  # noqa: S603 - fixed commands from services()
            service.command,
            cwd=ROOT / service.cwd,
            env={**self.env, **service.extra_env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            process_group=0,
        )
        assert process.stdout is not None
        pump = threading.Thread(
            target=pump_output,
            args=(service.name, process.stdout, self.prefix_width),
            daemon=True,
        )
        pump.start()
        self.pumps.append(pump)
        self.children.append((service, process))
        return process

    def wait_healthy(self, service: Service, process: subprocess.Popen[str]) -> str | None:
        """None once healthy, else why not."""
        if not service.health_url:
            # No HTTP endpoint (a SIP line, a worker): alive after a short grace period is enough.
            time.sleep(NO_HEALTH_GRACE_S)
            code = process.poll()
            return None if code is None else f"{service.name} exited with code {code} at start"
        deadline = time.monotonic() + service.startup_timeout
        while not is_healthy(service.health_url):
            if process.poll() is not None:
                return f"{service.name} exited with code {process.returncode} while starting"
            if self.stop_requested.is_set():
                return "stop requested"
            if time.monotonic() > deadline:
                return (
                    f"{service.name} did not answer {service.health_url} "
                    f"within {service.startup_timeout:.0f} s"
                )
            time.sleep(0.3)
        return None

    def first_dead(self) -> tuple[Service, int] | None:
        for service, process in self.children:
            code = process.poll()
            if code is not None:
                return service, code
        return None

    def stop(self) -> None:
        """SIGTERM every child group (last started first), SIGKILL after a grace period."""
        for _service, process in reversed(self.children):
            if process.poll() is None:
                signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for service, process in reversed(self.children):
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"run: {service.name} did not stop, killing it", flush=True)
                signal_group(process.pid, signal.SIGKILL)
                process.wait()
        for pump in self.pumps:  # let the last lines of output through
            pump.join(timeout=1)


def signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(pgid, signum)


def run_prepare_steps(env: Mapping[str, str], commands: Sequence[Sequence[str]]) -> str | None:
    """Run the one-off commands in order; None on success, else what failed."""
    for command in commands:
        print(f"run: {' '.join(command[1:])}", flush=True)
        result = subprocess.run(command, cwd=ROOT, env=dict(env), check=False)  # noqa: S603
        if result.returncode != 0:
            return f"`{' '.join(command[1:])}` failed with code {result.returncode}"
    return None


def supervise(env: Mapping[str, str], table: Sequence[Service]) -> int:
    busy = [s for s in table if s.port and port_in_use(s.host, s.port)]
    if busy:
        for s in busy:
            print(f"run: port {s.port} for {s.name} is already in use", file=sys.stderr)
        print("run: stop whatever uses it or change the port in .env", file=sys.stderr)
        return 1

    supervisor = Supervisor(env, prefix_width=max(len(s.name) for s in table))
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    for signum in STOP_SIGNALS:
        signal.signal(signum, supervisor.request_stop)
    try:
        for service in table:
            where = f" on {service.host}:{service.port}" if service.port else ""
            print(f"run: starting {service.name}{where}", flush=True)
            problem = supervisor.wait_healthy(service, supervisor.start(service))
            if supervisor.stop_requested.is_set():
                return 0
            if problem is not None:
                print(f"run: {problem}; stopping", file=sys.stderr, flush=True)
                return 1
        print(format_table(table), flush=True)
        while not supervisor.stop_requested.wait(0.5):
            dead = supervisor.first_dead()
            if dead is not None:
                service, code = dead
                print(
                    f"run: {service.name} exited with code {code}; stopping the others",
                    file=sys.stderr,
                    flush=True,
                )
                return 1
        return 0
    finally:
        supervisor.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main() -> int:
    env_file = ROOT / ".env"
    if not env_file.exists():
        print("run: .env is missing; run `make setup` first", file=sys.stderr)
        return 1
    if not VENV_PYTHON.exists():
        print("run: .venv is missing; run `make setup` first", file=sys.stderr)
        return 1
    try:
        env = load_environment(env_file, os.environ)
        table = services(env)
    except (EnvFileError, ValueError) as exc:  # e.g. RECORDS_PORT=abc
        print(f"run: bad setting: {exc}", file=sys.stderr)
        return 1
    (ROOT / "var").mkdir(exist_ok=True)
    try:
        failure = run_prepare_steps(env, prepare_commands())
    except KeyboardInterrupt:  # Ctrl-C before the services have started
        return 130
    if failure is not None:
        print(f"run: {failure}", file=sys.stderr)
        return 1
    return supervise(env, table)


if __name__ == "__main__":
    sys.exit(main())
