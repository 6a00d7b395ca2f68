"""Ranking volunteers for a task: deterministic, and explained part by part.

Every active volunteer with a fitting skill (anyone, for an emergency check-on) gets a score
made of parts, kept on the offer for staff to see:

- skill: the task's main skill +30, a related one +15 (repair_help needs "repair";
  escort: escort, else driving; emergency_check: first_aid, else visit);
- closeness to the resident: same household unit +40, same building +30, same grid +15
  (doubled for emergencies: the nearest neighbour arrives first);
- availability at the due time (their weekdays and morning/afternoon/evening): available +20,
  not said +10, said and not available -30;
- load: -10 per task they have accepted and not finished;
- fairness: -5 per task finished in the last `dispatch_fairness_days` (at most five count).

Ties go to fewer recent tasks, then fewer points, then the earlier volunteer. The resident the
task is for is never ranked for their own task.
"""

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from records.core.config import Settings
from records.models import (
    Building,
    Household,
    PointsEntry,
    Resident,
    Task,
    TaskKind,
    TaskStatus,
    Volunteer,
)

# A module reference: alerts → dispatch → ranking → volunteers → alerts import each other.
from records.repository import volunteers as volunteers_repo

# Skills that fit each kind of task, the main one first.
KIND_SKILLS: dict[TaskKind, tuple[str, ...]] = {
    TaskKind.meal_delivery: ("meal_delivery",),
    TaskKind.visit: ("visit",),
    TaskKind.repair_help: ("repair",),
    TaskKind.escort: ("escort", "driving"),
    TaskKind.emergency_check: ("first_aid", "visit"),
}
# Someone close checking on a fallen elder helps even without the skill.
OPEN_TO_ANY_SKILL = frozenset({TaskKind.emergency_check})
CLOSENESS_FACTOR = {TaskKind.emergency_check: 2}

SKILL_MAIN, SKILL_RELATED = 30, 15
SAME_UNIT, SAME_BUILDING, SAME_GRID = 40, 30, 15
AVAILABLE, AVAILABILITY_UNSAID, UNAVAILABLE = 20, 10, -30
PER_OPEN_TASK = -10
PER_RECENT_TASK, RECENT_COUNTED = -5, 5

# Parts of the day as volunteers give them (records.schemas.volunteers.Availability).
DAY_PARTS: tuple[tuple[str, time, time], ...] = (
    ("morning", time(6), time(12)),
    ("afternoon", time(12), time(18)),
    ("evening", time(18), time(22)),
)
PART_WORDS = {"morning": "上午", "afternoon": "下午", "evening": "晚上"}


@dataclass(frozen=True)
class Place:
    """Where a task or a volunteer is: household unit, building and grid (any may be unknown)."""

    unit_id: int | None = None
    building_id: int | None = None
    grid_id: int | None = None


@dataclass
class Candidate:
    """A volunteer's score for a task, with its parts and the reasons in words."""

    volunteer: Volunteer
    parts: dict[str, int] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    open_tasks: int = 0
    recent_tasks: int = 0
    points: int = 0

    @property
    def score(self) -> int:
        """The total."""
        return sum(self.parts.values())

    def sort_key(self) -> tuple[int, int, int, int]:
        """Best first: score, then fewer recent tasks, fewer points, earlier volunteer."""
        return (-self.score, self.recent_tasks, self.points, self.volunteer.id)

    def explained(self) -> dict[str, Any]:
        """What is stored on the offer and shown to staff."""
        return {
            "parts": dict(self.parts),
            "reasons": list(self.reasons),
            "open_tasks": self.open_tasks,
            "recent_tasks": self.recent_tasks,
            "points": self.points,
        }


def rank_volunteers(
    session: Session, *, task: Task, now: datetime, settings: Settings
) -> list[Candidate]:
    """Every volunteer who may be offered the task, best first (deterministic)."""
    volunteers = session.scalars(
        select(Volunteer).where(Volunteer.active.is_(True)).order_by(Volunteer.id)
    ).all()
    grids = {b: g for b, g in session.execute(select(Building.id, Building.grid_id))}
    target = _task_place(session, task, grids)
    moment = (task.due_at or now).astimezone(ZoneInfo(settings.timezone))
    load = _counts(session, Task.status == TaskStatus.accepted)
    since = now - timedelta(days=settings.dispatch_fairness_days)
    recent = _counts(session, Task.done_at.is_not(None), Task.done_at >= since)
    points = {
        volunteer_id: int(total or 0)
        for volunteer_id, total in session.execute(
            select(PointsEntry.volunteer_id, func.sum(PointsEntry.delta)).group_by(
                PointsEntry.volunteer_id
            )
        )
    }
    ranked = []
    for volunteer in volunteers:
        if task.resident_id is not None and volunteer.resident_id == task.resident_id:
            continue  # nobody delivers their own lunch
        candidate = Candidate(
            volunteer=volunteer,
            open_tasks=load.get(volunteer.id, 0),
            recent_tasks=recent.get(volunteer.id, 0),
            points=points.get(volunteer.id, 0),
        )
        if not _score_skill(candidate, task.kind):
            continue
        _score_closeness(candidate, task.kind, target, _volunteer_place(volunteer, grids))
        _score_availability(candidate, volunteer.availability or {}, moment)
        _score_load_and_fairness(candidate, settings)
        ranked.append(candidate)
    return sorted(ranked, key=Candidate.sort_key)


