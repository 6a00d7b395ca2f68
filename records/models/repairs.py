"""Repair requests (报修) and their event history."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from records.models.base import Base, CreatedMixin, EncryptedText, IdMixin, str_enum
from records.models.community import Building


class RepairCategory(StrEnum):
    """What is broken; also the Open311 service codes."""

    water = "water"
    electricity = "electricity"
    lift = "lift"
    door_access = "door_access"
    lighting = "lighting"
    drain = "drain"
    gas_appliance = "gas_appliance"
    public_facility = "public_facility"
    other = "other"


class Urgency(StrEnum):
    """How soon it must be seen to."""

    normal = "normal"
    urgent = "urgent"


class RepairStatus(StrEnum):
    """Lifecycle: submitted → acknowledged → assigned → in_progress → resolved → closed."""

    submitted = "submitted"
    acknowledged = "acknowledged"
    assigned = "assigned"
    in_progress = "in_progress"
    resolved = "resolved"
    closed = "closed"
    reopened = "reopened"


class EscalationTier(StrEnum):
    """Who holds an overdue request: 小事不出网格、大事不出社区."""

    none = "none"
    unit_leader = "unit_leader"
    grid_worker = "grid_worker"
    council = "council"


class Repair(IdMixin, CreatedMixin, Base):
    """A repair request from any channel."""

    __tablename__ = "repairs"

    category: Mapped[RepairCategory] = mapped_column(str_enum(RepairCategory))
    description: Mapped[str] = mapped_column(Text)
    urgency: Mapped[Urgency] = mapped_column(str_enum(Urgency), default=Urgency.normal)
    status: Mapped[RepairStatus] = mapped_column(
        str_enum(RepairStatus), default=RepairStatus.submitted, index=True
    )
    building_id: Mapped[int | None] = mapped_column(ForeignKey("buildings.id"))
    entrance: Mapped[int | None]
    room: Mapped[str | None] = mapped_column(EncryptedText)
    location_text: Mapped[str | None] = mapped_column(EncryptedText)
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"))
    reporter_identity_id: Mapped[int | None] = mapped_column(ForeignKey("channel_identities.id"))
    channel: Mapped[str | None] = mapped_column(String(20))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    escalation_tier: Mapped[EscalationTier] = mapped_column(
        str_enum(EscalationTier), default=EscalationTier.none
    )
    escalated_at: Mapped[datetime | None]
    first_response_due_at: Mapped[datetime]
    closure_due_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime | None]
    rating: Mapped[int | None]
    rating_comment: Mapped[str | None] = mapped_column(Text)

    # selectin, not joined: the escalation job locks repairs FOR UPDATE, which PostgreSQL
    # refuses on the nullable side of an outer join.
    building: Mapped[Building | None] = relationship(lazy="selectin")
    events: Mapped[list["RepairEvent"]] = relationship(
        back_populates="repair", order_by="RepairEvent.id", lazy="selectin"
    )

    def __str__(self) -> str:
        return f"报修#{self.id}"


class RepairEvent(IdMixin, CreatedMixin, Base):
    """One change to a repair, with a note: the request's full history."""

    __tablename__ = "repair_events"

    repair_id: Mapped[int] = mapped_column(ForeignKey("repairs.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    from_status: Mapped[str | None] = mapped_column(String(24))
    to_status: Mapped[str | None] = mapped_column(String(24))
    note: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(50))

    repair: Mapped[Repair] = relationship(back_populates="events")
