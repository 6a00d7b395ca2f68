"""The notifications outbox for channel workers: claim a batch, deliver, report each."""

from fastapi import APIRouter, Depends

from records.api.deps import ClockDep, PageDep, SessionDep, require_service_or_admin
from records.models import DeliveryState
from records.repository import notifications as notifications_repo
from records.schemas.common import Page
from records.schemas.notifications import ClaimedOut, ClaimIn, FailedIn, NotificationOut

router = APIRouter(
    prefix="/notifications",
    tags=["notifications"],
    dependencies=[Depends(require_service_or_admin)],
)


@router.post("/claim")
def claim(body: ClaimIn, session: SessionDep, clock: ClockDep) -> list[ClaimedOut]:
    """Lease due messages to this worker; concurrent workers never get the same one."""
    rows = notifications_repo.claim(
        session,
        channel=body.channel,
        limit=body.limit,
        now=clock.now(),
        lease_seconds=body.lease_seconds,
    )
    claimed = [ClaimedOut.model_validate(r) for r in rows]
    session.commit()
    return claimed


@router.post("/{notification_id}/sent")
def sent(notification_id: int, session: SessionDep, clock: ClockDep) -> NotificationOut:
    """Report a delivery (repeating the report is harmless)."""
    row = notifications_repo.mark_sent(session, notification_id=notification_id, now=clock.now())
    session.commit()
    return NotificationOut.model_validate(row)


@router.post("/{notification_id}/failed")
def failed(
    notification_id: int, body: FailedIn, session: SessionDep, clock: ClockDep
) -> NotificationOut:
    """Report a failed delivery: retried with backoff, or given up after the last attempt."""
    row = notifications_repo.mark_failed(
        session, notification_id=notification_id, error=body.error, now=clock.now()
    )
    session.commit()
    return NotificationOut.model_validate(row)


@router.get("")
def list_notifications(
    session: SessionDep,
    page: PageDep,
    state: DeliveryState | None = None,
    channel: str | None = None,
) -> Page[NotificationOut]:
    """List the outbox, newest first."""
    rows, total = notifications_repo.list_notifications(
        session, limit=page.limit, offset=page.offset, state=state, channel=channel
    )
    items = [NotificationOut.model_validate(r) for r in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)
