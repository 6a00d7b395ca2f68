"""The elderly canteen (老年食堂): dishes, menus per day and slot, bookings."""

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Column, Date, ForeignKey, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from records.models.base import Base, CreatedMixin, EncryptedText, IdMixin, str_enum


class MealSlot(StrEnum):
    """Meals of the day."""

    breakfast = "breakfast"
    lunch = "lunch"
    dinner = "dinner"


class BookingStatus(StrEnum):
    """A booking stands until cancelled."""

    booked = "booked"
    cancelled = "cancelled"


menu_dishes = Table(
    "menu_dishes",
    Base.metadata,
    Column("menu_id", ForeignKey("menus.id", ondelete="CASCADE"), primary_key=True),
    Column("dish_id", ForeignKey("dishes.id"), primary_key=True),
)


class Dish(IdMixin, Base):
    """A dish the canteen cooks."""

    __tablename__ = "dishes"

    name: Mapped[str] = mapped_column(String(50), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(default=list)
    active: Mapped[bool] = mapped_column(default=True)

    def __str__(self) -> str:
        return self.name


class Menu(IdMixin, Base):
    """What is served on one day and slot, for how many, booked until when, at what price."""

    __tablename__ = "menus"
    __table_args__ = (UniqueConstraint("day", "slot"),)

    day: Mapped[date] = mapped_column(Date, index=True)
    slot: Mapped[MealSlot] = mapped_column(str_enum(MealSlot))
    capacity: Mapped[int]
    cutoff_at: Mapped[datetime]
    price_cents: Mapped[int]

    dishes: Mapped[list[Dish]] = relationship(secondary=menu_dishes, lazy="selectin")

    def __str__(self) -> str:
        return f"{self.day} {self.slot.value}"


class Booking(IdMixin, CreatedMixin, Base):
    """A resident's meal booking; prices are fixed when booked."""

    __tablename__ = "bookings"

    menu_id: Mapped[int] = mapped_column(ForeignKey("menus.id"), index=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    quantity: Mapped[int]
    delivery: Mapped[bool] = mapped_column(default=False)
    dietary_notes: Mapped[str | None] = mapped_column(EncryptedText)
    status: Mapped[BookingStatus] = mapped_column(
        str_enum(BookingStatus), default=BookingStatus.booked
    )
    unit_price_cents: Mapped[int]
    subsidy_cents: Mapped[int]
    total_cents: Mapped[int]
    channel: Mapped[str | None] = mapped_column(String(20))
    cancelled_at: Mapped[datetime | None]

    menu: Mapped[Menu] = relationship(lazy="joined")
