"""Handoff requests: someone asked for a person, and staff call back."""

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from records.api.deps import ClockDep, PageDep, PrincipalDep, SessionDep, SettingsDep, require_roles
from records.api.idempotency import IdempotencyDep
from records.models import HandoffStatus, StaffRole
from records.repository import handoffs as handoffs_repo
from records.schemas.alerts import HandoffCreate, HandoffCreated, HandoffOut, NoteIn
from records.schemas.common import Page

router = APIRouter(
    prefix="/handoffs",
    tags=["handoffs"],
    dependencies=[Depends(require_roles(StaffRole.grid_worker, StaffRole.unit_leader))],
)


@router.post("", status_code=201, response_model=HandoffCreated)
def request_handoff(
    body: HandoffCreate,
    session: SessionDep,
    idem: IdempotencyDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> JSONResponse:
    """Ask for a person to call back; a sender's open request is returned, not duplicated."""

    def create() -> HandoffCreated:
        result = handoffs_repo.request_handoff(
            session, **body.model_dump(), now=clock.now(), settings=settings
        )
        return HandoffCreated(
            handoff=HandoffOut.model_validate(result.handoff),
            created=result.created,
            message=result.message,
        )

    return idem.run(body, create)


@router.get("")
def list_handoffs(
    session: SessionDep, page: PageDep, status: HandoffStatus | None = None
) -> Page[HandoffOut]:
    """List requests, the one due soonest first."""
    rows, total = handoffs_repo.list_handoffs(
        session, limit=page.limit, offset=page.offset, status=status
    )
    items = [HandoffOut.model_validate(h) for h in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/{handoff_id}")
def get_handoff(handoff_id: int, session: SessionDep) -> HandoffOut:
    """One request."""
    return HandoffOut.model_validate(handoffs_repo.get_handoff(session, handoff_id=handoff_id))


@router.post("/{handoff_id}/claim")
def claim(
    handoff_id: int, session: SessionDep, principal: PrincipalDep, clock: ClockDep
) -> HandoffOut:
    """A staff member takes the request on."""
    handoff = handoffs_repo.claim(
        session, handoff_id=handoff_id, staff_id=principal.staff_id, now=clock.now()
    )
    session.commit()
    return HandoffOut.model_validate(handoff)


@router.post("/{handoff_id}/done")
def done(
    handoff_id: int, body: NoteIn, session: SessionDep, principal: PrincipalDep, clock: ClockDep
) -> HandoffOut:
    """The call-back happened."""
    handoff = handoffs_repo.finish(
        session,
        handoff_id=handoff_id,
        staff_id=principal.staff_id,
        note=body.note,
        now=clock.now(),
    )
    session.commit()
    return HandoffOut.model_validate(handoff)
