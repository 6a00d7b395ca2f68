"""The periodic job runner runs every time-driven rule, idempotently."""

from datetime import timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from records.core.clock import ManualClock
from records.models import Notification, Repair
from records.repository.jobs import RULES, run_due_jobs
from tests.records.factories import World


def test_jobs_escalate_an_overdue_repair_once(
    app: FastAPI, client: TestClient, world: World, session: Session, clock: ManualClock
) -> None:
    created = client.post(
        "/api/v1/repairs",
        json={"category": "water", "description": "水管漏水", "building_id": world.buildings[0].id,
              "entrance": 1, "room": "101"},
    )
    assert created.status_code == 201, created.text
    clock.advance(timedelta(hours=25))
    first = run_due_jobs(session=session, settings=app.state.settings, now=clock.now())
    notes_after_first = session.scalar(select(func.count(Notification.id)))
    second = run_due_jobs(session=session, settings=app.state.settings, now=clock.now())
    assert set(first) == set(RULES)
    assert first["repairs_escalated"] == 1
    assert second["repairs_escalated"] == 0
    assert session.scalar(select(func.count(Notification.id))) == notes_after_first
    repair = session.get(Repair, created.json()["id"])
    assert repair is not None
    session.refresh(repair)
    assert repair.escalation_tier.value == "unit_leader"
