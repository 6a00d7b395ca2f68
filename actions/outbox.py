"""A durable local outbox: nothing the bot has acknowledged is ever lost.

When a repair report or an emergency alert cannot reach the records backend, the action
stores the request here (a SQLite file) and tells the resident it is recorded and will be
passed on (:data:`QUEUED_ZH`). A background task started by the action server
(:func:`start_background_delivery`) sends the stored requests again, oldest first, with the
same ``Idempotency-Key`` the first try used, so a request that did reach the backend before
the connection dropped is not created twice. A request the backend refuses for good (a 4xx
problem) is marked dead with its Chinese detail and kept for staff, never deleted.

In an action::

    from actions.outbox import QUEUED_ZH, post_or_queue

    key = form_idempotency_key(tracker.sender_id, "repair_form", slots)
    try:
        repair, queued = await post_or_queue("/api/v1/repairs", payload, idempotency_key=key)
    except RecordsRefused as exc:
        ...  # say exc.detail_zh
    except RecordsUnavailable as exc:
        ...  # neither sent nor stored: say exc.detail_zh, never claim success
    else:
        ...  # QUEUED_ZH if queued, else the repair's number

Several action-server processes may share the file: claims are taken in ``BEGIN IMMEDIATE``
transactions with a lease, so one request is sent by one process at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from actions.outbox_seal import Sealer, sealer_from_env
from actions.records_client import (
    REPO_ROOT,
    RecordsClient,
    RecordsRefused,
    RecordsUnavailable,
    get_client,
    load_env,
    new_idempotency_key,
)

log = logging.getLogger(__name__)

DEFAULT_OUTBOX_PATH = Path("var") / "actions_outbox.db"
DEFAULT_INTERVAL_SECONDS = 15.0
# How long a claimed request stays reserved for the process that claimed it; longer than
# one delivery with all its retries can take, so a live claim never expires mid-send.
DEFAULT_LEASE_SECONDS = 120.0
BUSY_TIMEOUT_SECONDS = 10.0
# Refusals that say the deployment is misconfigured (token, permissions), not that the
# request is wrong: the request stays pending until that is fixed.
_NOT_THE_REQUESTS_FAULT = frozenset({401, 403})

QUEUED_ZH = "已经记下了。社区系统暂时连接不上，恢复后会自动转交给工作人员，不会丢失。"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    method TEXT NOT NULL DEFAULT 'POST',
    path TEXT NOT NULL,
    body TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    delivered_at TEXT,
    dead_at TEXT,
    response TEXT,
    claimed_by TEXT,
    claimed_until REAL
);
CREATE INDEX IF NOT EXISTS outbox_open ON outbox (id)
    WHERE delivered_at IS NULL AND dead_at IS NULL;
"""
_COLUMNS = (
    "id, method, path, body, idempotency_key, created_at, attempts, last_error, "
    "delivered_at, dead_at, response"
)
_OPEN = "delivered_at IS NULL AND dead_at IS NULL"


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One stored request and what became of it."""

    id: int
    method: str
    path: str
    body: Any
    idempotency_key: str
    created_at: str
    attempts: int
    last_error: str | None
    delivered_at: str | None
    dead_at: str | None
    response: Any

    @property
    def state(self) -> str:
        """``pending``, ``delivered`` or ``dead``."""
        if self.delivered_at is not None:
            return "delivered"
        return "dead" if self.dead_at is not None else "pending"

    @classmethod
    def from_row(cls, row: sqlite3.Row, sealer: Sealer) -> OutboxItem:
        """Build an item from a row selected with ``_COLUMNS``."""
        return cls(
            id=row["id"],
            method=row["method"],
            path=row["path"],
            body=sealer.open(row["body"]),
            idempotency_key=row["idempotency_key"],
            created_at=row["created_at"],
            attempts=row["attempts"],
            last_error=row["last_error"],
            delivered_at=row["delivered_at"],
            dead_at=row["dead_at"],
            response=sealer.open(row["response"]) if row["response"] is not None else None,
        )


def default_outbox_path(environ: Mapping[str, str] | None = None) -> Path:
    """ACTIONS_OUTBOX_PATH (env or ``.env``), else ``var/actions_outbox.db``; relative paths
    are anchored at the repository root."""
    raw = load_env(environ).get("ACTIONS_OUTBOX_PATH", "").strip()
    path = Path(raw) if raw else DEFAULT_OUTBOX_PATH
    return path if path.is_absolute() else REPO_ROOT / path


class Outbox:
    """The outbox table in one SQLite file (WAL, full sync), safe to share between processes.

    Each operation opens its own short-lived connection, so an ``Outbox`` may be used from
    any thread; the async helpers run these calls in a worker thread.
    """

    def __init__(self, path: str | Path | None = None, sealer: Sealer | None = None) -> None:
        self.path = Path(path) if path is not None else default_outbox_path()
        self.sealer = sealer if sealer is not None else sealer_from_env()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # The outbox holds residents' phone numbers and addresses: readable by its owner only.
        with contextlib.suppress(FileExistsError):
            os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection in autocommit mode (transactions are explicit), closed afterwards."""
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA synchronous=FULL")
            yield conn
        finally:
            conn.close()

    @contextlib.contextmanager
    def _immediate(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the database lock up front (``BEGIN IMMEDIATE``)."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # --- writing ----------------------------------------------------------------------

    def enqueue(
        self,
        path: str,
        body: Any,
        *,
        idempotency_key: str,
        method: str = "POST",
        reason: str | None = None,
    ) -> int:
        """Store a request durably and return its id (``reason``: why it could not go now).

        Storing the same ``idempotency_key`` again stores nothing new and returns the id of
        the request already stored (a resident submitting twice during an outage).
        """
        encoded = self.sealer.seal(body)
        with self._immediate() as conn:
            conn.execute(
                "INSERT INTO outbox (method, path, body, idempotency_key, created_at, last_error) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING",
                (method.upper(), path, encoded, idempotency_key, _now_iso(), reason),
            )
            row = conn.execute(
                "SELECT id FROM outbox WHERE idempotency_key = ?", (idempotency_key,)
            ).fetchone()
        return int(row["id"])

    def claim_next(
        self, worker: str, *, lease_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> OutboxItem | None:
        """Reserve the oldest pending request nobody else holds, counting it as an attempt."""
        now = time.time()
        with self._immediate() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM outbox WHERE {_OPEN} "  # noqa: S608 - constants only
                "AND (claimed_until IS NULL OR claimed_until < ?) ORDER BY id LIMIT 1",
                (now,),
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE outbox SET claimed_by = ?, claimed_until = ?, attempts = attempts + 1 "
                "WHERE id = ?",
                (worker, now + lease_seconds, row["id"]),
            )
        item = OutboxItem.from_row(row, self.sealer)
        return replace(item, attempts=item.attempts + 1)

    def mark_delivered(self, item_id: int, response: Any) -> None:
        """Record that the backend accepted the request (with what it returned)."""
        with self._immediate() as conn:
            conn.execute(
                "UPDATE outbox SET delivered_at = ?, response = ?, last_error = NULL, "
                "claimed_by = NULL, claimed_until = NULL WHERE id = ? AND delivered_at IS NULL",
                (_now_iso(), self.sealer.seal(response), item_id),
            )

    def release(self, item_id: int, error: str) -> None:
        """Give a claimed request back as pending after a transient failure."""
        with self._immediate() as conn:
            conn.execute(
                "UPDATE outbox SET last_error = ?, claimed_by = NULL, claimed_until = NULL "
                "WHERE id = ? AND delivered_at IS NULL AND dead_at IS NULL",
                (error, item_id),
            )

    def mark_dead(self, item_id: int, error: str) -> None:
        """Stop trying a request the backend refused for good; it stays for staff to see."""
        with self._immediate() as conn:
            conn.execute(
                "UPDATE outbox SET dead_at = ?, last_error = ?, claimed_by = NULL, "
                "claimed_until = NULL WHERE id = ? AND delivered_at IS NULL AND dead_at IS NULL",
                (_now_iso(), error, item_id),
            )

    def revive(self, item_id: int) -> bool:
        """Make a dead request pending again (staff fixed the cause); False if not dead."""
        with self._immediate() as conn:
            cursor = conn.execute(
                "UPDATE outbox SET dead_at = NULL WHERE id = ? AND dead_at IS NOT NULL",
                (item_id,),
            )
        return cursor.rowcount == 1

    def purge_delivered(self, older_than_seconds: float) -> int:
        """Delete delivered requests older than this (they live in the backend now)."""
        cutoff = datetime.fromtimestamp(time.time() - older_than_seconds, UTC)
        with self._immediate() as conn:
            cursor = conn.execute(
                "DELETE FROM outbox WHERE delivered_at IS NOT NULL AND delivered_at < ?",
                (cutoff.isoformat(timespec="milliseconds"),),
            )
        return cursor.rowcount

    # --- reading ----------------------------------------------------------------------

    def get(self, item_id: int) -> OutboxItem | None:
        """One request by id."""
        return next(iter(self._select("id = ?", (item_id,))), None)

    def pending(self) -> list[OutboxItem]:
        """Requests still to be delivered, oldest first."""
        return self._select(_OPEN)

    def dead(self) -> list[OutboxItem]:
        """Requests the backend refused for good, oldest first, with the reason."""
        return self._select("dead_at IS NOT NULL")

    def counts(self) -> dict[str, int]:
        """How many requests are pending, delivered and dead."""
        with self._connect() as conn:
            row = conn.execute(
                f"SELECT SUM({_OPEN}) AS pending, "  # noqa: S608 - constants only
                "SUM(delivered_at IS NOT NULL) AS delivered, "
                "SUM(dead_at IS NOT NULL) AS dead FROM outbox"
            ).fetchone()
        return {k: int(row[k] or 0) for k in ("pending", "delivered", "dead")}

    def _select(self, where: str, params: tuple[Any, ...] = ()) -> list[OutboxItem]:
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM outbox WHERE {where} ORDER BY id",  # noqa: S608
                params,
            ).fetchall()
        return [OutboxItem.from_row(row, self.sealer) for row in rows]


