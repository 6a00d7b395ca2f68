"""Emergency alerts (一键呼叫): raised by any channel, handled by staff."""

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from records.api.deps import ClockDep, PageDep, PrincipalDep, SessionDep, SettingsDep, require_roles
from records.api.idempotency import IdempotencyDep
from records.models import AlertStatus, StaffRole
from records.repository import alerts as alerts_repo
from records.schemas.alerts import AlertCreate, AlertOut, AlertRaised, NoteIn
from records.schemas.common import Page

ANY_STAFF = require_roles(*StaffRole)
RESPONDERS = require_roles(StaffRole.grid_worker, StaffRole.unit_leader)

router = APIRouter(prefix="/alerts", tags=["alerts"], dependencies=[Depends(ANY_STAFF)])


@router.post("", status_code=201, response_model=AlertRaised)
def raise_alert(
    body: AlertCreate,
    session: SessionDep,
    idem: IdempotencyDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> JSONResponse:
    """Raise an emergency; grid worker, unit leader and emergency contacts are told at once."""

    def create() -> AlertRaised:
        raised = alerts_repo.raise_alert(
            session, **body.model_dump(), now=clock.now(), settings=settings
        )
        return AlertRaised(
            alert=AlertOut.model_validate(raised.alert),
            notified=raised.notified,
            message=raised.message,
        )

    return idem.run(body, create)


@router.get("", dependencies=[Depends(RESPONDERS)])
def list_alerts(
    session: SessionDep, page: PageDep, status: AlertStatus | None = None
) -> Page[AlertOut]:
    """List alerts, newest first."""
    rows, total = alerts_repo.list_alerts(
        session, limit=page.limit, offset=page.offset, status=status
    )
    items = [AlertOut.model_validate(a) for a in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/{alert_id}", dependencies=[Depends(RESPONDERS)])
def get_alert(alert_id: int, session: SessionDep) -> AlertOut:
    """One alert."""
    return AlertOut.model_validate(alerts_repo.get_alert(session, alert_id=alert_id))


@router.post("/{alert_id}/acknowledge", dependencies=[Depends(RESPONDERS)])
def acknowledge(
    alert_id: int, session: SessionDep, principal: PrincipalDep, clock: ClockDep
) -> AlertOut:
    """Staff have seen the alert and are acting on it."""
    alert = alerts_repo.acknowledge(
        session, alert_id=alert_id, staff_id=principal.staff_id, now=clock.now()
    )
    session.commit()
    return AlertOut.model_validate(alert)


@router.post("/{alert_id}/resolve", dependencies=[Depends(RESPONDERS)])
def resolve(
    alert_id: int, body: NoteIn, session: SessionDep, principal: PrincipalDep, clock: ClockDep
) -> AlertOut:
    """Close the alert with a note of what was done."""
    alert = alerts_repo.resolve(
        session, alert_id=alert_id, staff_id=principal.staff_id, note=body.note, now=clock.now()
    )
    session.commit()
    return AlertOut.model_validate(alert)
