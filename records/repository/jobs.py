"""Periodic work: everything that becomes due with the passing of time."""

from datetime import datetime

from sqlalchemy.orm import Session

from records.core.config import Settings


def run_due_jobs(*, session: Session, settings: Settings, now: datetime) -> dict[str, int]:
    """Run every time-driven rule once; returns how many rows each rule touched."""
    results: dict[str, int] = {}
    session.commit()
    return results
