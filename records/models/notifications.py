"""The notifications outbox that channel workers drain."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from records.models.base import Base, CreatedMixin, EncryptedText, IdMixin, str_enum


class DeliveryState(StrEnum):
    """pending → sending (leased) → sent, or failed after the last retry."""

    pending = "pending"
    sending = "sending"
    sent = "sent"
    failed = "failed"


class Notification(IdMixin, CreatedMixin, Base):
    """A message to deliver on a channel; `dedupe_key` makes enqueueing idempotent."""

    __tablename__ = "notifications"

    channel: Mapped[str] = mapped_column(String(20))
    # A channel identity ("telegram:…") or "staff:<id>"; encrypted, it may be a phone number.
    recipient: Mapped[str] = mapped_column(EncryptedText)
    kind: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]]
    state: Mapped[DeliveryState] = mapped_column(
        str_enum(DeliveryState), default=DeliveryState.pending, index=True
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    dedupe_key: Mapped[str | None] = mapped_column(String(120), unique=True)
