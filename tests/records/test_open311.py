"""Open311 GeoReport v2: services, filing by form, reading back, filters, errors, auth."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient

from records.core.clock import ManualClock
from records.core.config import Settings
from records.models import RepairCategory, StaffRole
from tests.conftest import T0
from tests.records.factories import World

BASE = "/open311/v2"
ZONE = ZoneInfo("Asia/Shanghai")


def file_request(anonymous: TestClient, key: str, **fields: Any) -> Any:
    form = {
        "api_key": key,
        "service_code": "lighting",
        "description": "路灯不亮",
        "address_string": "小区北门",
        **fields,
    }
    return anonymous.post(f"{BASE}/requests.json", data=form)


def assert_geo_error(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    [error] = response.json()
    assert error["code"] == status
    description: str = error["description"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in description)
    return description


def test_services_and_auth(
    anonymous: TestClient,
    client: TestClient,
    settings: Settings,
    world: World,
    staff_client: Callable[[StaffRole], TestClient],
) -> None:
    services = anonymous.get(f"{BASE}/services.json", params={"api_key": settings.service_token})
    assert services.status_code == 200, services.text
    assert [s["service_code"] for s in services.json()] == [c.value for c in RepairCategory]
    lift = services.json()[2]
    assert (lift["service_name"], lift["group"], lift["type"], lift["metadata"]) == (
        "电梯",
        "报修",
        "realtime",
        False,
    )
    assert client.get(f"{BASE}/services.json").status_code == 200  # Bearer works too
    assert_geo_error(anonymous.get(f"{BASE}/services.json"), 401)
    assert_geo_error(anonymous.get(f"{BASE}/requests.json", params={"api_key": "x" * 20}), 401)
    missing_key = file_request(anonymous, key="")
    assert_geo_error(missing_key, 401)
    assert_geo_error(staff_client(StaffRole.canteen).get(f"{BASE}/services.json"), 403)


def test_file_read_back_and_filter(
    anonymous: TestClient, client: TestClient, settings: Settings, world: World, clock: ManualClock
) -> None:
    key = settings.service_token
    headers = {"Idempotency-Key": "city-42"}
    form = {"service_code": "drain", "description": "井盖松了", "lat": "31.23", "long": "121.47"}
    first = anonymous.post(f"{BASE}/requests.json", data={"api_key": key, **form}, headers=headers)
    assert first.status_code == 201, first.text
    [created] = first.json()
    assert created["account_id"] is None
    assert "响应" in created["service_notice"]
    replay = anonymous.post(f"{BASE}/requests.json", data={"api_key": key, **form}, headers=headers)
    assert (replay.status_code, replay.json()) == (201, [created])
    assert replay.headers["Idempotent-Replayed"] == "true"

    clock.advance(timedelta(days=2))
    second_id = file_request(anonymous, key).json()[0]["service_request_id"]
    done = client.post(
        f"/api/v1/repairs/{second_id}/status", json={"status": "resolved", "note": "换了灯泡"}
    )
    assert done.status_code == 200

    one = anonymous.get(
        f"{BASE}/requests/{created['service_request_id']}.json", params={"api_key": key}
    ).json()
    [drain] = one
    assert drain["service_request_id"] == created["service_request_id"]
    assert (drain["status"], drain["service_code"], drain["service_name"]) == (
        "open",
        "drain",
        "下水道",
    )
    assert (drain["address"], drain["lat"], drain["zipcode"]) == ("31.23,121.47", None, None)
    assert drain["agency_responsible"] == "社区居委会"
    assert drain["requested_datetime"] == T0.astimezone(ZONE).isoformat()
    assert drain["expected_datetime"] == (T0 + timedelta(hours=48)).astimezone(ZONE).isoformat()

    def ids(**params: Any) -> list[str]:
        response = anonymous.get(f"{BASE}/requests.json", params={"api_key": key, **params})
        assert response.status_code == 200, response.text
        return [r["service_request_id"] for r in response.json()]

    drain_id = created["service_request_id"]
    assert ids() == [second_id, drain_id]
    assert ids(status="closed") == [second_id]
    assert ids(status="open") == [drain_id]
    assert ids(service_code="drain") == [drain_id]
    assert ids(start_date=(T0 + timedelta(days=1)).isoformat()) == [second_id]
    assert ids(end_date="2026-11-23T12:00:00") == [drain_id]  # no zone: local time
    assert ids(service_request_id=f"{drain_id},{second_id}", status="open") == [second_id, drain_id]
    assert ids(limit=1) == [second_id]
    closed = anonymous.get(f"{BASE}/requests/{second_id}.json", params={"api_key": key}).json()[0]
    assert (closed["status"], closed["status_notes"]) == ("closed", "换了灯泡")


def test_errors_come_in_georeport_format(
    anonymous: TestClient, settings: Settings, world: World
) -> None:
    key = settings.service_token
    assert "service_code" in assert_geo_error(
        file_request(anonymous, key, service_code="teleporter"), 400
    )
    assert "地址" in assert_geo_error(file_request(anonymous, key, address_string=""), 400)
    assert_geo_error(file_request(anonymous, key, lat="95", long="1"), 400)
    assert_geo_error(file_request(anonymous, key, address_string="", lat="30"), 400)
    assert_geo_error(file_request(anonymous, key, description=""), 400)
    no_code = anonymous.post(f"{BASE}/requests.json", data={"api_key": key})
    assert "service_code" in assert_geo_error(no_code, 400)
    params = {"api_key": key}
    assert "报修单" in assert_geo_error(
        anonymous.get(f"{BASE}/requests/999.json", params=params), 404
    )
    assert_geo_error(anonymous.get(f"{BASE}/requests.json", params={**params, "status": "x"}), 400)
    assert_geo_error(anonymous.get(f"{BASE}/requests.json", params={**params, "limit": 5000}), 400)
