"""Repairs (报修): reports from any channel, handling by staff, ratings, SLA escalation."""

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
    require_service_or_admin,
)
from records.api.idempotency import IdempotencyDep
from records.models import EscalationTier, RepairCategory, RepairStatus, StaffRole
from records.repository import repairs as repairs_repo
from records.schemas.common import Page
from records.schemas.repairs import (
    AssignIn,
    EscalationRunOut,
    MineIn,
    RatingIn,
    RepairCreate,
    RepairDetail,
    RepairOut,
    StatusChange,
    repair_detail,
    repair_out,
)

IdFilter = Annotated[int | None, Query(ge=1, le=repairs_repo.MAX_ID)]

router = APIRouter(
    prefix="/repairs",
    tags=["repairs"],
    dependencies=[Depends(require_roles(StaffRole.grid_worker, StaffRole.unit_leader))],
)


@router.post("", status_code=201, response_model=RepairDetail)
def create_repair(
    body: RepairCreate,
    session: SessionDep,
    principal: PrincipalDep,
    clock: ClockDep,
    settings: SettingsDep,
    idem: IdempotencyDep,
) -> JSONResponse:
    """Report a repair (unknown senders may report too)."""

    def create() -> RepairDetail:
        repair = repairs_repo.create_repair(
            session,
            **body.model_dump(exclude={"building"}),
            building_number=body.building,
            actor=principal.name,
            now=clock.now(),
            settings=settings,
        )
        return repair_detail(repair)

    return idem.run(body, create)


@router.get("")
def list_repairs(
    session: SessionDep,
    page: PageDep,
    status: RepairStatus | None = None,
    category: RepairCategory | None = None,
    assignee_id: IdFilter = None,
    building_id: IdFilter = None,
    reporter_id: IdFilter = None,
    escalation_tier: EscalationTier | None = None,
) -> Page[RepairOut]:
    """List repairs, newest first, a page at a time."""
    rows, total = repairs_repo.list_repairs(
        session,
        limit=page.limit,
        offset=page.offset,
        status=status,
        category=category,
        assignee_id=assignee_id,
        building_id=building_id,
        reporter_id=reporter_id,
        escalation_tier=escalation_tier,
    )
    return Page(
        items=[repair_out(r) for r in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.post("/mine")
def my_repairs(body: MineIn, session: SessionDep) -> list[RepairOut]:
    """The caller's recent repairs (POST keeps the identity out of URLs and logs)."""
    rows = repairs_repo.repairs_for_identity(session, identity=body.identity, limit=body.limit)
    return [repair_out(r) for r in rows]


@router.post("/escalations/run", dependencies=[Depends(require_service_or_admin)])
def run_escalations(
    session: SessionDep, clock: ClockDep, settings: SettingsDep
) -> EscalationRunOut:
    """Escalate every overdue repair one tier now (the periodic job does the same)."""
    count = repairs_repo.escalate_overdue(session, settings=settings, now=clock.now())
    session.commit()
    return EscalationRunOut(escalated=count)


@router.get("/{repair_id}")
def get_repair(repair_id: int, session: SessionDep) -> RepairDetail:
    """One repair with its full history."""
    return repair_detail(repairs_repo.get_repair(session, repair_id=repair_id))


@router.post("/{repair_id}/status")
def change_status(
    repair_id: int,
    body: StatusChange,
    session: SessionDep,
    principal: PrincipalDep,
    clock: ClockDep,
) -> RepairDetail:
    """Move a repair along its lifecycle; the reporter is told."""
    repair = repairs_repo.change_status(
        session,
        repair_id=repair_id,
        to_status=body.status,
        note=body.note,
        actor=principal.name,
        now=clock.now(),
    )
    session.commit()
    return repair_detail(repair)


@router.post("/{repair_id}/assign")
def assign(
    repair_id: int,
    body: AssignIn,
    session: SessionDep,
    principal: PrincipalDep,
    clock: ClockDep,
) -> RepairDetail:
    """Give a repair to a staff member."""
    repair = repairs_repo.assign(
        session,
        repair_id=repair_id,
        assignee_id=body.assignee_id,
        note=body.note,
        actor=principal.name,
        now=clock.now(),
    )
    session.commit()
    return repair_detail(repair)


@router.post("/{repair_id}/rating", response_model=RepairDetail)
def rate(
    repair_id: int,
    body: RatingIn,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    idem: IdempotencyDep,
) -> JSONResponse:
    """The reporter rates a finished repair; 1-2 reopens it, 3-5 closes it (retry-safe)."""

    def rate_it() -> RepairDetail:
        repair = repairs_repo.rate(
            session,
            repair_id=repair_id,
            identity=body.identity,
            rating=body.rating,
            comment=body.comment,
            now=clock.now(),
            settings=settings,
        )
        return repair_detail(repair)

    # The repair is part of what the key stands for: reused for another repair it is refused.
    request = {"repair_id": repair_id, **body.model_dump(mode="json")}
    return idem.run(request, rate_it, status_code=200)
