"""Open311 GeoReport v2 for repairs, so city systems can file and follow them.

Deliberate choices, for compliance with the GeoReport spec rather than this API's habits:

- Errors come in the GeoReport format, a JSON list `[{"code": 400, "description": "…"}]` with
  the HTTP status, instead of the problem+json the rest of the API returns. Validation errors
  are 400 (the spec's "bad request"), not 422. Descriptions are in Chinese.
- Only the `.json` format is offered; XML is not.
- Every endpoint needs authentication: `api_key` (query string, or form field on POST) equal to
  the service token, or the usual Bearer token or staff session; otherwise 401.
- Room numbers are personal data and are left out of `address`. A request filed with
  lat/long keeps them as the text "lat,long"; `lat`/`long` are always returned as null.
- `GET /requests.json` without dates returns the newest requests (at most 1000, or `limit`);
  the spec's suggested 90-day default window is not applied.
- POST honours an `Idempotency-Key` header like every create in this API.
"""

import json
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from records.api.deps import (
    UNAUTHENTICATED,
    ClockDep,
    Principal,
    SessionDep,
    SettingsDep,
    get_principal,
    require_roles,
)
from records.api.idempotency import Idempotency
from records.core.audit import set_actor
from records.core.config import Settings
from records.core.problems import Problem
from records.core.security import tokens_equal
from records.models import Repair, RepairCategory, StaffRole
from records.repository import repairs as repairs_repo

AGENCY = "社区居委会"
MAX_RESULTS = 1000

_SERVICE_DESCRIPTIONS: dict[RepairCategory, str] = {
    RepairCategory.water: "漏水、停水、水管破裂、水压太小。",
    RepairCategory.electricity: "停电、跳闸、插座或线路故障。",
    RepairCategory.lift: "电梯停运或运行异常。有人被困是紧急情况，请按电梯里的警铃或拨打119。",
    RepairCategory.door_access: "楼门、单元门禁打不开或关不上。",
    RepairCategory.lighting: "楼道灯、路灯不亮。",
    RepairCategory.drain: "下水道堵塞、返水、井盖破损。",
    RepairCategory.gas_appliance: "燃气灶、热水器等燃气器具故障。闻到燃气味是紧急情况，"
    "请立即开窗、离开并拨打119。",
    RepairCategory.public_facility: "健身器材、座椅、围栏等公共设施损坏。",
    RepairCategory.other: "其他需要维修的问题。",
}


def _error(status: int, description: str) -> JSONResponse:
    return JSONResponse([{"code": status, "description": description}], status_code=status)


def _validation_description(exc: RequestValidationError) -> str:
    fields = [
        ".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path"))
        for e in exc.errors()[:5]
    ]
    return "提交的信息有误，请检查这些项：" + "、".join(f for f in fields if f) + "。"


class GeoReportRoute(APIRoute):
    """A route whose errors, from dependencies too, come back in the GeoReport format."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap FastAPI's handler to translate errors."""
        handle = super().get_route_handler()

        async def handle_with_geo_errors(request: Request) -> Response:
            try:
                return await handle(request)
            except Problem as exc:
                # The spec knows "bad request", not "unprocessable": report 400.
                return _error(400 if exc.status == 422 else exc.status, exc.detail)
            except RequestValidationError as exc:
                return _error(400, _validation_description(exc))
            except StarletteHTTPException as exc:
                return _error(exc.status_code, "请求失败。")

        return handle_with_geo_errors


router = APIRouter(prefix="/open311/v2", tags=["open311"], route_class=GeoReportRoute)

_staff_allowed = require_roles(StaffRole.grid_worker, StaffRole.unit_leader)


def _authenticate(
    request: Request, session: Session, settings: Settings, api_key: str | None
) -> Principal:
    if not api_key:
        return _staff_allowed(get_principal(request, session, settings))
    if not tokens_equal(api_key, settings.service_token):
        raise UNAUTHENTICATED
    principal = Principal(name="open311")
    set_actor(session, principal.name)
    return principal


def query_principal(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    api_key: Annotated[str | None, Query(max_length=200)] = None,
) -> Principal:
    """The caller of a GET, by `api_key` in the query string or the usual credentials."""
    return _authenticate(request, session, settings, api_key)


def form_principal(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    api_key: Annotated[str | None, Form(max_length=200)] = None,
) -> Principal:
    """The caller of a POST, by `api_key` in the form (or query) or the usual credentials."""
    return _authenticate(request, session, settings, api_key or request.query_params.get("api_key"))


QueryPrincipal = Annotated[Principal, Depends(query_principal)]
FormPrincipal = Annotated[Principal, Depends(form_principal)]


class Created(BaseModel):
    """The answer to a filed request (the spec wraps it in a one-element list)."""

    service_request_id: str
    service_notice: str
    account_id: None = None


@router.get("/services.json")
def services(_principal: QueryPrincipal) -> list[dict[str, Any]]:
    """The services offered: one per repair category."""
    return [
        {
            "service_code": category.value,
            "service_name": repairs_repo.CATEGORY_NAMES[category],
            "description": _SERVICE_DESCRIPTIONS[category],
            "metadata": False,
            "type": "realtime",
            "keywords": "报修," + repairs_repo.CATEGORY_NAMES[category],
            "group": "报修",
        }
        for category in RepairCategory
    ]


