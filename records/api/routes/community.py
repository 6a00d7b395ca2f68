"""The community's structure: buildings, household units and households."""

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from records.api.deps import SessionDep, require_roles
from records.api.idempotency import IdempotencyDep
from records.models import StaffRole
from records.repository import community as community_repo
from records.schemas.people import BuildingOut, HouseholdCreate, HouseholdOut, UnitOut

STAFF = (StaffRole.grid_worker, StaffRole.unit_leader, StaffRole.canteen)
router = APIRouter(prefix="/community", tags=["community"])


@router.get("/buildings", dependencies=[Depends(require_roles(*STAFF))])
def list_buildings(session: SessionDep) -> list[BuildingOut]:
    """Every building."""
    return [BuildingOut.model_validate(b) for b in community_repo.list_buildings(session)]


@router.get("/units", dependencies=[Depends(require_roles(*STAFF))])
def list_units(session: SessionDep) -> list[UnitOut]:
    """Every household unit (联户单元)."""
    return [UnitOut.model_validate(u) for u in community_repo.list_units(session)]


@router.post(
    "/households",
    status_code=201,
    response_model=HouseholdOut,
    dependencies=[Depends(require_roles(StaffRole.grid_worker))],
)
def create_household(
    body: HouseholdCreate, session: SessionDep, idem: IdempotencyDep
) -> JSONResponse:
    """Register a household at an address."""
    return idem.run(
        body,
        lambda: HouseholdOut.model_validate(
            community_repo.create_household(session, **body.model_dump())
        ),
    )