# --- delivery -----------------------------------------------------------------------------

# Identifies this process's claims in the shared file.
_WORKER_ID = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"

_default_outbox: Outbox | None = None


def get_outbox() -> Outbox:
    """The action server's outbox, opened on first use at :func:`default_outbox_path`."""
    global _default_outbox
    if _default_outbox is None:
        _default_outbox = Outbox()
    return _default_outbox


async def deliver_pending(
    client: RecordsClient,
    outbox: Outbox | None = None,
    *,
    max_items: int = 100,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
) -> int:
    """Send pending requests oldest first, each with its stored key; return how many went.

    Stops at the first transient failure (the backend is still down, later requests would
    fail too) and leaves that request pending. A 4xx refusal marks the request dead with
    the backend's detail, except 401/403 and non-problem answers, which point at the
    deployment rather than the request and leave it pending.
    """
    box = outbox if outbox is not None else get_outbox()
    delivered = 0
    for _ in range(max_items):
        item = await asyncio.to_thread(box.claim_next, _WORKER_ID, lease_seconds=lease_seconds)
        if item is None:
            break
        try:
            response = await client.request(
                item.method, item.path, json=item.body, idempotency_key=item.idempotency_key
            )
        except RecordsRefused as exc:
            if exc.status in _NOT_THE_REQUESTS_FAULT or not exc.is_problem:
                log.error("outbox #%d: %s, kept pending", item.id, exc)
                await asyncio.to_thread(box.release, item.id, str(exc))
                break
            log.error("outbox #%d refused for good: %s", item.id, exc)
            await asyncio.to_thread(box.mark_dead, item.id, str(exc))
        except RecordsUnavailable as exc:
            log.warning("outbox #%d not delivered (attempt %d): %s", item.id, item.attempts, exc)
            await asyncio.to_thread(box.release, item.id, str(exc))
            break
        except BaseException as exc:  # a bug or cancellation: give the claim back, re-raise
            with contextlib.suppress(Exception):
                await asyncio.shield(asyncio.to_thread(box.release, item.id, repr(exc)))
            raise
        else:
            await asyncio.to_thread(box.mark_delivered, item.id, response)
            delivered += 1
            log.info("outbox #%d delivered to %s", item.id, item.path)
    return delivered


