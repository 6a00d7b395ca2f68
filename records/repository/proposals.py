"""Resident proposals (社区提案制): submit, review, gather support, answer, close or vote.

submitted → under_review → published → supported → answered → closed, or → voting;
staff may reject before publishing. Each change the author should know about is notified.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from records.core.config import Settings
from records.core.problems import Problem, not_found
from records.models import (
    Notification,
    Proposal,
    ProposalStatus,
    ProposalSupport,
    Resident,
    StaffRole,
    StaffUser,
    Vote,
)
from records.repository import identities as identities_repo
from records.repository import notifications as notifications_repo
from records.repository.paging import page

S = ProposalStatus
STATUS_NAMES = {
    S.submitted: "已提交",
    S.under_review: "审核中",
    S.rejected: "未通过审核",
    S.published: "公示中",
    S.supported: "已达到支持人数",
    S.answered: "已答复",
    S.closed: "已办结",
    S.voting: "已转为投票",
}
REVIEWABLE = (S.submitted, S.under_review)
SUPPORTABLE = (S.published, S.supported)
ANSWERABLE = (S.published, S.supported)
VOTABLE = (S.published, S.supported, S.answered)
CLOSABLE = (S.published, S.supported, S.answered, S.voting)

ALREADY_SUPPORTED = Problem(409, "already-supported", "您已经支持过这个提案了。")


class ReviewAction(StrEnum):
    """What staff decide when reviewing a proposal."""

    start_review = "start_review"
    publish = "publish"
    reject = "reject"


def submit(
    session: Session,
    *,
    identity: str,
    title: str,
    content: str,
    channel: str | None,
    now: datetime,
    settings: Settings,
) -> Proposal:
    """A known resident's new proposal, waiting for review.

    Verification is not needed: staff review every proposal before anyone sees it, and an
    elderly caller recognised by phone should be able to make one. Supports and votes,
    which count, need a verified identity.
    """
    author = identities_repo.resident_for(session, identity=identity)
    if author is None:
        raise Problem(
            403,
            "unknown-resident",
            "提交提案需要先在社区登记。请联系社区工作人员登记后再提交。",
        )
    kind, _ = identities_repo.parse_identity(identity)
    proposal = Proposal(
        title=title.strip(),
        content=content.strip(),
        author_id=author.id,
        status=S.submitted,
        support_threshold=settings.proposal_support_threshold,
        support_count=0,
        channel=channel or kind.value,
        created_at=now,
    )
    session.add(proposal)
    session.flush()
    return proposal


def get_proposal(session: Session, *, proposal_id: int) -> Proposal:
    """A proposal, or a 404 problem."""
    proposal = session.get(Proposal, proposal_id)
    if proposal is None:
        raise not_found("提案")
    return proposal


def list_proposals(
    session: Session, *, statuses: Sequence[ProposalStatus], limit: int, offset: int
) -> tuple[Sequence[Proposal], int]:
    """A page of proposals (optionally only those in `statuses`), newest first, and the total."""
    query = select(Proposal)
    if statuses:
        query = query.where(Proposal.status.in_(statuses))
    return page(
        session,
        query.order_by(Proposal.created_at.desc(), Proposal.id.desc()),
        limit=limit,
        offset=offset,
    )


def _require(proposal: Proposal, allowed: Sequence[ProposalStatus], doing: str) -> None:
    if proposal.status not in allowed:
        raise Problem(
            409,
            "proposal-wrong-status",
            f"这个提案现在是“{STATUS_NAMES[proposal.status]}”状态，不能{doing}。",
        )


def review(
    session: Session,
    *,
    proposal_id: int,
    action: ReviewAction,
    note: str | None,
    now: datetime,
) -> Proposal:
    """Staff start reviewing, publish (to gather support) or reject a proposal."""
    proposal = get_proposal(session, proposal_id=proposal_id)
    if action is ReviewAction.start_review:
        _require(proposal, (S.submitted,), "开始审核")
        proposal.status = S.under_review
    elif action is ReviewAction.publish:
        _require(proposal, REVIEWABLE, "公示")
        _publish(session, proposal=proposal, note=note, now=now)
    else:
        _require(proposal, REVIEWABLE, "驳回")
        _reject(session, proposal=proposal, note=note)
    session.flush()
    return proposal


def _publish(session: Session, *, proposal: Proposal, note: str | None, now: datetime) -> None:
    proposal.status = S.published
    proposal.published_at = now
    proposal.review_note = note or proposal.review_note
    _tell_author(
        session,
        proposal,
        event="published",
        text=(
            f"您的提案“{proposal.title}”已经通过审核并公示了。"
            f"有{proposal.support_threshold}位居民支持后，社区会在规定时间内答复。"
        ),
    )


def _reject(session: Session, *, proposal: Proposal, note: str | None) -> None:
    if not note or not note.strip():
        raise Problem(422, "note-required", "请填写没有通过的原因，我们会转告提案人。")
    proposal.status = S.rejected
    proposal.review_note = note.strip()
    _tell_author(
        session,
        proposal,
        event="rejected",
        text=f"很抱歉，您的提案“{proposal.title}”没有通过审核。原因：{proposal.review_note}",
    )


def support(
    session: Session,
    *,
    identity: str,
    proposal_id: int,
    now: datetime,
    settings: Settings,
) -> Proposal:
    """Count one verified resident's support, once; reaching the threshold starts the clock."""
    proposal = get_proposal(session, proposal_id=proposal_id)
    resident = identities_repo.verified_resident(session, identity=identity)
    if proposal.status not in SUPPORTABLE:
        raise Problem(409, "not-supportable", "这个提案现在不在征集支持的阶段，暂时不能支持。")
    if _has_supported(session, proposal_id=proposal.id, resident_id=resident.id):
        raise ALREADY_SUPPORTED
    _record_support(session, proposal_id=proposal.id, resident_id=resident.id, now=now)
    # Counting in SQL keeps the count exact when supports arrive at the same time.
    session.execute(
        update(Proposal)
        .where(Proposal.id == proposal.id)
        .values(support_count=Proposal.support_count + 1)
        .execution_options(synchronize_session=False)
    )
    reached = _mark_supported_if_reached(
        session, proposal_id=proposal.id, now=now, settings=settings
    )
    session.refresh(proposal)
    if reached:
        _announce_threshold(session, proposal=proposal, settings=settings)
    return proposal


