"""Volunteers (志愿者), the tasks offered to them, and the points ledger (积分 / 时间银行).

Task life: offered → accepted → done (→ confirmed, points credited once); an offered task
nobody takes before `expires_at` is escalated to the grid worker; a task whose reason went
away (a cancelled meal booking, a resolved alert) is cancelled and its assignee told.

Who may accept: a task offered to named volunteers (`offer_to`, or the best few chosen by
`records.repository.dispatch`) may be accepted only by them, including one who declined and
then changed their mind; a task offered to nobody is open to every active volunteer.
Declining an open task records nothing (there is no offer to answer). What happens when every
named volunteer has declined is dispatch's business (the next best few, else the grid worker).
"""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import ColumnElement, CursorResult, String, exists, func, or_, select, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from records.core.audit import console_actor
from records.core.config import Settings
from records.core.problems import Problem, not_found
from records.models import (
    AuditEntry,
    Booking,
    Building,
    EmergencyAlert,
    OfferState,
    PointsEntry,
    Repair,
    Resident,
    Task,
    TaskKind,
    TaskOffer,
    TaskStatus,
    Volunteer,
)

# Module references, not names: alerts → dispatch → volunteers → alerts import each other.
from records.repository import alerts as alerts_repo
from records.repository import commands
from records.repository import identities as identities_repo
from records.repository import notifications as notifications_repo
from records.repository import residents as residents_repo
from records.repository.paging import page

# The skill vocabulary, with the words residents and staff use for each.
SKILLS: dict[str, str] = {
    "meal_delivery": "送餐",
    "visit": "探访",
    "repair": "小修小补",
    "escort": "陪同出行",
    "first_aid": "急救",
    "driving": "开车接送",
}
TASK_LABELS: dict[TaskKind, str] = {
    TaskKind.meal_delivery: "送餐",
    TaskKind.visit: "上门探访",
    TaskKind.repair_help: "帮忙维修",
    TaskKind.escort: "陪同出行",
    TaskKind.emergency_check: "紧急查看",
}
MINE_LIMIT = 50
POINTS_REASON = "task_done"

M = TypeVar("M")

TASK_TAKEN = Problem(409, "task-taken", "这个任务已经被别的志愿者接走了，谢谢您！")
TASK_CLOSED = Problem(409, "task-closed", "这个任务已经不需要人接了，谢谢您！")
NOT_A_VOLUNTEER = Problem(
    403, "not-a-volunteer", "您还不是志愿者。想报名的话，请联系社区工作人员。"
)


# --- Volunteers ---------------------------------------------------------------------------


def checked_skills(skills: Sequence[str]) -> list[str]:
    """Skills from the vocabulary, without repeats, in vocabulary order; else a 422 problem."""
    unknown = [s for s in skills if s not in SKILLS]
    if unknown:
        choices = "、".join(SKILLS.values())
        raise Problem(
            422,
            "unknown-skill",
            f"没有“{'、'.join(unknown)}”这项服务。可以选的有：{choices}。",
            extra={"skills": list(SKILLS)},
        )
    return [s for s in SKILLS if s in skills]


def register_volunteer(
    session: Session,
    *,
    resident_id: int | None = None,
    identity: str | None = None,
    skills: Sequence[str],
    home_building_id: int | None = None,
    availability: dict[str, Any] | None = None,
) -> Volunteer:
    """Sign a resident up (by id, or by a verified identity); a paused volunteer is resumed."""
    resident = _registering_resident(session, resident_id=resident_id, identity=identity)
    volunteer = session.scalar(select(Volunteer).where(Volunteer.resident_id == resident.id))
    if volunteer is not None and volunteer.active:
        raise Problem(409, "already-volunteer", "这位居民已经是志愿者了。")
    if volunteer is None:
        volunteer = Volunteer(resident_id=resident.id, resident=resident)
        session.add(volunteer)
    volunteer.skills = checked_skills(skills)
    volunteer.home_building_id = _home_building(session, home_building_id, resident=resident)
    volunteer.availability = availability or {}
    volunteer.active = True
    session.flush()
    return volunteer


def _registering_resident(
    session: Session, *, resident_id: int | None, identity: str | None
) -> Resident:
    if (resident_id is None) == (identity is None):
        raise Problem(422, "who-registers", "请说明是哪位居民报名：给出居民编号或渠道身份之一。")
    if resident_id is not None:
        return residents_repo.get_resident(session, resident_id=resident_id)
    # Volunteers go into elderly residents' homes: a proven identity, not just caller ID.
    return identities_repo.verified_resident(session, identity=str(identity))


