"""Schemas for unit leaders' one-tap answers (收到 / 上报) to their households' requests."""

from pydantic import BaseModel, Field


class LeaderIn(BaseModel):
    """Who answers: a channel identity (the assistant), or nobody for a signed-in staff user."""

    identity: str | None = Field(default=None, min_length=3, max_length=140)


class RequestAnswerIn(LeaderIn):
    """An answer to one request, named "repair:12" or "alert:3"."""

    request: str = Field(min_length=3, max_length=40, examples=["repair:12"])
    note: str | None = Field(default=None, max_length=500, description="why, for 上报")


class RequestAnswerOut(BaseModel):
    """What the tap did and what to tell the leader."""

    request: str
    changed: bool
    message: str


class OpenRequestOut(BaseModel):
    """A request the leader can still answer (no rooms or phone numbers)."""

    request: str
    kind: str
    summary: str
    status: str
