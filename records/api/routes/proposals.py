"""Proposals: residents submit and support them; staff review, answer, close or put to a vote."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from records.api.deps import ClockDep, PageDep, SessionDep, SettingsDep, require_roles
from records.api.idempotency import IdempotencyDep
from records.api.routes.votes import as_out
from records.models import ProposalStatus, StaffRole
from records.repository import proposals as proposals_repo
from records.repository import votes as votes_repo
from records.schemas.common import Page
from records.schemas.people import IdentityIn
from records.schemas.proposals import (
    AnswerIn,
    ProposalCreate,
    ProposalOut,
    ProposalVoteIn,
    ReviewIn,
    SupportOut,
)
from records.schemas.votes import VoteOut

router = APIRouter(
    prefix="/proposals",
    tags=["proposals"],
    dependencies=[Depends(require_roles(StaffRole.grid_worker))],
)


@router.post("", status_code=201, response_model=ProposalOut)
def submit_proposal(
    body: ProposalCreate,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    idem: IdempotencyDep,
) -> JSONResponse:
    """Submit a resident's proposal for review."""

    def create() -> ProposalOut:
        proposal = proposals_repo.submit(
            session,
            identity=body.identity,
            title=body.title,
            content=body.content,
            channel=body.channel,
            now=clock.now(),
            settings=settings,
        )
        return ProposalOut.model_validate(proposal)

    return idem.run(body, create)


@router.get("")
def list_proposals(
    session: SessionDep,
    page: PageDep,
    status: Annotated[list[ProposalStatus] | None, Query()] = None,
) -> Page[ProposalOut]:
    """List proposals, newest first; `status` may be repeated (published&status=supported)."""
    rows, total = proposals_repo.list_proposals(
        session, statuses=status or [], limit=page.limit, offset=page.offset
    )
    return Page(
        items=[ProposalOut.model_validate(p) for p in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{proposal_id}")
def get_proposal(proposal_id: int, session: SessionDep) -> ProposalOut:
    """One proposal."""
    return ProposalOut.model_validate(proposals_repo.get_proposal(session, proposal_id=proposal_id))


@router.post("/{proposal_id}/review")
def review_proposal(
    proposal_id: int, body: ReviewIn, session: SessionDep, clock: ClockDep
) -> ProposalOut:
    """Start reviewing, publish or reject a proposal."""
    proposal = proposals_repo.review(
        session, proposal_id=proposal_id, action=body.action, note=body.note, now=clock.now()
    )
    session.commit()
    return ProposalOut.model_validate(proposal)


@router.post("/{proposal_id}/support")
def support_proposal(
    proposal_id: int,
    body: IdentityIn,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> SupportOut:
    """Count a verified resident's support (once per resident)."""
    proposal = proposals_repo.support(
        session, identity=body.identity, proposal_id=proposal_id, now=clock.now(), settings=settings
    )
    session.commit()
    return SupportOut(
        proposal=ProposalOut.model_validate(proposal),
        text=proposals_repo.support_text(proposal, timezone=settings.timezone),
    )


@router.post("/{proposal_id}/answer")
def answer_proposal(
    proposal_id: int, body: AnswerIn, session: SessionDep, clock: ClockDep
) -> ProposalOut:
    """Record the answer to a proposal and tell its author."""
    proposal = proposals_repo.answer(
        session, proposal_id=proposal_id, answer=body.answer, now=clock.now()
    )
    session.commit()
    return ProposalOut.model_validate(proposal)


@router.post("/{proposal_id}/close")
def close_proposal(proposal_id: int, session: SessionDep, clock: ClockDep) -> ProposalOut:
    """Close a settled proposal."""
    proposal = proposals_repo.close(session, proposal_id=proposal_id, now=clock.now())
    session.commit()
    return ProposalOut.model_validate(proposal)


@router.post("/{proposal_id}/vote", status_code=201, response_model=VoteOut)
def send_to_vote(
    proposal_id: int,
    body: ProposalVoteIn,
    session: SessionDep,
    clock: ClockDep,
    idem: IdempotencyDep,
) -> JSONResponse:
    """Put a proposal to a residents' vote."""
    now = clock.now()

    def create() -> VoteOut:
        proposal = proposals_repo.get_proposal(session, proposal_id=proposal_id)
        vote = votes_repo.create_vote(
            session,
            **body.model_dump(exclude={"title", "description"}),
            title=body.title or proposal.title,
            description=body.description or proposal.content,
            now=now,
            proposal_id=proposal.id,
        )
        return as_out(session, vote, now)

    return idem.run({"proposal_id": proposal_id, **body.model_dump(mode="json")}, create)