def _counts(session: Session, *conditions: Any) -> dict[int, int]:
    rows = session.execute(
        select(Task.volunteer_id, func.count(Task.id))
        .where(Task.volunteer_id.is_not(None), *conditions)
        .group_by(Task.volunteer_id)
    )
    return {volunteer_id: int(n) for volunteer_id, n in rows if volunteer_id is not None}


def _task_place(session: Session, task: Task, grids: dict[int, int | None]) -> Place:
    resident = session.get(Resident, task.resident_id) if task.resident_id else None
    household = resident.household if resident is not None else None
    building_id = task.building_id or (household.building_id if household else None)
    return Place(
        unit_id=household.unit_id if household else None,
        building_id=building_id,
        grid_id=grids.get(building_id) if building_id is not None else None,
    )


def _volunteer_place(volunteer: Volunteer, grids: dict[int, int | None]) -> Place:
    household: Household | None = volunteer.resident.household
    building_id = volunteer.home_building_id or (household.building_id if household else None)
    return Place(
        unit_id=household.unit_id if household else None,
        building_id=building_id,
        grid_id=grids.get(building_id) if building_id is not None else None,
    )


def _score_skill(candidate: Candidate, kind: TaskKind) -> bool:
    """Add the skill part; False when the volunteer does not fit the task at all."""
    fitting = KIND_SKILLS[kind]
    have = set(candidate.volunteer.skills or [])
    if fitting[0] in have:
        candidate.parts["skill"] = SKILL_MAIN
        candidate.reasons.append(f"技能对口（{volunteers_repo.SKILLS[fitting[0]]}）")
        return True
    related = [s for s in fitting[1:] if s in have]
    if related:
        candidate.parts["skill"] = SKILL_RELATED
        candidate.reasons.append(f"技能相近（{volunteers_repo.SKILLS[related[0]]}）")
        return True
    if kind in OPEN_TO_ANY_SKILL:
        candidate.parts["skill"] = 0
        candidate.reasons.append("紧急情况，不限技能")
        return True
    return False


def _score_closeness(candidate: Candidate, kind: TaskKind, target: Place, home: Place) -> None:
    factor = CLOSENESS_FACTOR.get(kind, 1)
    if target.unit_id is not None and home.unit_id == target.unit_id:
        value, reason = SAME_UNIT, "同一联户单元"
    elif target.building_id is not None and home.building_id == target.building_id:
        value, reason = SAME_BUILDING, "同一栋楼"
    elif target.grid_id is not None and home.grid_id == target.grid_id:
        value, reason = SAME_GRID, "同一网格"
    else:
        value, reason = 0, "不在附近"
    candidate.parts["closeness"] = value * factor
    candidate.reasons.append(reason)


def day_part(moment: datetime) -> str | None:
    """morning, afternoon or evening of a local time; None at night."""
    clock = moment.time()
    return next((name for name, start, end in DAY_PARTS if start <= clock < end), None)


def _score_availability(candidate: Candidate, availability: dict[str, Any], at: datetime) -> None:
    weekdays = [int(d) for d in availability.get("weekdays") or []]
    parts = [str(p) for p in availability.get("slots") or []]
    if not weekdays and not parts:
        candidate.parts["availability"] = AVAILABILITY_UNSAID
        candidate.reasons.append("没填空闲时间")
        return
    day_ok = not weekdays or at.isoweekday() in weekdays
    part = day_part(at)
    part_ok = not parts or part in parts
    if day_ok and part_ok:
        candidate.parts["availability"] = AVAILABLE
        candidate.reasons.append("那时有空")
    else:
        candidate.parts["availability"] = UNAVAILABLE
        candidate.reasons.append("那时一般没空")


def _score_load_and_fairness(candidate: Candidate, settings: Settings) -> None:
    candidate.parts["load"] = PER_OPEN_TASK * candidate.open_tasks
    if candidate.open_tasks:
        candidate.reasons.append(f"手上有{candidate.open_tasks}个任务")
    counted = min(candidate.recent_tasks, RECENT_COUNTED)
    candidate.parts["fairness"] = PER_RECENT_TASK * counted
    if candidate.recent_tasks:
        days = settings.dispatch_fairness_days
        candidate.reasons.append(f"近{days}天做了{candidate.recent_tasks}个任务")
