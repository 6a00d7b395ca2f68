"""Schemas for repairs (报修): what channels send, and what staff and the assistant read back."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from records.models import EscalationTier, Repair, RepairCategory, RepairStatus, Urgency
from records.repository.repairs import CATEGORY_NAMES, STATUS_NAMES, full_place
from records.schemas.common import ORMModel
from records.schemas.people import IdentityIn


class RepairCreate(BaseModel):
    """A repair report: what, how urgent, where (building/entrance/room or free text), who."""

    model_config = ConfigDict(str_strip_whitespace=True)

    category: RepairCategory
    description: str = Field(min_length=1, max_length=500)
    urgency: Urgency = Urgency.normal
    identity: str | None = Field(
        default=None, min_length=3, max_length=140, description="the reporter's channel identity"
    )
    building: int | None = Field(
        default=None, ge=1, le=9999, description="building number (3 for 3号楼)"
    )
    building_id: int | None = None
    entrance: int | None = Field(default=None, ge=1, le=20, description="单元")
    room: str | None = Field(default=None, min_length=1, max_length=10)
    location_text: str | None = Field(default=None, min_length=1, max_length=200)
    channel: str | None = Field(default=None, max_length=20, pattern=r"^[a-z0-9_]+$")


class StatusChange(BaseModel):
    """Move a repair to a new status, with an optional note for the history and the reporter."""

    status: RepairStatus
    note: str | None = Field(default=None, max_length=500)


class AssignIn(BaseModel):
    """Give a repair to a staff member."""

    assignee_id: int
    note: str | None = Field(default=None, max_length=500)


class RatingIn(IdentityIn):
    """The reporter's satisfaction: 1 (not at all) to 5 (very); 1-2 reopens the repair."""

    rating: int = Field(ge=1, le=5)
    comment: str | None = Field(default=None, max_length=500)


class MineIn(IdentityIn):
    """Whose repairs to list."""

    limit: int = Field(default=5, ge=1, le=20)


class EscalationRunOut(BaseModel):
    """How many repairs one escalation run moved up a tier."""

    escalated: int


class RepairEventOut(ORMModel):
    """One entry of a repair's history."""

    id: int
    kind: str
    from_status: str | None
    to_status: str | None
    note: str | None
    actor: str
    created_at: datetime


class RepairOut(BaseModel):
    """A repair as staff and the assistant see it."""

    id: int
    category: RepairCategory
    category_name: str
    description: str
    urgency: Urgency
    status: RepairStatus
    status_name: str
    building_id: int | None
    building_number: int | None
    entrance: int | None
    room: str | None
    location_text: str | None
    place: str = Field(description="the location as people say it")
    reporter_id: int | None
    channel: str | None
    assignee_id: int | None
    escalation_tier: EscalationTier
    escalated_at: datetime | None
    first_response_due_at: datetime
    closure_due_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    created_at: datetime
    updated_at: datetime | None
    rating: int | None
    rating_comment: str | None


class RepairDetail(RepairOut):
    """A repair with its full history."""

    events: list[RepairEventOut]


def repair_out(repair: Repair) -> RepairOut:
    """The repair without its history."""
    return RepairOut.model_validate(_fields(repair))


def repair_detail(repair: Repair) -> RepairDetail:
    """The repair with its history, oldest event first."""
    events = [RepairEventOut.model_validate(e) for e in repair.events]
    return RepairDetail.model_validate({**_fields(repair), "events": events})


def _fields(repair: Repair) -> dict[str, object]:
    return {
        "id": repair.id,
        "category": repair.category,
        "category_name": CATEGORY_NAMES[repair.category],
        "description": repair.description,
        "urgency": repair.urgency,
        "status": repair.status,
        "status_name": STATUS_NAMES[repair.status],
        "building_id": repair.building_id,
        "building_number": repair.building.number if repair.building else None,
        "entrance": repair.entrance,
        "room": repair.room,
        "location_text": repair.location_text,
        "place": full_place(repair),
        "reporter_id": repair.reporter_id,
        "channel": repair.channel,
        "assignee_id": repair.assignee_id,
        "escalation_tier": repair.escalation_tier,
        "escalated_at": repair.escalated_at,
        "first_response_due_at": repair.first_response_due_at,
        "closure_due_at": repair.closure_due_at,
        "acknowledged_at": repair.acknowledged_at,
        "resolved_at": repair.resolved_at,
        "closed_at": repair.closed_at,
        "created_at": repair.created_at,
        "updated_at": repair.updated_at,
        "rating": repair.rating,
        "rating_comment": repair.rating_comment,
    }
