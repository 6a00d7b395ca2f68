"""Benchmark the records backend: the real server, over HTTP, on SQLite and PostgreSQL.

For each backend: a fresh database (a SQLite file in a temporary directory, or a new PostgreSQL
database that is dropped afterwards), fresh random secrets, `python -m records migrate` (or, while
no Alembic migration exists yet, an explicit, printed fallback to `Base.metadata.create_all`),
`python -m records demo`, then `python -m records serve` on a free port. N concurrent clients
holding the service token then run three phases, each timed for --seconds after a 1 s warm-up:

  baseline  GET /health: the same-run reference for what this machine can do at all
  read      GET a repair, GET a page of 20 residents, POST /identities/resolve, in turn
  write     POST /repairs with an Idempotency-Key (POST /residents if repairs are not served)

Exits 1 if any request failed, 2 if the run could not be set up. The server and the
databases are always cleaned up. Usage:

  .venv/bin/python -m bench.records_bench [--backend sqlite|postgresql|both]
                                          [--seconds N] [--concurrency N]
"""

import argparse
import asyncio
import itertools
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import OperationalError

from bench import wrk_driver
from records.demo import FIRST_PHONE

ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS = ROOT / "records" / "migrations" / "versions"
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
WARMUP_SECONDS = 1.0
STARTUP_TIMEOUT_SECONDS = 60.0

# The endpoints each phase calls: change them here when the API changes.
HEALTH = "/health"
REPAIRS = "/api/v1/repairs"
REPAIR = "/api/v1/repairs/{id}"
RESIDENTS = "/api/v1/residents"
RESIDENT = "/api/v1/residents/{id}"
RESOLVE = "/api/v1/identities/resolve"
# How many demo repairs / registered demo phones the read phase spreads over.
DEMO_REPAIRS = 3
DEMO_PHONES = 40

# Goals for SQLite on a 2-core machine (docs/benchmarks.md).
GOAL_READS_PER_SECOND = 300
GOAL_WRITES_PER_SECOND = 100
GOAL_P95_MS = 50


class BenchError(Exception):
    """The benchmark could not be set up."""


@dataclass(frozen=True)
class Call:
    """One HTTP request."""

    method: str
    path: str
    json: dict[str, Any] | None = None
    idempotency_key: str | None = None


# Makes the n-th request of a phase.
CallMaker = Callable[[int], Call]


@dataclass
class PhaseResult:
    """Latencies and failures of one timed phase."""

    backend: str
    phase: str
    endpoint: str
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    # Failures during the warm-up are not timed, but they still fail the run.
    warmup_errors: int = 0
    first_errors: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    # Set when wrk measured the phase: it reports counts and percentiles, not samples.
    counted: int | None = None
    percentiles: dict[float, float] | None = None

    @property
    def requests(self) -> int:
        """Requests completed, successful or not."""
        return self.counted if self.counted is not None else len(self.latencies)

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.requests / self.elapsed if self.elapsed else 0.0

    def percentile_ms(self, fraction: float) -> float:
        """A latency percentile (nearest rank), in milliseconds."""
        if self.percentiles is not None:
            return self.percentiles[fraction]
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
        return ordered[index] * 1000

    def record(self, seconds: float, failure: str | None) -> None:
        """Count one finished request."""
        self.latencies.append(seconds)
        if failure is not None:
            self.errors += 1
            if len(self.first_errors) < 3:
                self.first_errors.append(failure)


# --- databases, environment, server -------------------------------------------------------


