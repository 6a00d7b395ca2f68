"""The audit trail, written by session events so no change can skip it."""

import contextvars
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from records.models.audit import AuditEntry
from records.models.idempotency import IdempotencyRecord
from records.models.votes import Ballot

# Set by the console's authentication for the request it handles (its sessions are its own).
console_actor: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "console_actor", default=None
)

# Ballots are never audited: a timestamped row beside the voter's participation would
# break the secret ballot.
_SKIPPED = (AuditEntry, IdempotencyRecord, Ballot)
_PENDING = "audit_pending"


def set_actor(session: Session, actor: str) -> None:
    """Name who is acting through this session (a staff user, a service)."""
    session.info["actor"] = actor


def _actor(session: Session) -> str:
    return str(session.info.get("actor") or console_actor.get() or "system")


def _entry(obj: Any, action: str, actor: str) -> AuditEntry:
    state = inspect(obj)
    fields = (
        [attr.key for attr in state.attrs if action != "update" or attr.history.has_changes()]
        if action != "delete"
        else []
    )
    # Identity keys of new rows are only assigned after after_flush; the primary key
    # attributes already hold the database's values.
    key = state.mapper.primary_key_from_instance(obj)
    return AuditEntry(
        actor=actor,
        action=action,
        entity=type(obj).__tablename__,
        entity_id=",".join(str(v) for v in key) if all(v is not None for v in key) else None,
        fields=sorted(fields),
    )


def _collect(session: Session, _context: Any) -> None:
    # after_flush still sees the flushed objects as new/dirty/deleted, now with their ids.
    actor = _actor(session)
    pending = session.info.setdefault(_PENDING, [])
    changes = (("create", session.new), ("update", session.dirty), ("delete", session.deleted))
    for action, objects in changes:
        for obj in objects:
            if isinstance(obj, _SKIPPED):
                continue
            if action == "update" and not session.is_modified(obj, include_collections=False):
                continue
            pending.append(_entry(obj, action, actor))


def _write(session: Session) -> None:
    # Flush first: commit would flush what is still pending only after this hook, and
    # those changes must be collected too.
    session.flush()
    pending = session.info.pop(_PENDING, [])
    if pending:
        session.add_all(pending)


def _discard(session: Session, transaction: SessionTransaction) -> None:
    # Only the outermost transaction's end drops what was collected: a rolled-back
    # savepoint inside a committed transaction must not lose the others' entries.
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


def install_audit(factory: sessionmaker[Session]) -> None:
    """Record every create, update and delete made through sessions of `factory`."""
    if not event.contains(factory, "after_flush", _collect):
        event.listen(factory, "after_flush", _collect)
        event.listen(factory, "before_commit", _write)
        event.listen(factory, "after_transaction_end", _discard)
