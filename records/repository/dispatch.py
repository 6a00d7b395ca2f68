"""Volunteer dispatch: offer a task to the best few, widen, escalate, remind; tasks that arise.

Volunteers are ranked by `records.repository.ranking` (skill, closeness, availability, load,
fairness; deterministic and explained). The best `dispatch_offer_count` get the offer with
接单 / 不接 buttons; when all of them decline, the next best few get it; when nobody is left,
the grid worker is told. Nobody fitting at all: the task is escalated at once.

Tasks arise automatically too (see `create_dispatched_task`): a meal booked with delivery, an
emergency, a visit period for an elder living alone, a small repair staff flag; each once per
source (`source_key`), whatever retries or races happen.
"""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from records.core.config import Settings
from records.core.problems import Problem
from records.models import Resident, Task, TaskKind, TaskOffer, TaskStatus
from records.repository import commands, ranking
from records.repository import repairs as repairs_repo
from records.repository import volunteers as volunteers_repo

# Periodic visits are created from this local time on, so nobody's phone rings at night.
VISITS_FROM = time(8, 0)
# Visit periods are counted from a Monday, so weekly visits start each Monday.
PERIOD_EPOCH = date(1970, 1, 5)


# --- Offering -----------------------------------------------------------------------------


def offer_best(
    session: Session,
    *,
    task: Task,
    now: datetime,
    settings: Settings,
    tell_if_nobody: bool = True,
) -> list[int]:
    """Offer the task to the best few not yet asked; returns their volunteer ids.

    Nobody left to ask: a task never offered is escalated to the grid worker at once (told
    unless `tell_if_nobody` is False: they may know already); one whose every volunteer
    declined stays open (a late "yes" still counts) and the grid worker is told.
    """
    asked = {o.volunteer_id for o in volunteers_repo.task_offers(session, task_id=task.id)}
    ranked = ranking.rank_volunteers(session, task=task, now=now, settings=settings)
    fresh = [c for c in ranked if c.volunteer.id not in asked]
    chosen = fresh[: settings.dispatch_offer_count]
    due = due_words(task.due_at, settings=settings)
    when = f"{due}前" if due else ""
    for candidate in chosen:
        session.add(
            TaskOffer(
                task_id=task.id,
                volunteer_id=candidate.volunteer.id,
                rank=ranked.index(candidate) + 1,
                score=candidate.score,
                ranking=candidate.explained(),
            )
        )
        volunteers_repo.tell_offer(session, candidate.volunteer, task=task, when=when)
    session.flush()
    if chosen:
        return [c.volunteer.id for c in chosen]
    if not asked:
        _escalate_now(session, task=task, tell=tell_if_nobody)
    else:
        volunteers_repo.tell_responders(
            session,
            task,
            kind="task_declined",
            text=f"志愿任务“{task.title}”派给的志愿者都婉拒了，请另行安排（任务#{task.id}）。",
            key=f"task:{task.id}:declined",
        )
    return []


def _escalate_now(session: Session, *, task: Task, tell: bool) -> None:
    if not volunteers_repo.update_task_if(
        session,
        task_id=task.id,
        still=[Task.status == TaskStatus.offered],
        values={"status": TaskStatus.escalated},
    ):
        return
    session.refresh(task)
    if not tell:
        return
    volunteers_repo.tell_responders(
        session,
        task,
        kind="task_escalated",
        text=f"志愿任务“{task.title}”没有合适的志愿者，请另行安排（任务#{task.id}）。",
        key=f"task:{task.id}:escalated",
    )


def decline(
    session: Session,
    *,
    task_id: int,
    identity: str | None = None,
    volunteer_id: int | None = None,
    now: datetime,
    settings: Settings,
) -> Task:
    """Say no to an offer; when everyone asked said no, the next best few are asked."""
    task = volunteers_repo.decline(
        session, task_id=task_id, identity=identity, volunteer_id=volunteer_id, now=now
    )
    if volunteers_repo.all_declined(session, task=task):
        offers = volunteers_repo.task_offers(session, task_id=task.id)
        if any(o.rank is not None for o in offers):
            offer_best(session, task=task, now=now, settings=settings)
        else:
            # Offered by hand to named volunteers: staff chose them, staff choose again.
            volunteers_repo.tell_responders(
                session,
                task,
                kind="task_declined",
                text=f"志愿任务“{task.title}”派给的志愿者都婉拒了，请另行安排（任务#{task.id}）。",
                key=f"task:{task.id}:declined",
            )
    session.flush()
    return task


