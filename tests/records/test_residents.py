"""Residents, identities and verification through the API."""

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from records.core.clock import ManualClock
from tests.records.factories import World


def test_create_resident_encrypts_phone_at_rest(
    client: TestClient, world: World, session: Session
) -> None:
    response = client.post(
        "/api/v1/residents",
        json={
            "name": "刘奶奶",
            "household_id": world.households[0].id,
            "phones": ["138 0013 8000"],
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["phones"] == ["+8613800138000"]
    assert body["address"]["text"] == "1号楼1单元101"
    raw = session.execute(text("SELECT number FROM resident_phones")).scalars().all()
    assert all("138" not in value for value in raw)


def test_retry_with_same_idempotency_key_creates_once(client: TestClient, world: World) -> None:
    payload = {"name": "孙大爷", "household_id": world.households[1].id}
    headers = {"Idempotency-Key": "abc-123"}
    first = client.post("/api/v1/residents", json=payload, headers=headers)
    second = client.post("/api/v1/residents", json=payload, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    listing = client.get("/api/v1/residents", params={"limit": 100}).json()
    assert [r["name"] for r in listing["items"]].count("孙大爷") == 1


def test_same_key_with_other_payload_is_refused(client: TestClient, world: World) -> None:
    headers = {"Idempotency-Key": "k1"}
    client.post("/api/v1/residents", json={"name": "甲"}, headers=headers)
    response = client.post("/api/v1/residents", json={"name": "乙"}, headers=headers)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


def test_bad_phone_is_a_chinese_problem(client: TestClient, world: World) -> None:
    response = client.post("/api/v1/residents", json={"name": "某人", "phones": ["12"]})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "电话号码" in response.json()["detail"]


def test_phone_caller_is_recognised_but_not_verified(client: TestClient, world: World) -> None:
    response = client.post("/api/v1/identities/resolve", json={"identity": "phone:+8613800000001"})
    body = response.json()
    assert body["resident"]["name"] == "王秀英"
    assert body["recognised_by"] == "phone"
    assert body["verified"] is False


def test_verification_code_links_identity_once(client: TestClient, world: World) -> None:
    code = client.post(f"/api/v1/residents/{world.elder.id}/verification-codes").json()["code"]
    ok = client.post("/api/v1/identities/verify", json={"identity": "telegram:42", "code": code})
    assert ok.status_code == 200, ok.text
    assert ok.json()["verified"] is True
    again = client.post("/api/v1/identities/verify", json={"identity": "telegram:43", "code": code})
    assert again.status_code == 422


def test_expired_code_is_refused(client: TestClient, world: World, clock: ManualClock) -> None:
    code = client.post(f"/api/v1/residents/{world.elder.id}/verification-codes").json()["code"]
    clock.advance(timedelta(days=30))
    response = client.post("/api/v1/identities/verify", json={"identity": "web:dev1", "code": code})
    assert response.status_code == 422


def test_repeated_wrong_codes_lock_the_identity(client: TestClient, world: World) -> None:
    code = client.post(f"/api/v1/residents/{world.elder.id}/verification-codes").json()["code"]
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        client.post("/api/v1/identities/verify", json={"identity": "wechat:o1", "code": wrong})
    locked = client.post("/api/v1/identities/verify", json={"identity": "wechat:o1", "code": code})
    assert locked.status_code == 429


def test_list_paginates(client: TestClient, world: World) -> None:
    page = client.get("/api/v1/residents", params={"limit": 2, "offset": 2}).json()
    assert page["total"] == 5
    assert page["limit"] == 2
    assert len(page["items"]) == 2
