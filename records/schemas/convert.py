"""Building response schemas from tables where fields need assembling."""

from records.models import Household, Resident
from records.schemas.people import AddressOut, EmergencyContact, ResidentBrief, ResidentOut


def address_of(household: Household | None) -> AddressOut | None:
    """A household's address, or None."""
    if household is None:
        return None
    building = household.building
    return AddressOut(
        building_id=building.id,
        building_number=building.number,
        entrance=household.entrance,
        room=household.room,
        text=f"{building.name}{household.entrance}单元{household.room}",
    )


def resident_out(resident: Resident) -> ResidentOut:
    """The full resident record."""
    return ResidentOut(
        id=resident.id,
        name=resident.name,
        household_id=resident.household_id,
        birth_date=resident.birth_date,
        is_elderly=resident.is_elderly,
        lives_alone=resident.lives_alone,
        phones=[p.number for p in resident.phones],
        emergency_contacts=[EmergencyContact(**c) for c in resident.emergency_contacts or []],
        dietary_notes=resident.dietary_notes,
        preferred_channel=resident.preferred_channel,
        address=address_of(resident.household),
    )


def resident_brief(resident: Resident) -> ResidentBrief:
    """What a dialogue needs about a resident."""
    return ResidentBrief(
        id=resident.id,
        name=resident.name,
        is_elderly=resident.is_elderly,
        lives_alone=resident.lives_alone,
        dietary_notes=resident.dietary_notes,
        address=address_of(resident.household),
    )