async def run_forever(
    client: RecordsClient | None = None,
    interval: float = DEFAULT_INTERVAL_SECONDS,
    outbox: Outbox | None = None,
    *,
    keep_delivered_seconds: float = 7 * 24 * 3600,
) -> None:
    """Deliver pending requests every ``interval`` seconds until cancelled.

    Errors are logged and the loop goes on; delivered requests older than
    ``keep_delivered_seconds`` are purged (the backend has them).
    """
    box = outbox if outbox is not None else get_outbox()
    while True:
        try:
            await deliver_pending(client if client is not None else get_client(), box)
            await asyncio.to_thread(box.purge_delivered, keep_delivered_seconds)
        except Exception:
            log.exception("outbox delivery round failed")
        await asyncio.sleep(interval)


_background: asyncio.Task[None] | None = None


def start_background_delivery(
    client: RecordsClient | None = None,
    outbox: Outbox | None = None,
    interval: float | None = None,
) -> asyncio.Task[None]:
    """Start :func:`run_forever` on the running loop, once; later calls return the same task.

    Call it from the action server once its loop runs (e.g. a startup hook, or the first
    action). ``interval`` defaults to ACTIONS_OUTBOX_INTERVAL or 15 seconds. Without a
    client, the shared :func:`get_client` is used at every round.
    """
    global _background
    loop = asyncio.get_running_loop()
    if _background is not None and not _background.done() and _background.get_loop() is loop:
        return _background
    if interval is None:
        raw = load_env().get("ACTIONS_OUTBOX_INTERVAL", "").strip()
        interval = float(raw) if raw else DEFAULT_INTERVAL_SECONDS
    _background = loop.create_task(
        run_forever(client, interval, outbox), name="linli-outbox-delivery"
    )
    return _background


