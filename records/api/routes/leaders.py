"""Unit leaders (联户长) and grid workers answer their households' requests: 收到 / 上报.

The assistant calls these with the service token and the tapping sender's `identity` (a
verified identity of a resident who is a staff member); staff signed in to the console call
them without one.
"""

from fastapi import APIRouter, Depends

from records.api.deps import ClockDep, PrincipalDep, SessionDep, require_roles
from records.core.problems import Problem
from records.models import StaffRole, StaffUser
from records.repository import leaders as leaders_repo
from records.schemas.leaders import LeaderIn, OpenRequestOut, RequestAnswerIn, RequestAnswerOut

router = APIRouter(
    prefix="/leaders",
    tags=["leaders"],
    dependencies=[Depends(require_roles(StaffRole.unit_leader, StaffRole.grid_worker))],
)
OPEN_LIMIT = 10


def _staff(body: LeaderIn, principal: PrincipalDep, session: SessionDep) -> StaffUser:
    if principal.staff_id is not None:
        staff = session.get(StaffUser, principal.staff_id)
        if staff is not None:
            return staff
    if body.identity is None:
        raise Problem(422, "identity-required", "请说明是哪位联户长：给出渠道身份。")
    return leaders_repo.staff_for_identity(session, identity=body.identity)


@router.post("/requests/acknowledge")
def acknowledge(
    body: RequestAnswerIn, principal: PrincipalDep, session: SessionDep, clock: ClockDep
) -> RequestAnswerOut:
    """收到: acknowledge a repair or an alert from one's households (first response)."""
    staff = _staff(body, principal, session)
    answer = leaders_repo.acknowledge(session, staff=staff, request=body.request, now=clock.now())
    session.commit()
    return RequestAnswerOut(request=answer.request, changed=answer.changed, message=answer.message)


@router.post("/requests/escalate")
def escalate(
    body: RequestAnswerIn, principal: PrincipalDep, session: SessionDep, clock: ClockDep
) -> RequestAnswerOut:
    """上报: hand a request one tier up (unit leader → grid worker → council)."""
    staff = _staff(body, principal, session)
    answer = leaders_repo.escalate(
        session, staff=staff, request=body.request, note=body.note, now=clock.now()
    )
    session.commit()
    return RequestAnswerOut(request=answer.request, changed=answer.changed, message=answer.message)


@router.post("/requests/open")
def open_requests(
    body: LeaderIn, principal: PrincipalDep, session: SessionDep
) -> list[OpenRequestOut]:
    """Requests the leader can still answer, newest first (open alerts, then repairs)."""
    staff = _staff(body, principal, session)
    found = leaders_repo.open_requests(session, staff=staff, limit=OPEN_LIMIT)
    return [
        OpenRequestOut(request=r.request, kind=r.kind, summary=r.summary, status=r.status)
        for r in found
    ]