def _has_supported(session: Session, *, proposal_id: int, resident_id: int) -> bool:
    found = session.scalar(
        select(ProposalSupport.id).where(
            ProposalSupport.proposal_id == proposal_id,
            ProposalSupport.resident_id == resident_id,
        )
    )
    return found is not None


def _record_support(session: Session, *, proposal_id: int, resident_id: int, now: datetime) -> None:
    try:
        with session.begin_nested():
            session.add(
                ProposalSupport(proposal_id=proposal_id, resident_id=resident_id, created_at=now)
            )
    except IntegrityError as exc:
        # The same resident's concurrent request committed first.
        raise ALREADY_SUPPORTED from exc


def _mark_supported_if_reached(
    session: Session, *, proposal_id: int, now: datetime, settings: Settings
) -> bool:
    """Flip published → supported in one conditional UPDATE, so exactly one support does it."""
    flipped = session.scalar(
        update(Proposal)
        .where(
            Proposal.id == proposal_id,
            Proposal.status == S.published,
            Proposal.support_count >= Proposal.support_threshold,
        )
        .values(
            status=S.supported,
            threshold_reached_at=now,
            answer_due_at=now + timedelta(days=settings.proposal_answer_days),
        )
        .returning(Proposal.id)
        .execution_options(synchronize_session=False)
    )
    return flipped is not None


def _announce_threshold(session: Session, *, proposal: Proposal, settings: Settings) -> None:
    due = proposal.answer_due_at
    due_text = _day_text(due, settings.timezone) if due is not None else "规定时间"
    _tell_author(
        session,
        proposal,
        event="supported",
        text=(
            f"好消息！您的提案“{proposal.title}”已经有{proposal.support_count}位居民支持，"
            f"社区会在{due_text}前给出答复。"
        ),
        answer_due_at=due.isoformat() if due is not None else None,
    )


