"""Volunteers, their tasks (offer → accept → done → confirm) and points.

One router: task routes live under /volunteers/tasks and are declared before /{volunteer_id}
so that "tasks" is never read as a volunteer id.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from records.api.deps import ClockDep, PageDep, SessionDep, require_roles
from records.api.idempotency import IdempotencyDep
from records.models import StaffRole, TaskKind, TaskStatus
from records.repository import volunteers as volunteers_repo
from records.schemas.common import Page
from records.schemas.volunteers import (
    AnswerIn,
    DoneIn,
    IdentityBody,
    MineIn,
    OfferOut,
    PointsEntryOut,
    PointsOut,
    TaskAnswer,
    TaskCreate,
    TaskDetail,
    TaskOut,
    VolunteerCreate,
    VolunteerMe,
    VolunteerOut,
    VolunteerUpdate,
    volunteer_out,
)

router = APIRouter(
    prefix="/volunteers",
    tags=["volunteers"],
    dependencies=[Depends(require_roles(StaffRole.grid_worker))],
)


# --- Tasks --------------------------------------------------------------------------------


@router.post("/tasks", status_code=201, response_model=TaskOut)
def create_task(body: TaskCreate, session: SessionDep, idem: IdempotencyDep) -> JSONResponse:
    """Create a task and offer it to the named volunteers (none named: open to all)."""
    return idem.run(
        body,
        lambda: TaskOut.model_validate(volunteers_repo.create_task(session, **body.model_dump())),
    )


@router.get("/tasks")
def list_tasks(
    session: SessionDep,
    page: PageDep,
    status: TaskStatus | None = None,
    kind: TaskKind | None = None,
    volunteer_id: int | None = None,
    building_id: int | None = None,
) -> Page[TaskOut]:
    """List tasks, newest first."""
    rows, total = volunteers_repo.list_tasks(
        session,
        limit=page.limit,
        offset=page.offset,
        status=status,
        kind=kind,
        volunteer_id=volunteer_id,
        building_id=building_id,
    )
    items = [TaskOut.model_validate(t) for t in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.post("/tasks/mine")
def my_tasks(body: MineIn, session: SessionDep) -> list[TaskOut]:
    """A volunteer's tasks: offers awaiting their answer and tasks they took."""
    rows = volunteers_repo.tasks_for_volunteer(session, identity=body.identity, status=body.status)
    return [TaskOut.model_validate(t) for t in rows]


@router.get("/tasks/{task_id}")
def get_task(task_id: int, session: SessionDep) -> TaskDetail:
    """One task with its offers."""
    task = volunteers_repo.get_task(session, task_id=task_id)
    offers = volunteers_repo.task_offers(session, task_id=task_id)
    return TaskDetail(
        **TaskOut.model_validate(task).model_dump(),
        offers=[OfferOut.model_validate(o) for o in offers],
    )


@router.post("/tasks/{task_id}/accept")
def accept_task(task_id: int, body: AnswerIn, session: SessionDep, clock: ClockDep) -> TaskAnswer:
    """Take a task; when several answer at once, the first wins and the others get a 409."""
    task = volunteers_repo.accept(
        session,
        task_id=task_id,
        identity=body.identity,
        volunteer_id=body.volunteer_id,
        now=clock.now(),
    )
    session.commit()
    return TaskAnswer(
        task=TaskOut.model_validate(task), message=f"谢谢您！“{task.title}”这个任务交给您了。"
    )


@router.post("/tasks/{task_id}/decline")
def decline_task(task_id: int, body: AnswerIn, session: SessionDep, clock: ClockDep) -> TaskAnswer:
    """Say no to an offer."""
    task = volunteers_repo.decline(
        session,
        task_id=task_id,
        identity=body.identity,
        volunteer_id=body.volunteer_id,
        now=clock.now(),
    )
    session.commit()
    return TaskAnswer(task=TaskOut.model_validate(task), message="好的，已经记下了，谢谢您！")


@router.post("/tasks/{task_id}/done")
def finish_task(task_id: int, body: DoneIn, session: SessionDep, clock: ClockDep) -> TaskAnswer:
    """The assignee reports the task done."""
    task = volunteers_repo.complete(
        session, task_id=task_id, identity=body.identity, note=body.note, now=clock.now()
    )
    session.commit()
    return TaskAnswer(
        task=TaskOut.model_validate(task),
        message="辛苦了！已经记下任务完成，确认以后会给您记积分。",
    )