def accepted_message(session: Session, *, task: Task, settings: Settings) -> str:
    """What the winner hears: the task, by when, and where (the address only now)."""
    text = f"谢谢您！“{task.title}”这个任务交给您了。"
    resident = session.get(Resident, task.resident_id) if task.resident_id else None
    if resident is not None and resident.household is not None:
        text += f"地址：{resident.household}。"
    when = due_words(task.due_at, settings=settings)
    if when:
        text += f"请在{when}前完成。"
    return text


# --- Words --------------------------------------------------------------------------------


def _local(moment: datetime, settings: Settings) -> datetime:
    return moment.astimezone(ZoneInfo(settings.timezone))


def due_words(due_at: datetime | None, *, settings: Settings) -> str:
    """A due time as said: "11月24日11:30" (local time); "" when there is none."""
    if due_at is None:
        return ""
    local = _local(due_at, settings)
    return f"{local.month}月{local.day}日{local.hour}:{local.minute:02d}"


# --- Tasks that arise by themselves -------------------------------------------------------


def default_expiry(
    kind: TaskKind, *, now: datetime, due_at: datetime | None, settings: Settings
) -> datetime:
    """When an unanswered offer goes to the grid worker: `task_answer_minutes` for the kind,
    but never after the due time."""
    expires = now + timedelta(minutes=settings.task_answer_minutes_for(kind.value))
    if due_at is not None and now < due_at < expires:
        return due_at
    return expires


def create_dispatched_task(
    session: Session,
    *,
    kind: TaskKind,
    title: str,
    source_key: str | None,
    now: datetime,
    settings: Settings,
    details: str | None = None,
    resident_id: int | None = None,
    building_id: int | None = None,
    booking_id: int | None = None,
    repair_id: int | None = None,
    alert_id: int | None = None,
    due_at: datetime | None = None,
    expires_at: datetime | None = None,
    points: int | None = None,
    tell_if_nobody: bool = True,
) -> Task:
    """Create a task and offer it to the best few; once per `source_key` (retries and races
    return the first task). See `offer_best` for `tell_if_nobody`."""
    if source_key is not None:
        existing = volunteers_repo.task_by_source(session, source_key=source_key)
        if existing is not None:
            return existing
    try:
        with session.begin_nested():
            task = volunteers_repo.create_task(
                session,
                kind=kind,
                title=title,
                details=details,
                resident_id=resident_id,
                building_id=building_id,
                booking_id=booking_id,
                repair_id=repair_id,
                alert_id=alert_id,
                due_at=due_at,
                expires_at=expires_at
                or default_expiry(kind, now=now, due_at=due_at, settings=settings),
                points=settings.task_points_for(kind.value) if points is None else points,
                source_key=source_key,
            )
    except IntegrityError:
        # A concurrent request created the task for this source first: theirs stands.
        found = (
            volunteers_repo.task_by_source(session, source_key=source_key) if source_key else None
        )
        if found is None:
            raise
        return found
    offer_best(session, task=task, now=now, settings=settings, tell_if_nobody=tell_if_nobody)
    return task


def cancel_for_source(session: Session, *, source_key: str, reason: str, now: datetime) -> bool:
    """Cancel the task that arose from `source_key`, if it is not done; True if cancelled."""
    task = volunteers_repo.task_by_source(session, source_key=source_key)
    if task is None:
        return False
    return volunteers_repo.cancel_task(session, task_id=task.id, reason=reason, now=now)


