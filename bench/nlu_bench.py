"""NLU parse latency, Rasa's memory and cold start to the first answer.

Starts the real stack (records, action server, Rasa with the trained model) like the e2e
tests, then: cold start = from launching Rasa to its first REST answer; parse p50/p95 over the
held-out utterances through /model/parse, one at a time; the baseline is Rasa's own `/` route
in the same run, so the ratio shows what parsing adds.

    .venv/bin/python -m bench.nlu_bench [--rounds 3]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from tests.e2e.nlu_holdout import load
from tests.e2e.stack import Stack, running_stack, trained_model


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile, in milliseconds."""
    ordered = sorted(samples)
    return ordered[max(0, round(fraction * len(ordered)) - 1)] * 1000


def timed(client: httpx.Client, method: str, url: str, **kwargs: object) -> float:
    """Seconds one request took; fails loudly on an error status."""
    started = time.perf_counter()
    client.request(method, url, **kwargs).raise_for_status()  # type: ignore[arg-type]
    return time.perf_counter() - started


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(stack: Stack, rounds: int) -> dict[str, float]:
    """Baseline and parse latencies over `rounds` passes of the held-out texts."""
    texts = [e.text for e in load()]
    base, parse = [], []
    with httpx.Client(timeout=30) as client:
        params = {"token": stack.rasa_token}
        for _ in range(rounds):
            for text in texts:
                base.append(timed(client, "GET", f"{stack.rasa_url}/"))
                parse.append(
                    timed(
                        client,
                        "POST",
                        f"{stack.rasa_url}/model/parse",
                        params=params,
                        json={"text": text},
                    )
                )
    return {
        "baseline_p50_ms": percentile(base, 0.5),
        "parse_p50_ms": percentile(parse, 0.5),
        "parse_p95_ms": percentile(parse, 0.95),
        "parse_mean_ms": statistics.fmean(parse) * 1000,
        "parses": len(parse),
    }


def main() -> None:
    """Run and print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    model = trained_model()
    with tempfile.TemporaryDirectory() as tmp:
        with running_stack(Path(tmp), model) as stack:
            stack.chat("web:bench-cold", "你好")
            cold = time.perf_counter() - stack.rasa_launched_at
            results = measure(stack, args.rounds)
            results["rasa_rss_mb"] = rss_mb(stack.rasa_pid)
        results["rasa_cold_start_to_first_answer_s"] = cold
    print(f"model: {model.name}")
    for key, value in results.items():
        print(f"{key:32} {value:10.1f}")


if __name__ == "__main__":
    main()
