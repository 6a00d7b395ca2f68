"""Resident proposals (社区提案制) and their supports."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from records.models.base import Base, CreatedMixin, IdMixin, str_enum


class ProposalStatus(StrEnum):
    """submitted → under_review → published → supported → answered → closed | voting."""

    submitted = "submitted"
    under_review = "under_review"
    rejected = "rejected"
    published = "published"
    supported = "supported"
    answered = "answered"
    closed = "closed"
    voting = "voting"


class Proposal(IdMixin, CreatedMixin, Base):
    """A proposal a resident makes for the community."""

    __tablename__ = "proposals"

    title: Mapped[str] = mapped_column(String(100))
    content: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"))
    status: Mapped[ProposalStatus] = mapped_column(
        str_enum(ProposalStatus), default=ProposalStatus.submitted, index=True
    )
    support_threshold: Mapped[int]
    support_count: Mapped[int] = mapped_column(default=0)
    review_note: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime | None]
    threshold_reached_at: Mapped[datetime | None]
    answer_due_at: Mapped[datetime | None]
    answer: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    vote_id: Mapped[int | None] = mapped_column(ForeignKey("votes.id"))
    channel: Mapped[str | None] = mapped_column(String(20))

    def __str__(self) -> str:
        return self.title


class ProposalSupport(IdMixin, CreatedMixin, Base):
    """One resident's support of one proposal (at most one each)."""

    __tablename__ = "proposal_supports"
    __table_args__ = (UniqueConstraint("proposal_id", "resident_id"),)

    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposals.id"))
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"))
