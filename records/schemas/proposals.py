"""Schemas for proposals and their supports."""

from datetime import datetime

from pydantic import BaseModel, Field

from records.models import ProposalStatus
from records.repository.proposals import ReviewAction
from records.schemas.common import ORMModel
from records.schemas.people import IdentityIn
from records.schemas.votes import VoteSettings


class ProposalCreate(IdentityIn):
    """A resident's proposal, sent by a channel on their behalf."""

    title: str = Field(min_length=1, max_length=100)
    content: str = Field(min_length=1, max_length=5000)
    channel: str | None = Field(
        default=None, max_length=20, description="defaults to the identity's channel"
    )


class ProposalOut(ORMModel):
    """A proposal and where it stands."""

    id: int
    title: str
    content: str
    author_id: int | None
    status: ProposalStatus
    support_threshold: int
    support_count: int
    review_note: str | None
    created_at: datetime
    published_at: datetime | None
    threshold_reached_at: datetime | None
    answer_due_at: datetime | None
    answer: str | None
    answered_at: datetime | None
    closed_at: datetime | None
    vote_id: int | None
    channel: str | None


class ReviewIn(BaseModel):
    """A review decision; rejecting needs a note for the author."""

    action: ReviewAction
    note: str | None = Field(default=None, max_length=1000)


class SupportOut(BaseModel):
    """The confirmation a supporter gets."""

    proposal: ProposalOut
    text: str


class AnswerIn(BaseModel):
    """The responsible party's answer."""

    answer: str = Field(min_length=1, max_length=5000)


class ProposalVoteIn(VoteSettings):
    """A vote on a proposal; the title defaults to the proposal's."""

    title: str | None = Field(default=None, min_length=1, max_length=100)
