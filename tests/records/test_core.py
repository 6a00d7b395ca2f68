"""Cross-cutting rules: authentication, roles, problem+json, audit trail, health, redaction."""

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from records.core.logging import redact
from records.models import AuditEntry, StaffRole
from tests.records.factories import World


def test_health_reports_database(anonymous: TestClient) -> None:
    response = anonymous.get("/health")
    assert response.json() == {"status": "ok", "database": "ok"}


def test_no_credentials_is_401_problem(anonymous: TestClient, world: World) -> None:
    response = anonymous.get("/api/v1/residents")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "请先登录或提供有效的服务令牌。"


def test_wrong_token_is_401(anonymous: TestClient, world: World) -> None:
    response = anonymous.get("/api/v1/residents", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401


def test_bad_staff_password_is_refused(anonymous: TestClient, world: World) -> None:
    response = anonymous.post("/api/v1/auth/login", json={"username": "admin1", "password": "x"})
    assert response.status_code == 401
    assert response.json()["detail"] == "用户名或密码不对。"


def test_staff_session_identifies_staff(
    staff_client: Callable[[StaffRole], TestClient], world: World
) -> None:
    me = staff_client(StaffRole.grid_worker).get("/api/v1/auth/me").json()
    assert me["role"] == "grid_worker"
    assert me["staff_id"] == world.staff[StaffRole.grid_worker].id


def test_role_without_rights_gets_403(
    staff_client: Callable[[StaffRole], TestClient], world: World
) -> None:
    response = staff_client(StaffRole.canteen).get("/api/v1/residents")
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"


def test_logout_ends_the_session(
    staff_client: Callable[[StaffRole], TestClient], world: World
) -> None:
    client = staff_client(StaffRole.admin)
    assert client.post("/api/v1/auth/logout").status_code == 204
    assert client.get("/api/v1/auth/me").status_code == 401


def test_staff_changes_are_audited_without_values(
    staff_client: Callable[[StaffRole], TestClient], world: World, session: Session
) -> None:
    client = staff_client(StaffRole.grid_worker)
    response = client.post("/api/v1/residents", json={"name": "周阿姨", "phones": ["13912345678"]})
    assert response.status_code == 201
    staff_id = world.staff[StaffRole.grid_worker].id
    entries = session.scalars(
        select(AuditEntry).where(AuditEntry.actor == f"staff:{staff_id}")
    ).all()
    created = {(e.entity, e.action) for e in entries}
    assert ("residents", "create") in created
    assert ("resident_phones", "create") in created
    flat = " ".join(" ".join(e.fields) + (e.entity_id or "") for e in entries)
    assert "13912345678" not in flat


def test_validation_error_is_chinese_problem(client: TestClient, world: World) -> None:
    response = client.post("/api/v1/residents", json={"name": ""})
    assert response.status_code == 422
    body = response.json()
    assert body["type"].endswith("/validation-error")
    assert "内容太短" in body["detail"]


def test_unknown_route_is_problem(client: TestClient) -> None:
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_logs_are_redacted() -> None:
    line = redact('POST /x identity="phone:+8613800000001" caller 13800000001 telegram:42')
    assert "13800000001" not in line
    assert "telegram:42" not in line


def test_redacting_filter_keeps_uvicorn_access_args() -> None:
    import logging

    from records.core.logging import RedactingFilter

    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/x?identity=phone:+8613800000001", "1.1", 200),
        None,
    )
    assert RedactingFilter().filter(record)
    assert record.args is not None
    assert len(record.args) == 5
    assert "13800000001" not in record.getMessage()


def test_id_beyond_integer_range_is_a_problem_not_a_crash(client: TestClient, world: World) -> None:
    response = client.get("/api/v1/residents/99999999999")
    assert response.status_code in (404, 422)
    assert response.headers["content-type"] == "application/problem+json"


def test_audit_survives_a_rolled_back_savepoint_and_late_flush(app: object, world: World) -> None:
    from fastapi import FastAPI

    from records.core.audit import set_actor
    from records.models import Community

    assert isinstance(app, FastAPI)
    with app.state.session_factory() as db:
        set_actor(db, "staff:999")
        db.add(Community(name="甲社区"))
        db.flush()
        try:
            with db.begin_nested():
                db.add(Community(name="乙社区"))
                raise RuntimeError("roll back the savepoint")
        except RuntimeError:
            pass
        db.add(Community(name="丙社区"))  # not flushed before commit
        db.commit()
        actions = db.scalars(
            select(AuditEntry.entity).where(AuditEntry.actor == "staff:999")
        ).all()
    assert actions.count("communities") >= 2


def test_audit_names_the_created_row(client: TestClient, world: World, session: Session) -> None:
    created = client.post("/api/v1/residents", json={"name": "吴奶奶"}).json()
    entity_ids = session.scalars(
        select(AuditEntry.entity_id).where(
            AuditEntry.entity == "residents", AuditEntry.action == "create"
        )
    ).all()
    session.rollback()
    assert str(created["id"]) in entity_ids
