"""Schemas for emergency alerts (一键呼叫) and handoff (call-back) requests."""

from datetime import datetime

from pydantic import BaseModel, Field

from records.models import AlertStatus, EmergencyKind, HandoffStatus
from records.schemas.common import ORMModel


class AlertCreate(BaseModel):
    """An emergency call; who and where are optional, because help must never wait for them."""

    kind: EmergencyKind
    identity: str | None = Field(default=None, max_length=140)
    resident_id: int | None = None
    location_text: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=1000)
    channel: str | None = Field(default=None, max_length=20)


class AlertOut(ORMModel):
    """An alert as staff see it."""

    id: int
    kind: EmergencyKind
    status: AlertStatus
    resident_id: int | None
    channel: str | None
    location_text: str | None
    description: str | None
    ack_due_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by_id: int | None
    resolved_at: datetime | None
    note: str | None
    created_at: datetime


class AlertRaised(BaseModel):
    """The new alert, who was told (as roles), and what to tell the caller."""

    alert: AlertOut
    notified: list[str] = Field(description="roles told, e.g. 网格员, 联户长, 紧急联系人")
    message: str


class NoteIn(BaseModel):
    """What was done."""

    note: str | None = Field(default=None, max_length=1000)


class HandoffCreate(BaseModel):
    """A request for a person to call back."""

    identity: str = Field(min_length=3, max_length=140)
    reason: str | None = Field(default=None, max_length=500)
    callback_phone: str | None = Field(default=None, max_length=30)
    channel: str | None = Field(default=None, max_length=20)


class HandoffOut(ORMModel):
    """A call-back request as staff see it."""

    id: int
    status: HandoffStatus
    resident_id: int | None
    channel: str | None
    reason: str | None
    callback_phone: str | None
    due_at: datetime
    handled_by_id: int | None
    handled_at: datetime | None
    note: str | None
    created_at: datetime


class HandoffCreated(BaseModel):
    """The request (new, or the one already open) and what to tell the person."""

    handoff: HandoffOut
    created: bool
    message: str
