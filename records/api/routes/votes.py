"""Votes: staff create them; the assistant lists them, casts secret ballots, reads tallies."""

from datetime import datetime

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from records.api.deps import ClockDep, PageDep, SessionDep, SettingsDep, require_roles
from records.api.idempotency import IdempotencyDep
from records.core.problems import Problem
from records.models import StaffRole, Vote
from records.repository import votes as votes_repo
from records.repository.votes import VoteState
from records.schemas.common import Page
from records.schemas.people import IdentityIn
from records.schemas.votes import (
    BallotIn,
    ReceiptOut,
    TallyOut,
    VoteCreate,
    VotedOut,
    VoteOut,
    tally_out,
    vote_out,
)

router = APIRouter(
    prefix="/votes",
    tags=["votes"],
    dependencies=[Depends(require_roles(StaffRole.grid_worker))],
)


def as_out(session: Session, vote: Vote, now: datetime) -> VoteOut:
    """A vote as the API shows it (also used by the proposals routes)."""
    return vote_out(vote, now=now, scope_name=votes_repo.scope_name(session, vote))


@router.post("", status_code=201, response_model=VoteOut)
def create_vote(
    body: VoteCreate, session: SessionDep, clock: ClockDep, idem: IdempotencyDep
) -> JSONResponse:
    """Create a vote, optionally putting a proposal to it."""
    now = clock.now()

    def create() -> VoteOut:
        vote = votes_repo.create_vote(session, **body.model_dump(), now=now)
        return as_out(session, vote, now)

    return idem.run(body, create)


@router.get("")
def list_votes(
    session: SessionDep, clock: ClockDep, page: PageDep, state: VoteState | None = None
) -> Page[VoteOut]:
    """List votes, optionally only upcoming, open or closed ones."""
    now = clock.now()
    rows, total = votes_repo.list_votes(
        session, state=state, now=now, limit=page.limit, offset=page.offset
    )
    return Page(
        items=[as_out(session, v, now) for v in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.post("/open-for-me")
def open_for_me(body: IdentityIn, session: SessionDep, clock: ClockDep) -> list[VoteOut]:
    """Votes open now that this verified sender may still vote in."""
    now = clock.now()
    votes = votes_repo.open_votes_for(session, identity=body.identity, now=now)
    return [as_out(session, v, now) for v in votes]


@router.get("/{vote_id}")
def get_vote(vote_id: int, session: SessionDep, clock: ClockDep) -> VoteOut:
    """One vote with its options."""
    return as_out(session, votes_repo.get_vote(session, vote_id=vote_id), clock.now())


@router.post("/{vote_id}/ballots", status_code=201, response_model=ReceiptOut)
def cast_ballot(
    vote_id: int,
    body: BallotIn,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    idem: IdempotencyDep,
) -> JSONResponse:
    """Cast a verified resident's secret ballot; a keyed retry gets the same receipt."""

    def create() -> ReceiptOut:
        receipt = votes_repo.cast(
            session,
            vote_id=vote_id,
            identity=body.identity,
            choice=body.choice,
            now=clock.now(),
            settings=settings,
        )
        return ReceiptOut(
            vote_id=receipt.vote.id,
            vote_title=receipt.vote.title,
            results_at=receipt.vote.closes_at,
            text=receipt.text,
        )

    # The stored fingerprint sits next to the sender: it must not be a hash of the choice.
    request = {"vote_id": vote_id, "identity": body.identity}
    try:
        return idem.run(request, create)
    except Problem as problem:
        if problem.code != votes_repo.ALREADY_VOTED or idem.key is None:
            raise
        # A concurrent retry with the same key may have won the race: replay its receipt.
        session.rollback()
        return idem.run(request, create)


@router.post("/{vote_id}/has-voted")
def has_voted(vote_id: int, body: IdentityIn, session: SessionDep) -> VotedOut:
    """Whether this verified sender (or their household) has voted."""
    voted = votes_repo.has_voted(session, vote_id=vote_id, identity=body.identity)
    return VotedOut(vote_id=vote_id, voted=voted)


@router.get("/{vote_id}/tally")
def get_tally(
    vote_id: int, session: SessionDep, clock: ClockDep, settings: SettingsDep
) -> TallyOut:
    """The public result, once the vote has closed."""
    result = votes_repo.tally(session, vote_id=vote_id, now=clock.now(), settings=settings)
    return tally_out(result)