def _home_building(session: Session, building_id: int | None, *, resident: Resident) -> int | None:
    if building_id is None:
        return resident.household.building_id if resident.household else None
    if session.get(Building, building_id) is None:
        raise not_found("楼栋")
    return building_id


def get_volunteer(session: Session, *, volunteer_id: int) -> Volunteer:
    """One volunteer, or a 404 problem."""
    volunteer = session.get(Volunteer, volunteer_id)
    if volunteer is None:
        raise not_found("志愿者")
    return volunteer


def update_volunteer(
    session: Session,
    *,
    volunteer_id: int,
    skills: Sequence[str] | None = None,
    home_building_id: int | None = None,
    availability: dict[str, Any] | None = None,
    active: bool | None = None,
) -> Volunteer:
    """Change what is given; pausing a volunteer withdraws the offers they have not answered."""
    volunteer = get_volunteer(session, volunteer_id=volunteer_id)
    if skills is not None:
        volunteer.skills = checked_skills(skills)
    if home_building_id is not None:
        volunteer.home_building_id = _home_building(
            session, home_building_id, resident=volunteer.resident
        )
    if availability is not None:
        volunteer.availability = availability
    if active is not None:
        if volunteer.active and not active:
            _withdraw_pending(session, TaskOffer.volunteer_id == volunteer.id, now=None)
        volunteer.active = active
    session.flush()
    return volunteer


def deactivate_volunteer(session: Session, *, volunteer_id: int) -> Volunteer:
    """Pause a volunteer (kept for the points ledger and history)."""
    return update_volunteer(session, volunteer_id=volunteer_id, active=False)


def list_volunteers(
    session: Session,
    *,
    limit: int,
    offset: int,
    skill: str | None = None,
    building_id: int | None = None,
    active: bool | None = None,
) -> tuple[Sequence[Volunteer], int]:
    """A page of volunteers and the total."""
    query = select(Volunteer)
    if skill is not None:
        checked_skills([skill])
        # Skills are a JSON list of vocabulary words; its text holds each one in quotes.
        query = query.where(sql_cast(Volunteer.skills, String).like(f'%"{skill}"%'))
    if building_id is not None:
        query = query.where(Volunteer.home_building_id == building_id)
    if active is not None:
        query = query.where(Volunteer.active == active)
    return page(session, query.order_by(Volunteer.id), limit=limit, offset=offset)


def volunteer_for(session: Session, *, identity: str) -> Volunteer | None:
    """The volunteer behind a sender (linked or phone-recognised resident), if any."""
    resident = identities_repo.resident_for(session, identity=identity)
    if resident is None:
        return None
    return session.scalar(select(Volunteer).where(Volunteer.resident_id == resident.id))


def _acting_volunteer(
    session: Session, *, identity: str | None, volunteer_id: int | None
) -> Volunteer:
    if (identity is None) == (volunteer_id is None):
        raise Problem(422, "who-answers", "请说明是哪位志愿者：给出志愿者编号或渠道身份之一。")
    if volunteer_id is not None:
        return get_volunteer(session, volunteer_id=volunteer_id)
    volunteer = volunteer_for(session, identity=str(identity))
    if volunteer is None:
        raise NOT_A_VOLUNTEER
    return volunteer


# --- Tasks --------------------------------------------------------------------------------


def create_task(
    session: Session,
    *,
    kind: TaskKind,
    title: str,
    details: str | None = None,
    resident_id: int | None = None,
    building_id: int | None = None,
    booking_id: int | None = None,
    repair_id: int | None = None,
    alert_id: int | None = None,
    due_at: datetime | None = None,
    expires_at: datetime | None = None,
    points: int = 1,
    offer_to: Sequence[int] = (),
    source_key: str | None = None,
) -> Task:
    """Create a task and offer it to the named volunteers (or, with none named, to everyone).

    `source_key` names what made the task arise; the table holds each key once, so callers
    creating tasks automatically catch the IntegrityError of a racing twin (see dispatch).
    """
    resident = _referenced(session, Resident, resident_id, "居民")
    for model, ref_id, what in (
        (Building, building_id, "楼栋"),
        (Booking, booking_id, "订餐记录"),
        (Repair, repair_id, "报修单"),
        (EmergencyAlert, alert_id, "求助记录"),
    ):
        _referenced(session, model, ref_id, what)
    if building_id is None and resident is not None and resident.household is not None:
        building_id = resident.household.building_id
    volunteers = _offerable(session, offer_to)
    task = Task(
        kind=kind,
        title=title,
        details=details,
        resident_id=resident_id,
        building_id=building_id,
        booking_id=booking_id,
        repair_id=repair_id,
        alert_id=alert_id,
        due_at=due_at,
        expires_at=expires_at,
        points=points,
        status=TaskStatus.offered,
        source_key=source_key,
    )
    session.add(task)
    session.flush()
    for volunteer in volunteers:
        session.add(TaskOffer(task_id=task.id, volunteer_id=volunteer.id))
        tell_offer(session, volunteer, task=task, when="")
    session.flush()
    return task


