"""The notifications outbox: enqueue once per dedupe key; channel workers drain it."""

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from records.models import ChannelIdentity, Notification, Resident, VerificationState


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
    if dedupe_key is not None:
        existing = session.scalar(select(Notification).where(Notification.dedupe_key == dedupe_key))
        if existing is not None:
            return existing
    row = Notification(
        channel=channel,
        recipient=recipient,
        kind=kind,
        payload=payload,
        dedupe_key=dedupe_key,
        next_attempt_at=not_before,
    )
    session.add(row)
    session.flush()
    return row


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
        session, channel=channel, recipient=recipient, kind=kind, payload=payload,
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
        session, channel=identity.kind.value, recipient=identity.identity, kind=kind,
        payload=payload, dedupe_key=dedupe_key,
    )


def notify_staff(
    session: Session,
    *,
    staff_id: int,
    kind: str,
    payload: dict[str, Any],
    dedupe_key: str | None = None,
) -> Notification:
    """Tell a staff member (unit leader, grid worker…); delivered to their console and phone."""
    return enqueue(
        session, channel="staff", recipient=f"staff:{staff_id}", kind=kind, payload=payload,
        dedupe_key=dedupe_key,
    )
