"""Full dialogue turns through the real stack: NLU, policies, actions, database writes.

20 concurrent conversations (default) each walk through a repair report by chat, every turn a
REST request to Rasa; the final turn makes the action server write the repair to the records
backend. Reported: turn latency p50/p95, sustained turns per second, errors, and the baseline
of the same run (a one-turn greeting, which runs no custom action) for the ratio.

    .venv/bin/python -m bench.chat_bench [--conversations 20] [--seconds 30]
"""

import argparse
import asyncio
import itertools
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

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
    client: httpx.AsyncClient, url: str, sender: str, script: tuple[str, ...], phase: Phase
) -> None:
    """One conversation: every turn timed; a turn fails on an HTTP error or no reply."""
    for text in script:
        started = time.perf_counter()
        try:
            response = await client.post(url, json={"sender": sender, "message": text})
            ok = response.status_code == 200 and bool(response.json())
        except httpx.HTTPError:
            ok = False
        phase.latencies.append(time.perf_counter() - started)
        phase.errors += not ok
    phase.conversations += 1


async def run_phase(
    stack: Stack, name: str, script: tuple[str, ...], *, conversations: int, seconds: float
) -> Phase:
    """`conversations` users talking at once, each starting a new conversation when done."""
    phase = Phase(name)
    url = f"{stack.rasa_url}/webhooks/rest/webhook"
    ids = itertools.count()
    deadline = time.perf_counter() + seconds

    async def user(client: httpx.AsyncClient) -> None:
        while time.perf_counter() < deadline:
            await converse(client, url, f"web:bench-{name}-{next(ids)}", script, phase)

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


async def bench(stack: Stack, conversations: int, seconds: float) -> list[Phase]:
    """Warm up, then the baseline and the full-turn phases."""
    await run_phase(stack, "warmup", REPAIR_SCRIPT, conversations=2, seconds=3)
    baseline = await run_phase(
        stack, "baseline", GREETING_SCRIPT, conversations=conversations, seconds=seconds / 2
    )
    repair = await run_phase(
        stack, "repair", REPAIR_SCRIPT, conversations=conversations, seconds=seconds
    )
    return [baseline, repair]


def main() -> int:
    """Run the benchmark against a fresh stack."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversations", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    model = trained_model()
    with tempfile.TemporaryDirectory() as tmp, running_stack(Path(tmp), model) as stack:
        before = repairs_written(stack)
        phases = asyncio.run(bench(stack, args.conversations, args.seconds))
        written = repairs_written(stack) - before
    print(f"model: {model.name}; {args.conversations} concurrent conversations\n")
    report(phases, written)
    return 1 if any(p.errors for p in phases) else 0


if __name__ == "__main__":
    raise SystemExit(main())
