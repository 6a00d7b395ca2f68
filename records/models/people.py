"""People: residents, their channel identities, verification codes and staff users."""

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Date, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from records.models.base import Base, CreatedMixin, EncryptedJSON, EncryptedText, IdMixin, str_enum
from records.models.community import Household


class ChannelKind(StrEnum):
    """Channels a person can reach Linli through."""

    telegram = "telegram"
    wechat = "wechat"
    phone = "phone"
    web = "web"


class VerificationState(StrEnum):
    """Whether a channel identity is proven to belong to its resident."""

    unverified = "unverified"
    verified = "verified"
    revoked = "revoked"


class StaffRole(StrEnum):
    """Roles of staff users; each sees only what it needs."""

    admin = "admin"
    grid_worker = "grid_worker"
    canteen = "canteen"
    unit_leader = "unit_leader"


class Resident(IdMixin, CreatedMixin, Base):
    """A resident (居民). Phones, contacts and health notes are encrypted at rest."""

    __tablename__ = "residents"

    household_id: Mapped[int | None] = mapped_column(ForeignKey("households.id"))
    name: Mapped[str] = mapped_column(String(50))
    birth_date: Mapped[date | None] = mapped_column(Date)
    is_elderly: Mapped[bool] = mapped_column(default=False)
    lives_alone: Mapped[bool] = mapped_column(default=False)
    emergency_contacts: Mapped[list[dict[str, Any]] | None] = mapped_column(EncryptedJSON)
    dietary_notes: Mapped[str | None] = mapped_column(EncryptedText)
    preferred_channel: Mapped[ChannelKind | None] = mapped_column(str_enum(ChannelKind))

    household: Mapped[Household | None] = relationship(lazy="joined")
    phones: Mapped[list["ResidentPhone"]] = relationship(
        back_populates="resident", cascade="all, delete-orphan", lazy="selectin"
    )

    def __str__(self) -> str:
        return self.name


class ResidentPhone(IdMixin, Base):
    """A registered phone number (E.164), encrypted, with a blind index for caller ID lookup."""

    __tablename__ = "resident_phones"

    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id", ondelete="CASCADE"))
    number: Mapped[str] = mapped_column(EncryptedText)
    number_index: Mapped[str] = mapped_column(String(64), unique=True)

    resident: Mapped[Resident] = relationship(back_populates="phones")


class ChannelIdentity(IdMixin, CreatedMixin, Base):
    """A sender on a channel (`telegram:<id>`, `phone:<E.164>`, …), maybe linked to a resident."""

    __tablename__ = "channel_identities"

    kind: Mapped[ChannelKind] = mapped_column(str_enum(ChannelKind))
    external_id: Mapped[str] = mapped_column(EncryptedText)
    # HMAC of the full "kind:external_id" string; the only way identities are looked up.
    lookup_index: Mapped[str] = mapped_column(String(64), unique=True)
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"))
    state: Mapped[VerificationState] = mapped_column(
        str_enum(VerificationState), default=VerificationState.unverified
    )
    verified_at: Mapped[datetime | None]
    failed_attempts: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]

    resident: Mapped[Resident | None] = relationship(lazy="joined")

    @property
    def identity(self) -> str:
        """The full identity string."""
        return f"{self.kind.value}:{self.external_id}"

    def __str__(self) -> str:
        return f"{self.kind.value}:…"


class VerificationCode(IdMixin, CreatedMixin, Base):
    """A one-time code staff give a resident to link a channel identity."""

    __tablename__ = "verification_codes"

    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id", ondelete="CASCADE"))
    code_index: Mapped[str] = mapped_column(String(64), index=True)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))


class StaffUser(IdMixin, CreatedMixin, Base):
    """A member of community staff who signs in to the console."""

    __tablename__ = "staff_users"
    __table_args__ = (UniqueConstraint("username"),)

    username: Mapped[str] = mapped_column(String(50))
    display_name: Mapped[str] = mapped_column(String(50))
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[StaffRole] = mapped_column(str_enum(StaffRole))
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"))
    active: Mapped[bool] = mapped_column(default=True)
    last_login_at: Mapped[datetime | None]

    def __str__(self) -> str:
        return self.display_name
