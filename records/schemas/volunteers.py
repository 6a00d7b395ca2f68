"""Schemas for volunteers, their tasks and points.

Skills come from a fixed vocabulary (see `records.repository.volunteers.SKILLS`):
meal_delivery 送餐, visit 探访, repair 小修小补, escort 陪同出行, first_aid 急救,
driving 开车接送.
"""

from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import AwareDatetime, BaseModel, Field, model_validator

from records.models import OfferState, TaskKind, TaskStatus, Volunteer
from records.schemas.common import ORMModel, Page

SkillWord = Annotated[str, Field(max_length=30)]


class Availability(BaseModel):
    """When a volunteer can help: ISO weekdays (1 = Monday) and parts of the day."""

    weekdays: list[int] = Field(default_factory=list, max_length=7)
    slots: list[Literal["morning", "afternoon", "evening"]] = Field(
        default_factory=list, max_length=3
    )

    @model_validator(mode="after")
    def _weekdays_in_range(self) -> Self:
        if any(not 1 <= day <= 7 for day in self.weekdays):
            raise ValueError("weekdays are 1 (Monday) to 7 (Sunday)")
        return self


class VolunteerCreate(BaseModel):
    """Sign a resident up, by resident id (staff) or verified channel identity (the bot)."""

    resident_id: int | None = None
    identity: str | None = Field(default=None, max_length=140)
    skills: list[SkillWord] = Field(default_factory=list, max_length=10)
    home_building_id: int | None = Field(
        default=None, description="defaults to the building the resident lives in"
    )
    availability: Availability = Field(default_factory=Availability)


class VolunteerUpdate(BaseModel):
    """Change skills, home building, availability, or pause/resume (`active`)."""

    skills: list[SkillWord] | None = Field(default=None, max_length=10)
    home_building_id: int | None = None
    availability: Availability | None = None
    active: bool | None = None


class VolunteerOut(BaseModel):
    """A volunteer."""

    id: int
    resident_id: int
    name: str
    skills: list[str]
    home_building_id: int | None
    availability: dict[str, Any]
    active: bool
    created_at: datetime


def volunteer_out(volunteer: Volunteer) -> VolunteerOut:
    """A volunteer with their name."""
    return VolunteerOut(
        id=volunteer.id,
        resident_id=volunteer.resident_id,
        name=volunteer.resident.name,
        skills=volunteer.skills,
        home_building_id=volunteer.home_building_id,
        availability=volunteer.availability,
        active=volunteer.active,
        created_at=volunteer.created_at,
    )


class IdentityBody(BaseModel):
    """A channel identity, in the body so that it stays out of URLs and logs."""

    identity: str = Field(min_length=3, max_length=140)


class VolunteerMe(BaseModel):
    """What the bot tells someone asking "am I a volunteer, how many points do I have"."""

    is_volunteer: bool
    volunteer: VolunteerOut | None
    points: int
    message: str


class PointsEntryOut(ORMModel):
    """One line of the points ledger."""

    id: int
    task_id: int | None
    delta: int
    reason: str
    created_at: datetime


class PointsOut(BaseModel):
    """A volunteer's balance and a page of their ledger."""

    volunteer_id: int
    balance: int
    ledger: Page[PointsEntryOut]


class TaskCreate(BaseModel):
    """A piece of volunteer work; `offer_to` names volunteers, or is empty to offer it to all."""

    kind: TaskKind
    title: str = Field(min_length=1, max_length=100)
    details: str | None = Field(default=None, max_length=1000)
    resident_id: int | None = None
    building_id: int | None = None
    booking_id: int | None = None
    repair_id: int | None = None
    alert_id: int | None = None
    due_at: AwareDatetime | None = None
    expires_at: AwareDatetime | None = Field(
        default=None, description="escalated to the grid worker if nobody accepts by then"
    )
    points: int | None = Field(
        default=None, ge=0, le=100, description="default: `task_points` for the kind"
    )
    offer_to: list[int] = Field(default_factory=list, max_length=50)
    dispatch: bool = Field(
        default=False,
        description="rank the volunteers and offer to the best few (when offer_to is empty)",
    )


class RepairHelpIn(BaseModel):
    """Staff flag a small repair a handy volunteer can do (one task per repair)."""

    repair_id: int
    title: str | None = Field(default=None, min_length=1, max_length=100)
    details: str | None = Field(default=None, max_length=1000)
    due_at: AwareDatetime | None = None
    points: int | None = Field(default=None, ge=0, le=100)


class OfferOut(ORMModel):
    """One volunteer's answer to an offer."""

    volunteer_id: int
    state: OfferState
    answered_at: datetime | None
    rank: int | None = Field(default=None, description="1 = best; empty for offers made by hand")
    score: int | None = None
    ranking: dict[str, Any] | None = Field(
        default=None, description="score parts, reasons in words, open/recent tasks, points"
    )


class CandidateOut(BaseModel):
    """A volunteer ranked for a task, with the score's parts and the reasons in words."""

    volunteer_id: int
    name: str
    rank: int
    score: int
    parts: dict[str, int]
    reasons: list[str]
    open_tasks: int
    recent_tasks: int
    points: int
    offer_state: OfferState | None = Field(description="their answer, if the task was offered")


class TaskOut(ORMModel):
    """A task."""

    id: int
    kind: TaskKind
    status: TaskStatus
    title: str
    details: str | None
    resident_id: int | None
    building_id: int | None
    booking_id: int | None
    repair_id: int | None
    alert_id: int | None
    volunteer_id: int | None
    points: int
    due_at: datetime | None
    expires_at: datetime | None
    accepted_at: datetime | None
    done_at: datetime | None
    done_note: str | None
    done_photo: str | None = None
    confirmed_at: datetime | None
    reminded_at: datetime | None = None
    source_key: str | None = None
    created_at: datetime


class TaskDetail(TaskOut):
    """A task with the offers made for it."""

    offers: list[OfferOut]


class AnswerIn(BaseModel):
    """Who answers an offer: the volunteer's channel identity (bot) or id (staff)."""

    identity: str | None = Field(default=None, max_length=140)
    volunteer_id: int | None = None


class DoneIn(IdentityBody):
    """The assignee reports the task done, with an optional note and photo."""

    note: str | None = Field(default=None, max_length=1000)
    photo: str | None = Field(
        default=None, max_length=500, description="a photo's URL or a messaging channel file id"
    )


class ConfirmIn(BaseModel):
    """Who confirms: the resident the task was for (identity), or staff (no body)."""

    identity: str | None = Field(default=None, min_length=3, max_length=140)


class ConfirmMineIn(IdentityBody):
    """A resident confirms a task done for them: the one named, else their latest done one."""

    task_id: int | None = None


class MineIn(IdentityBody):
    """A volunteer asks for their tasks, optionally of one status."""

    status: TaskStatus | None = None


class TaskAnswer(BaseModel):
    """The task after an answer, and what to tell the volunteer or resident."""

    task: TaskOut
    message: str
