"""Volunteers, their tasks (offer → accept → done → confirm) and points.

One router: task routes live under /volunteers/tasks and are declared before /{volunteer_id}
so that "tasks" is never read as a volunteer id.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from records.api.deps import ClockDep, PageDep, SessionDep, SettingsDep, require_roles
from records.api.idempotency import IdempotencyDep
from records.models import StaffRole, TaskKind, TaskStatus
from records.repository import dispatch, ranking
from records.repository import volunteers as volunteers_repo
from records.schemas.common import Page
from records.schemas.volunteers import (
    AnswerIn,
    CandidateOut,
    ConfirmIn,
    ConfirmMineIn,
    DoneIn,
    IdentityBody,
    MineIn,
    OfferOut,
    PointsEntryOut,
    PointsOut,
    RepairHelpIn,
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
def create_task(
    body: TaskCreate,
    session: SessionDep,
    idem: IdempotencyDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> JSONResponse:
    """Create a task: offered to the named volunteers, to the best few (`dispatch`), or to all.

    Without `expires_at`, offers go to the grid worker after `task_answer_minutes` (per kind).
    """

    def create() -> TaskOut:
        now = clock.now()
        fields = body.model_dump(exclude={"dispatch", "offer_to", "expires_at", "points"})
        points = settings.task_points_for(body.kind.value) if body.points is None else body.points
        expires_at = body.expires_at or dispatch.default_expiry(
            body.kind, now=now, due_at=body.due_at, settings=settings
        )
        if body.dispatch and not body.offer_to:
            task = dispatch.create_dispatched_task(
                session,
                **fields,
                expires_at=expires_at,
                points=points,
                source_key=None,
                now=now,
                settings=settings,
            )
        else:
            task = volunteers_repo.create_task(
                session, **fields, expires_at=expires_at, points=points, offer_to=body.offer_to
            )
        return TaskOut.model_validate(task)

    return idem.run(body, create)


@router.post("/tasks/repair-help", status_code=201, response_model=TaskOut)
def repair_help(
    body: RepairHelpIn,
    session: SessionDep,
    idem: IdempotencyDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> JSONResponse:
    """Flag a small repair for a handy volunteer: one repair_help task per repair, dispatched."""
    return idem.run(
        body,
        lambda: TaskOut.model_validate(
            dispatch.repair_help_task(
                session, **body.model_dump(), now=clock.now(), settings=settings
            )
        ),
    )


@router.post("/tasks/confirm")
def confirm_mine(body: ConfirmMineIn, session: SessionDep, clock: ClockDep) -> TaskAnswer:
    """The resident confirms a task done for them (the one named, else their latest done one)."""
    task, credited = volunteers_repo.confirm_mine(
        session, identity=body.identity, task_id=body.task_id, now=clock.now()
    )
    session.commit()
    message = (
        "谢谢您的确认！已经给志愿者记上积分了。"
        if credited
        else "这个任务之前已经确认过了，谢谢您！"
    )
    return TaskAnswer(task=TaskOut.model_validate(task), message=message)


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


@router.get("/tasks/{task_id}/candidates")
def candidates(
    task_id: int, session: SessionDep, clock: ClockDep, settings: SettingsDep
) -> list[CandidateOut]:
    """Every volunteer who fits the task, ranked now, with the score's parts and reasons."""
    task = volunteers_repo.get_task(session, task_id=task_id)
    answers = {
        o.volunteer_id: o.state for o in volunteers_repo.task_offers(session, task_id=task_id)
    }
    ranked = ranking.rank_volunteers(session, task=task, now=clock.now(), settings=settings)
    return [
        CandidateOut(
            volunteer_id=c.volunteer.id,
            name=c.volunteer.resident.name,
            rank=rank,
            score=c.score,
            parts=c.parts,
            reasons=c.reasons,
            open_tasks=c.open_tasks,
            recent_tasks=c.recent_tasks,
            points=c.points,
            offer_state=answers.get(c.volunteer.id),
        )
        for rank, c in enumerate(ranked, start=1)
    ]


@router.post("/tasks/{task_id}/dispatch")
def dispatch_more(
    task_id: int, session: SessionDep, clock: ClockDep, settings: SettingsDep
) -> TaskDetail:
    """Offer a still-open task to the next best few volunteers not asked yet."""
    task = volunteers_repo.get_task(session, task_id=task_id)
    if task.status != TaskStatus.offered:
        raise volunteers_repo.TASK_CLOSED
    dispatch.offer_best(session, task=task, now=clock.now(), settings=settings)
    session.commit()
    return get_task(task_id, session)


@router.post("/tasks/{task_id}/accept")
def accept_task(
    task_id: int, body: AnswerIn, session: SessionDep, clock: ClockDep, settings: SettingsDep
) -> TaskAnswer:
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
        task=TaskOut.model_validate(task),
        message=dispatch.accepted_message(session, task=task, settings=settings),
    )


@router.post("/tasks/{task_id}/decline")
def decline_task(
    task_id: int, body: AnswerIn, session: SessionDep, clock: ClockDep, settings: SettingsDep
) -> TaskAnswer:
    """Say no to an offer; when everyone asked said no, the next best few are asked."""
    task = dispatch.decline(
        session,
        task_id=task_id,
        identity=body.identity,
        volunteer_id=body.volunteer_id,
        now=clock.now(),
        settings=settings,
    )
    session.commit()
    return TaskAnswer(task=TaskOut.model_validate(task), message="好的，已经记下了，谢谢您！")


@router.post("/tasks/{task_id}/done")
def finish_task(task_id: int, body: DoneIn, session: SessionDep, clock: ClockDep) -> TaskAnswer:
    """The assignee reports the task done, with an optional note and photo."""
    task = volunteers_repo.complete(
        session,
        task_id=task_id,
        identity=body.identity,
        note=body.note,
        photo=body.photo,
        now=clock.now(),
    )
    session.commit()
    return TaskAnswer(
        task=TaskOut.model_validate(task),
        message="辛苦了！已经记下任务完成，确认以后会给您记积分。",
    )


@router.post("/tasks/{task_id}/confirm")
def confirm_task(
    task_id: int, session: SessionDep, clock: ClockDep, body: ConfirmIn | None = None
) -> TaskAnswer:
    """Confirm a done task: staff (no body) or the resident it was for (`identity`).

    Credits the points once.
    """
    task, credited = volunteers_repo.confirm(
        session, task_id=task_id, now=clock.now(), identity=body.identity if body else None
    )
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
