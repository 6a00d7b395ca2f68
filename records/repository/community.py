"""Community structure: buildings, households and address lookups."""

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from records.core.crypto import current_cipher
from records.core.problems import Problem, not_found
from records.models import Building, Community, Grid, Household, HouseholdUnit


def address_key(*, building_id: int, entrance: int, room: str) -> str:
    """The blind index of one address."""
    return current_cipher().blind_index(f"{building_id}-{entrance}-{room.strip().upper()}")


def create_household(
    session: Session, *, building_id: int, entrance: int, room: str, unit_id: int | None
) -> Household:
    """Add a household at an address (one household per address)."""
    building = session.get(Building, building_id)
    if building is None:
        raise not_found("楼栋")
    if not 1 <= entrance <= building.entrances:
        raise Problem(422, "no-such-entrance", f"{building.name}没有{entrance}单元。")
    key = address_key(building_id=building_id, entrance=entrance, room=room)
    if session.scalar(select(Household.id).where(Household.address_index == key)) is not None:
        raise Problem(409, "household-exists", "这个地址已经登记过住户了。")
    household = Household(
        building_id=building_id,
        entrance=entrance,
        room=room.strip(),
        address_index=key,
        unit_id=unit_id,
    )
    session.add(household)
    session.flush()
    return household


def find_household(
    session: Session, *, building_id: int, entrance: int, room: str
) -> Household | None:
    """The household at an address, if registered."""
    key = address_key(building_id=building_id, entrance=entrance, room=room)
    return session.scalar(select(Household).where(Household.address_index == key))


def building_by_number(session: Session, *, number: int) -> Building | None:
    """A building by its number (3 for 3栋 / 三号楼)."""
    return session.scalar(select(Building).where(Building.number == number))


def list_buildings(session: Session) -> Sequence[Building]:
    """Every building, by number."""
    return session.scalars(select(Building).order_by(Building.number)).all()


def list_units(session: Session) -> Sequence[HouseholdUnit]:
    """Every household unit."""
    return session.scalars(select(HouseholdUnit).order_by(HouseholdUnit.id)).all()


def list_grids(session: Session) -> Sequence[Grid]:
    """Every grid."""
    return session.scalars(select(Grid).order_by(Grid.id)).all()


def get_community(session: Session) -> Community | None:
    """The community this deployment serves (the first one)."""
    return session.scalar(select(Community).order_by(Community.id).limit(1))


def count_households(session: Session) -> int:
    """How many households are registered."""
    return session.scalar(select(func.count(Household.id))) or 0