def tell_offer(session: Session, volunteer: Volunteer, *, task: Task, when: str) -> None:
    """Offer the task to the volunteer with 接单 / 不接 buttons; `when` e.g. "11月24日11:30前"."""
    due = f"，{when}" if when else ""
    tell_volunteer(
        session,
        volunteer,
        kind="task_offered",
        text=(
            f"有一个志愿任务（{TASK_LABELS[task.kind]}）：{task.title}{due}，"
            f"完成可得{task.points}积分。您愿意接吗？"
        ),
        task=task,
        key=f"task:{task.id}:offer:{volunteer.id}",
        buttons=commands.offer_buttons(task.id),
    )


def task_by_source(session: Session, *, source_key: str) -> Task | None:
    """The task that arose from `source_key` ("booking:12"), if any."""
    return session.scalar(select(Task).where(Task.source_key == source_key))


def _referenced(session: Session, model: type[M], ref_id: int | None, what: str) -> M | None:
    if ref_id is None:
        return None
    row = session.get(model, ref_id)
    if row is None:
        raise not_found(what)
    return row


def _offerable(session: Session, volunteer_ids: Sequence[int]) -> list[Volunteer]:
    volunteers = [get_volunteer(session, volunteer_id=v) for v in dict.fromkeys(volunteer_ids)]
    paused = [v for v in volunteers if not v.active]
    if paused:
        raise Problem(
            422,
            "volunteer-inactive",
            f"{'、'.join(v.resident.name for v in paused)}的志愿服务已暂停，不能派任务给他们。",
        )
    return volunteers


def get_task(session: Session, *, task_id: int) -> Task:
    """One task, or a 404 problem."""
    task = session.get(Task, task_id)
    if task is None:
        raise not_found("志愿任务")
    return task


def task_offers(session: Session, *, task_id: int) -> Sequence[TaskOffer]:
    """Who a task was offered to, and their answers."""
    return session.scalars(
        select(TaskOffer).where(TaskOffer.task_id == task_id).order_by(TaskOffer.id)
    ).all()


def list_tasks(
    session: Session,
    *,
    limit: int,
    offset: int,
    status: TaskStatus | None = None,
    kind: TaskKind | None = None,
    volunteer_id: int | None = None,
    building_id: int | None = None,
) -> tuple[Sequence[Task], int]:
    """A page of tasks, newest first, and the total."""
    query = select(Task)
    if status is not None:
        query = query.where(Task.status == status)
    if kind is not None:
        query = query.where(Task.kind == kind)
    if volunteer_id is not None:
        query = query.where(Task.volunteer_id == volunteer_id)
    if building_id is not None:
        query = query.where(Task.building_id == building_id)
    return page(session, query.order_by(Task.id.desc()), limit=limit, offset=offset)


def tasks_for_volunteer(
    session: Session, *, identity: str, status: TaskStatus | None = None
) -> Sequence[Task]:
    """A volunteer's tasks: those waiting for their answer (`offered`) and those they took."""
    volunteer = volunteer_for(session, identity=identity)
    if volunteer is None:
        raise NOT_A_VOLUNTEER
    offered_to_me = exists().where(
        TaskOffer.task_id == Task.id,
        TaskOffer.volunteer_id == volunteer.id,
        TaskOffer.state == OfferState.pending,
    )
    open_to_all = ~exists().where(TaskOffer.task_id == Task.id)
    waiting = (Task.status == TaskStatus.offered) & (
        or_(offered_to_me, open_to_all) if volunteer.active else offered_to_me
    )
    taken = Task.volunteer_id == volunteer.id
    condition: ColumnElement[bool]
    if status is TaskStatus.offered:
        condition = waiting
    elif status is not None:
        condition = taken & (Task.status == status)
    else:
        condition = or_(waiting, taken)
    return session.scalars(
        select(Task).where(condition).order_by(Task.id.desc()).limit(MINE_LIMIT)
    ).all()


