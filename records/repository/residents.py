"""Residents and their registered phones."""

from collections.abc import Sequence
from datetime import date
from typing import Any

import phonenumbers
from sqlalchemy import select
from sqlalchemy.orm import Session

from records.core.crypto import current_cipher
from records.core.problems import Problem, not_found
from records.models import ChannelKind, Household, Resident, ResidentPhone
from records.repository.paging import page

BAD_PHONE = "电话号码格式不对，请核对后再试。"


def normalize_phone(raw: str, *, region: str = "CN") -> str:
    """A phone number in E.164 (+8613800138000), or a 422 problem."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise Problem(422, "bad-phone", BAD_PHONE) from exc
    if not phonenumbers.is_possible_number(number):
        raise Problem(422, "bad-phone", BAD_PHONE)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_key(e164: str) -> str:
    """The blind index of a normalised phone number."""
    return current_cipher().blind_index(f"phone:{e164}")


def create_resident(
    session: Session,
    *,
    name: str,
    household_id: int | None,
    birth_date: date | None = None,
    is_elderly: bool = False,
    lives_alone: bool = False,
    phones: Sequence[str] = (),
    emergency_contacts: list[dict[str, Any]] | None = None,
    dietary_notes: str | None = None,
    preferred_channel: ChannelKind | None = None,
) -> Resident:
    """Register a resident; phone numbers must be new to the registry."""
    if household_id is not None and session.get(Household, household_id) is None:
        raise not_found("住户")
    resident = Resident(
        name=name,
        household_id=household_id,
        birth_date=birth_date,
        is_elderly=is_elderly,
        lives_alone=lives_alone,
        emergency_contacts=_normalized_contacts(emergency_contacts),
        dietary_notes=dietary_notes,
        preferred_channel=preferred_channel,
    )
    session.add(resident)
    for raw in phones:
        add_phone(session, resident=resident, raw=raw)
    session.flush()
    return resident


def _normalized_contacts(contacts: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    if contacts is None:
        return None
    return [
        {**c, "phone": normalize_phone(str(c["phone"]))} if c.get("phone") else c for c in contacts
    ]


def add_phone(session: Session, *, resident: Resident, raw: str) -> ResidentPhone:
    """Register a phone number for a resident (each number belongs to one resident)."""
    e164 = normalize_phone(raw)
    key = phone_key(e164)
    if session.scalar(select(ResidentPhone.id).where(ResidentPhone.number_index == key)):
        raise Problem(409, "phone-taken", "这个电话号码已经登记在别的居民名下。")
    phone = ResidentPhone(number=e164, number_index=key)
    resident.phones.append(phone)
    return phone


def get_resident(session: Session, *, resident_id: int) -> Resident:
    """A resident, or a 404 problem."""
    resident = session.get(Resident, resident_id)
    if resident is None:
        raise not_found("居民")
    return resident


def find_by_phone(session: Session, *, e164: str) -> Resident | None:
    """The resident who registered this phone number."""
    return session.scalar(
        select(Resident).join(ResidentPhone).where(ResidentPhone.number_index == phone_key(e164))
    )


def list_residents(
    session: Session,
    *,
    limit: int,
    offset: int,
    household_id: int | None = None,
    elderly: bool | None = None,
) -> tuple[Sequence[Resident], int]:
    """A page of residents and the total."""
    query = select(Resident)
    if household_id is not None:
        query = query.where(Resident.household_id == household_id)
    if elderly is not None:
        query = query.where(Resident.is_elderly == elderly)
    return page(session, query.order_by(Resident.id), limit=limit, offset=offset)


def age_on(resident: Resident, day: date) -> int | None:
    """The resident's age in whole years on `day`, if the birth date is known."""
    born = resident.birth_date
    if born is None:
        return None
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))