def answer(session: Session, *, proposal_id: int, answer: str, now: datetime) -> Proposal:
    """The responsible party's answer, told to the author."""
    proposal = get_proposal(session, proposal_id=proposal_id)
    _require(proposal, ANSWERABLE, "答复")
    proposal.status = S.answered
    proposal.answer = answer.strip()
    proposal.answered_at = now
    _tell_author(
        session,
        proposal,
        event="answered",
        text=f"您的提案“{proposal.title}”有答复了：{proposal.answer}",
    )
    session.flush()
    return proposal


def close(session: Session, *, proposal_id: int, now: datetime) -> Proposal:
    """Close a proposal whose matter is settled."""
    proposal = get_proposal(session, proposal_id=proposal_id)
    _require(proposal, CLOSABLE, "办结")
    proposal.status = S.closed
    proposal.closed_at = now
    _tell_author(
        session,
        proposal,
        event="closed",
        text=f"您的提案“{proposal.title}”已经办结，谢谢您的参与。",
    )
    session.flush()
    return proposal


def proposal_ready_for_vote(session: Session, *, proposal_id: int) -> Proposal:
    """The proposal a new vote is about, if it may go to a vote (else 404/409)."""
    proposal = get_proposal(session, proposal_id=proposal_id)
    _require(proposal, VOTABLE, "转为投票")
    return proposal


def link_vote(session: Session, *, proposal: Proposal, vote: Vote, now: datetime) -> None:
    """Put a proposal to the vote just created for it."""
    _require(proposal, VOTABLE, "转为投票")
    proposal.status = S.voting
    proposal.vote_id = vote.id
    _tell_author(
        session,
        proposal,
        event="voting",
        text=f"您的提案“{proposal.title}”将由居民投票决定，欢迎关注。",
        vote_id=vote.id,
    )
    session.flush()


def flag_overdue_answers(session: Session, *, settings: Settings, now: datetime) -> int:
    """Tell admins, once, of each supported proposal whose answer is overdue; returns how many."""
    overdue = session.scalars(
        select(Proposal).where(
            Proposal.status == S.supported,
            Proposal.answered_at.is_(None),
            Proposal.answer_due_at <= now,
        )
    ).all()
    admins = session.scalars(
        select(StaffUser).where(StaffUser.role == StaffRole.admin, StaffUser.active.is_(True))
    ).all()
    flagged = 0
    for proposal in overdue:
        keys = {admin.id: f"proposal:{proposal.id}:overdue:staff:{admin.id}" for admin in admins}
        if all(_already_queued(session, key) for key in keys.values()):
            continue
        flagged += 1
        due = _day_text(proposal.answer_due_at or now, settings.timezone)
        payload = {
            "text": f"提案“{proposal.title}”应在{due}前答复，现在已经超期，请尽快处理。",
            "proposal_id": proposal.id,
            "answer_due_at": (proposal.answer_due_at or now).isoformat(),
        }
        for staff_id, key in keys.items():
            notifications_repo.notify_staff(
                session, staff_id=staff_id, kind="proposal_overdue", payload=payload, dedupe_key=key
            )
    return flagged


def _already_queued(session: Session, dedupe_key: str) -> bool:
    found = session.scalar(select(Notification.id).where(Notification.dedupe_key == dedupe_key))
    return found is not None


def _tell_author(
    session: Session, proposal: Proposal, *, event: str, text: str, **fields: Any
) -> None:
    author = session.get(Resident, proposal.author_id) if proposal.author_id else None
    if author is None:
        return
    notifications_repo.notify_resident(
        session,
        resident=author,
        kind=f"proposal_{event}",
        payload={
            "text": text,
            "proposal_id": proposal.id,
            "title": proposal.title,
            "status": proposal.status.value,
            **fields,
        },
        dedupe_key=f"proposal:{proposal.id}:{event}",
    )


def _day_text(moment: datetime, timezone: str) -> str:
    local = moment.astimezone(ZoneInfo(timezone))
    return f"{local.month}月{local.day}日"


def support_text(proposal: Proposal, *, timezone: str) -> str:
    """What a supporter is told after their support is counted."""
    text = f"谢谢您的支持！“{proposal.title}”已经有{proposal.support_count}位居民支持"
    if proposal.status is S.supported and proposal.answer_due_at is not None:
        due = _day_text(proposal.answer_due_at, timezone)
        return text + f"，已达到{proposal.support_threshold}人，社区会在{due}前答复。"
    return text + f"，达到{proposal.support_threshold}人后社区会正式答复。"
