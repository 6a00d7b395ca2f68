"""The notifications outbox: enqueue once per dedupe key; channel workers drain it."""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from records.core.problems import not_found
from records.models import (
    ChannelIdentity,
    DeliveryState,
    Notification,
    Resident,
    StaffUser,
    VerificationState,
)
from records.repository.paging import page

# Channels that can deliver a message nobody asked for right now.
PUSH_CHANNELS = frozenset({"telegram", "wechat"})


def enqueue(
    session: Session,
    *,
    channel: str,
    recipient: str,
    kind: str,
    payload: dict[str, Any],
    dedupe_key: str | None = None,
    not_before: datetime | None = None,
) -> Notification:
    """Queue a message; with a `dedupe_key` a second enqueue returns the first row."""
    if dedupe_key is not None and (found := _by_dedupe_key(session, dedupe_key)) is not None:
        return found
    row = Notification(
        channel=channel,
        recipient=recipient,
        kind=kind,
        payload=payload,
        dedupe_key=dedupe_key,
        next_attempt_at=not_before,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        # A concurrent transaction enqueued the same key first: theirs stands.
        if dedupe_key is None or (found := _by_dedupe_key(session, dedupe_key)) is None:
            raise
        return found
    return row


def _by_dedupe_key(session: Session, dedupe_key: str) -> Notification | None:
    return session.scalar(select(Notification).where(Notification.dedupe_key == dedupe_key))


def resident_address(session: Session, *, resident: Resident) -> tuple[str, str] | None:
    """(channel, recipient) to reach a resident: their preferred linked channel, else any."""
    identities = session.scalars(
        select(ChannelIdentity)
        .where(
            ChannelIdentity.resident_id == resident.id,
            ChannelIdentity.state != VerificationState.revoked,
        )
        .order_by(ChannelIdentity.id.desc())
    ).all()
    preferred = [i for i in identities if i.kind == resident.preferred_channel]
    for identity in preferred or identities:
        return identity.kind.value, identity.identity
    if resident.phones:
        return "phone", f"phone:{resident.phones[0].number}"
    return None


def notify_resident(
    session: Session,
    *,
    resident: Resident,
    kind: str,
    payload: dict[str, Any],
    dedupe_key: str | None = None,
    via_identity: ChannelIdentity | None = None,
) -> Notification | None:
    """Tell a resident something on the channel they used (`via_identity`) or prefer."""
    if via_identity is not None:
        address: tuple[str, str] | None = (via_identity.kind.value, via_identity.identity)
    else:
        address = resident_address(session, resident=resident)
    if address is None:
        return None
    channel, recipient = address
    return enqueue(
        session,
        channel=channel,
        recipient=recipient,
        kind=kind,
        payload=payload,
        dedupe_key=dedupe_key,
    )


def notify_identity(
    session: Session,
    *,
    identity: ChannelIdentity,
    kind: str,
    payload: dict[str, Any],
    dedupe_key: str | None = None,
) -> Notification:
    """Tell a sender something on the channel they wrote from (unknown senders too)."""
    return enqueue(
        session,
        channel=identity.kind.value,
        recipient=identity.identity,
        kind=kind,
        payload=payload,
        dedupe_key=dedupe_key,
    )


def notify_staff(
    session: Session,
    *,
    staff_id: int,
    kind: str,
    payload: dict[str, Any],
    dedupe_key: str | None = None,
) -> Notification:
    """Tell a staff member (unit leader, grid worker…) in the messaging app they linked.

    Staff whose account names no resident with a linked messaging identity (Telegram, WeChat)
    get a "staff" row, which no channel worker can push (telephones take no pushes).
    """
    staff = session.get(StaffUser, staff_id)
    resident = session.get(Resident, staff.resident_id) if staff and staff.resident_id else None
    address = resident_address(session, resident=resident) if resident is not None else None
    if address is None or address[0] not in PUSH_CHANNELS:
        address = ("staff", f"staff:{staff_id}")
    channel, recipient = address
    return enqueue(
        session,
        channel=channel,
        recipient=recipient,
        kind=kind,
        payload=payload,
        dedupe_key=dedupe_key,
    )


# --- The draining side: channel workers lease rows, then report each as sent or failed. ---

RETRY_BASE = timedelta(seconds=30)
MAX_ERROR_LENGTH = 500


def claim(
    session: Session, *, channel: str | None, limit: int, now: datetime, lease_seconds: int
) -> list[Notification]:
    """Lease up to `limit` due messages to one worker; concurrent workers never share a row."""
    leased_out = and_(Notification.state == DeliveryState.sending, Notification.lease_until < now)
    query = select(Notification).where(
        or_(Notification.state == DeliveryState.pending, leased_out),
        or_(Notification.next_attempt_at.is_(None), Notification.next_attempt_at <= now),
    )
    if channel is not None:
        query = query.where(Notification.channel == channel)
    # PostgreSQL: rows another worker is claiming are skipped, not waited for.
    # SQLite ignores FOR UPDATE; its BEGIN IMMEDIATE makes claimers take turns instead.
    rows = session.scalars(
        query.order_by(Notification.id).limit(limit).with_for_update(skip_locked=True)
    ).all()
    lease_until = now + timedelta(seconds=lease_seconds)
    for row in rows:
        row.state = DeliveryState.sending
        row.lease_until = lease_until
        row.attempts += 1
    session.flush()
    return list(rows)


def get_notification(session: Session, *, notification_id: int) -> Notification:
    """One outbox row, or a 404 problem."""
    row = session.get(Notification, notification_id)
    if row is None:
        raise not_found("通知")
    return row


def mark_sent(session: Session, *, notification_id: int, now: datetime) -> Notification:
    """Record delivery; reporting it again changes nothing."""
    row = get_notification(session, notification_id=notification_id)
    if row.state != DeliveryState.sent:
        row.state = DeliveryState.sent
        row.sent_at = now
        row.lease_until = None
        session.flush()
    return row


def mark_failed(
    session: Session,
    *,
    notification_id: int,
    error: str,
    now: datetime,
    max_attempts: int = 5,
) -> Notification:
    """Retry later with exponential backoff (30 s, 60 s, 120 s…), or give up after the last try."""
    row = get_notification(session, notification_id=notification_id)
    if row.state in (DeliveryState.sent, DeliveryState.failed):
        return row  # a late or repeated report must not undo the outcome
    row.last_error = error[:MAX_ERROR_LENGTH]
    row.lease_until = None
    if row.attempts >= max_attempts:
        row.state = DeliveryState.failed
        row.next_attempt_at = None
    else:
        row.state = DeliveryState.pending
        row.next_attempt_at = now + RETRY_BASE * 2 ** (max(row.attempts, 1) - 1)
    session.flush()
    return row


def list_notifications(
    session: Session,
    *,
    limit: int,
    offset: int,
    state: DeliveryState | None = None,
    channel: str | None = None,
) -> tuple[Sequence[Notification], int]:
    """A page of the outbox, newest first, and the total."""
    query = select(Notification)
    if state is not None:
        query = query.where(Notification.state == state)
    if channel is not None:
        query = query.where(Notification.channel == channel)
    return page(session, query.order_by(Notification.id.desc()), limit=limit, offset=offset)
