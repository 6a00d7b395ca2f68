"""The actions' records client and outbox against a real local HTTP server.

``FakeRecords`` is a tiny Starlette app served by uvicorn on a free 127.0.0.1 port in a
background thread. Like the real backend it checks the bearer token, answers errors as
problem+json with a Chinese detail and replays a create sent again with the same
Idempotency-Key (header ``Idempotent-Replayed: true``). Faults are scripted per request.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from actions import outbox as outbox_module
from actions import records_client
from actions.outbox import Outbox, deliver_pending, post_or_queue, start_background_delivery
from actions.records_client import (
    UNAVAILABLE_ZH,
    RecordsClient,
    RecordsRefused,
    RecordsSettings,
    RecordsUnavailable,
    form_idempotency_key,
)

REPO = Path(__file__).resolve().parents[2]
TOKEN = "test-service-token-0123456789"
REPAIRS = "/api/v1/repairs"
DETAIL_422 = "提交的信息有误：description：缺少必填项。"
PROBLEM = "application/problem+json"


def problem(status: int, code: str, detail: str) -> JSONResponse:
    """A problem+json response as the records backend makes them."""
    body = {
        "type": f"https://linli.example/problems/{code}",
        "title": code.replace("-", " "),
        "status": status,
        "detail": detail,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


class FakeRecords:
    """The records backend's contract, with faults scripted one request at a time.

    Faults: ``500`` (fail before creating), ``422`` (refuse), ``record-then-503`` (create,
    then fail as if the answer were lost), ``record-then-hang`` (create, then answer too late
    for the client's read timeout).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.faults: list[str] = []
        self.seen: list[tuple[str, str | None]] = []  # (path, Idempotency-Key) of each request
        self.records: list[dict[str, Any]] = []  # what was actually created
        self.by_key: dict[str, tuple[str, dict[str, Any]]] = {}  # key -> (body, response)
        self.app = Starlette(
            routes=[
                Route(REPAIRS, self.create, methods=["POST"]),
                Route("/api/v1/alerts", self.create, methods=["POST"]),
                Route(REPAIRS, self.list_repairs, methods=["GET"]),
            ]
        )

    def reset(self) -> None:
        with self.lock:
            self.faults.clear()
            self.seen.clear()
            self.records.clear()
            self.by_key.clear()

    def keys_seen(self) -> list[str | None]:
        return [key for _, key in self.seen]

    def _authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {TOKEN}"

    async def list_repairs(self, request: Request) -> Response:
        if not self._authorized(request):
            return problem(401, "http-401", "请先登录或提供有效的服务令牌。")
        return JSONResponse({"items": [], "total": 0, "query": dict(request.query_params)})

    async def create(self, request: Request) -> Response:
        if not self._authorized(request):
            return problem(401, "http-401", "请先登录或提供有效的服务令牌。")
        key = request.headers.get("idempotency-key")
        raw = (await request.body()).decode()
        with self.lock:
            self.seen.append((request.url.path, key))
            fault = self.faults.pop(0) if self.faults else None
        if fault == "500":
            return problem(500, "internal-error", "系统出了点问题，请稍后再试。")
        if fault == "422":
            return problem(422, "validation-error", DETAIL_422)
        response, replayed = self._create_once(request.url.path, key, raw)
        if response is None:
            return problem(422, "idempotency-key-reused", "这个请求编号已用于另一份不同的内容。")
        if fault == "record-then-503":
            return problem(503, "unavailable", "系统暂时不可用。")
        if fault == "record-then-hang":
            await asyncio.sleep(1.0)
        headers = {"Idempotent-Replayed": "true"} if replayed else {}
        return JSONResponse(response, status_code=201, headers=headers)

    def _create_once(
        self, path: str, key: str | None, raw: str
    ) -> tuple[dict[str, Any] | None, bool]:
        """Create, or replay what this key created before; None if the key's body differs."""
        with self.lock:
            if key is not None and key in self.by_key:
                stored_raw, stored = self.by_key[key]
                return (stored, True) if stored_raw == raw else (None, False)
            record = {"id": len(self.records) + 1, "path": path, **json.loads(raw)}
            self.records.append(record)
            if key is not None:
                self.by_key[key] = (raw, record)
            return record, False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerThread:
    """uvicorn serving an app on 127.0.0.1:port in a daemon thread."""

    def __init__(self, app: Starlette, port: int) -> None:
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            lifespan="off",
            loop="asyncio",
            http="h11",
            ws="none",
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 5
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(5)


@pytest.fixture(scope="module")
def backend() -> Iterator[tuple[FakeRecords, str]]:
    """One fake backend for the module; each test gets it reset."""
    fake = FakeRecords()
    with ServerThread(fake.app, free_port()) as server:
        yield fake, server.url


@pytest.fixture
def fake(backend: tuple[FakeRecords, str]) -> FakeRecords:
    backend[0].reset()
    return backend[0]


@pytest.fixture
def url(backend: tuple[FakeRecords, str]) -> str:
    return backend[1]


class Sleeps:
    """Records backoff sleeps instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def settings(url: str, **overrides: Any) -> RecordsSettings:
    values: dict[str, Any] = {
        "base_url": url,
        "token": TOKEN,
        "connect_timeout": 1.0,
        "read_timeout": 2.0,
        "attempts": 3,
        **overrides,
    }
    return RecordsSettings(**values)


def run(make: Callable[[], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        return await make()

    return asyncio.run(main())


# --- settings -----------------------------------------------------------------------------


def test_settings_come_from_env_over_dotenv(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "# comment\nRECORDS_URL=http://records.internal:9000/\nSERVICE_TOKEN='from-file'\n"
        "export RECORDS_READ_TIMEOUT=7\nRECORDS_RETRY_ATTEMPTS=5\n",
        encoding="utf-8",
    )
    s = RecordsSettings.from_env({"SERVICE_TOKEN": "from-env"}, dotenv_path=dotenv)
    assert (s.base_url, s.token, s.read_timeout, s.attempts) == (
        "http://records.internal:9000",
        "from-env",
        7.0,
        5,
    )
    assert s.connect_timeout == 2.0
    # Without RECORDS_URL: the address the backend binds, a bind-all host meaning localhost.
    bound = RecordsSettings.from_env(
        {"RECORDS_HOST": "0.0.0.0", "RECORDS_PORT": "8123"}, dotenv_path=None
    )
    assert bound.base_url == "http://127.0.0.1:8123"
    assert RecordsSettings.from_env({}, dotenv_path=None).base_url == "http://127.0.0.1:8000"
    with pytest.raises(ValueError, match="RECORDS_READ_TIMEOUT"):
        RecordsSettings.from_env({"RECORDS_READ_TIMEOUT": "soon"}, dotenv_path=None)


def test_backoff_doubles_with_bounded_jitter() -> None:
    exact = RecordsSettings(jitter=0)
    assert [exact.backoff(n) for n in (1, 2, 3, 5)] == [0.2, 0.4, 0.8, 2.0]
    jittered = RecordsSettings()
    delays = {round(jittered.backoff(1), 6) for _ in range(50)}
    assert len(delays) > 1
    assert all(0.15 <= d <= 0.25 for d in delays)


def test_shared_client_reads_env_when_first_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECORDS_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("SERVICE_TOKEN", "token-set-after-import")

    async def scenario() -> None:
        client = records_client.get_client()
        assert client is records_client.get_client()
        assert client.base_url.startswith("http://127.0.0.1:1")
        await records_client.aclose()
        assert client.closed
        assert records_client.get_client() is not client
        await records_client.aclose()

    run(scenario)


def test_form_key_is_deterministic_and_hides_the_sender() -> None:
    key = form_idempotency_key("+8613800000000", "repair_form", {"a": 1, "b": "漏水"})
    assert key == form_idempotency_key("+8613800000000", "repair_form", {"b": "漏水", "a": 1})
    assert key.startswith("repair_form:")
    assert "13800000000" not in key
    assert key != form_idempotency_key("+8613800000000", "repair_form", {"a": 2, "b": "漏水"})
    assert key != form_idempotency_key("+8613800000000", "repair_form", {"a": 1}, scope="t2")
    assert len(form_idempotency_key("x", "f" * 500, {})) <= 200


# --- client against the fake backend -----------------------------------------------------


def test_get_sends_token_and_params(fake: FakeRecords, url: str) -> None:
    async def scenario() -> Any:
        async with RecordsClient(settings(url)) as client:
            return await client.get(REPAIRS, {"status": "open", "limit": 5})

    assert run(scenario)["query"] == {"status": "open", "limit": "5"}


def test_500_then_201_succeeds_with_the_same_key(fake: FakeRecords, url: str) -> None:
    fake.faults.append("500")
    sleeps = Sleeps()

    async def scenario() -> Any:
        async with RecordsClient(settings(url), sleep=sleeps) as client:
            return await client.post(REPAIRS, {"description": "楼道灯坏了"}, idempotency_key="k1")

    created = run(scenario)
    assert created["description"] == "楼道灯坏了"
    assert fake.keys_seen() == ["k1", "k1"]
    assert len(fake.records) == 1
    assert len(sleeps.delays) == 1


def test_generated_key_is_reused_by_every_retry(fake: FakeRecords, url: str) -> None:
    fake.faults.extend(["500", "500"])

    async def scenario() -> Any:
        async with RecordsClient(settings(url), sleep=Sleeps()) as client:
            return await client.post(REPAIRS, {"description": "水管漏水"})

    run(scenario)
    keys = fake.keys_seen()
    assert len(keys) == 3
    assert len(set(keys)) == 1
    assert uuid.UUID(str(keys[0])).version == 4
    assert len(fake.records) == 1


def test_lost_response_is_retried_and_replayed_not_duplicated(fake: FakeRecords, url: str) -> None:
    """The server creates the record but the answer comes too late: the retry replays it."""
    fake.faults.append("record-then-hang")

    async def scenario() -> Any:
        client = RecordsClient(settings(url, read_timeout=0.3), sleep=Sleeps())
        async with client:
            return await client.post(REPAIRS, {"description": "电梯停了"}, idempotency_key="k2")

    created = run(scenario)
    assert created["id"] == 1
    assert fake.keys_seen() == ["k2", "k2"]
    assert len(fake.records) == 1


def test_422_problem_is_refused_with_chinese_detail_and_not_retried(
    fake: FakeRecords, url: str
) -> None:
    fake.faults.append("422")
    sleeps = Sleeps()

    async def scenario() -> Any:
        async with RecordsClient(settings(url), sleep=sleeps) as client:
            return await client.post(REPAIRS, {"description": ""})

    with pytest.raises(RecordsRefused) as info:
        run(scenario)
    assert (info.value.status, info.value.code) == (422, "validation-error")
    assert info.value.detail_zh == DETAIL_422
    assert info.value.body["status"] == 422
    assert info.value.is_problem
    assert len(fake.seen) == 1
    assert sleeps.delays == []


def test_connection_refused_is_unavailable_after_the_configured_attempts() -> None:
    sleeps = Sleeps()
    nowhere = f"http://127.0.0.1:{free_port()}"

    async def scenario() -> Any:
        async with RecordsClient(settings(nowhere, attempts=3), sleep=sleeps) as client:
            return await client.post(REPAIRS, {"description": "x"})

    with pytest.raises(RecordsUnavailable) as info:
        run(scenario)
    assert info.value.attempts == 3
    assert info.value.status is None
    assert info.value.detail_zh == UNAVAILABLE_ZH
    assert "ConnectError" in str(info.value)
    assert len(sleeps.delays) == 2
    assert 0.15 <= sleeps.delays[0] <= 0.25
    assert 0.3 <= sleeps.delays[1] <= 0.5


def test_non_problem_4xx_and_deadline_with_mock_transport() -> None:
    """Answers that are not the backend's (a proxy page), and a deadline cutting retries."""
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path == "/missing":
            return httpx.Response(404, text="<html>not here</html>")
        return httpx.Response(503, headers={"Retry-After": "120"})

    async def scenario() -> None:
        mock = httpx.MockTransport(handler)
        s = settings("http://records.test", attempts=5, deadline=1.0)
        async with RecordsClient(s, transport=mock, sleep=Sleeps()) as client:
            with pytest.raises(RecordsRefused) as refused:
                await client.get("/missing")
            assert refused.value.code == "http-404"
            assert refused.value.detail_zh == "没有找到相关记录。"
            assert not refused.value.is_problem
            with pytest.raises(RecordsUnavailable) as unavailable:
                await client.get("/busy")
            assert unavailable.value.status == 503

    run(scenario)
    # Retry-After (capped at backoff_max, 2 s) would overrun the 1 s deadline: one try only.
    assert calls == ["/missing", "/busy"]


# --- outbox ---------------------------------------------------------------------------------


def test_outage_queues_then_delivers_exactly_once(tmp_path: Path) -> None:
    """Down: queued. Back, but the first answer is lost: kept. Next round: replayed, done."""
    port = free_port()
    fake = FakeRecords()
    box = Outbox(tmp_path / "outbox.db")
    s = settings(f"http://127.0.0.1:{port}", attempts=2)
    payload = {"description": "3号楼电梯停了", "building": "3"}

    async def while_down() -> tuple[Any, bool]:
        async with RecordsClient(s, sleep=Sleeps()) as client:
            return await post_or_queue(
                REPAIRS, payload, idempotency_key="form-1", client=client, outbox=box
            )

    assert run(while_down) == (None, True)
    [item] = box.pending()
    assert (item.path, item.body, item.idempotency_key) == (REPAIRS, payload, "form-1")
    assert "ConnectError" in (item.last_error or "")

    async def deliver() -> int:
        async with RecordsClient(replace(s, attempts=1), sleep=Sleeps()) as client:
            return await deliver_pending(client, box)

    with ServerThread(fake.app, port):
        fake.faults.append("record-then-503")
        assert run(deliver) == 0  # reached the backend, but the answer was a 503
        [item] = box.pending()
        assert item.attempts == 1
        assert "503" in (item.last_error or "")
        assert len(fake.records) == 1

        assert run(deliver) == 1
        assert run(deliver) == 0
    assert box.pending() == []
    delivered = box.get(item.id)
    assert delivered is not None
    assert delivered.state == "delivered"
    assert delivered.response["id"] == 1
    assert fake.keys_seen() == ["form-1", "form-1"]
    assert len(fake.records) == 1


def test_post_or_queue_goes_live_when_the_backend_answers(
    fake: FakeRecords, url: str, tmp_path: Path
) -> None:
    box = Outbox(tmp_path / "outbox.db")

    async def scenario() -> tuple[Any, bool]:
        async with RecordsClient(settings(url)) as client:
            return await post_or_queue(
                "/api/v1/alerts", {"kind": "fall"}, client=client, outbox=box
            )

    created, queued = run(scenario)
    assert not queued
    assert created["kind"] == "fall"
    assert box.counts() == {"pending": 0, "delivered": 0, "dead": 0}


def test_post_or_queue_reraises_a_refusal(fake: FakeRecords, url: str, tmp_path: Path) -> None:
    fake.faults.append("422")
    box = Outbox(tmp_path / "outbox.db")

    async def scenario() -> tuple[Any, bool]:
        async with RecordsClient(settings(url)) as client:
            return await post_or_queue(REPAIRS, {}, idempotency_key="k", client=client, outbox=box)

    with pytest.raises(RecordsRefused, match="validation-error"):
        run(scenario)
    assert box.pending() == []


def test_refused_delivery_is_kept_dead_and_the_rest_still_goes(
    fake: FakeRecords, url: str, tmp_path: Path
) -> None:
    box = Outbox(tmp_path / "outbox.db")
    first = box.enqueue(REPAIRS, {"description": ""}, idempotency_key="bad")
    second = box.enqueue("/api/v1/alerts", {"kind": "fire"}, idempotency_key="good")
    fake.faults.append("422")

    async def scenario() -> int:
        async with RecordsClient(settings(url)) as client:
            return await deliver_pending(client, box)

    assert run(scenario) == 1
    [dead] = box.dead()
    assert dead.id == first
    assert DETAIL_422 in (dead.last_error or "")
    assert dead.body == {"description": ""}
    assert box.get(second).state == "delivered"  # type: ignore[union-attr]
    assert run(scenario) == 0  # dead requests are not tried again
    assert box.revive(first)
    assert [i.id for i in box.pending()] == [first]


def test_token_refusal_keeps_the_request_pending(
    fake: FakeRecords, url: str, tmp_path: Path
) -> None:
    """A 401 is the deployment's fault, not the request's: it must not go dead."""
    box = Outbox(tmp_path / "outbox.db")
    box.enqueue(REPAIRS, {"description": "x"}, idempotency_key="k")

    async def scenario() -> int:
        async with RecordsClient(settings(url, token="wrong-token-0123456789")) as client:
            return await deliver_pending(client, box)

    assert run(scenario) == 0
    [item] = box.pending()
    assert "401" in (item.last_error or "")
    assert box.dead() == []


def test_enqueueing_a_key_twice_stores_it_once(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db")
    assert box.enqueue(REPAIRS, {"a": 1}, idempotency_key="same") == box.enqueue(
        REPAIRS, {"a": 1}, idempotency_key="same"
    )
    assert len(box.pending()) == 1


def test_outbox_survives_a_process_restart(tmp_path: Path) -> None:
    path = tmp_path / "var" / "outbox.db"
    script = (
        "import os, sys\n"
        "from actions.outbox import Outbox\n"
        "Outbox(sys.argv[1]).enqueue('/api/v1/alerts', {'kind': '求助'}, idempotency_key='sos')\n"
        "os._exit(0)\n"  # no clean shutdown
    )
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, cwd=REPO, timeout=30)
    [item] = Outbox(path).pending()
    assert (item.body, item.idempotency_key, item.attempts) == ({"kind": "求助"}, "sos", 0)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with Outbox(path)._connect() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_two_replicas_never_claim_the_same_request(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    ids = [Outbox(path).enqueue(REPAIRS, {"n": n}, idempotency_key=f"k{n}") for n in range(30)]
    claimed: dict[str, list[int]] = {"a": [], "b": []}

    def worker(name: str) -> None:
        box = Outbox(path)
        while (item := box.claim_next(name)) is not None:
            claimed[name].append(item.id)

    threads = [threading.Thread(target=worker, args=(name,)) for name in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(claimed["a"] + claimed["b"]) == ids
    assert Outbox(path).claim_next("c") is None  # all leased


def test_background_delivery_starts_once_and_delivers(
    fake: FakeRecords, url: str, tmp_path: Path
) -> None:
    box = Outbox(tmp_path / "outbox.db")
    box.enqueue(REPAIRS, {"description": "门禁坏了"}, idempotency_key="bg")

    async def scenario() -> None:
        async with RecordsClient(settings(url)) as client:
            task = start_background_delivery(client, box, interval=0.05)
            assert start_background_delivery(client, box, interval=0.05) is task
            try:
                for _ in range(100):
                    if not box.pending():
                        break
                    await asyncio.sleep(0.02)
            finally:
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task

    assert outbox_module._background is None or outbox_module._background.done()
    run(scenario)
    assert box.counts()["delivered"] == 1
    assert fake.keys_seen() == ["bg"]