@contextmanager
def fresh_database(backend: str, workdir: Path, pg_admin_url: str) -> Iterator[str]:
    """The URL of a new, empty database, removed afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'bench.db'}"  # goes with the temporary directory
        return
    name = f"linli_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    try:
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        except OperationalError as exc:
            raise BenchError(f"cannot create a database on {pg_admin_url}: {exc}") from exc
        try:
            yield pg_admin_url.rsplit("/", 1)[0] + "/" + name
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def bench_env(database_url: str, port: int, workdir: Path) -> dict[str, str]:
    """The process environment for the records commands: fresh secrets, this database.

    Settings read the repository's `.env` too, but the process environment wins, so nothing
    of a developer's own database or secrets is used. The values are also written to
    `bench.env` in the temporary directory (mode 600), for looking at while the run lasts.
    """
    values = {
        "LINLI_ENV": "development",
        "DATABASE_URL": database_url,
        "SERVICE_TOKEN": secrets.token_urlsafe(32),
        "SECRET_KEY": secrets.token_urlsafe(32),
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "BLIND_INDEX_KEY": secrets.token_urlsafe(32),
        "DEMO_STAFF_PASSWORD": secrets.token_urlsafe(12),
        "RECORDS_HOST": "127.0.0.1",
        "RECORDS_PORT": str(port),
        # As deployed: one worker on SQLite (its writers queue best in one process), one per
        # core on PostgreSQL.
        "RECORDS_WORKERS": "1" if database_url.startswith("sqlite") else "2",
    }
    env_file = workdir / "bench.env"
    env_file.touch(mode=0o600)
    env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
    return {**os.environ, **values}


def records_command(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m records <args>` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "records", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def prepare_schema(env: dict[str, str]) -> str:
    """Migrate; while the repository has no migration yet, create the schema from the models."""
    result = records_command(env, "migrate")
    url = env["DATABASE_URL"]
    if result.returncode == 0 and _has_schema(url):
        return "alembic migrations"
    if any(MIGRATIONS.glob("*.py")):
        raise BenchError(f"`records migrate` failed:\n{result.stdout}{result.stderr}")
    print(
        "  FALLBACK: no Alembic migration exists yet (records/migrations/versions is empty), "
        "so `records migrate` created nothing; creating the schema with "
        "records.models.Base.metadata.create_all instead."
    )
    from records.models import Base

    engine = create_engine(url)
    try:
        Base.metadata.create_all(engine)
    finally:
        engine.dispose()
    return "Base.metadata.create_all (fallback)"


def _has_schema(url: str) -> bool:
    engine = create_engine(url)
    try:
        return "residents" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def load_demo(env: dict[str, str]) -> None:
    """Load the demo community through the operator command."""
    result = records_command(env, "demo")
    if result.returncode != 0:
        raise BenchError(f"`records demo` failed:\n{result.stdout}{result.stderr}")


@contextmanager
def running_server(env: dict[str, str], log_path: Path) -> Iterator[str]:
    """`python -m records serve` in a subprocess, healthy; stopped on the way out."""
    base_url = f"http://127.0.0.1:{env['RECORDS_PORT']}"
    with log_path.open("w", encoding="utf-8") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "records", "serve"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_healthy(base_url, server, log_path)
            yield base_url
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _wait_healthy(base_url: str, server: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise BenchError(f"the server exited early:\n{_tail(log_path)}")
        try:
            if httpx.get(base_url + HEALTH, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass  # not listening yet
        time.sleep(0.2)
    raise BenchError(f"the server did not become healthy:\n{_tail(log_path)}")


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


# --- what the phases call -------------------------------------------------------------------


@dataclass(frozen=True)
class Api:
    """What the running server offers, found from its OpenAPI document."""

    paths: dict[str, set[str]]

    def has(self, method: str, path: str) -> bool:
        """Whether the server serves `method path` (path as in the OpenAPI document)."""
        return method.lower() in self.paths.get(path, set())

    def has_item_route(self, collection: str) -> bool:
        """Whether `GET <collection>/{some id}` is served."""
        return any(
            p.startswith(collection + "/{") and p.count("/") == collection.count("/") + 1
            for p, methods in self.paths.items()
            if "get" in methods
        )


async def discover(client: httpx.AsyncClient) -> Api:
    """Read the server's OpenAPI document."""
    response = await client.get("/openapi.json")
    response.raise_for_status()
    paths = response.json()["paths"]
    return Api({path: set(methods) for path, methods in paths.items()})


def demo_identity(n: int) -> str:
    """The phone identity of one of the demo residents' registered phones."""
    return f"phone:+86{FIRST_PHONE + n % DEMO_PHONES}"


def baseline_calls() -> tuple[str, CallMaker]:
    """GET /health."""
    return "GET " + HEALTH, lambda n: Call("GET", HEALTH)


def read_calls(api: Api) -> tuple[str, CallMaker]:
    """A repair (or a resident while repairs are not served), a page of residents, a resolve."""
    item = REPAIR if api.has_item_route(REPAIRS) else RESIDENT

    def one_item(n: int) -> Call:
        return Call("GET", item.format(id=n % DEMO_REPAIRS + 1))

    def residents_page(n: int) -> Call:
        return Call("GET", f"{RESIDENTS}?limit=20&offset={n % 3 * 20}")

    def resolve(n: int) -> Call:
        return Call("POST", RESOLVE, json={"identity": demo_identity(n)})

    makers = (one_item, residents_page, resolve)
    label = f"GET {item} | GET {RESIDENTS}?limit=20 | POST {RESOLVE}"
    return label, lambda n: makers[n % len(makers)](n)


