"""How a community is organised: grids, buildings, household units and households."""

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from records.models.base import Base, CreatedMixin, EncryptedText, IdMixin


class Community(IdMixin, CreatedMixin, Base):
    """A residential community (社区)."""

    __tablename__ = "communities"

    name: Mapped[str] = mapped_column(String(100))
    address: Mapped[str | None] = mapped_column(String(200))

    def __str__(self) -> str:
        return self.name


class Grid(IdMixin, Base):
    """A grid (网格) of about 300 households, looked after by a grid worker."""

    __tablename__ = "grids"

    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"))
    name: Mapped[str] = mapped_column(String(100))
    # use_alter: staff, residents, households, buildings and grids refer to each other in a cycle.
    worker_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", use_alter=True))

    def __str__(self) -> str:
        return self.name


class Building(IdMixin, Base):
    """A building (楼栋), identified by its number within the community."""

    __tablename__ = "buildings"
    __table_args__ = (UniqueConstraint("community_id", "number"),)

    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"))
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"))
    number: Mapped[int]
    name: Mapped[str] = mapped_column(String(50))
    entrances: Mapped[int] = mapped_column(default=1)

    def __str__(self) -> str:
        return self.name


class HouseholdUnit(IdMixin, Base):
    """A household unit (联户单元) of 10-15 households with a unit leader (联户长)."""

    __tablename__ = "household_units"

    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id"))
    name: Mapped[str] = mapped_column(String(100))
    leader_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", use_alter=True))

    def __str__(self) -> str:
        return self.name


class Household(IdMixin, Base):
    """A household (户) living at one address."""

    __tablename__ = "households"

    building_id: Mapped[int] = mapped_column(ForeignKey("buildings.id"))
    entrance: Mapped[int] = mapped_column(default=1)
    room: Mapped[str] = mapped_column(EncryptedText)
    # HMAC of "building_id-entrance-room", to find a household by address without decrypting.
    address_index: Mapped[str] = mapped_column(String(64), unique=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("household_units.id"))

    building: Mapped[Building] = relationship(lazy="joined")

    def __str__(self) -> str:
        return f"{self.building.name}{self.entrance}单元{self.room}"