@router.post("/tasks/{task_id}/confirm")
def confirm_task(task_id: int, session: SessionDep, clock: ClockDep) -> TaskAnswer:
    """Confirm a done task (resident or staff); credits the points once."""
    task, credited = volunteers_repo.confirm(session, task_id=task_id, now=clock.now())
    session.commit()
    message = (
        f"已确认完成，给志愿者记了{task.points}积分。" if credited else "这个任务之前已经确认过了。"
    )
    return TaskAnswer(task=TaskOut.model_validate(task), message=message)


# --- Volunteers ---------------------------------------------------------------------------


@router.post("", status_code=201, response_model=VolunteerOut)
def register_volunteer(
    body: VolunteerCreate, session: SessionDep, idem: IdempotencyDep
) -> JSONResponse:
    """Sign a resident up as a volunteer."""
    return idem.run(
        body,
        lambda: volunteer_out(
            volunteers_repo.register_volunteer(
                session,
                resident_id=body.resident_id,
                identity=body.identity,
                skills=body.skills,
                home_building_id=body.home_building_id,
                availability=body.availability.model_dump(),
            )
        ),
    )


@router.get("")
def list_volunteers(
    session: SessionDep,
    page: PageDep,
    skill: str | None = None,
    building_id: int | None = None,
    active: Annotated[bool | None, Query()] = None,
) -> Page[VolunteerOut]:
    """List volunteers, by skill, home building or active state."""
    rows, total = volunteers_repo.list_volunteers(
        session,
        limit=page.limit,
        offset=page.offset,
        skill=skill,
        building_id=building_id,
        active=active,
    )
    items = [volunteer_out(v) for v in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.post("/me")
def me(body: IdentityBody, session: SessionDep) -> VolunteerMe:
    """For the bot: is this sender a volunteer, and how many points do they have?"""
    volunteer = volunteers_repo.volunteer_for(session, identity=body.identity)
    if volunteer is None:
        return VolunteerMe(
            is_volunteer=False,
            volunteer=None,
            points=0,
            message="您还不是志愿者。想报名的话，请联系社区工作人员。",
        )
    points = volunteers_repo.points_balance(session, volunteer_id=volunteer.id)
    state = "您是志愿者" if volunteer.active else "您的志愿服务目前暂停了"
    return VolunteerMe(
        is_volunteer=True,
        volunteer=volunteer_out(volunteer),
        points=points,
        message=f"{state}，现在一共有{points}积分。",
    )


@router.get("/{volunteer_id}")
def get_volunteer(volunteer_id: int, session: SessionDep) -> VolunteerOut:
    """One volunteer."""
    return volunteer_out(volunteers_repo.get_volunteer(session, volunteer_id=volunteer_id))


@router.patch("/{volunteer_id}")
def update_volunteer(volunteer_id: int, body: VolunteerUpdate, session: SessionDep) -> VolunteerOut:
    """Change skills, home building or availability; pause or resume."""
    volunteer = volunteers_repo.update_volunteer(
        session,
        volunteer_id=volunteer_id,
        skills=body.skills,
        home_building_id=body.home_building_id,
        availability=body.availability.model_dump() if body.availability else None,
        active=body.active,
    )
    session.commit()
    return volunteer_out(volunteer)


@router.get("/{volunteer_id}/points")
def points(volunteer_id: int, session: SessionDep, page: PageDep) -> PointsOut:
    """A volunteer's points balance and ledger."""
    volunteers_repo.get_volunteer(session, volunteer_id=volunteer_id)
    rows, total = volunteers_repo.points_ledger(
        session, volunteer_id=volunteer_id, limit=page.limit, offset=page.offset
    )
    return PointsOut(
        volunteer_id=volunteer_id,
        balance=volunteers_repo.points_balance(session, volunteer_id=volunteer_id),
        ledger=Page(
            items=[PointsEntryOut.model_validate(e) for e in rows],
            total=total,
            limit=page.limit,
            offset=page.offset,
        ),
    )
