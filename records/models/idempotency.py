"""Stored first results of create requests, replayed for retries with the same key."""

from typing import Any

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from records.models.base import Base, CreatedMixin, IdMixin


class IdempotencyRecord(IdMixin, CreatedMixin, Base):
    """The response a create returned for one principal's Idempotency-Key."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("principal", "key"),)

    principal: Mapped[str] = mapped_column(String(60))
    key: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int]
    body: Mapped[dict[str, Any]]