@router.get("/requests.json")
def list_requests(
    _principal: QueryPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    service_request_id: Annotated[str | None, Query(max_length=2000)] = None,
    service_code: Annotated[str | None, Query(max_length=500)] = None,
    start_date: datetime | None = None,
    end_date: datetime | None = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_RESULTS)] = MAX_RESULTS,
) -> list[dict[str, Any]]:
    """Requests by id (comma-separated), or by service code, date range and open/closed."""
    zone = ZoneInfo(settings.timezone)
    repairs = repairs_repo.search_repairs(
        session,
        ids=_ids(service_request_id),
        categories=_categories(service_code),
        since=_aware(start_date, zone),
        until=_aware(end_date, zone),
        finished=_finished(status),
        limit=limit,
    )
    return [_request(r, zone) for r in repairs]


@router.get("/requests/{request_id}.json")
def get_request(
    request_id: int, _principal: QueryPrincipal, session: SessionDep, settings: SettingsDep
) -> list[dict[str, Any]]:
    """One request, as a one-element list (as the spec has it)."""
    repair = repairs_repo.get_repair(session, repair_id=request_id)
    return [_request(repair, ZoneInfo(settings.timezone))]


@router.post("/requests.json", status_code=201)
def create_request(
    principal: FormPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    service_code: Annotated[str, Form(max_length=40)],
    description: Annotated[str | None, Form(max_length=500)] = None,
    address_string: Annotated[str | None, Form(max_length=200)] = None,
    lat: Annotated[float | None, Form(ge=-90, le=90)] = None,
    long: Annotated[float | None, Form(ge=-180, le=180)] = None,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JSONResponse:
    """File a repair (form-encoded, as the spec says); other personal fields are not kept."""
    category = _category(service_code)
    place = _place(address_string, lat, long)
    fields = {"service_code": service_code, "description": description, "place": place}

    def create() -> Created:
        repair = repairs_repo.create_repair(
            session,
            category=category,
            description=description or "",
            location_text=place,
            channel="open311",
            actor=principal.name,
            now=clock.now(),
            settings=settings,
        )
        due = repair.first_response_due_at.astimezone(ZoneInfo(settings.timezone))
        notice = f"已收到，社区会在{due.month}月{due.day}日{due:%H:%M}前响应。"
        return Created(service_request_id=str(repair.id), service_notice=notice)

    stored = Idempotency(session, principal.name, idempotency_key).run(fields, create)
    return _as_list(stored)


def _as_list(response: JSONResponse) -> JSONResponse:
    """The idempotency helper answers with the object; GeoReport wants a list of it."""
    body = json.loads(bytes(response.body))
    headers = {k: v for k, v in response.headers.items() if k.lower() == "idempotent-replayed"}
    return JSONResponse([body], status_code=response.status_code, headers=headers)


def _category(code: str) -> RepairCategory:
    try:
        return RepairCategory(code.strip())
    except ValueError:
        raise Problem(
            400,
            "unknown-service-code",
            "没有这种服务类型，请使用 services.json 里的 service_code。",
        ) from None


def _categories(codes: str | None) -> list[RepairCategory]:
    return [_category(c) for c in (codes or "").split(",") if c.strip()]


def _ids(raw: str | None) -> list[int]:
    parts = [p.strip() for p in (raw or "").split(",") if p.strip()]
    if not all(p.isdigit() and 0 < int(p) <= repairs_repo.MAX_ID for p in parts):
        raise Problem(
            400, "bad-request-id", "service_request_id 应该是报修单编号，多个用逗号分开。"
        )
    return [int(p) for p in parts]


def _finished(status: str | None) -> bool | None:
    wanted = {s.strip() for s in (status or "").split(",") if s.strip()}
    if not wanted <= {"open", "closed"}:
        raise Problem(400, "bad-status", "status 只能是 open 或 closed。")
    if len(wanted) == 1:
        return wanted == {"closed"}
    return None


def _place(address: str | None, lat: float | None, long: float | None) -> str:
    if (lat is None) != (long is None):
        raise Problem(400, "bad-location", "lat 和 long 要一起提供。")
    text = (address or "").strip()
    if text:
        return text
    if lat is not None and long is not None:
        return f"{lat},{long}"
    raise Problem(400, "location-required", "请提供地址（address_string）或坐标（lat 和 long）。")


def _aware(moment: datetime | None, zone: ZoneInfo) -> datetime | None:
    """Dates without a time zone are local time."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=zone)


def _request(repair: Repair, zone: ZoneInfo) -> dict[str, Any]:
    def local(moment: datetime | None) -> str | None:
        return moment.astimezone(zone).isoformat() if moment is not None else None

    finished = repair.status in repairs_repo.DONE
    return {
        "service_request_id": str(repair.id),
        "status": "closed" if finished else "open",
        "status_notes": _status_notes(repair.events),
        "service_name": repairs_repo.CATEGORY_NAMES[repair.category],
        "service_code": repair.category.value,
        "description": repair.description,
        "agency_responsible": AGENCY,
        "service_notice": None,
        "requested_datetime": local(repair.created_at),
        "updated_datetime": local(repair.updated_at or repair.created_at),
        "expected_datetime": local(repair.closure_due_at),
        "address": _address(repair),
        "address_id": None,
        "zipcode": None,
        "lat": None,
        "long": None,
        "media_url": None,
    }


def _status_notes(events: Sequence[Any]) -> str | None:
    """The latest note staff or the reporter left (escalation notes are internal)."""
    for event in reversed(events):
        if event.note and event.kind != "escalate":
            return str(event.note)
    return None


def _address(repair: Repair) -> str | None:
    if repair.building is not None:
        return repairs_repo.public_place(repair)
    return repair.location_text
