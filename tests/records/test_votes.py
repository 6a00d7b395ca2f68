"""Votes: eligibility, one ballot per resident or household, secret ballots, tallies."""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session

from records.core.clock import ManualClock
from records.core.config import Settings
from records.models import (
    AuditEntry,
    Ballot,
    Notification,
    StaffRole,
    VoteParticipation,
)
from records.repository import identities as identities_repo
from records.repository import residents as residents_repo
from records.repository import votes as votes_repo
from tests.conftest import T0
from tests.records.factories import World

WEEK = timedelta(days=7)


def verify(client: TestClient, resident_id: int, identity: str) -> str:
    """Link `identity` to a resident the way a resident does: with a code from staff."""
    code = client.post(f"/api/v1/residents/{resident_id}/verification-codes").json()["code"]
    response = client.post("/api/v1/identities/verify", json={"identity": identity, "code": code})
    assert response.status_code == 200, response.text
    return identity


def verify_directly(app: FastAPI, settings: Settings, resident_id: int, identity: str) -> str:
    """The same through the repository, for tests that need many verified residents."""
    with app.state.session_factory() as db:
        code, _ = identities_repo.issue_code(
            db, resident_id=resident_id, issued_by_id=None, now=T0, settings=settings
        )
        identities_repo.verify(db, identity=identity, code=code, now=T0, settings=settings)
        db.commit()
    return identity


