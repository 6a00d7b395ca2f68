"""Votes (投票 / 参与式预算) with secret ballots: who voted is stored apart from what."""

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from records.models.base import Base, CreatedMixin, IdMixin, str_enum


class VoteKind(StrEnum):
    """Yes/no/abstain, or a choice among listed options."""

    yes_no = "yes_no"
    options = "options"


class VoteScope(StrEnum):
    """Who the vote concerns."""

    community = "community"
    building = "building"
    unit = "unit"


class Eligibility(StrEnum):
    """One ballot per resident, or one per household."""

    resident = "resident"
    household = "household"


class Vote(IdMixin, CreatedMixin, Base):
    """A vote with its scope, eligibility and open/close times."""

    __tablename__ = "votes"

    title: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[VoteKind] = mapped_column(str_enum(VoteKind))
    scope: Mapped[VoteScope] = mapped_column(str_enum(VoteScope), default=VoteScope.community)
    scope_building_id: Mapped[int | None] = mapped_column(ForeignKey("buildings.id"))
    scope_unit_id: Mapped[int | None] = mapped_column(ForeignKey("household_units.id"))
    eligibility: Mapped[Eligibility] = mapped_column(
        str_enum(Eligibility), default=Eligibility.resident
    )
    opens_at: Mapped[datetime]
    closes_at: Mapped[datetime]
    # When the periodic rules told residents that the vote opened / published its result,
    # so each happens once without rescanning every past vote.
    announced_at: Mapped[datetime | None]
    results_published_at: Mapped[datetime | None]

    options: Mapped[list["VoteOption"]] = relationship(
        order_by="VoteOption.position", lazy="selectin", cascade="all, delete-orphan"
    )

    def __str__(self) -> str:
        return self.title


class VoteOption(IdMixin, Base):
    """One option of a vote; yes/no votes have yes, no and abstain."""

    __tablename__ = "vote_options"
    __table_args__ = (UniqueConstraint("vote_id", "code"),)

    vote_id: Mapped[int] = mapped_column(ForeignKey("votes.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(20))
    label: Mapped[str] = mapped_column(String(100))
    position: Mapped[int]

    def __str__(self) -> str:
        return self.label


class VoteParticipation(IdMixin, CreatedMixin, Base):
    """That an eligible identity voted (never what): the unique key stops a second ballot."""

    __tablename__ = "vote_participations"
    __table_args__ = (UniqueConstraint("vote_id", "voter_key"),)

    vote_id: Mapped[int] = mapped_column(ForeignKey("votes.id"))
    # "resident:<id>" or "household:<id>", by the vote's eligibility.
    voter_key: Mapped[str] = mapped_column(String(40))


class Ballot(Base):
    """What was chosen, with a random id and no time, so it cannot be joined to a voter."""

    __tablename__ = "ballots"
    # SQLite would otherwise keep a hidden, increasing rowid: the insertion order that could
    # be lined up with the participations' order. Without it rows sit in random-id order.
    __table_args__ = ({"sqlite_with_rowid": False},)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: uuid.uuid4().hex)
    vote_id: Mapped[int] = mapped_column(ForeignKey("votes.id"), index=True)
    option_id: Mapped[int] = mapped_column(ForeignKey("vote_options.id"))
