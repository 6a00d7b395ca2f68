"""The audit trail: who changed what, when (field names only, never values)."""

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from records.models.base import Base, CreatedMixin, IdMixin


class AuditEntry(IdMixin, CreatedMixin, Base):
    """One created, updated or deleted row."""

    __tablename__ = "audit_log"

    actor: Mapped[str] = mapped_column(String(60), index=True)
    action: Mapped[str] = mapped_column(String(10))
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str | None] = mapped_column(String(40))
    fields: Mapped[list[str]] = mapped_column(default=list)
