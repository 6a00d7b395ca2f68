"""Channel identities: who is this sender, and linking a sender with a verification code."""

from fastapi import APIRouter, Depends

from records.api.deps import ClockDep, SessionDep, SettingsDep, require_roles
from records.models import ChannelIdentity, VerificationState
from records.repository import identities as identities_repo
from records.schemas.convert import resident_brief
from records.schemas.people import IdentityIn, IdentityOut, VerifyIn

router = APIRouter(
    prefix="/identities",
    tags=["identities"],
    # Channels and the assistant call these with the service token; staff only as admins.
    dependencies=[Depends(require_roles())],
)


def identity_out(row: ChannelIdentity, *, recognised_by: str | None) -> IdentityOut:
    """The identity answer for a channel."""
    resident = row.resident if row.state != VerificationState.revoked else None
    return IdentityOut(
        identity=row.identity,
        kind=row.kind,
        state=row.state,
        verified=row.state == VerificationState.verified and resident is not None,
        recognised_by=recognised_by if resident is not None else None,
        resident=resident_brief(resident) if resident is not None else None,
    )


@router.post("/resolve")
def resolve(body: IdentityIn, session: SessionDep) -> IdentityOut:
    """Who is this sender? Registers first contact; POST keeps identities out of URLs and logs."""
    row = identities_repo.get_or_create_identity(session, identity=body.identity)
    session.commit()
    how = None
    if row.resident is not None:
        how = "identity" if row.state == VerificationState.verified else "phone"
    return identity_out(row, recognised_by=how)


@router.post("/verify")
def verify(
    body: VerifyIn, session: SessionDep, clock: ClockDep, settings: SettingsDep
) -> IdentityOut:
    """Link a sender to a resident with a one-time code from staff."""
    row = identities_repo.verify(
        session, identity=body.identity, code=body.code, now=clock.now(), settings=settings
    )
    session.commit()
    return identity_out(row, recognised_by="identity")
