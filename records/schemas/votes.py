"""Schemas for votes, ballots and tallies."""

from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, Field

from records.models import Eligibility, Vote, VoteKind, VoteScope
from records.repository.votes import Tally, VoteState, state_of
from records.schemas.common import ORMModel
from records.schemas.people import IdentityIn


class VoteSettings(BaseModel):
    """How a vote runs: kind, options, who may take part, and when."""

    description: str | None = Field(default=None, max_length=2000)
    kind: VoteKind = VoteKind.yes_no
    options: list[Annotated[str, Field(max_length=100)]] = Field(
        default_factory=list, max_length=10, description="labels, for kind=options (2-10)"
    )
    scope: VoteScope = VoteScope.community
    scope_building_id: int | None = None
    scope_unit_id: int | None = None
    eligibility: Eligibility = Eligibility.resident
    opens_at: AwareDatetime
    closes_at: AwareDatetime


class VoteCreate(VoteSettings):
    """A new vote; with `proposal_id` the proposal is put to this vote."""

    title: str = Field(min_length=1, max_length=100)
    proposal_id: int | None = None


class OptionOut(ORMModel):
    """One option: answer with its code, its label or its position."""

    code: str
    label: str
    position: int


class VoteOut(BaseModel):
    """A vote as staff and the assistant see it."""

    id: int
    title: str
    description: str | None
    kind: VoteKind
    scope: VoteScope
    scope_building_id: int | None
    scope_unit_id: int | None
    scope_name: str = Field(description="where it applies, as people say it")
    eligibility: Eligibility
    opens_at: datetime
    closes_at: datetime
    state: VoteState
    options: list[OptionOut]


class BallotIn(IdentityIn):
    """A choice: an option code ("yes", "2"), a label ("同意") or a position ("1")."""

    choice: str = Field(min_length=1, max_length=100)


class ReceiptOut(BaseModel):
    """The confirmation a voter gets; it never says what they chose."""

    vote_id: int
    vote_title: str
    results_at: datetime
    text: str


class VotedOut(BaseModel):
    """Whether a sender (or their household) has voted."""

    vote_id: int
    voted: bool


class OptionCountOut(BaseModel):
    """Ballots for one option."""

    code: str
    label: str
    position: int
    count: int


class TallyOut(BaseModel):
    """The public result of a closed vote."""

    vote_id: int
    title: str
    closes_at: datetime
    options: list[OptionCountOut]
    total: int
    eligible: int = Field(description="residents or households in scope")
    turnout: float | None
    text: str


def vote_out(vote: Vote, *, now: datetime, scope_name: str) -> VoteOut:
    """A vote with its state at `now`."""
    return VoteOut(
        id=vote.id,
        title=vote.title,
        description=vote.description,
        kind=vote.kind,
        scope=vote.scope,
        scope_building_id=vote.scope_building_id,
        scope_unit_id=vote.scope_unit_id,
        scope_name=scope_name,
        eligibility=vote.eligibility,
        opens_at=vote.opens_at,
        closes_at=vote.closes_at,
        state=state_of(vote, now),
        options=[OptionOut.model_validate(o) for o in vote.options],
    )


def tally_out(result: Tally) -> TallyOut:
    """The public result."""
    return TallyOut(
        vote_id=result.vote.id,
        title=result.vote.title,
        closes_at=result.vote.closes_at,
        options=[
            OptionCountOut(
                code=c.option.code, label=c.option.label, position=c.option.position, count=c.count
            )
            for c in result.counts
        ],
        total=result.total,
        eligible=result.eligible,
        turnout=result.turnout,
        text=result.text,
    )