def accept(
    session: Session,
    *,
    task_id: int,
    identity: str | None = None,
    volunteer_id: int | None = None,
    now: datetime,
) -> Task:
    """Take a task; of volunteers answering at once exactly one wins, the others get a 409."""
    task = get_task(session, task_id=task_id)
    volunteer = _acting_volunteer(session, identity=identity, volunteer_id=volunteer_id)
    if task.volunteer_id == volunteer.id and task.status == TaskStatus.accepted:
        return task  # a repeated "yes" from the winner
    if task.status != TaskStatus.offered:
        raise _not_open(task)
    if not volunteer.active:
        raise Problem(403, "volunteer-inactive", "您的志愿服务目前是暂停状态，暂时不能接任务。")
    offers = task_offers(session, task_id=task.id)
    mine = next((o for o in offers if o.volunteer_id == volunteer.id), None)
    if mine is not None and mine.state == OfferState.withdrawn:
        # Withdrawn while we looked: someone else has just taken (or closed) the task.
        session.refresh(task)
        if task.status != TaskStatus.offered:
            raise _not_open(task)
    if offers and (mine is None or mine.state == OfferState.withdrawn):
        raise Problem(403, "not-offered", "这个任务没有派给您，谢谢您的热心！")
    won = update_task_if(
        session,
        task_id=task.id,
        still=[Task.status == TaskStatus.offered],
        values={
            "status": TaskStatus.accepted,
            "volunteer_id": volunteer.id,
            "accepted_at": now,
        },
    )
    session.refresh(task)
    if not won:
        if task.volunteer_id == volunteer.id:
            return task
        raise _not_open(task)
    if mine is not None:
        mine.state = OfferState.accepted
        mine.answered_at = now
    _withdraw_pending(session, TaskOffer.task_id == task.id, now=now)
    session.flush()
    return task


def _not_open(task: Task) -> Problem:
    taken = task.status in (TaskStatus.accepted, TaskStatus.done)
    return TASK_TAKEN if taken else TASK_CLOSED


