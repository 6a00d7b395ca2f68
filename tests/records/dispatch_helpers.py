"""Helpers for the dispatch tests: volunteers with verified identities, outbox reads, jobs."""

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from records.core.config import Settings
from records.models import (
    Household,
    Notification,
    Resident,
    StaffUser,
    Task,
    TaskOffer,
    VerificationState,
)
from records.repository import community as community_repo
from records.repository import identities as identities_repo
from records.repository import residents as residents_repo
from records.repository import volunteers as volunteers_repo
from records.repository.jobs import RULES

TASKS = "/api/v1/volunteers/tasks"
_next_identity = iter(range(7000, 10**6))


def link_identity(session: Session, resident: Resident, identity: str | None = None) -> str:
    """Give a resident a verified Telegram identity; returns it."""
    identity = identity or f"telegram:{next(_next_identity)}"
    row = identities_repo.get_or_create_identity(session, identity=identity)
    row.resident = resident
    row.state = VerificationState.verified
    session.flush()
    return identity


def make_volunteer(
    session: Session,
    name: str,
    *,
    household_id: int | None,
    skills: list[str],
    availability: dict[str, Any] | None = None,
) -> tuple[int, str]:
    """A resident signed up as a volunteer, with a verified identity: (volunteer id, identity)."""
    resident = residents_repo.create_resident(session, name=name, household_id=household_id)
    identity = link_identity(session, resident)
    volunteer = volunteers_repo.register_volunteer(
        session, resident_id=resident.id, skills=skills, availability=availability
    )
    session.commit()
    return volunteer.id, identity


def extra_household(session: Session, *, building_id: int, room: str, unit_id: int) -> Household:
    """One more household."""
    household = community_repo.create_household(
        session, building_id=building_id, entrance=3, room=room, unit_id=unit_id
    )
    session.commit()
    return household


def outbox(session: Session, kind: str) -> list[Notification]:
    """Queued notifications of one kind, oldest first (the read is ended at once)."""
    rows = list(
        session.scalars(
            select(Notification)
            .where(Notification.kind == kind)
            .order_by(Notification.id)
            .execution_options(populate_existing=True)
        )
    )
    session.commit()
    return rows


def recipients(session: Session, kind: str) -> list[str]:
    """Recipients (decrypted) of the notifications of one kind, oldest first."""
    return [row.recipient for row in outbox(session, kind)]


def task_row(session: Session, task_id: int) -> Task:
    """A task as stored now."""
    task = session.get_one(Task, task_id, populate_existing=True)
    session.commit()
    return task


def tasks(session: Session) -> list[Task]:
    """Every task, oldest first."""
    rows = list(
        session.scalars(select(Task).order_by(Task.id).execution_options(populate_existing=True))
    )
    session.commit()
    return rows


def offers(session: Session, task_id: int) -> list[TaskOffer]:
    """A task's offers in the order made."""
    rows = list(
        session.scalars(
            select(TaskOffer)
            .where(TaskOffer.task_id == task_id)
            .order_by(TaskOffer.id)
            .execution_options(populate_existing=True)
        )
    )
    session.commit()
    return rows


def run_rule(session: Session, name: str, *, settings: Settings, now: datetime) -> int:
    """Run one periodic rule as `python -m records jobs` does, and commit."""
    touched = RULES[name](session, settings=settings, now=now)
    session.commit()
    return int(touched)


def at_once(count: int, action: Callable[[int], Any]) -> list[Any]:
    """Run `action(0..count-1)` in threads released together; results in index order."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        barrier.wait()
        results[index] = action(index)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def link_staff(session: Session, staff: StaffUser, resident: Resident) -> str:
    """Make a staff member reachable as a resident with a verified identity; returns it."""
    staff.resident_id = resident.id
    identity = link_identity(session, resident)
    session.commit()
    return identity
