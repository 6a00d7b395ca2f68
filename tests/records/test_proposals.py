"""Proposals: review, exact support counting, the answer deadline, and going to a vote."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from records.core.clock import ManualClock
from records.core.config import Settings
from records.models import Notification, ProposalSupport, StaffRole
from records.repository import proposals as proposals_repo
from records.repository import residents as residents_repo
from tests.conftest import T0, make_settings
from tests.records.factories import World
from tests.records.test_votes import count, verify, verify_directly

ELDER_PHONE = "phone:+8613800000001"


@pytest.fixture
def settings(database_url: str) -> Settings:
    """A low support threshold, so a handful of residents reach it."""
    return make_settings(database_url, proposal_support_threshold=3)


def submit(client: TestClient, identity: str = ELDER_PHONE, **kw: Any) -> Any:
    """A proposal through the API."""
    body = {
        "identity": identity,
        "title": "小区门口加装路灯",
        "content": "晚上太黑，老人出门不安全。",
    }
    return client.post("/api/v1/proposals", json=body, **kw)


def published(client: TestClient) -> int:
    """A proposal already published, gathering support."""
    proposal_id = int(submit(client).json()["id"])
    response = client.post(f"/api/v1/proposals/{proposal_id}/review", json={"action": "publish"})
    assert response.status_code == 200, response.text
    return proposal_id


def support(client: TestClient, proposal_id: int, identity: str) -> Any:
    """Support through the API."""
    return client.post(f"/api/v1/proposals/{proposal_id}/support", json={"identity": identity})


def notifications(app: FastAPI, kind: str) -> list[Notification]:
    """Queued notifications of one kind."""
    with app.state.session_factory() as db:
        return list(db.scalars(select(Notification).where(Notification.kind == kind)).all())


def test_full_lifecycle_from_submission_to_closing(
    client: TestClient, world: World, app: FastAPI
) -> None:
    # A caller recognised by phone may submit (staff review it); the channel comes along.
    created = submit(client, headers={"Idempotency-Key": "p-1"})
    assert created.status_code == 201, created.text
    assert submit(client, headers={"Idempotency-Key": "p-1"}).json() == created.json()
    proposal = created.json()
    assert (proposal["status"], proposal["channel"], proposal["author_id"]) == (
        "submitted",
        "phone",
        world.elder.id,
    )
    assert proposal["support_threshold"] == 3
    pid = proposal["id"]
    url = f"/api/v1/proposals/{pid}"

    assert client.post(f"{url}/review", json={"action": "start_review"}).json()["status"] == (
        "under_review"
    )
    assert client.post(f"{url}/review", json={"action": "publish"}).json()["status"] == "published"
    [told] = notifications(app, "proposal_published")
    assert "已经通过审核并公示" in told.payload["text"]

    voters = [verify(client, r.id, f"telegram:{r.id}") for r in world.residents[1:4]]
    first = support(client, pid, voters[0]).json()
    assert first["proposal"]["support_count"] == 1
    assert (
        first["text"]
        == "谢谢您的支持！“小区门口加装路灯”已经有1位居民支持，达到3人后社区会正式答复。"
    )
    support(client, pid, voters[1])
    third = support(client, pid, voters[2]).json()
    reached = third["proposal"]
    assert (reached["status"], reached["support_count"]) == ("supported", 3)
    assert reached["threshold_reached_at"] == T0.isoformat().replace("+00:00", "Z")
    assert reached["answer_due_at"] == (T0 + timedelta(days=15)).isoformat().replace("+00:00", "Z")
    assert third["text"].endswith("已达到3人，社区会在12月8日前答复。")
    [told] = notifications(app, "proposal_supported")
    assert "12月8日前给出答复" in told.payload["text"]

    answered = client.post(f"{url}/answer", json={"answer": "已列入本月工程，月底前装好。"})
    assert answered.json()["status"] == "answered"
    [told] = notifications(app, "proposal_answered")
    assert told.payload["text"].endswith("已列入本月工程，月底前装好。")
    assert client.post(f"{url}/close").json()["status"] == "closed"
    assert client.get(url).json()["closed_at"] is not None
    assert client.get("/api/v1/proposals").json()["total"] == 1


def test_illegal_moves_are_refused_in_chinese(
    client: TestClient, world: World, app: FastAPI
) -> None:
    pid = submit(client).json()["id"]
    url = f"/api/v1/proposals/{pid}"
    early = client.post(f"{url}/answer", json={"answer": "好"})
    assert early.status_code == 409
    assert early.json()["detail"] == "这个提案现在是“已提交”状态，不能答复。"
    assert (
        client.post(
            f"{url}/vote",
            json={"opens_at": T0.isoformat(), "closes_at": (T0 + timedelta(days=7)).isoformat()},
        ).status_code
        == 409
    )
    no_reason = client.post(f"{url}/review", json={"action": "reject"})
    assert no_reason.status_code == 422
    rejected = client.post(
        f"{url}/review", json={"action": "reject", "note": "属于物业职责，已转交。"}
    )
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["review_note"] == "属于物业职责，已转交。"
    [told] = notifications(app, "proposal_rejected")
    assert told.payload["text"].endswith("原因：属于物业职责，已转交。")
    again = client.post(f"{url}/review", json={"action": "publish"})
    assert again.status_code == 409
    assert again.json()["detail"] == "这个提案现在是“未通过审核”状态，不能公示。"
    assert client.get("/api/v1/proposals/999").status_code == 404


def test_who_may_submit_and_support(client: TestClient, world: World) -> None:
    stranger = submit(client, identity="telegram:777")
    assert stranger.status_code == 403
    assert "先在社区登记" in stranger.json()["detail"]

    pending = submit(client).json()["id"]
    voter = verify(client, world.residents[1].id, "telegram:2")
    not_yet = support(client, pending, voter)
    assert not_yet.status_code == 409
    assert not_yet.json()["detail"] == "这个提案现在不在征集支持的阶段，暂时不能支持。"

    pid = published(client)
    unverified = support(client, pid, "phone:+8613800000002")
    assert unverified.status_code == 403
    assert unverified.json()["detail"] == "需要先核实身份。请向社区工作人员要一个验证码，再告诉我。"
    assert support(client, pid, voter).status_code == 200
    twice = support(client, pid, voter)
    assert twice.status_code == 409
    assert twice.json()["detail"] == "您已经支持过这个提案了。"
    assert client.get(f"/api/v1/proposals/{pid}").json()["support_count"] == 1


def test_concurrent_supports_are_counted_exactly(
    client: TestClient, world: World, app: FastAPI, settings: Settings
) -> None:
    pid = published(client)
    voter = verify(client, world.residents[1].id, "telegram:2")
    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(lambda _: support(client, pid, voter).status_code, range(20)))
    assert sorted(statuses) == [200] + [409] * 19
    assert count(app, ProposalSupport) == 1

    with app.state.session_factory() as db:
        people = [
            residents_repo.create_resident(
                db, name=f"邻居{n}", household_id=world.households[n % 4].id
            )
            for n in range(12)
        ]
        db.commit()
    voters = [verify_directly(app, settings, p.id, f"web:n{p.id}") for p in people]
    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(lambda v: support(client, pid, v).status_code, voters))
    assert statuses == [200] * 12
    proposal = client.get(f"/api/v1/proposals/{pid}").json()
    assert (proposal["status"], proposal["support_count"]) == ("supported", 13)
    assert count(app, ProposalSupport) == 13
    # Exactly one support crossed the threshold, so the author hears of it once.
    assert len(notifications(app, "proposal_supported")) == 1


def test_overdue_answer_is_flagged_to_admins_once(
    client: TestClient, world: World, app: FastAPI, settings: Settings, clock: ManualClock
) -> None:
    pid = published(client)
    for r in world.residents[1:4]:
        support(client, pid, verify(client, r.id, f"telegram:{r.id}"))
    answered = published(client)
    for r in world.residents[1:4]:
        support(client, answered, f"telegram:{r.id}")
    client.post(f"/api/v1/proposals/{answered}/answer", json={"answer": "已处理。"})

    with app.state.session_factory() as db:
        on_time = clock.now() + timedelta(days=14)
        assert proposals_repo.flag_overdue_answers(db, settings=settings, now=on_time) == 0
        late = clock.now() + timedelta(days=16)
        assert proposals_repo.flag_overdue_answers(db, settings=settings, now=late) == 1
        assert proposals_repo.flag_overdue_answers(db, settings=settings, now=late) == 0
        db.commit()
    [flag] = notifications(app, "proposal_overdue")
    assert flag.recipient == f"staff:{world.staff[StaffRole.admin].id}"
    assert flag.payload["proposal_id"] == pid
    assert (
        flag.payload["text"]
        == "提案“小区门口加装路灯”应在12月8日前答复，现在已经超期，请尽快处理。"
    )


def test_supported_proposal_goes_to_a_vote(client: TestClient, world: World, app: FastAPI) -> None:
    pid = published(client)
    body = {"opens_at": T0.isoformat(), "closes_at": (T0 + timedelta(days=7)).isoformat()}
    response = client.post(f"/api/v1/proposals/{pid}/vote", json=body)
    assert response.status_code == 201, response.text
    vote = response.json()
    assert (vote["title"], vote["kind"], vote["state"]) == ("小区门口加装路灯", "yes_no", "open")
    assert vote["description"] == "晚上太黑，老人出门不安全。"
    proposal = client.get(f"/api/v1/proposals/{pid}").json()
    assert (proposal["status"], proposal["vote_id"]) == ("voting", vote["id"])
    assert len(notifications(app, "proposal_voting")) == 1
    again = client.post(f"/api/v1/proposals/{pid}/vote", json=body)
    assert again.status_code == 409

    listing = client.get(
        "/api/v1/proposals", params=[("status", "published"), ("status", "voting")]
    )
    assert [p["id"] for p in listing.json()["items"]] == [pid]
    assert client.get("/api/v1/proposals", params={"status": "published"}).json()["total"] == 0