def write_calls(api: Api) -> tuple[str, CallMaker]:
    """A new repair report, or a new resident while repairs are not served."""
    if api.has("post", REPAIRS):
        return "POST " + REPAIRS, _new_repair
    return "POST " + RESIDENTS + " (repairs not served)", _new_resident


def _new_repair(n: int) -> Call:
    body = {
        "category": "lighting",
        "description": f"压测：{n % 3 + 1}单元楼道灯不亮了。",
        "identity": demo_identity(n),
        "building": n % 3 + 1,
        "entrance": 1,
        "room": f"{n % 6 + 1}01",
        "channel": "phone",
    }
    return Call("POST", REPAIRS, json=body, idempotency_key=f"bench-repair-{n}")


def _new_resident(n: int) -> Call:
    body = {"name": f"压测居民{n}", "phones": [f"137{n:08d}"]}
    return Call("POST", RESIDENTS, json=body, idempotency_key=f"bench-resident-{n}")


# --- load generation ------------------------------------------------------------------------


async def run_phase(
    client: httpx.AsyncClient,
    *,
    backend: str,
    phase: str,
    calls: tuple[str, CallMaker],
    counter: Iterator[int],
    seconds: float,
    concurrency: int,
) -> PhaseResult:
    """Warm up for a second, then measure `concurrency` clients for `seconds`."""
    endpoint, make = calls
    warmup = PhaseResult(backend, phase, endpoint)
    await _drive(client, make, counter, warmup, WARMUP_SECONDS, concurrency)
    result = PhaseResult(backend, phase, endpoint)
    result.warmup_errors, result.first_errors = warmup.errors, warmup.first_errors
    started = time.perf_counter()
    await _drive(client, make, counter, result, seconds, concurrency)
    result.elapsed = time.perf_counter() - started
    return result


async def _drive(
    client: httpx.AsyncClient,
    make: CallMaker,
    counter: Iterator[int],
    result: PhaseResult,
    seconds: float,
    concurrency: int,
) -> None:
    deadline = time.perf_counter() + seconds
    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(_client_loop(client, make, counter, result, deadline))


async def _client_loop(
    client: httpx.AsyncClient,
    make: CallMaker,
    counter: Iterator[int],
    result: PhaseResult,
    deadline: float,
) -> None:
    while time.perf_counter() < deadline:
        call = make(next(counter))
        headers = {"Idempotency-Key": call.idempotency_key} if call.idempotency_key else {}
        started = time.perf_counter()
        failure: str | None = None
        try:
            response = await client.request(call.method, call.path, json=call.json, headers=headers)
            if response.status_code >= 400:
                failure = f"{call.method} {call.path}: {response.status_code} {response.text[:300]}"
        except httpx.HTTPError as exc:
            failure = f"{call.method} {call.path}: {type(exc).__name__} {exc}"
        result.record(time.perf_counter() - started, failure)


def wrk_phase(
    base_url: str,
    token: str,
    *,
    backend: str,
    phase: str,
    calls: tuple[str, CallMaker],
    seconds: float,
    concurrency: int,
) -> PhaseResult:
    """Warm up for a second, then measure one phase with wrk."""
    endpoint, make = calls
    warm = wrk_driver.run(base_url, token, make, seconds=WARMUP_SECONDS, concurrency=concurrency)
    count, failed, elapsed, p50, p95 = wrk_driver.run(
        base_url, token, make, seconds=seconds, concurrency=concurrency
    )
    return PhaseResult(
        backend, phase, endpoint, errors=failed, warmup_errors=warm[1], elapsed=elapsed,
        counted=count, percentiles={0.50: p50, 0.95: p95},
        first_errors=["wrk counts failures without bodies: rerun with --client httpx"]
        if failed or warm[1] else [],
    )


