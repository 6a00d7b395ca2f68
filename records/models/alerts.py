"""Emergency alerts (一键呼叫) and requests for a person to call back."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from records.models.base import Base, CreatedMixin, EncryptedText, IdMixin, str_enum


class EmergencyKind(StrEnum):
    """What happened."""

    fall = "fall"
    illness = "illness"
    fire = "fire"
    gas = "gas"
    trapped = "trapped"
    other = "other"


class AlertStatus(StrEnum):
    """open → acknowledged → resolved."""

    open = "open"
    acknowledged = "acknowledged"
    resolved = "resolved"


class HandoffStatus(StrEnum):
    """open → in_progress → done."""

    open = "open"
    in_progress = "in_progress"
    done = "done"


class EmergencyAlert(IdMixin, CreatedMixin, Base):
    """An emergency: grid worker, unit leader and emergency contacts are alerted at once."""

    __tablename__ = "emergency_alerts"

    kind: Mapped[EmergencyKind] = mapped_column(str_enum(EmergencyKind))
    status: Mapped[AlertStatus] = mapped_column(
        str_enum(AlertStatus), default=AlertStatus.open, index=True
    )
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"))
    identity_id: Mapped[int | None] = mapped_column(ForeignKey("channel_identities.id"))
    channel: Mapped[str | None] = mapped_column(String(20))
    location_text: Mapped[str | None] = mapped_column(EncryptedText)
    description: Mapped[str | None] = mapped_column(Text)
    ack_due_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    resolved_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(Text)


class HandoffRequest(IdMixin, CreatedMixin, Base):
    """Someone asked for a person: staff must call back by `due_at`."""

    __tablename__ = "handoff_requests"
    __table_args__ = (
        # One unfinished callback request per sender, even when two arrive at once.
        Index(
            "uq_handoff_requests_open_identity",
            "identity_id",
            unique=True,
            sqlite_where=text("status != 'done'"),
            postgresql_where=text("status != 'done'"),
        ),
    )

    status: Mapped[HandoffStatus] = mapped_column(
        str_enum(HandoffStatus), default=HandoffStatus.open, index=True
    )
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"))
    identity_id: Mapped[int | None] = mapped_column(ForeignKey("channel_identities.id"))
    channel: Mapped[str | None] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    callback_phone: Mapped[str | None] = mapped_column(EncryptedText)
    due_at: Mapped[datetime]
    handled_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    handled_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(Text)
