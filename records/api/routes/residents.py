"""Residents: registration by staff, lookup, and one-time verification codes."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from records.api.deps import (
    ClockDep,
    PageDep,
    PrincipalDep,
    SessionDep,
    SettingsDep,
    require_roles,
)
from records.api.idempotency import IdempotencyDep
from records.models import StaffRole
from records.repository import identities as identities_repo
from records.repository import residents as residents_repo
from records.schemas.common import Page
from records.schemas.convert import resident_out
from records.schemas.people import CodeOut, ResidentCreate, ResidentOut

router = APIRouter(
    prefix="/residents",
    tags=["residents"],
    dependencies=[Depends(require_roles(StaffRole.grid_worker, StaffRole.unit_leader))],
)


@router.post("", status_code=201, response_model=ResidentOut)
def create_resident(
    body: ResidentCreate, session: SessionDep, idem: IdempotencyDep
) -> JSONResponse:
    """Register a resident."""

    def create() -> ResidentOut:
        resident = residents_repo.create_resident(
            session,
            **body.model_dump(exclude={"emergency_contacts"}),
            emergency_contacts=[c.model_dump() for c in body.emergency_contacts],
        )
        return resident_out(resident)

    return idem.run(body, create)


@router.get("")
def list_residents(
    session: SessionDep,
    page: PageDep,
    household_id: int | None = None,
    elderly: Annotated[bool | None, Query()] = None,
) -> Page[ResidentOut]:
    """List residents, a page at a time."""
    rows, total = residents_repo.list_residents(
        session, limit=page.limit, offset=page.offset, household_id=household_id, elderly=elderly
    )
    return Page(
        items=[resident_out(r) for r in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.get("/{resident_id}")
def get_resident(resident_id: int, session: SessionDep) -> ResidentOut:
    """One resident."""
    return resident_out(residents_repo.get_resident(session, resident_id=resident_id))


@router.post("/{resident_id}/verification-codes", status_code=201)
def issue_code(
    resident_id: int,
    session: SessionDep,
    principal: PrincipalDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> CodeOut:
    """Issue a one-time code the resident tells the assistant to link a channel."""
    code, expires_at = identities_repo.issue_code(
        session,
        resident_id=resident_id,
        issued_by_id=principal.staff_id,
        now=clock.now(),
        settings=settings,
    )
    session.commit()
    return CodeOut(resident_id=resident_id, code=code, expires_at=expires_at)
