"""Schemas for the notifications outbox that channel workers drain."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from records.models import DeliveryState
from records.schemas.common import ORMModel


class ClaimIn(BaseModel):
    """A channel worker asks for messages to deliver."""

    channel: str | None = Field(default=None, max_length=20, description="e.g. telegram, phone")
    limit: int = Field(default=10, ge=1, le=100)
    lease_seconds: int = Field(default=60, ge=5, le=3600)


class ClaimedOut(ORMModel):
    """A leased message: deliver it, then report it sent or failed."""

    id: int
    channel: str
    recipient: str
    kind: str
    payload: dict[str, Any]
    attempts: int


class FailedIn(BaseModel):
    """Why a delivery failed (no personal data, please)."""

    error: str = Field(min_length=1, max_length=2000)


class NotificationOut(ORMModel):
    """An outbox row as admins see it (without the recipient, which is personal data)."""

    id: int
    channel: str
    kind: str
    payload: dict[str, Any]
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime | None
    lease_until: datetime | None
    last_error: str | None
    sent_at: datetime | None
    created_at: datetime
