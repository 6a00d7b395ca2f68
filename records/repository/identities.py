"""Channel identities: resolving a sender to a resident, and verification by one-time code."""

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from records.core.config import Settings
from records.core.crypto import current_cipher
from records.core.problems import Problem
from records.core.security import new_verification_code
from records.models import (
    ChannelIdentity,
    ChannelKind,
    Resident,
    VerificationCode,
    VerificationState,
)
from records.repository import residents as residents_repo

BAD_IDENTITY = "无法识别的渠道身份。"


def parse_identity(identity: str) -> tuple[ChannelKind, str]:
    """Split `kind:external_id`, normalising phone numbers to E.164."""
    kind_text, sep, external = identity.strip().partition(":")
    if not sep or not external or kind_text not in ChannelKind.__members__:
        raise Problem(422, "bad-identity", BAD_IDENTITY)
    kind = ChannelKind(kind_text)
    if kind is ChannelKind.phone:
        external = residents_repo.normalize_phone(external)
    if len(external) > 128:
        raise Problem(422, "bad-identity", BAD_IDENTITY)
    return kind, external


def identity_key(kind: ChannelKind, external: str) -> str:
    """The blind index of an identity."""
    return current_cipher().blind_index(f"{kind.value}:{external}")


def get_or_create_identity(session: Session, *, identity: str) -> ChannelIdentity:
    """The identity row for a sender, created unverified on first contact."""
    kind, external = parse_identity(identity)
    key = identity_key(kind, external)
    found = session.scalar(select(ChannelIdentity).where(ChannelIdentity.lookup_index == key))
    if found is not None:
        return found
    row = ChannelIdentity(kind=kind, external_id=external, lookup_index=key)
    if kind is ChannelKind.phone:
        # A call from a registered number is recognised (not verified: caller ID can be forged).
        row.resident = residents_repo.find_by_phone(session, e164=external)
    session.add(row)
    session.flush()
    return row


def find_identity(session: Session, *, identity: str) -> ChannelIdentity | None:
    """The identity row, if the sender has been seen before."""
    kind, external = parse_identity(identity)
    key = identity_key(kind, external)
    return session.scalar(select(ChannelIdentity).where(ChannelIdentity.lookup_index == key))


def resident_for(session: Session, *, identity: str) -> Resident | None:
    """The resident behind a sender: a linked identity, else a registered phone number."""
    row = find_identity(session, identity=identity)
    if row is not None and row.resident is not None and row.state != VerificationState.revoked:
        return row.resident
    kind, external = parse_identity(identity)
    if kind is ChannelKind.phone:
        return residents_repo.find_by_phone(session, e164=external)
    return None


def verified_resident(session: Session, *, identity: str) -> Resident:
    """The resident behind a verified identity, or a 403 problem (votes, supports)."""
    row = find_identity(session, identity=identity)
    if row is None or row.resident is None or row.state != VerificationState.verified:
        raise Problem(
            403, "not-verified", "需要先核实身份。请向社区工作人员要一个验证码，再告诉我。"
        )
    return row.resident


def issue_code(
    session: Session,
    *,
    resident_id: int,
    issued_by_id: int | None,
    now: datetime,
    settings: Settings,
) -> tuple[str, datetime]:
    """Create a one-time code for a resident (only its blind index is stored); code and expiry."""
    residents_repo.get_resident(session, resident_id=resident_id)
    cipher = current_cipher()
    while True:
        code = new_verification_code()
        key = cipher.blind_index(f"code:{code}")
        clash = session.scalar(
            select(VerificationCode.id).where(
                VerificationCode.code_index == key,
                VerificationCode.used_at.is_(None),
                VerificationCode.expires_at > now,
            )
        )
        if clash is None:
            break
    expires_at = now + timedelta(hours=settings.verification_code_hours)
    session.add(
        VerificationCode(
            resident_id=resident_id,
            code_index=key,
            expires_at=expires_at,
            issued_by_id=issued_by_id,
        )
    )
    session.flush()
    return code, expires_at


def verify(
    session: Session, *, identity: str, code: str, now: datetime, settings: Settings
) -> ChannelIdentity:
    """Link an identity to the resident a valid code was issued to; codes work once."""
    row = get_or_create_identity(session, identity=identity)
    if row.locked_until is not None and row.locked_until > now:
        raise Problem(
            429, "verification-locked", "验证码错误次数太多，请一小时后再试，或联系工作人员。"
        )
    found = session.scalar(
        select(VerificationCode).where(
            VerificationCode.code_index == current_cipher().blind_index(f"code:{code.strip()}"),
            VerificationCode.used_at.is_(None),
            VerificationCode.expires_at > now,
        )
    )
    if found is None:
        _count_failure(session, row=row, now=now, settings=settings)
        raise Problem(422, "bad-code", "验证码不对或已过期，请核对后再说一遍。")
    found.used_at = now
    row.resident_id = found.resident_id
    row.state = VerificationState.verified
    row.verified_at = now
    row.failed_attempts = 0
    row.locked_until = None
    session.flush()
    session.refresh(row)
    return row


def _count_failure(
    session: Session, *, row: ChannelIdentity, now: datetime, settings: Settings
) -> None:
    row.failed_attempts += 1
    if row.failed_attempts >= settings.verification_max_failures:
        row.locked_until = now + timedelta(minutes=settings.verification_lock_minutes)
        row.failed_attempts = 0
    # Failures must count even though the request is refused: commit them now.
    session.commit()
