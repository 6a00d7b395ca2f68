"""Handoff requests: a person asked for a human, and staff must call back in time."""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from records.core.config import Settings
from records.core.problems import Problem, not_found
from records.models import ChannelIdentity, ChannelKind, HandoffRequest, HandoffStatus, Resident
from records.repository import identities as identities_repo
from records.repository import residents as residents_repo
from records.repository.alerts import minutes_text, notify_staff_once, responders_for_building
from records.repository.paging import page


@dataclass(frozen=True)
class HandoffResult:
    """The (new or already open) request and what to tell the person."""

    handoff: HandoffRequest
    created: bool
    message: str


def request_handoff(
    session: Session,
    *,
    identity: str,
    reason: str | None = None,
    callback_phone: str | None = None,
    channel: str | None = None,
    now: datetime,
    settings: Settings,
) -> HandoffResult:
    """Ask staff to call back; a sender with an unfinished request gets that one back."""
    sender = identities_repo.get_or_create_identity(session, identity=identity)
    if (existing := _unfinished(session, sender)) is not None:
        return HandoffResult(existing, created=False, message=_message(existing, now=now))
    resident = identities_repo.resident_for(session, identity=identity)
    handoff = HandoffRequest(
        resident_id=resident.id if resident else None,
        identity_id=sender.id,
        channel=channel or sender.kind.value,
        reason=reason,
        callback_phone=_callback_phone(callback_phone, sender=sender, resident=resident),
        due_at=now + timedelta(minutes=settings.handoff_callback_minutes),
    )
    try:
        with session.begin_nested():
            session.add(handoff)
    except IntegrityError:
        # The same sender asked twice at the same moment; the other request stands.
        existing = _unfinished(session, sender)
        if existing is None:
            raise
        return HandoffResult(existing, created=False, message=_message(existing, now=now))
    _tell_responders(session, handoff=handoff, resident=resident, settings=settings)
    return HandoffResult(handoff, created=True, message=_message(handoff, now=now))


def _unfinished(session: Session, sender: ChannelIdentity) -> HandoffRequest | None:
    return session.scalar(
        select(HandoffRequest).where(
            HandoffRequest.identity_id == sender.id, HandoffRequest.status != HandoffStatus.done
        )
    )


def _callback_phone(
    given: str | None, *, sender: ChannelIdentity, resident: Resident | None
) -> str | None:
    if given:
        return residents_repo.normalize_phone(given)
    if sender.kind is ChannelKind.phone:
        return sender.external_id
    if resident is not None and resident.phones:
        return resident.phones[0].number
    return None


def _tell_responders(
    session: Session, *, handoff: HandoffRequest, resident: Resident | None, settings: Settings
) -> None:
    building_id = resident.household.building_id if resident and resident.household else None
    who = resident.name if resident else "一位居民"
    # Payloads are plain text: the number to call is read from the request, not the message.
    text = (
        f"{who}请求人工服务，请在{minutes_text(settings.handoff_callback_minutes)}分钟内回复"
        f"（回电请求#{handoff.id}）。"
    )
    notify_staff_once(
        session,
        staff_ids=responders_for_building(session, building_id=building_id),
        kind="handoff_requested",
        payload={"text": text, "handoff_id": handoff.id, "due_at": handoff.due_at.isoformat()},
        key=f"handoff:{handoff.id}",
    )


def _message(handoff: HandoffRequest, *, now: datetime) -> str:
    how = "给您回电话" if handoff.callback_phone else "在这里回复您"
    seconds_left = (handoff.due_at - now).total_seconds()
    if seconds_left <= 0:
        return f"社区工作人员会尽快{how}。"
    return f"社区工作人员会在{math.ceil(seconds_left / 60)}分钟内{how}。"


def get_handoff(session: Session, *, handoff_id: int) -> HandoffRequest:
    """One request, or a 404 problem."""
    handoff = session.get(HandoffRequest, handoff_id)
    if handoff is None:
        raise not_found("回电请求")
    return handoff


def list_handoffs(
    session: Session, *, limit: int, offset: int, status: HandoffStatus | None = None
) -> tuple[Sequence[HandoffRequest], int]:
    """A page of requests, the most urgent first, and the total."""
    query = select(HandoffRequest)
    if status is not None:
        query = query.where(HandoffRequest.status == status)
    return page(
        session,
        query.order_by(HandoffRequest.due_at, HandoffRequest.id),
        limit=limit,
        offset=offset,
    )


def claim(
    session: Session, *, handoff_id: int, staff_id: int | None, now: datetime
) -> HandoffRequest:
    """A staff member takes the request on; claiming one's own again is harmless."""
    handoff = get_handoff(session, handoff_id=handoff_id)
    if handoff.status == HandoffStatus.done:
        raise Problem(409, "handoff-done", "这个回电请求已经处理完了。")
    if handoff.status == HandoffStatus.in_progress:
        if handoff.handled_by_id != staff_id:
            raise Problem(409, "handoff-taken", "这个回电请求已经有同事在处理了。")
        return handoff
    handoff.status = HandoffStatus.in_progress
    handoff.handled_by_id = staff_id
    session.flush()
    return handoff


def finish(
    session: Session, *, handoff_id: int, staff_id: int | None, note: str | None, now: datetime
) -> HandoffRequest:
    """The call-back happened; reporting it again changes nothing."""
    handoff = get_handoff(session, handoff_id=handoff_id)
    if handoff.status == HandoffStatus.done:
        return handoff
    if handoff.handled_by_id is None:
        handoff.handled_by_id = staff_id
    handoff.status = HandoffStatus.done
    handoff.handled_at = now
    handoff.note = note
    session.flush()
    return handoff
