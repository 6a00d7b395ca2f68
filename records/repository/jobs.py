"""Periodic work: every rule that becomes due with the passing of time, run in one place."""

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from records.core.config import Settings
from records.repository import alerts, canteen, dispatch, proposals, repairs, volunteers, votes

log = logging.getLogger(__name__)
Rule = Callable[..., int]

# Each rule is idempotent: re-running it at the same moment changes nothing.
RULES: dict[str, Rule] = {
    "repairs_escalated": repairs.escalate_overdue,
    "meal_reminders": canteen.remind_tomorrow,
    "proposal_answers_overdue": proposals.flag_overdue_answers,
    "votes_announced": votes.announce_open_votes,
    "vote_results_published": votes.publish_closed_votes,
    "tasks_auto_confirmed": volunteers.auto_confirm_done_tasks,
    "tasks_expired": volunteers.expire_unanswered,
    "tasks_reminded": dispatch.remind_due_tasks,
    "visits_scheduled": dispatch.schedule_visits,
    "alerts_overdue": alerts.overdue_unacknowledged,
}


def run_due_jobs(*, session: Session, settings: Settings, now: datetime) -> dict[str, int]:
    """Run every rule once, each in its own transaction; rows touched per rule that ran."""
    results: dict[str, int] = {}
    for name, rule in RULES.items():
        try:
            results[name] = rule(session, settings=settings, now=now)
            session.commit()
        except Exception:
            # One failing rule must not hold back the others; it is retried next run.
            session.rollback()
            log.exception("periodic rule %s failed", name)
    return results
