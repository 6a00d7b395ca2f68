"""Full dialogue turns through the real stack: NLU, policies, actions, database writes.

20 concurrent conversations (default) each walk through a repair report by chat, every turn a
REST request to Rasa; the final turn makes the action server write the repair to the records
backend. Reported: turn latency p50/p95, sustained turns per second, errors, and the baseline
of the same run (a one-turn greeting, which runs no custom action) for the ratio.

Two repair phases: `repair` sends each next turn the moment the previous answer arrives (the
most the stack sustains; with 20 conversations a turn then waits for about 19 others, so its
latency is 20 / throughput by Little's law), and `repair, paced` pauses before each turn, a
random time between 0 and twice `--think` seconds so that conversations do not move in
lockstep (1 s on average: far quicker than a resident reads, types or speaks), which measures
the latency of a turn under load rather than the length of the queue.

With `--replicas N` (N > 1) Rasa runs as in production: N replicas sharing a PostgreSQL tracker
store (a fresh database) and the Redis lock store, each turn sent to the next replica in turn,
as a load balancer without sticky sessions would.

    .venv/bin/python -m bench.chat_bench [--conversations 20] [--seconds 30] [--replicas 1]
        [--think 1]
"""

import argparse
import asyncio
import itertools
import random
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.e2e.production import production_replicas, tracker_database
from tests.e2e.stack import Stack, running_stack, trained_model

# A repair reported by an unknown web user: every turn is a real turn, the last one writes.
REPAIR_SCRIPT = (
    "我要报修",
    "楼道的灯坏了",
    "3号楼2单元",
    "不急",
    "对",
)
GREETING_SCRIPT = ("你好",)
PAUSES = random.Random(7)  # reproducible pauses of paced turns


@dataclass
class Phase:
    """Latencies and failures of one phase."""

    name: str
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    conversations: int = 0
    elapsed: float = 0.0

    def percentile_ms(self, fraction: float) -> float:
        """Nearest-rank percentile of the turn latencies, in ms."""
        ordered = sorted(self.latencies)
        return ordered[max(0, round(fraction * len(ordered)) - 1)] * 1000 if ordered else 0.0

    @property
    def turns_per_second(self) -> float:
        """Sustained turns per second."""
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0


async def converse(
    client: httpx.AsyncClient,
    urls: Iterator[str],
    sender: str,
    script: tuple[str, ...],
    phase: Phase,
    think: float,
) -> None:
    """One conversation: every turn timed; a turn fails on an HTTP error or no reply."""
    for text in script:
        await asyncio.sleep(PAUSES.uniform(0, 2 * think))
        started = time.perf_counter()
        try:
            response = await client.post(next(urls), json={"sender": sender, "message": text})
            ok = response.status_code == 200 and bool(response.json())
        except httpx.HTTPError:
            ok = False
        phase.latencies.append(time.perf_counter() - started)
        phase.errors += not ok
    phase.conversations += 1


async def run_phase(
    rasa_urls: list[str],
    name: str,
    script: tuple[str, ...],
    *,
    conversations: int,
    seconds: float,
    think: float = 0.0,
) -> Phase:
    """`conversations` users talking at once, each starting a new conversation when done."""
    phase = Phase(name)
    urls = itertools.cycle([f"{url}/webhooks/rest/webhook" for url in rasa_urls])
    ids = itertools.count()
    deadline = time.perf_counter() + seconds

    async def user(client: httpx.AsyncClient) -> None:
        while time.perf_counter() < deadline:
            sender = f"web:bench-{name}-{next(ids)}"
            await converse(client, urls, sender, script, phase, think)

    limits = httpx.Limits(max_connections=conversations)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(user(client) for _ in range(conversations)))
        phase.elapsed = time.perf_counter() - started
    return phase


def repairs_written(stack: Stack) -> int:
    """How many repairs the backend holds."""
    with stack.records() as records:
        total: int = records.get("/api/v1/repairs", params={"limit": 1}).json()["total"]
        return total


def report(phases: list[Phase], written: int) -> None:
    """Print a Markdown table."""
    base = phases[0].percentile_ms(0.5) or 1.0
    print(
        "| phase | conversations | turns | errors | turns/s | p50 ms | p95 ms | p50 vs baseline |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for p in phases:
        print(
            f"| {p.name} | {p.conversations} | {len(p.latencies)} | {p.errors} "
            f"| {p.turns_per_second:.1f} | {p.percentile_ms(0.5):.0f} "
            f"| {p.percentile_ms(0.95):.0f} | {p.percentile_ms(0.5) / base:.2f} |"
        )
    print(f"\nrepairs written by the action server: {written}")


async def bench(
    rasa_urls: list[str], conversations: int, seconds: float, think: float
) -> list[Phase]:
    """Warm up, then the baseline and the full-turn phases."""
    await run_phase(rasa_urls, "warmup", REPAIR_SCRIPT, conversations=2, seconds=3)
    baseline = await run_phase(
        rasa_urls, "baseline", GREETING_SCRIPT, conversations=conversations, seconds=seconds / 2
    )
    repair = await run_phase(
        rasa_urls, "repair", REPAIR_SCRIPT, conversations=conversations, seconds=seconds
    )
    paced = await run_phase(
        rasa_urls, "repair, paced", REPAIR_SCRIPT,
        conversations=conversations, seconds=seconds, think=think,
    )
    return [baseline, repair, paced]


def main() -> int:
    """Run the benchmark against a fresh stack."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversations", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--think", type=float, default=1.0, help="pause before a paced turn, s")
    args = parser.parse_args()
    model = trained_model()
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_stack(Path(tmp), model) as stack,
        ExitStack() as replicas,
    ):
        urls = [stack.rasa_url]
        if args.replicas > 1:
            database = replicas.enter_context(tracker_database())
            urls = replicas.enter_context(production_replicas(stack, database, args.replicas))
        before = repairs_written(stack)
        phases = asyncio.run(bench(urls, args.conversations, args.seconds, args.think))
        written = repairs_written(stack) - before
    stores = "in-memory stores" if args.replicas == 1 else "PostgreSQL tracker store, Redis locks"
    print(
        f"model: {model.name}; {args.conversations} concurrent conversations; "
        f"{args.replicas} Rasa replica(s), {stores}; paced turns after {args.think} s\n"
    )
    report(phases, written)
    return 1 if any(p.errors for p in phases) else 0


if __name__ == "__main__":
    raise SystemExit(main())
