"""The whole dialogue stack as real processes: records backend, action server, Rasa."""

import base64
import contextlib
import os
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
RASA = str(ROOT / ".venv-rasa" / "bin" / "rasa")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def trained_model() -> Path:
    """The current model, trained first if its inputs changed (scripts/model.py).

    LINLI_TEST_MODEL names another model instead (handy while the bot is being edited).
    """
    if override := os.environ.get("LINLI_TEST_MODEL"):
        return Path(override)
    out = subprocess.run(
        [PYTHON, str(ROOT / "scripts" / "model.py")], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"training failed:\n{out.stderr[-3000:]}")
    return Path(out.stdout.strip().splitlines()[-1])


@contextmanager
def process(
    name: str,
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    health_url: str,
    logs: Path,
    cwd: Path = ROOT,
    timeout: float = 60,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a service, wait until its health URL answers, stop it afterwards."""
    log_path = logs / f"{name}.log"
    with log_path.open("wb") as log:
        child = subprocess.Popen(
            list(command), cwd=cwd, env=dict(env), stdout=log, stderr=subprocess.STDOUT
        )
        try:
            _wait_healthy(name, child, health_url, timeout, log_path)
            yield child
        finally:
            child.terminate()
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def _wait_healthy(
    name: str, child: subprocess.Popen[bytes], url: str, timeout: float, log_path: Path
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"{name} exited:\n{log_path.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(
        f"{name} not healthy after {timeout} s:\n{log_path.read_text(errors='replace')[-3000:]}"
    )


@dataclass
class Stack:
    """Addresses and secrets of a running stack."""

    records_url: str
    rasa_url: str
    actions_url: str
    model: Path
    logs: Path
    service_token: str
    rasa_token: str
    demo_password: str
    env: dict[str, str]
    rasa_pid: int = 0
    rasa_launched_at: float = 0.0  # time.perf_counter() when Rasa was started

    def chat(self, sender: str, text: str) -> list[dict[str, Any]]:
        """Send one message through the REST channel; the bot's replies."""
        response = httpx.post(
            f"{self.rasa_url}/webhooks/rest/webhook",
            json={"sender": sender, "message": text},
            timeout=30,
        )
        response.raise_for_status()
        messages: list[dict[str, Any]] = response.json()
        return messages

    def records(self) -> httpx.Client:
        """A client of the records API holding the service token."""
        return httpx.Client(
            base_url=self.records_url,
            headers={"Authorization": f"Bearer {self.service_token}"},
            timeout=10,
        )


def stack_env(workdir: Path) -> dict[str, str]:
    """Fresh secrets and a fresh SQLite database, overriding anything in the repo's .env."""
    return {
        **os.environ,
        "LINLI_ENV": "development",
        "DATABASE_URL": f"sqlite:///{workdir / 'records.db'}",
        "SERVICE_TOKEN": secrets.token_urlsafe(32),
        "SECRET_KEY": secrets.token_urlsafe(32),
        "FIELD_ENCRYPTION_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "BLIND_INDEX_KEY": secrets.token_urlsafe(32),
        "DEMO_STAFF_PASSWORD": secrets.token_urlsafe(12),
        "RASA_TOKEN": secrets.token_urlsafe(16),
        "RECORDS_WORKERS": "1",
        "ACTIONS_OUTBOX_PATH": str(workdir / "outbox.db"),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
        "PYTHONUNBUFFERED": "1",
    }


@contextmanager
def running_stack(workdir: Path, model: Path) -> Iterator[Stack]:
    """Records (with demo data), the action server and Rasa, each on a free port."""
    env = stack_env(workdir)
    records_port, actions_port, rasa_port = free_port(), free_port(), free_port()
    records_url = f"http://127.0.0.1:{records_port}"
    actions_url = f"http://127.0.0.1:{actions_port}"
    rasa_url = f"http://127.0.0.1:{rasa_port}"
    for step in ("migrate", "demo"):
        subprocess.run(
            [PYTHON, "-m", "records", step], env=env, cwd=ROOT, check=True, capture_output=True
        )
    with ExitStack() as stack:
        stack.enter_context(
            process(
                "records",
                [PYTHON, "-m", "records", "serve"],
                env={**env, "RECORDS_PORT": str(records_port)},
                health_url=f"{records_url}/health",
                logs=workdir,
            )
        )
        stack.enter_context(
            process(
                "actions",
                [PYTHON, "-m", "rasa_sdk", "--actions", "actions", "--port", str(actions_port)],
                env={**env, "SANIC_HOST": "127.0.0.1", "RECORDS_URL": records_url},
                health_url=f"{actions_url}/health",
                logs=workdir,
            )
        )
        launched = time.perf_counter()
        rasa = stack.enter_context(
            rasa_server("rasa", model, rasa_port, env=env, actions_url=actions_url, logs=workdir)
        )
        yield Stack(
            records_url,
            rasa_url,
            actions_url,
            model,
            workdir,
            env["SERVICE_TOKEN"],
            env["RASA_TOKEN"],
            env["DEMO_STAFF_PASSWORD"],
            env,
            rasa.pid,
            launched,
        )


def rasa_server(
    name: str,
    model: Path,
    port: int,
    *,
    env: Mapping[str, str],
    actions_url: str,
    logs: Path,
    endpoints: str = "endpoints.yml",
) -> "contextlib.AbstractContextManager[subprocess.Popen[bytes]]":
    """A Rasa server on `port` with the REST channel and the HTTP API (token RASA_TOKEN)."""
    return process(
        name,
        [
            RASA,
            "run",
            "--enable-api",
            # one argument: a random token may start with "-", which argparse takes for an option
            f"--auth-token={env['RASA_TOKEN']}",
            "--interface",
            "127.0.0.1",
            "--port",
            str(port),
            "--model",
            str(model),
            "--credentials",
            "credentials.yml",
            "--endpoints",
            endpoints,
        ],
        env={**env, "ACTIONS_URL": f"{actions_url}/webhook"},
        health_url=f"http://127.0.0.1:{port}/",
        logs=logs,
        cwd=ROOT / "bot",
        timeout=240,
    )