async def post_or_queue(
    path: str,
    json: Any,
    *,
    idempotency_key: str | None = None,
    client: RecordsClient | None = None,
    outbox: Outbox | None = None,
) -> tuple[Any | None, bool]:
    """POST now, or store it in the outbox if the backend is unavailable.

    Returns ``(response, False)`` when the backend accepted it and ``(None, True)`` when it
    was queued (tell the resident :data:`QUEUED_ZH`). :class:`RecordsRefused` is re-raised:
    the request is wrong and queuing it would not help. If it can neither be sent nor
    stored, :class:`RecordsUnavailable` is raised and nothing may be claimed. The live try
    and the queued one share the key, so it is created at most once.
    """
    key = idempotency_key or new_idempotency_key()
    live = client if client is not None else get_client()
    try:
        return await live.post(path, json, idempotency_key=key), False
    except RecordsUnavailable as exc:
        box = outbox if outbox is not None else get_outbox()
        try:
            item_id = await asyncio.to_thread(
                box.enqueue, path, json, idempotency_key=key, reason=str(exc)
            )
        except (OSError, sqlite3.Error) as store_error:
            log.exception("could not store %s in the outbox", path)
            raise RecordsUnavailable(
                f"{exc}; and the outbox failed: {store_error}", attempts=exc.attempts
            ) from store_error
        log.warning("POST %s queued as outbox #%d: %s", path, item_id, exc)
        return None, True


__all__ = [
    "QUEUED_ZH",
    "Outbox",
    "OutboxItem",
    "default_outbox_path",
    "deliver_pending",
    "get_outbox",
    "post_or_queue",
    "run_forever",
    "start_background_delivery",
]
