"""Volunteers (志愿者), the tasks offered to them, and the points ledger (积分)."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from records.models.base import Base, CreatedMixin, IdMixin, str_enum
from records.models.people import Resident


class TaskKind(StrEnum):
    """Kinds of volunteer work."""

    meal_delivery = "meal_delivery"
    visit = "visit"
    repair_help = "repair_help"
    escort = "escort"
    emergency_check = "emergency_check"


class TaskStatus(StrEnum):
    """offered → accepted → done, or expired / escalated when nobody takes it."""

    offered = "offered"
    accepted = "accepted"
    done = "done"
    expired = "expired"
    escalated = "escalated"
    cancelled = "cancelled"


class OfferState(StrEnum):
    """One volunteer's answer to an offer."""

    pending = "pending"
    accepted = "accepted"
    declined = "declined"
    withdrawn = "withdrawn"


class Volunteer(IdMixin, CreatedMixin, Base):
    """A resident who volunteers, with skills, home building and availability."""

    __tablename__ = "volunteers"

    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), unique=True)
    skills: Mapped[list[str]] = mapped_column(default=list)
    home_building_id: Mapped[int | None] = mapped_column(ForeignKey("buildings.id"))
    # e.g. {"weekdays": [1, 2, 3, 4, 5], "slots": ["morning", "afternoon"]}
    availability: Mapped[dict[str, Any]] = mapped_column(default=dict)
    active: Mapped[bool] = mapped_column(default=True)

    resident: Mapped[Resident] = relationship(lazy="joined")

    def __str__(self) -> str:
        return self.resident.name


class Task(IdMixin, CreatedMixin, Base):
    """A piece of volunteer work; at most one volunteer is ever assigned."""

    __tablename__ = "tasks"

    kind: Mapped[TaskKind] = mapped_column(str_enum(TaskKind))
    status: Mapped[TaskStatus] = mapped_column(
        str_enum(TaskStatus), default=TaskStatus.offered, index=True
    )
    title: Mapped[str] = mapped_column(String(100))
    details: Mapped[str | None] = mapped_column(Text)
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"))
    building_id: Mapped[int | None] = mapped_column(ForeignKey("buildings.id"))
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id"))
    repair_id: Mapped[int | None] = mapped_column(ForeignKey("repairs.id"))
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("emergency_alerts.id"))
    volunteer_id: Mapped[int | None] = mapped_column(ForeignKey("volunteers.id"))
    points: Mapped[int] = mapped_column(default=1)
    due_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    accepted_at: Mapped[datetime | None]
    done_at: Mapped[datetime | None]
    done_note: Mapped[str | None] = mapped_column(Text)
    # A photo of the finished work: a URL or a messaging channel's file id.
    done_photo: Mapped[str | None] = mapped_column(String(500))
    confirmed_at: Mapped[datetime | None]
    # When the assignee was reminded of the due time (once per task).
    reminded_at: Mapped[datetime | None]
    # What made the task arise ("booking:12", "alert:3", "repair:7", "visit:5:2938"); unique,
    # so a booking or an alert never gets two tasks, even when two requests race.
    source_key: Mapped[str | None] = mapped_column(String(60), unique=True)

    def __str__(self) -> str:
        return self.title


class TaskOffer(IdMixin, CreatedMixin, Base):
    """A task offered to one volunteer."""

    __tablename__ = "task_offers"
    __table_args__ = (UniqueConstraint("task_id", "volunteer_id"),)

    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), index=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id"), index=True)
    state: Mapped[OfferState] = mapped_column(str_enum(OfferState), default=OfferState.pending)
    answered_at: Mapped[datetime | None]
    # Where dispatch ranked this volunteer (1 = best), the total score and its parts with
    # the reasons in words, so staff can see why an offer went to whom. Empty for offers
    # staff made by hand.
    rank: Mapped[int | None]
    score: Mapped[int | None]
    ranking: Mapped[dict[str, Any] | None]


class PointsEntry(IdMixin, CreatedMixin, Base):
    """A line of the points ledger; a task credits its volunteer once."""

    __tablename__ = "points_ledger"
    __table_args__ = (UniqueConstraint("volunteer_id", "task_id", "reason"),)

    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id"), index=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"))
    delta: Mapped[int]
    reason: Mapped[str] = mapped_column(String(50))