def make_vote(client: TestClient, **fields: Any) -> dict[str, Any]:
    """A vote open from T0 for a week, with `fields` overriding."""
    body = {
        "title": "3号楼加装电梯",
        "opens_at": T0.isoformat(),
        "closes_at": (T0 + WEEK).isoformat(),
        **fields,
    }
    response = client.post("/api/v1/votes", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def cast(client: TestClient, vote_id: int, identity: str, choice: str, **kw: Any) -> Any:
    """Cast through the API."""
    return client.post(
        f"/api/v1/votes/{vote_id}/ballots", json={"identity": identity, "choice": choice}, **kw
    )


def count(app: FastAPI, model: Any) -> int:
    """Rows of a table, read in a short session of its own (SQLite locks on BEGIN)."""
    with app.state.session_factory() as db:
        return int(db.scalar(select(func.count()).select_from(model)) or 0)


def test_yes_no_vote_counts_labels_codes_and_positions(
    client: TestClient, world: World, clock: ManualClock
) -> None:
    vote = make_vote(client)
    assert [(o["code"], o["label"]) for o in vote["options"]] == [
        ("yes", "同意"),
        ("no", "反对"),
        ("abstain", "弃权"),
    ]
    assert vote["state"] == "open"
    voters = [verify(client, r.id, f"telegram:{r.id}") for r in world.residents[:4]]
    for identity, choice in zip(voters, ["同意", "yes", "2", "赞成"], strict=True):
        receipt = cast(client, vote["id"], identity, choice)
        assert receipt.status_code == 201, receipt.text
        assert receipt.json()["vote_title"] == "3号楼加装电梯"
        assert choice not in receipt.json()["text"]
        assert "谢谢参与" in receipt.json()["text"]
    again = cast(client, vote["id"], voters[0], "反对")
    assert again.status_code == 409
    assert again.json()["detail"] == "您已经投过票了，每人只能投一次。"
    unverified = cast(client, vote["id"], "phone:+8613800000005", "同意")
    assert unverified.status_code == 403
    assert unverified.json()["detail"].startswith("需要先核实身份")

    early = client.get(f"/api/v1/votes/{vote['id']}/tally")
    assert early.status_code == 409
    assert early.json()["detail"] == "投票还没结束，结果会在11月30日10:00后公布。"

    clock.advance(WEEK)
    tally = client.get(f"/api/v1/votes/{vote['id']}/tally").json()
    assert [(o["code"], o["count"]) for o in tally["options"]] == [
        ("yes", 3),
        ("no", 1),
        ("abstain", 0),
    ]
    assert tally["total"] == 4
    assert tally["eligible"] == 5
    assert tally["turnout"] == 0.8
    assert tally["text"] == "“3号楼加装电梯”投票结果：同意3票，反对1票，弃权0票；共4票，参与率80%。"


def test_options_vote_resolves_label_number_and_ordinal(
    client: TestClient, world: World, clock: ManualClock
) -> None:
    vote = make_vote(
        client, title="社区基金怎么用", kind="options", options=["修花坛", "装路灯", "建车棚"]
    )
    assert [o["code"] for o in vote["options"]] == ["1", "2", "3"]
    voters = [verify(client, r.id, f"web:dev{r.id}") for r in world.residents[:4]]
    for identity, choice in zip(voters, ["装路灯", "第三个", "１", "2。"], strict=True):
        assert cast(client, vote["id"], identity, choice).status_code == 201

    unclear = cast(client, vote["id"], verify(client, world.residents[4].id, "web:x"), "随便")
    assert unclear.status_code == 422
    assert (
        unclear.json()["detail"]
        == "没听清您选的是哪一项。可以选：1. 修花坛，2. 装路灯，3. 建车棚。"
    )

    clock.advance(WEEK)
    tally = client.get(f"/api/v1/votes/{vote['id']}/tally").json()
    assert [o["count"] for o in tally["options"]] == [1, 2, 1]


def test_vote_definitions_and_roles_are_checked(
    client: TestClient, world: World, staff_client: Callable[[StaffRole], TestClient]
) -> None:
    base = {"title": "t", "opens_at": T0.isoformat(), "closes_at": (T0 + WEEK).isoformat()}
    assert staff_client(StaffRole.canteen).post("/api/v1/votes", json=base).status_code == 403
    assert staff_client(StaffRole.grid_worker).post("/api/v1/votes", json=base).status_code == 201
    one_option = client.post("/api/v1/votes", json={**base, "kind": "options", "options": ["甲"]})
    assert one_option.status_code == 422
    assert one_option.json()["detail"] == "选项要有2到10个。"
    extra = client.post("/api/v1/votes", json={**base, "options": ["甲", "乙"]})
    assert extra.status_code == 422
    backwards = client.post("/api/v1/votes", json={**base, "closes_at": T0.isoformat()})
    assert backwards.json()["detail"] == "投票的结束时间要晚于开始时间。"
    naive = client.post("/api/v1/votes", json={**base, "opens_at": "2026-11-23T10:00:00"})
    assert naive.status_code == 422
    no_building = client.post("/api/v1/votes", json={**base, "scope": "building"})
    assert no_building.status_code == 404


def test_building_and_unit_votes_refuse_outsiders(client: TestClient, world: World) -> None:
    building_vote = make_vote(client, scope="building", scope_building_id=world.buildings[1].id)
    unit_vote = make_vote(client, scope="unit", scope_unit_id=world.units[0].id)
    assert (building_vote["scope_name"], unit_vote["scope_name"]) == ("3号楼", "一联户")
    in_building1 = verify(client, world.elder.id, "telegram:1")
    in_building3 = verify(client, world.residents[4].id, "telegram:5")

    refused = cast(client, building_vote["id"], in_building1, "同意")
    assert refused.status_code == 403
    assert refused.json()["detail"] == "这次投票只限3号楼的居民参加。"
    assert cast(client, building_vote["id"], in_building3, "同意").status_code == 201

    refused = cast(client, unit_vote["id"], in_building3, "同意")
    assert refused.status_code == 403
    assert refused.json()["detail"] == "这次投票只限一联户的居民参加。"
    assert cast(client, unit_vote["id"], in_building1, "反对").status_code == 201


def test_household_vote_takes_one_ballot_per_household(
    client: TestClient, world: World, app: FastAPI, settings: Settings
) -> None:
    vote = make_vote(client, eligibility="household")
    zhang, zhao = world.residents[2], world.residents[3]  # same household
    assert zhang.household_id == zhao.household_id
    assert cast(client, vote["id"], verify(client, zhang.id, "telegram:3"), "同意").is_success
    second = cast(client, vote["id"], verify(client, zhao.id, "telegram:4"), "反对")
    assert second.status_code == 409
    assert second.json()["detail"] == "您家已经投过票了，每户只能投一次。"
    voted = client.post(f"/api/v1/votes/{vote['id']}/has-voted", json={"identity": "telegram:4"})
    assert voted.json() == {"vote_id": vote["id"], "voted": True}

    with app.state.session_factory() as db:
        homeless = residents_repo.create_resident(db, name="无住址", household_id=None)
        db.commit()
    refused = cast(client, vote["id"], verify_directly(app, settings, homeless.id, "web:h"), "同意")
    assert refused.status_code == 403
    assert "按户" in refused.json()["detail"]
    assert count(app, Ballot) == 1


def test_ballots_only_between_open_and_close(
    client: TestClient, world: World, clock: ManualClock
) -> None:
    vote = make_vote(
        client, opens_at=(T0 + timedelta(days=1)).isoformat(), closes_at=(T0 + WEEK).isoformat()
    )
    assert vote["state"] == "upcoming"
    identity = verify(client, world.elder.id, "telegram:1")
    early = cast(client, vote["id"], identity, "同意")
    assert early.status_code == 409
    assert early.json()["detail"] == "投票还没开始，11月24日10:00开始。"
    clock.advance(WEEK)
    late = cast(client, vote["id"], identity, "同意")
    assert late.status_code == 409
    assert late.json()["detail"].startswith("投票已经结束了")
    listing = client.get("/api/v1/votes", params={"state": "closed"}).json()
    assert [v["id"] for v in listing["items"]] == [vote["id"]]


def test_ballots_cannot_be_linked_to_voters(
    client: TestClient, world: World, app: FastAPI, session: Session
) -> None:
    columns = {c["name"]: c for c in inspect(app.state.engine).get_columns("ballots")}
    assert set(columns) == {"id", "vote_id", "option_id"}
    assert not any(
        "date" in str(c["type"]).lower() or "time" in str(c["type"]).lower()
        for c in columns.values()
    )
    referred = {
        fk["referred_table"] for fk in inspect(app.state.engine).get_foreign_keys("ballots")
    }
    assert referred == {"votes", "vote_options"}
    participation = {
        c["name"] for c in inspect(app.state.engine).get_columns("vote_participations")
    }
    assert set(columns) & participation == {"id", "vote_id"}

    vote = make_vote(client)
    for r in world.residents[:3]:
        cast(client, vote["id"], verify(client, r.id, f"telegram:{r.id}"), "同意")
    ballot_ids = session.scalars(select(Ballot.id)).all()
    participation_ids = session.scalars(select(VoteParticipation.id)).all()
    # The shared "id" column holds unrelated values: random hex against a counter.
    assert not {str(p) for p in participation_ids} & set(ballot_ids)
    assert all(len(b) == 32 for b in ballot_ids)
    # Nothing else records a ballot either: the audit trail never sees one.
    audited = session.scalars(select(AuditEntry.entity).where(AuditEntry.entity == "ballots"))
    assert audited.all() == []


def test_concurrent_casts_count_once(
    client: TestClient, world: World, app: FastAPI, settings: Settings
) -> None:
    vote = make_vote(client)
    identity = verify(client, world.elder.id, "telegram:1")
    choices = ["同意", "反对", "弃权", "1", "2"] * 10
    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(
            pool.map(lambda c: cast(client, vote["id"], identity, c).status_code, choices)
        )
    assert sorted(statuses) == [201] + [409] * 49
    assert count(app, VoteParticipation) == 1
    assert count(app, Ballot) == 1

    # Ten members of one household racing in a per-household vote: one ballot.
    per_household = make_vote(client, eligibility="household")
    with app.state.session_factory() as db:
        members = [
            residents_repo.create_resident(db, name=f"家人{n}", household_id=world.households[2].id)
            for n in range(10)
        ]
        db.commit()
    identities = [verify_directly(app, settings, m.id, f"wechat:m{m.id}") for m in members]
    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(
            pool.map(lambda i: cast(client, per_household["id"], i, "同意").status_code, identities)
        )
    assert sorted(statuses) == [201] + [409] * 9
    assert count(app, VoteParticipation) == count(app, Ballot) == 2


def test_keyed_retry_returns_the_first_receipt(client: TestClient, world: World) -> None:
    vote = make_vote(client)
    identity = verify(client, world.elder.id, "telegram:1")
    headers = {"Idempotency-Key": "cast-1"}
    first = cast(client, vote["id"], identity, "同意", headers=headers)
    # Even a different choice under the same key only replays: the choice is not fingerprinted,
    # so the stored request record next to the sender says nothing about it.
    retry = cast(client, vote["id"], identity, "反对", headers=headers)
    assert first.status_code == retry.status_code == 201
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()
    assert cast(client, vote["id"], identity, "同意").status_code == 409

    # Concurrent retries under one key: one ballot, and every retry gets the same receipt.
    other = make_vote(client, title="另一次投票")
    headers = {"Idempotency-Key": "cast-2"}
    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(
            pool.map(
                lambda _: cast(client, other["id"], identity, "弃权", headers=headers), range(10)
            )
        )
    assert {r.status_code for r in responses} == {201}
    assert len({r.text for r in responses}) == 1


def test_open_for_me_lists_votes_still_to_cast(client: TestClient, world: World) -> None:
    mine = make_vote(client, title="全社区", scope="community")
    make_vote(client, title="只限3号楼", scope="building", scope_building_id=world.buildings[1].id)
    done = make_vote(client, title="已投")
    make_vote(
        client,
        title="还没开始",
        opens_at=(T0 + timedelta(days=1)).isoformat(),
        closes_at=(T0 + WEEK).isoformat(),
    )
    identity = verify(client, world.elder.id, "telegram:1")
    cast(client, done["id"], identity, "同意")
    listed = client.post("/api/v1/votes/open-for-me", json={"identity": identity}).json()
    assert [v["id"] for v in listed] == [mine["id"]]
    stranger = client.post("/api/v1/votes/open-for-me", json={"identity": "telegram:999"})
    assert stranger.status_code == 403


def test_opening_and_results_are_announced_once(
    client: TestClient, world: World, app: FastAPI, settings: Settings, clock: ManualClock
) -> None:
    vote = make_vote(client, scope="building", scope_building_id=world.buildings[1].id)
    inside = verify(client, world.residents[2].id, "telegram:3")
    verify(client, world.elder.id, "telegram:1")  # verified, but lives in 1号楼
    with app.state.session_factory() as db:
        assert votes_repo.announce_open_votes(db, settings=settings, now=clock.now()) == 1
        assert votes_repo.announce_open_votes(db, settings=settings, now=clock.now()) == 0
        db.commit()
        opened = db.scalars(select(Notification).where(Notification.kind == "vote_opened")).all()
        assert [n.recipient for n in opened] == [inside]
        assert "11月30日10:00截止" in opened[0].payload["text"]

    cast(client, vote["id"], inside, "反对")
    with app.state.session_factory() as db:
        assert votes_repo.publish_closed_votes(db, settings=settings, now=clock.now()) == 0
        later = clock.now() + WEEK
        assert votes_repo.publish_closed_votes(db, settings=settings, now=later) == 1
        assert votes_repo.publish_closed_votes(db, settings=settings, now=later) == 0
        db.commit()
        results = db.scalars(select(Notification).where(Notification.kind == "vote_result")).all()
        assert [n.recipient for n in results] == [inside]
        assert results[0].payload["text"].startswith("“3号楼加装电梯”投票结果：同意0票，反对1票")