async def drive_server(
    base_url: str,
    token: str,
    *,
    backend: str,
    seconds: float,
    concurrency: int,
    use_wrk: bool = False,
) -> list[PhaseResult]:
    """Run the three phases against a healthy server."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base_url,
        headers={"Authorization": f"Bearer {token}"},
        limits=limits,
        timeout=60,
    ) as client:
        api = await discover(client)
        counter = itertools.count(1)
        phases = (
            ("baseline", baseline_calls()),
            ("read", read_calls(api)),
            ("write", write_calls(api)),
        )
        results = []
        for phase, calls in phases:
            print(f"  {phase}: {calls[0]}", flush=True)
            if use_wrk:
                results.append(
                    await asyncio.to_thread(
                        wrk_phase, base_url, token, backend=backend, phase=phase, calls=calls,
                        seconds=seconds, concurrency=concurrency,
                    )
                )
                continue
            results.append(
                await run_phase(
                    client,
                    backend=backend,
                    phase=phase,
                    calls=calls,
                    counter=counter,
                    seconds=seconds,
                    concurrency=concurrency,
                )
            )
        return results


def bench_backend(
    backend: str, *, seconds: float, concurrency: int, pg_admin_url: str, use_wrk: bool
) -> list[PhaseResult]:
    """Set up a fresh database and server for one backend, run the phases, clean up."""
    print(f"[{backend}] preparing a fresh database", flush=True)
    with (
        tempfile.TemporaryDirectory(prefix="linli-bench-") as tmp,
        fresh_database(backend, Path(tmp), pg_admin_url) as url,
    ):
        workdir = Path(tmp)
        env = bench_env(url, free_port(), workdir)
        print(f"  schema: {prepare_schema(env)}", flush=True)
        load_demo(env)
        print("  demo data loaded; starting the server", flush=True)
        with running_server(env, workdir / "server.log") as base_url:
            return asyncio.run(
                drive_server(
                    base_url,
                    env["SERVICE_TOKEN"],
                    backend=backend,
                    seconds=seconds,
                    concurrency=concurrency,
                    use_wrk=use_wrk,
                )
            )


# --- report ---------------------------------------------------------------------------------


def render_table(results: list[PhaseResult]) -> str:
    """A Markdown table of the results, with each phase's rate relative to its baseline."""
    baselines = {r.backend: r.rate for r in results if r.phase == "baseline"}
    rows = [
        "| backend | phase | requests | errors | req/s | p50 ms | p95 ms | vs baseline |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        base = baselines.get(r.backend) or 0.0
        ratio = f"{r.rate / base:.2f}" if base else "-"
        rows.append(
            f"| {r.backend} | {r.phase} | {r.requests} | {r.errors} | {r.rate:.0f} "
            f"| {r.percentile_ms(0.50):.1f} | {r.percentile_ms(0.95):.1f} | {ratio} |"
        )
    return "\n".join(rows)


def goal_lines(results: list[PhaseResult]) -> list[str]:
    """Whether SQLite met the goals (informational: the exit code only reflects errors)."""
    lines = []
    for r in results:
        if r.backend != "sqlite" or r.phase == "baseline":
            continue
        goal = GOAL_READS_PER_SECOND if r.phase == "read" else GOAL_WRITES_PER_SECOND
        met = r.rate >= goal and r.percentile_ms(0.95) <= GOAL_P95_MS
        lines.append(
            f"sqlite {r.phase}: {r.rate:.0f} req/s (goal ≥ {goal}), "
            f"p95 {r.percentile_ms(0.95):.1f} ms (goal ≤ {GOAL_P95_MS}): "
            + ("met" if met else "NOT met")
        )
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--seconds", type=float, default=10.0, help="timed seconds per phase")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients")
    parser.add_argument(
        "--client",
        choices=("auto", "wrk", "httpx"),
        default="auto",
        help="load generator: wrk (Debian, light on CPU) when installed, else httpx",
    )
    parser.add_argument(
        "--pg-admin-url",
        default=os.environ.get("LINLI_TEST_PG_URL", PG_ADMIN_URL),
        help="PostgreSQL URL used to create and drop the benchmark database",
    )
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.concurrency < 1:
        parser.error("--seconds must be positive and --concurrency at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; the exit status says whether every request succeeded."""
    args = parse_args(argv)
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    use_wrk = args.client == "wrk" or (args.client == "auto" and wrk_driver.available())
    print(f"load generator: {'wrk' if use_wrk else 'httpx'}", flush=True)
    results: list[PhaseResult] = []
    try:
        for backend in backends:
            results += bench_backend(
                backend,
                seconds=args.seconds,
                concurrency=args.concurrency,
                pg_admin_url=args.pg_admin_url,
                use_wrk=use_wrk,
            )
    except BenchError as exc:
        print(f"benchmark setup failed: {exc}", file=sys.stderr)
        return 2
    client = "wrk" if use_wrk else "httpx"
    print(f"\n{args.concurrency} concurrent clients ({client}), {args.seconds:g} s per phase\n")
    print(render_table(results))
    print()
    for line in goal_lines(results):
        print(line)
    failed = [r for r in results if r.errors or r.warmup_errors]
    for r in failed:
        print(
            f"\n{r.backend} {r.phase}: {r.errors} failed requests "
            f"(+{r.warmup_errors} in the warm-up), e.g.:",
            file=sys.stderr,
        )
        for error in r.first_errors:
            print(f"  {error}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
