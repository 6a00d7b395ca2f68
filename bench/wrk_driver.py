"""Drive a phase with wrk (C, from Debian), so the load generator leaves the CPU to the server.

A Python load generator on the same 2 cores takes about as much CPU per request as the
server does; wrk takes a small fraction of it, so the numbers describe the server.
"""

import re
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

SAMPLE_CALLS = 600
_RESULT = re.compile(r"^WRKRESULT (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+)$", re.MULTILINE)


class CallLike(Protocol):
    """One HTTP request as the bench describes it."""

    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def json(self) -> dict[str, object] | None: ...
    @property
    def idempotency_key(self) -> str | None: ...


def available() -> bool:
    """Whether wrk is installed."""
    return shutil.which("wrk") is not None


def _lua_string(text: str) -> str:
    level = "=" * 4
    return f"[{level}[{text}]{level}]"


def _script(calls: list[CallLike], token: str) -> str:
    import json

    nonce = secrets.token_hex(4)
    rows = []
    for call in calls:
        body = json.dumps(call.json, ensure_ascii=False) if call.json is not None else ""
        idem = call.idempotency_key or ""
        rows.append(
            f"{{method={_lua_string(call.method)}, path={_lua_string(call.path)}, "
            f"body={_lua_string(body)}, idem={_lua_string(idem)}}}"
        )
    return f"""
local reqs = {{ {", ".join(rows)} }}
local token = {_lua_string(token)}
local nonce = "{nonce}"
local counter = 0
local next_id = 0
function setup(thread) next_id = next_id + 1; thread:set("tid", next_id) end
function request()
  counter = counter + 1
  local r = reqs[(counter % #reqs) + 1]
  local headers = {{["Authorization"] = "Bearer " .. token}}
  local body = nil
  if r.body ~= "" then headers["Content-Type"] = "application/json"; body = r.body end
  if r.idem ~= "" then
    -- a fresh key per request: a repeated key would be a replay, not a write
    headers["Idempotency-Key"] = r.idem .. "-" .. nonce .. "-" .. tostring(tid) .. "-" .. counter
  end
  return wrk.format(r.method, r.path, headers, body)
end
function done(summary, latency, requests)
  local e = summary.errors
  local failed = e.status + e.connect + e.read + e.write + e.timeout
  io.write(string.format("WRKRESULT %d %d %d %.3f %.3f\\n", summary.requests, failed,
    summary.duration, latency:percentile(50) / 1000, latency:percentile(95) / 1000))
end
"""


def run(
    base_url: str,
    token: str,
    make: Callable[[int], CallLike],
    *,
    seconds: float,
    concurrency: int,
) -> tuple[int, int, float, float, float]:
    """Run wrk; returns (requests, failed, elapsed s, p50 ms, p95 ms)."""
    calls = [make(n) for n in range(1, SAMPLE_CALLS + 1)]
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "phase.lua"
        script.write_text(_script(calls, token), encoding="utf-8")
        completed = subprocess.run(
            ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s",
             "--timeout", "30s", "-s", str(script), base_url],
            capture_output=True, text=True, check=False,
        )
    match = _RESULT.search(completed.stdout)
    if completed.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed: {completed.stderr.strip() or completed.stdout[-500:]}")
    requests, failed, micros, p50, p95 = match.groups()
    return int(requests), int(failed), int(micros) / 1e6, float(p50), float(p95)