def repair_help_task(
    session: Session,
    *,
    repair_id: int,
    now: datetime,
    settings: Settings,
    title: str | None = None,
    details: str | None = None,
    due_at: datetime | None = None,
    points: int | None = None,
) -> Task:
    """Staff flag a small repair a handy volunteer can do: one repair_help task per repair."""
    repair = repairs_repo.get_repair(session, repair_id=repair_id)
    if repair.status in repairs_repo.DONE:
        raise Problem(409, "repair-finished", f"报修单{repair.id}号已经办完了，不需要志愿者了。")
    category = repairs_repo.CATEGORY_NAMES[repair.category]
    return create_dispatched_task(
        session,
        kind=TaskKind.repair_help,
        title=title or f"帮忙修{category}（{repairs_repo.public_place(repair)}）",
        details=details,
        resident_id=repair.reporter_id,
        building_id=repair.building_id,
        repair_id=repair.id,
        due_at=due_at,
        points=points,
        source_key=f"repair:{repair.id}",
        now=now,
        settings=settings,
    )


def schedule_visits(session: Session, *, settings: Settings, now: datetime) -> int:
    """Each `visit_interval_days`, one visit task per elderly resident living alone.

    Runs as a periodic rule from 08:00 local time; the period is part of the source key, so
    reruns in the same period create nothing.
    """
    interval = settings.visit_interval_days
    local = _local(now, settings)
    if interval <= 0 or local.time() < VISITS_FROM:
        return 0
    period = (local.date() - PERIOD_EPOCH).days // interval
    elders = session.scalars(
        select(Resident)
        .where(
            Resident.is_elderly.is_(True),
            Resident.lives_alone.is_(True),
            Resident.household_id.is_not(None),
        )
        .order_by(Resident.id)
    ).all()
    keys = {f"visit:{r.id}:{period}": r for r in elders}
    done = set(session.scalars(select(Task.source_key).where(Task.source_key.in_(list(keys)))))
    created = 0
    for key, elder in keys.items():
        if key in done:
            continue
        create_dispatched_task(
            session,
            kind=TaskKind.visit,
            title=f"上门看望独居老人{elder.name}",
            details="聊聊天，看看身体和家里有没有需要帮忙的。",
            resident_id=elder.id,
            due_at=now + timedelta(hours=settings.visit_due_hours),
            source_key=key,
            now=now,
            settings=settings,
        )
        created += 1
    session.flush()
    return created


# --- Reminders ----------------------------------------------------------------------------


def remind_due_tasks(session: Session, *, settings: Settings, now: datetime) -> int:
    """Remind each assignee once, `task_reminder_minutes` before the due time.

    A task accepted inside that window gets no reminder: its volunteer just said yes.
    """
    lead = timedelta(minutes=settings.task_reminder_minutes)
    if lead <= timedelta(0):
        return 0
    due = session.scalars(
        select(Task)
        .where(
            Task.status == TaskStatus.accepted,
            Task.reminded_at.is_(None),
            Task.due_at.is_not(None),
            Task.due_at > now,
            Task.due_at <= now + lead,
        )
        .order_by(Task.id)
    ).all()
    reminded = 0
    for task in due:
        if task.due_at is None or task.volunteer_id is None:
            continue  # excluded by the query; this tells the type checker
        if task.accepted_at is not None and task.accepted_at >= task.due_at - lead:
            continue
        if not volunteers_repo.update_task_if(
            session,
            task_id=task.id,
            still=[Task.reminded_at.is_(None), Task.status == TaskStatus.accepted],
            values={"reminded_at": now},
        ):
            continue
        session.refresh(task)
        volunteers_repo.tell_volunteer(
            session,
            volunteers_repo.get_volunteer(session, volunteer_id=task.volunteer_id),
            kind="task_reminder",
            text=(
                f"提醒您：志愿任务“{task.title}”要在{due_words(task.due_at, settings=settings)}"
                "前完成。做完了请点“做完了”或者跟我说一声。"
            ),
            task=task,
            key=f"task:{task.id}:reminder",
            buttons=commands.done_buttons(task.id),
        )
        reminded += 1
    session.flush()
    return reminded
