"""Schemas for residents, identities and the community structure."""

from datetime import date, datetime

from pydantic import BaseModel, Field

from records.models import ChannelKind, VerificationState
from records.schemas.common import ORMModel


class EmergencyContact(BaseModel):
    """Someone to alert in an emergency."""

    name: str = Field(min_length=1, max_length=50)
    phone: str = Field(min_length=3, max_length=30)
    relation: str | None = Field(default=None, max_length=20)


class ResidentCreate(BaseModel):
    """A new resident."""

    name: str = Field(min_length=1, max_length=50)
    household_id: int | None = None
    birth_date: date | None = None
    is_elderly: bool = False
    lives_alone: bool = False
    phones: list[str] = Field(default_factory=list, max_length=5)
    emergency_contacts: list[EmergencyContact] = Field(default_factory=list, max_length=5)
    dietary_notes: str | None = Field(default=None, max_length=200)
    preferred_channel: ChannelKind | None = None


class HouseholdOut(ORMModel):
    """A household's address."""

    id: int
    building_id: int
    entrance: int
    room: str
    unit_id: int | None


class AddressOut(BaseModel):
    """An address, structured and as people say it."""

    building_id: int
    building_number: int
    entrance: int
    room: str
    text: str


class ResidentOut(ORMModel):
    """A resident as staff and services see them."""

    id: int
    name: str
    household_id: int | None
    birth_date: date | None
    is_elderly: bool
    lives_alone: bool
    phones: list[str]
    emergency_contacts: list[EmergencyContact]
    dietary_notes: str | None
    preferred_channel: ChannelKind | None
    address: AddressOut | None


class ResidentBrief(BaseModel):
    """What a dialogue needs to know about the person it talks to."""

    id: int
    name: str
    is_elderly: bool
    lives_alone: bool
    dietary_notes: str | None
    address: AddressOut | None


class IdentityIn(BaseModel):
    """A channel identity such as `telegram:12345` or `phone:+8613800138000`."""

    identity: str = Field(min_length=3, max_length=140)


class IdentityOut(BaseModel):
    """Who a sender is, as far as the records know."""

    identity: str
    kind: ChannelKind
    state: VerificationState
    verified: bool
    recognised_by: str | None = Field(description="'identity', 'phone' or null")
    resident: ResidentBrief | None


class VerifyIn(IdentityIn):
    """A verification attempt."""

    code: str = Field(min_length=4, max_length=12, pattern=r"^\s*\d+\s*$")


class CodeOut(BaseModel):
    """A one-time verification code for staff to hand over."""

    resident_id: int
    code: str
    expires_at: datetime


class BuildingOut(ORMModel):
    """A building."""

    id: int
    number: int
    name: str
    entrances: int
    grid_id: int | None


class UnitOut(ORMModel):
    """A household unit (联户单元)."""

    id: int
    name: str
    grid_id: int
    leader_id: int | None


class HouseholdCreate(BaseModel):
    """A household at an address."""

    building_id: int
    entrance: int = Field(ge=1, le=20)
    room: str = Field(min_length=1, max_length=10)
    unit_id: int | None = None