def update_task_if(
    session: Session,
    *,
    task_id: int,
    still: Sequence[ColumnElement[bool]],
    values: dict[str, Any],
) -> bool:
    """Change a task only if the conditions `still` hold; True when this call changed it.

    A conditional UPDATE is what makes "first one wins" hold across concurrent requests on
    PostgreSQL (the row lock makes the loser re-check the conditions) as well as on SQLite.
    """
    statement = (
        update(Task)
        .where(Task.id == task_id, *still)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    result = cast("CursorResult[Any]", session.execute(statement))
    if result.rowcount != 1:
        return False
    # The statement bypasses the unit of work, so the audit trail is written here.
    actor = session.info.get("actor") or console_actor.get() or "system"
    session.add(
        AuditEntry(
            actor=str(actor),
            action="update",
            entity=Task.__tablename__,
            entity_id=str(task_id),
            fields=sorted(values),
        )
    )
    return True


def _withdraw_pending(
    session: Session, condition: ColumnElement[bool], *, now: datetime | None
) -> None:
    pending = session.scalars(
        select(TaskOffer).where(condition, TaskOffer.state == OfferState.pending)
    ).all()
    for offer in pending:
        offer.state = OfferState.withdrawn
        offer.answered_at = now


def decline(
    session: Session,
    *,
    task_id: int,
    identity: str | None = None,
    volunteer_id: int | None = None,
    now: datetime,
) -> Task:
    """Say no to an offer (dispatch decides what happens when everyone said no)."""
    task = get_task(session, task_id=task_id)
    volunteer = _acting_volunteer(session, identity=identity, volunteer_id=volunteer_id)
    if task.volunteer_id == volunteer.id and task.status == TaskStatus.accepted:
        raise Problem(
            409, "task-is-yours", "您已经接了这个任务。如果去不了，请联系社区工作人员重新安排。"
        )
    offers = task_offers(session, task_id=task.id)
    mine = next((o for o in offers if o.volunteer_id == volunteer.id), None)
    if mine is None:
        if offers:
            raise Problem(403, "not-offered", "这个任务没有派给您，不用操心。")
        return task  # an open task: nothing to answer
    if mine.state == OfferState.pending:
        mine.state = OfferState.declined
        mine.answered_at = now
    session.flush()
    return task


def all_declined(session: Session, *, task: Task) -> bool:
    """Whether the task is still offered and every volunteer it was offered to said no."""
    offers = task_offers(session, task_id=task.id)
    return (
        task.status == TaskStatus.offered
        and bool(offers)
        and all(o.state == OfferState.declined for o in offers)
    )


def cancel_task(session: Session, *, task_id: int, reason: str, now: datetime) -> bool:
    """Cancel a task not yet done; the assignee is told `reason`. True when this call did it."""
    task = get_task(session, task_id=task_id)
    if not update_task_if(
        session,
        task_id=task.id,
        still=[Task.status.in_((TaskStatus.offered, TaskStatus.accepted))],
        values={"status": TaskStatus.cancelled},
    ):
        return False
    session.refresh(task)
    _withdraw_pending(session, TaskOffer.task_id == task.id, now=now)
    if task.volunteer_id is not None:
        tell_volunteer(
            session,
            get_volunteer(session, volunteer_id=task.volunteer_id),
            kind="task_cancelled",
            text=f"您接的志愿任务“{task.title}”取消了：{reason}不用去了，谢谢您！",
            task=task,
            key=f"task:{task.id}:cancelled",
        )
    session.flush()
    return True


def complete(
    session: Session,
    *,
    task_id: int,
    identity: str,
    note: str | None = None,
    photo: str | None = None,
    now: datetime,
) -> Task:
    """The assignee reports the task done (a note, a photo's URL or file id, both optional);
    the resident is told and may confirm."""
    task = get_task(session, task_id=task_id)
    volunteer = volunteer_for(session, identity=identity)
    if volunteer is None or task.volunteer_id != volunteer.id:
        raise Problem(403, "not-assignee", "只有接了这个任务的志愿者才能报告完成。")
    if task.status == TaskStatus.done:
        return task
    if task.status != TaskStatus.accepted:
        raise Problem(409, "task-not-accepted", "这个任务现在不能报告完成。")
    task.status = TaskStatus.done
    task.done_at = now
    task.done_note = note
    task.done_photo = photo
    resident = session.get(Resident, task.resident_id) if task.resident_id else None
    if resident is not None:
        notifications_repo.notify_resident(
            session,
            resident=resident,
            kind="task_done",
            payload={
                "text": (
                    f"志愿者已经完成了“{task.title}”。没问题的话请点“确认完成”，有问题请告诉我们。"
                ),
                "task_id": task.id,
                "buttons": commands.confirm_buttons(task.id),
            },
            dedupe_key=f"task:{task.id}:done",
        )
    session.flush()
    return task


def confirm(
    session: Session, *, task_id: int, now: datetime, identity: str | None = None
) -> tuple[Task, bool]:
    """Confirm a done task and credit its points; True when this call credited them.

    With an `identity`, only the resident the task was for may confirm (staff confirm
    without one). Points are credited once however often, or however concurrently, confirm
    is called: only the call that sets `confirmed_at` credits, and the ledger's unique
    (volunteer, task, reason) would refuse a second line anyway.
    """
    task = get_task(session, task_id=task_id)
    if identity is not None:
        resident = identities_repo.resident_for(session, identity=identity)
        if resident is None or resident.id != task.resident_id:
            raise Problem(403, "not-for-you", "这个任务不是为您做的，不能由您确认。")
    if task.status != TaskStatus.done or task.volunteer_id is None:
        raise Problem(409, "task-not-done", "这个任务还没有完成，暂时不能确认。")
    first = update_task_if(
        session,
        task_id=task.id,
        still=[Task.status == TaskStatus.done, Task.confirmed_at.is_(None)],
        values={"confirmed_at": now},
    )
    session.refresh(task)
    credited = first and _credit_once(session, task=task, volunteer_id=task.volunteer_id)
    if credited:
        volunteer = get_volunteer(session, volunteer_id=task.volunteer_id)
        balance = points_balance(session, volunteer_id=volunteer.id)
        tell_volunteer(
            session,
            volunteer,
            kind="points_credited",
            text=f"谢谢您！“{task.title}”已确认完成，您获得{task.points}积分，现在一共{balance}积分。",
            task=task,
            key=f"task:{task.id}:points",
        )
    session.flush()
    return task, credited


def confirm_mine(
    session: Session, *, identity: str, task_id: int | None = None, now: datetime
) -> tuple[Task, bool]:
    """The resident confirms a task done for them: the one named, else their latest done one."""
    if task_id is not None:
        return confirm(session, task_id=task_id, now=now, identity=identity)
    resident = identities_repo.resident_for(session, identity=identity)
    latest = (
        session.scalar(
            select(Task.id)
            .where(Task.resident_id == resident.id, Task.status == TaskStatus.done)
            .order_by(Task.confirmed_at.is_not(None), Task.done_at.desc(), Task.id.desc())
            .limit(1)
        )
        if resident is not None
        else None
    )
    if latest is None:
        raise Problem(404, "no-done-task", "现在没有需要您确认的志愿服务。")
    return confirm(session, task_id=latest, now=now, identity=identity)


def _credit_once(session: Session, *, task: Task, volunteer_id: int) -> bool:
    entry = PointsEntry(
        volunteer_id=volunteer_id, task_id=task.id, reason=POINTS_REASON, delta=task.points
    )
    try:
        with session.begin_nested():
            session.add(entry)
    except IntegrityError:
        return False  # already credited, by an earlier or a concurrent confirmation
    return True


def auto_confirm_done_tasks(session: Session, *, settings: Settings, now: datetime) -> int:
    """Confirm tasks done `task_auto_confirm_hours` ago that nobody confirmed; how many."""
    after = timedelta(hours=settings.task_auto_confirm_hours)
    due = session.scalars(
        select(Task.id).where(
            Task.status == TaskStatus.done,
            Task.confirmed_at.is_(None),
            Task.done_at <= now - after,
        )
    ).all()
    for task_id in due:
        confirm(session, task_id=task_id, now=now)
    return len(due)


def expire_unanswered(session: Session, *, settings: Settings, now: datetime) -> int:
    """Escalate offered tasks nobody took before `expires_at` to the grid worker, once each.

    `expires_at` is set when the task is created, from `task_answer_minutes` for its kind
    (minutes for emergencies) unless staff gave one.
    """
    due = session.scalars(
        select(Task).where(
            Task.status == TaskStatus.offered, Task.expires_at.is_not(None), Task.expires_at <= now
        )
    ).all()
    escalated = 0
    for task in due:
        # Conditional, so a volunteer accepting at this very moment keeps the task.
        if not update_task_if(
            session,
            task_id=task.id,
            still=[Task.status == TaskStatus.offered],
            values={"status": TaskStatus.escalated},
        ):
            continue
        session.refresh(task)
        _withdraw_pending(session, TaskOffer.task_id == task.id, now=now)
        tell_responders(
            session,
            task,
            kind="task_escalated",
            text=f"志愿任务“{task.title}”到时间还没有志愿者接，请另行安排（任务#{task.id}）。",
            key=f"task:{task.id}:escalated",
        )
        escalated += 1
    session.flush()
    return escalated


def tell_volunteer(
    session: Session,
    volunteer: Volunteer,
    *,
    kind: str,
    text: str,
    task: Task,
    key: str,
    buttons: list[dict[str, str]] | None = None,
) -> None:
    """Queue a message about `task` to a volunteer, once per `key`, with optional buttons."""
    payload: dict[str, Any] = {
        "text": text,
        "task_id": task.id,
        "task_kind": task.kind.value,
        "title": task.title,
        "points": task.points,
        "due_at": task.due_at.isoformat() if task.due_at else None,
    }
    if buttons:
        payload["buttons"] = buttons
    notifications_repo.notify_resident(
        session, resident=volunteer.resident, kind=kind, payload=payload, dedupe_key=key
    )


def tell_responders(session: Session, task: Task, *, kind: str, text: str, key: str) -> None:
    """Tell the grid worker of the task's place (else the admins), once per `key`."""
    alerts_repo.notify_staff_once(
        session,
        staff_ids=alerts_repo.responders_for_building(session, building_id=task.building_id),
        kind=kind,
        payload={"text": text, "task_id": task.id, "task_kind": task.kind.value},
        key=key,
    )


# --- Points -------------------------------------------------------------------------------


def points_balance(session: Session, *, volunteer_id: int) -> int:
    """The volunteer's points: the sum of their ledger."""
    total = session.scalar(
        select(func.coalesce(func.sum(PointsEntry.delta), 0)).where(
            PointsEntry.volunteer_id == volunteer_id
        )
    )
    return int(total or 0)


def points_ledger(
    session: Session, *, volunteer_id: int, limit: int, offset: int
) -> tuple[Sequence[PointsEntry], int]:
    """A page of the volunteer's ledger, newest first, and the total."""
    query = select(PointsEntry).where(PointsEntry.volunteer_id == volunteer_id)
    return page(session, query.order_by(PointsEntry.id.desc()), limit=limit, offset=offset)
