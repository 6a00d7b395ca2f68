"""Repairs (报修) actions: the forms' validation, the questions, submitting, progress, rating.

Each test builds a rasa-sdk Tracker and a CollectingDispatcher, runs one action in
``asyncio.run`` and checks the returned events and messages. The records backend is an
``httpx.MockTransport`` that checks each request (path, JSON, Idempotency-Key) and answers
with bodies shaped like records/schemas/repairs.py; the shared client from ``get_client()``
is that mock (set for the running loop, as ``get_client`` expects).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import outbox as outbox_module
from actions import records_client
from actions import repairs as repairs_module
from actions.common import BACKEND_DOWN
from actions.outbox import Outbox
from actions.records_client import RecordsClient, RecordsSettings, form_idempotency_key
from actions.repairs import (
    NO_REPAIRS,
    NOT_RATED,
    NOT_SUBMITTED,
    NOTHING_TO_RATE,
    RATING_SORRY,
    RATING_THANKS,
    REPAIR_QUEUED,
    REPAIR_SLOTS,
    ActionAskRepairCategory,
    ActionAskRepairConfirm,
    ActionAskRepairDescription,
    ActionAskRepairLocation,
    ActionAskRepairRateConfirm,
    ActionAskRepairRating,
    ActionAskRepairUrgency,
    ActionRepairRateSubmit,
    ActionRepairStatus,
    ActionRepairSubmit,
    category_from_text,
    clean_description,
    due_words,
    repair_emergency,
    urgency_from_words,
)
from actions.repairs_forms import (
    SAY_BUILDING_TOO,
    SAY_CATEGORY_AGAIN,
    SAY_RATING,
    SAY_RIGHT_OR_NOT,
    SAY_URGENT_OR_NOT,
    ValidateRepairForm,
    ValidateRepairRateForm,
)

REPO = Path(__file__).resolve().parents[2]
DOMAIN = yaml.safe_load((REPO / "bot" / "domain" / "repairs.yml").read_text(encoding="utf-8"))
SENDER = "telegram:42"
HOME = "3号楼2单元501"
# 10:00 in Shanghai on a Monday.
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
STARTED = 1795399200.5  # when the form was activated (an event timestamp)
TRAPPED = "电梯里困人了"


# --- the mock records backend -----------------------------------------------------------


def problem(status: int, code: str, detail: str) -> httpx.Response:
    """A problem+json answer as the backend gives them."""
    body = {
        "type": f"https://linli.example/problems/{code}",
        "title": code.replace("-", " "),
        "status": status,
        "detail": detail,
    }
    return httpx.Response(status, json=body, headers={"content-type": "application/problem+json"})


def repair_json(
    repair_id: int = 12,
    *,
    status: str = "submitted",
    category: str = "water",
    urgency: str = "normal",
    rating: int | None = None,
) -> dict[str, Any]:
    """A RepairDetail as the backend serialises it."""
    names = {"water": "水管", "lift": "电梯", "lighting": "照明灯", "door_access": "门禁"}
    status_names = {
        "submitted": "已提交",
        "in_progress": "维修中",
        "resolved": "已修好",
        "closed": "已办结",
    }
    hours = 12 if urgency == "urgent" else 24
    return {
        "id": repair_id,
        "category": category,
        "category_name": names[category],
        "description": "厨房水管漏水了",
        "urgency": urgency,
        "status": status,
        "status_name": status_names[status],
        "building_id": 3,
        "building_number": 3,
        "entrance": 2,
        "room": "501",
        "location_text": None,
        "place": "3号楼2单元501",
        "reporter_id": 7,
        "channel": "telegram",
        "assignee_id": None,
        "escalation_tier": "none",
        "escalated_at": None,
        "first_response_due_at": (T0 + timedelta(hours=hours)).isoformat(),
        "closure_due_at": (T0 + timedelta(hours=hours * 2)).isoformat(),
        "acknowledged_at": None,
        "resolved_at": None,
        "closed_at": None,
        "created_at": T0.isoformat(),
        "updated_at": T0.isoformat(),
        "rating": rating,
        "rating_comment": None,
        "events": [],
    }


BUILDINGS = [
    {"id": 1, "number": 3, "name": "3号楼", "entrances": 3, "grid_id": 1},
    {"id": 2, "number": 8, "name": "8号楼", "entrances": 2, "grid_id": 1},
]

Handler = Callable[[httpx.Request], httpx.Response]


class Backend:
    """Routes requests to per-test handlers and remembers what was sent."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Handler] = {
            ("GET", "/api/v1/community/buildings"): lambda _r: httpx.Response(200, json=BUILDINGS)
        }
        self.requests: list[httpx.Request] = []

    def on(self, method: str, path: str, handler: Handler) -> None:
        self.routes[(method, path)] = handler

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("authorization") != "Bearer test-token":
            return problem(401, "http-401", "请先登录或提供有效的服务令牌。")
        handler = self.routes.get((request.method, request.url.path))
        if handler is None:
            return problem(404, "not-found", "没有找到相关记录。")
        return handler(request)

    def sent(self, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path == path]


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Backend:
    """The mock backend behind get_client(), a fresh outbox, and a fixed "now"."""
    monkeypatch.setattr(outbox_module, "_default_outbox", Outbox(tmp_path / "outbox.db"))
    monkeypatch.setattr(repairs_module, "now_utc", lambda: T0)
    return Backend()


def run_action(
    backend: Backend, action: Action, tracker: Tracker, domain: dict[str, Any] | None = None
) -> tuple[list[dict[str, Any]], CollectingDispatcher]:
    """Run one action against the mock backend; its events and the dispatcher."""
    dispatcher = CollectingDispatcher()

    async def go() -> list[dict[str, Any]]:
        async def no_sleep(_seconds: float) -> None:
            return None

        client = RecordsClient(
            RecordsSettings(base_url="http://records.test", token="test-token", attempts=2),
            transport=httpx.MockTransport(backend.handle),
            sleep=no_sleep,
        )
        # get_client() keeps one client per event loop: this loop's client is the mock.
        records_client._default_client = client
        records_client._default_loop = asyncio.get_running_loop()
        try:
            return await action.run(dispatcher, tracker, domain or DOMAIN)
        finally:
            records_client._default_client = None
            records_client._default_loop = None
            await client.aclose()

    return asyncio.run(go()), dispatcher


def json_of(request: httpx.Request) -> Any:
    return json.loads(request.content)


# --- trackers ---------------------------------------------------------------------------


def make_tracker(
    *,
    text: str = "",
    intent: str = "report_repair",
    entities: dict[str, str] | None = None,
    slots: dict[str, Any] | None = None,
    form: str | None = "repair_form",
    requested: str | None = None,
    activating: bool = False,
    candidates: dict[str, Any] | None = None,
    prefilled: dict[str, Any] | None = None,
    resumed_by: str | None = None,
    sender: str = SENDER,
) -> Tracker:
    """A tracker as Rasa sends it: the latest message, slots, and the form's events.

    ``candidates`` are the slot values extracted from the latest message, appended after the
    form's ActionExecuted as Rasa does before calling a validation action; ``activating``
    puts the form's activation after the latest user message. ``prefilled`` are values
    already in the slots that Rasa passes along as the form starts, ``resumed_by`` an
    action that ran after the latest user message (and restarted the form).
    """
    latest = {
        "text": text,
        "intent": {"name": intent, "confidence": 0.98},
        "entities": [
            {"entity": name, "value": value, "start": 0, "end": 1}
            for name, value in (entities or {}).items()
        ],
        "message_id": "m-1",
    }
    all_slots = {"requested_slot": requested, **(slots or {})}
    events: list[dict[str, Any]] = [
        {"event": "action", "name": "action_listen", "timestamp": STARTED - 10},
    ]
    if form and not activating:
        events.append({"event": "active_loop", "name": form, "timestamp": STARTED})
    events.append({"event": "user", "text": text, "parse_data": latest, "timestamp": STARTED + 5})
    if resumed_by:
        events.append({"event": "action", "name": resumed_by, "timestamp": STARTED + 5.5})
    if form and activating:
        events.append({"event": "active_loop", "name": form, "timestamp": STARTED})
        # What action_extract_slots filled from this message, before the form ran.
        for name, value in (candidates or {}).items():
            events.append({"event": "slot", "name": name, "value": value})
    if form:
        events.append({"event": "slot", "name": "requested_slot", "value": requested})
        events.append({"event": "action", "name": form, "timestamp": STARTED + 6})
    for name, value in {**(prefilled or {}), **(candidates or {})}.items():
        events.append({"event": "slot", "name": name, "value": value})
        all_slots[name] = value
    return Tracker(
        sender_id=sender,
        slots=all_slots,
        latest_message=latest,
        events=events,
        paused=False,
        followup_action=None,
        active_loop={"name": form} if form else {},
        latest_action_name=form or "action_listen",
    )


def slot_events(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The slots set by the events, the last value of each."""
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def texts(dispatcher: CollectingDispatcher) -> list[str]:
    return [m.get("text") or "" for m in dispatcher.messages]


def validate(
    backend: Backend, tracker: Tracker, *, rate: bool = False
) -> tuple[dict[str, Any], list[dict[str, Any]], CollectingDispatcher]:
    action = ValidateRepairRateForm() if rate else ValidateRepairForm()
    events, dispatcher = run_action(backend, action, tracker)
    return slot_events(events), events, dispatcher


# --- understanding words ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("水", "water"),
        ("电", "electricity"),
        ("电梯", "lift"),
        ("门禁", "door_access"),
        ("照明", "lighting"),
        ("下水道", "drain"),
        ("燃气灶", "gas_appliance"),
        ("公共设施", "public_facility"),
        ("其他", "other"),
        ("厨房水管漏水了", "water"),
        ("电梯门关不上", "lift"),
        ("燃气热水器打不着", "gas_appliance"),
        ("楼道里声控灯不亮", "lighting"),
        ("灯坏了", "lighting"),
        ("门口那个东西坏了", None),  # one-character words do not guess in a sentence
        ("我要报修", None),
    ],
)
def test_category_from_text(text: str, category: str | None) -> None:
    assert category_from_text(text) == category


@pytest.mark.parametrize(
    ("text", "emergency"),
    [
        ("家里一股煤气味", True),
        ("燃气泄漏了", True),
        ("燃气灶漏气了", True),
        ("楼道里冒烟了", True),
        ("厨房着火了", True),
        (TRAPPED, True),
        ("燃气灶打不着火", False),
        ("煤气灶坏了", False),
        ("燃气表不走了", False),
        ("老人上楼很困难", False),
        ("门禁坏了，被困在外面进不去", False),
        ("水管漏了", False),
    ],
)
def test_repair_emergency_words(text: str, emergency: bool) -> None:
    assert repair_emergency(text) is emergency


def test_trapped_counts_in_a_lift_report_without_the_word_lift() -> None:
    assert repair_emergency("里面困着人", lift=True)
    assert not repair_emergency("里面困着人")


@pytest.mark.parametrize(
    ("text", "urgency"),
    [
        ("很急", "urgent"),
        ("马上来", "urgent"),
        ("漏得厉害", "urgent"),
        ("水喷一地", "urgent"),
        ("不急", "normal"),
        ("不着急，有空再来", "normal"),
        ("水管漏了", None),
    ],
)
def test_urgency_from_words(text: str, urgency: str | None) -> None:
    assert urgency_from_words(text) == urgency


def test_description_drops_the_request_words_and_a_leading_flat() -> None:
    assert clean_description("我要报修 三号楼二单元五零二 水龙头坏了") == "水龙头坏了"
    assert clean_description("3栋2单元501水管漏了") == "水管漏了"
    assert clean_description("两个水龙头坏了") == "两个水龙头坏了"
    assert clean_description("抱修 燃气灶打不着火") == "燃气灶打不着火"


def test_due_time_words() -> None:
    assert due_words(T0 + timedelta(hours=24), T0) == "明天上午10点"
    assert due_words(T0 + timedelta(hours=12), T0) == "今天晚上10点"
    assert due_words(T0 + timedelta(hours=5, minutes=30), T0) == "今天下午3点半"
    assert due_words(T0 + timedelta(hours=2), T0) == "今天中午12点"
    assert due_words(T0 + timedelta(days=3, minutes=5), T0) == "11月26日上午10点5分"


# --- questions ---------------------------------------------------------------------------


def test_category_is_asked_as_a_choice_of_nine(backend: Backend) -> None:
    _, dispatcher = run_action(backend, ActionAskRepairCategory(), make_tracker())
    [message] = dispatcher.messages
    assert message["text"] == "请问是什么坏了？"
    options = message["expect"]["options"]
    assert message["expect"]["type"] == "choice"
    assert [o["label"] for o in options] == [
        "水", "电", "电梯", "门禁", "照明", "下水道", "燃气灶", "公共设施", "其他",
    ]  # fmt: skip
    assert options[0] == {
        "key": "1",
        "label": "水",
        "payload": '/report_repair{"repair_category":"water"}',
    }
    assert len(message["buttons"]) == 9


def test_location_offers_the_home_first(backend: Backend) -> None:
    tracker = make_tracker(slots={"home_address": HOME})
    _, dispatcher = run_action(backend, ActionAskRepairLocation(), tracker)
    [message] = dispatcher.messages
    assert message["text"] == f"是在您家（{HOME}）吗？"
    assert message["expect"]["type"] == "yes_no"
    assert [b["payload"] for b in message["buttons"]] == ["/affirm", "/deny"]


def test_location_is_asked_openly_for_strangers_and_after_a_no(backend: Backend) -> None:
    _, stranger = run_action(backend, ActionAskRepairLocation(), make_tracker())
    assert stranger.messages[0]["expect"] == {"type": "free_text"}
    assert "几号楼几单元几室" in stranger.messages[0]["text"]
    tracker = make_tracker(slots={"home_address": HOME, "repair_at_home": False})
    _, after_no = run_action(backend, ActionAskRepairLocation(), tracker)
    assert after_no.messages[0]["text"].startswith("那是在哪里？")
    assert after_no.messages[0]["expect"] == {"type": "free_text"}


def test_description_and_urgency_questions(backend: Backend) -> None:
    _, description = run_action(backend, ActionAskRepairDescription(), make_tracker())
    assert description.messages[0]["expect"] == {"type": "free_text"}
    _, urgency = run_action(backend, ActionAskRepairUrgency(), make_tracker())
    assert urgency.messages[0]["text"] == "急不急？"
    assert urgency.messages[0]["expect"]["type"] == "yes_no"


def test_read_back_before_sending(backend: Backend) -> None:
    slots = {
        "repair_category": "water",
        "repair_location": HOME,
        "repair_description": "厨房水管漏水了",
        "repair_urgency": "urgent",
    }
    _, dispatcher = run_action(backend, ActionAskRepairConfirm(), make_tracker(slots=slots))
    [message] = dispatcher.messages
    assert message["text"] == "我帮您记下了：3号楼2单元501，水管，厨房水管漏水了，要尽快修。对吗？"
    assert message["expect"]["type"] == "yes_no"


# --- repair_form: the first message --------------------------------------------------------


def test_first_message_that_describes_the_problem_is_not_asked_again(backend: Backend) -> None:
    tracker = make_tracker(
        text="我家厨房水管漏水了，很急",
        entities={"repair_category": "water"},
        activating=True,
        candidates={"repair_category": "water"},
    )
    slots, _, dispatcher = validate(backend, tracker)
    assert slots["repair_category"] == "water"
    assert slots["repair_description"] == "我家厨房水管漏水了，很急"
    assert slots["repair_urgency"] == "urgent"
    assert "repair_location" not in slots
    assert dispatcher.messages == []


def test_first_message_about_my_home_takes_the_registered_address(backend: Backend) -> None:
    tracker = make_tracker(
        text="我家厨房水管漏水了",
        entities={"repair_category": "water"},
        slots={"home_address": HOME},
        activating=True,
        candidates={"repair_category": "water"},
    )
    slots, _, dispatcher = validate(backend, tracker)
    assert slots["repair_location"] == HOME
    assert slots["repair_at_home"] is True
    assert (slots["repair_building"], slots["repair_unit"], slots["repair_room"]) == (3, 2, "501")
    assert slots["repair_description"] == "我家厨房水管漏水了"
    assert dispatcher.messages == []


def test_first_message_with_the_flat_fills_the_location(backend: Backend) -> None:
    tracker = make_tracker(
        text="3栋2单元501水管漏了",
        entities={"building": "3栋", "unit": "2单元", "room": "501", "repair_category": "water"},
        activating=True,
        candidates={"repair_category": "water"},
    )
    slots, _, dispatcher = validate(backend, tracker)
    assert slots["repair_location"] == "3号楼2单元501"
    assert (slots["repair_building"], slots["repair_unit"], slots["repair_room"]) == (3, 2, "501")
    assert slots["repair_place"] is None
    assert slots["repair_description"] == "水管漏了"
    assert dispatcher.messages == []
    assert backend.sent("/api/v1/community/buildings")


def test_bare_request_fills_nothing(backend: Backend) -> None:
    slots, _, dispatcher = validate(backend, make_tracker(text="我要报修", activating=True))
    assert slots.get("repair_description") is None
    assert slots.get("repair_category") is None
    assert dispatcher.messages == []


OLD_REPORT = {
    "repair_category": "lift",
    "repair_location": "8号楼1单元",
    "repair_description": "电梯不动了",
    "repair_urgency": "urgent",
}


def test_values_left_by_an_interrupted_report_are_dropped(backend: Backend) -> None:
    # An emergency stopped the last report; its values are still in the slots.
    tracker = make_tracker(
        text="我要报修",
        slots={"repair_building": 8, "repair_unit": 1, "repair_at_home": False},
        activating=True,
        prefilled=OLD_REPORT,
    )
    slots, _, dispatcher = validate(backend, tracker)
    for slot in (*OLD_REPORT, "repair_building", "repair_unit", "repair_at_home"):
        assert slots[slot] is None, slot
    assert dispatcher.messages == []


def test_fresh_values_replace_those_of_an_interrupted_report(backend: Backend) -> None:
    tracker = make_tracker(
        text="楼道灯不亮了",
        entities={"repair_category": "lighting"},
        activating=True,
        prefilled=OLD_REPORT,
        candidates={"repair_category": "lighting"},
    )
    slots, _, _ = validate(backend, tracker)
    assert slots["repair_category"] == "lighting"
    assert slots["repair_description"] == "楼道灯不亮了"
    assert slots["repair_location"] is None
    assert slots["repair_urgency"] is None


def test_restart_by_the_submit_action_keeps_the_report(backend: Backend) -> None:
    kept = {k: v for k, v in OLD_REPORT.items() if k != "repair_location"}
    tracker = make_tracker(
        text="对",
        intent="affirm",
        activating=True,
        resumed_by="action_repair_submit",
        prefilled=kept,
        slots={"repair_at_home": False},
    )
    slots, _, _ = validate(backend, tracker)
    assert {k: slots[k] for k in kept} == kept
    assert "repair_at_home" not in slots


def test_gas_appliance_is_a_repair_not_an_emergency(backend: Backend) -> None:
    tracker = make_tracker(
        text="燃气灶打不着火",
        entities={"repair_category": "gas_appliance"},
        activating=True,
        candidates={"repair_category": "gas_appliance"},
    )
    slots, events, _ = validate(backend, tracker)
    assert slots["repair_category"] == "gas_appliance"
    assert slots["repair_description"] == "燃气灶打不着火"
    assert not any(e.get("event") == "followup" for e in events)


# --- repair_form: answers ------------------------------------------------------------------


def test_category_by_number_or_words(backend: Backend) -> None:
    two = make_tracker(text="2", requested="repair_category", candidates={"repair_category": "2"})
    assert validate(backend, two)[0]["repair_category"] == "electricity"
    spoken = make_tracker(
        text="第八个",
        intent="nlu_fallback",
        entities={"choice": "8"},
        requested="repair_category",
        candidates={"repair_category": "第八个"},
    )
    assert validate(backend, spoken)[0]["repair_category"] == "public_facility"
    words = make_tracker(
        text="楼道灯", requested="repair_category", candidates={"repair_category": "楼道灯"}
    )
    assert validate(backend, words)[0]["repair_category"] == "lighting"


def test_category_not_understood_is_asked_again(backend: Backend) -> None:
    tracker = make_tracker(
        text="嗯",
        intent="affirm",
        requested="repair_category",
        candidates={"repair_category": "嗯"},
    )
    slots, _, dispatcher = validate(backend, tracker)
    assert slots["repair_category"] is None
    assert texts(dispatcher) == [SAY_CATEGORY_AGAIN]


def test_yes_to_the_home_takes_the_registered_address(backend: Backend) -> None:
    tracker = make_tracker(
        text="/affirm",
        intent="affirm",
        slots={"home_address": HOME},
        requested="repair_location",
        candidates={"repair_location": "/affirm"},
    )
    slots, _, dispatcher = validate(backend, tracker)
    assert slots["repair_location"] == HOME
    assert slots["repair_at_home"] is True
    assert (slots["repair_building"], slots["repair_unit"], slots["repair_room"]) == (3, 2, "501")
    assert dispatcher.messages == []


def test_no_to_the_home_asks_where(backend: Backend) -> None:
    tracker = make_tracker(
        text="不是",
        intent="deny",
        slots={"home_address": HOME},
        requested="repair_location",
        candidates={"repair_location": "不是"},
    )
    slots, _, dispatcher = validate(backend, tracker)
    assert slots["repair_location"] is None
    assert slots["repair_at_home"] is False
    assert dispatcher.messages == []  # the next question says "那是在哪里？"


def test_no_to_the_home_with_the_place_in_the_same_breath(backend: Backend) -> None:
    tracker = make_tracker(
        text="不是，在小区东门",
        intent="deny",
        slots={"home_address": HOME},
        requested="repair_location",
        candidates={"repair_location": "不是，在小区东门"},
    )
    slots, _, dispatcher = validate(backend, tracker)
    assert slots["repair_location"] == "小区东门"
    assert slots["repair_place"] == "小区东门"
    assert slots["repair_at_home"] is False
    assert dispatcher.messages == []


def test_unclear_answer_to_the_home_question(backend: Backend) -> None:
    mumble = make_tracker(
        text="呃呃",
        intent="nlu_fallback",
        slots={"home_address": HOME},
        requested="repair_location",
        candidates={"repair_location": "呃呃"},
    )
    slots, _, dispatcher = validate(backend, mumble)
    assert slots["repair_location"] is None
    assert texts(dispatcher) == ["请说“是”或者“不是”。"]
    place = make_tracker(
        text="楼下车棚",
        intent="nlu_fallback",
        slots={"home_address": HOME},
        requested="repair_location",
        candidates={"repair_location": "楼下车棚"},
    )
    slots, _, dispatcher = validate(backend, place)
    assert slots["repair_location"] == "楼下车棚"
    assert dispatcher.messages == []


def test_free_text_place_without_a_building(backend: Backend) -> None:
    tracker = make_tracker(
        text="在小区东门",
        intent="nlu_fallback",
        requested="repair_location",
        candidates={"repair_location": "在小区东门"},
    )
    slots, _, dispatcher = validate(backend, tracker)
    assert slots["repair_location"] == "小区东门"
    assert slots["repair_place"] == "小区东门"
    assert slots["repair_building"] is None
    assert dispatcher.messages == []


def test_flat_in_chinese_numerals_and_a_spot(backend: Backend) -> None:
    flat = make_tracker(
        text="八号楼一单元",
        requested="repair_location",
        candidates={"repair_location": "八号楼一单元"},
    )
    slots = validate(backend, flat)[0]
    assert (slots["repair_location"], slots["repair_building"], slots["repair_unit"]) == (
        "8号楼1单元",
        8,
        1,
    )
    spot = make_tracker(
        text="3号楼门口", requested="repair_location", candidates={"repair_location": "3号楼门口"}
    )
    slots = validate(backend, spot)[0]
    assert (slots["repair_building"], slots["repair_place"]) == (3, "3号楼门口")


def test_unknown_building_or_unit_is_asked_again(backend: Backend) -> None:
    no_building = make_tracker(
        text="99栋1单元101",
        requested="repair_location",
        candidates={"repair_location": "99栋1单元101"},
    )
    slots, _, dispatcher = validate(backend, no_building)
    assert slots["repair_location"] is None
    assert texts(dispatcher) == ["小区里没有99号楼，请再说一遍楼号。"]
    no_unit = make_tracker(
        text="8栋5单元", requested="repair_location", candidates={"repair_location": "8栋5单元"}
    )
    slots, _, dispatcher = validate(backend, no_unit)
    assert slots["repair_location"] is None
    assert texts(dispatcher) == ["8号楼没有5单元，请再说一遍。"]


def test_building_check_is_skipped_when_the_backend_is_down(backend: Backend) -> None:
    backend.on("GET", "/api/v1/community/buildings", lambda _r: problem(503, "down", "维护中"))
    tracker = make_tracker(
        text="99栋1单元101",
        requested="repair_location",
        candidates={"repair_location": "99栋1单元101"},
    )
    slots, _, dispatcher = validate(backend, tracker)
    assert slots["repair_building"] == 99  # the backend checks it again on submit
    assert dispatcher.messages == []


def test_room_without_building_is_asked_again(backend: Backend) -> None:
    tracker = make_tracker(
        text="501",
        entities={"room": "501"},
        requested="repair_location",
        candidates={"repair_location": "501"},
    )
    slots, _, dispatcher = validate(backend, tracker)
    assert slots["repair_location"] is None
    assert texts(dispatcher) == [SAY_BUILDING_TOO]


@pytest.mark.parametrize("requested", ["repair_description", "repair_category"])
def test_emergency_words_in_an_answer_go_to_the_emergency_flow(
    backend: Backend, requested: str
) -> None:
    for text in ("厨房一股煤气味", TRAPPED, "楼道冒烟了"):
        tracker = make_tracker(
            text=text,
            intent="nlu_fallback",
            slots={"repair_category": "other"},
            requested=requested,
            candidates={requested: text},
        )
        _, events, dispatcher = validate(backend, tracker)
        assert events[:2] == [
            {"event": "active_loop", "name": None, "timestamp": None},
            {"event": "slot", "name": "requested_slot", "value": None, "timestamp": None},
        ]
        assert events[-1] == {"event": "followup", "name": "action_emergency", "timestamp": None}
        assert slot_events(events)["repair_category"] is None  # nothing left half-filled
        assert dispatcher.messages == []


def test_description_answer(backend: Backend) -> None:
    tracker = make_tracker(
        text="水漫了一地，赶紧来",
        intent="report_repair",
        slots={"repair_category": "water"},
        requested="repair_description",
        candidates={"repair_description": "水漫了一地，赶紧来"},
    )
    slots, _, _ = validate(backend, tracker)
    assert slots["repair_description"] == "水漫了一地，赶紧来"
    assert slots["repair_urgency"] == "urgent"
    yes = make_tracker(
        text="/affirm",
        intent="affirm",
        requested="repair_description",
        candidates={"repair_description": "/affirm"},
    )
    slots, _, dispatcher = validate(backend, yes)
    assert slots["repair_description"] is None
    assert len(dispatcher.messages) == 1


@pytest.mark.parametrize(
    ("text", "intent", "urgency"),
    [
        ("/affirm", "affirm", "urgent"),
        ("/deny", "deny", "normal"),
        ("挺急的", "nlu_fallback", "urgent"),
        ("不急", "deny", "normal"),
        ("没那么急", "deny", "normal"),
        ("不知道", "deny", None),
    ],
)
def test_urgency_answer(backend: Backend, text: str, intent: str, urgency: str | None) -> None:
    tracker = make_tracker(
        text=text, intent=intent, requested="repair_urgency", candidates={"repair_urgency": text}
    )
    slots, _, dispatcher = validate(backend, tracker)
    assert slots["repair_urgency"] == urgency
    assert texts(dispatcher) == ([] if urgency else [SAY_URGENT_OR_NOT])


@pytest.mark.parametrize(
    ("text", "intent", "answer"),
    [
        ("/affirm", "affirm", True),
        ("没毛病", "affirm", True),
        ("不对", "deny", False),
        ("对的", "nlu_fallback", True),
        ("我再想想", "nlu_fallback", None),
    ],
)
def test_read_back_answer(backend: Backend, text: str, intent: str, answer: bool | None) -> None:
    tracker = make_tracker(
        text=text, intent=intent, requested="repair_confirm", candidates={"repair_confirm": text}
    )
    slots, _, dispatcher = validate(backend, tracker)
    assert slots["repair_confirm"] is answer
    assert texts(dispatcher) == ([] if answer is not None else [SAY_RIGHT_OR_NOT])


# --- submitting a report ---------------------------------------------------------------


FILLED = {
    "repair_category": "water",
    "repair_location": HOME,
    "repair_description": "厨房水管漏水了",
    "repair_urgency": "normal",
    "repair_confirm": True,
    "repair_at_home": True,
    "repair_building": 3,
    "repair_unit": 2,
    "repair_room": "501",
    "repair_place": None,
}


def submitted_tracker(**changes: Any) -> Tracker:
    return make_tracker(text="对", intent="affirm", slots={**FILLED, **changes})


def expected_key(slots: dict[str, Any]) -> str:
    return form_idempotency_key(
        SENDER, "repair_form", {s: slots.get(s) for s in REPAIR_SLOTS}, scope=str(STARTED)
    )


def test_submit_sends_the_report_and_says_when_staff_will_call(backend: Backend) -> None:
    backend.on("POST", "/api/v1/repairs", lambda _r: httpx.Response(201, json=repair_json(12)))
    events, dispatcher = run_action(backend, ActionRepairSubmit(), submitted_tracker())
    [request] = backend.sent("/api/v1/repairs")
    assert json_of(request) == {
        "category": "water",
        "description": "厨房水管漏水了",
        "urgency": "normal",
        "identity": SENDER,
        "building": 3,
        "entrance": 2,
        "room": "501",
        "channel": "telegram",
    }
    assert request.headers["Idempotency-Key"] == expected_key(FILLED)
    assert texts(dispatcher) == ["已经帮您报修了，编号12。工作人员会在明天上午10点前联系您。"]
    assert slot_events(events) == dict.fromkeys(REPAIR_SLOTS)


def test_urgent_free_text_report_from_a_phone(backend: Backend) -> None:
    def created(request: httpx.Request) -> httpx.Response:
        body = json_of(request)
        assert body["location_text"] == "小区东门"
        assert "building" not in body
        assert body["channel"] == "phone"
        return httpx.Response(201, json=repair_json(13, urgency="urgent"))

    backend.on("POST", "/api/v1/repairs", created)
    tracker = make_tracker(
        text="对",
        intent="affirm",
        sender="phone:+8613800000001",
        slots={
            **FILLED,
            "repair_urgency": "urgent",
            "repair_location": "小区东门",
            "repair_place": "小区东门",
            "repair_building": None,
            "repair_unit": None,
            "repair_room": None,
        },
    )
    _, dispatcher = run_action(backend, ActionRepairSubmit(), tracker)
    assert texts(dispatcher) == ["已经帮您报修了，编号13。工作人员会在今天晚上10点前联系您。"]


def test_the_same_report_sent_again_uses_the_same_key(backend: Backend) -> None:
    backend.on("POST", "/api/v1/repairs", lambda _r: httpx.Response(201, json=repair_json(12)))
    run_action(backend, ActionRepairSubmit(), submitted_tracker())
    run_action(backend, ActionRepairSubmit(), submitted_tracker())
    first, second = backend.sent("/api/v1/repairs")
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    other = submitted_tracker(repair_description="马桶堵了")
    run_action(backend, ActionRepairSubmit(), other)
    assert (
        backend.sent("/api/v1/repairs")[2].headers["Idempotency-Key"]
        != (first.headers["Idempotency-Key"])
    )


def test_report_is_queued_when_the_backend_is_down(backend: Backend) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    backend.on("POST", "/api/v1/repairs", down)
    events, dispatcher = run_action(backend, ActionRepairSubmit(), submitted_tracker())
    assert texts(dispatcher) == [REPAIR_QUEUED]
    [queued] = outbox_module.get_outbox().pending()
    assert queued.path == "/api/v1/repairs"
    assert queued.idempotency_key == expected_key(FILLED)
    assert queued.body["description"] == "厨房水管漏水了"
    assert slot_events(events) == dict.fromkeys(REPAIR_SLOTS)


def test_nothing_is_claimed_when_the_report_cannot_even_be_stored(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    def broken(*_args: Any, **_kwargs: Any) -> int:
        raise sqlite3.OperationalError("disk I/O error")

    backend.on("POST", "/api/v1/repairs", down)
    monkeypatch.setattr(Outbox, "enqueue", broken)
    _, dispatcher = run_action(backend, ActionRepairSubmit(), submitted_tracker())
    assert texts(dispatcher) == [BACKEND_DOWN]


def test_unknown_building_refused_on_submit_asks_where_again(backend: Backend) -> None:
    detail = "小区里没有9号楼，请核对楼号。"
    backend.on("POST", "/api/v1/repairs", lambda _r: problem(422, "unknown-building", detail))
    events, dispatcher = run_action(backend, ActionRepairSubmit(), submitted_tracker())
    assert texts(dispatcher) == [detail]
    slots = slot_events(events)
    assert slots["repair_location"] is None
    assert slots["repair_confirm"] is None
    assert slots["repair_at_home"] is False
    assert "repair_description" not in slots  # what is broken is kept
    assert events[-1] == {"event": "followup", "name": "repair_form", "timestamp": None}


def test_other_refusal_is_said_and_the_form_reset(backend: Backend) -> None:
    detail = "请说一说是什么坏了。"
    backend.on("POST", "/api/v1/repairs", lambda _r: problem(422, "description-required", detail))
    events, dispatcher = run_action(backend, ActionRepairSubmit(), submitted_tracker())
    assert texts(dispatcher) == [detail]
    assert slot_events(events) == dict.fromkeys(REPAIR_SLOTS)
    assert not any(e.get("event") == "followup" for e in events)


def test_no_at_the_read_back_sends_nothing(backend: Backend) -> None:
    events, dispatcher = run_action(
        backend, ActionRepairSubmit(), submitted_tracker(repair_confirm=False)
    )
    assert texts(dispatcher) == [NOT_SUBMITTED]
    assert backend.requests == []
    assert slot_events(events) == dict.fromkeys(REPAIR_SLOTS)


def test_stopped_form_sends_nothing_and_says_nothing(backend: Backend) -> None:
    tracker = make_tracker(text="救命", intent="emergency", slots={"repair_category": "water"})
    events, dispatcher = run_action(backend, ActionRepairSubmit(), tracker)
    assert dispatcher.messages == []
    assert backend.requests == []
    assert slot_events(events) == dict.fromkeys(REPAIR_SLOTS)


# --- progress ----------------------------------------------------------------------------


def test_status_says_the_latest_two(backend: Backend) -> None:
    def mine(request: httpx.Request) -> httpx.Response:
        assert json_of(request) == {"identity": SENDER, "limit": 3}
        return httpx.Response(
            200,
            json=[
                repair_json(12, status="in_progress"),
                repair_json(9, status="resolved", category="lift"),
                repair_json(5, status="closed", category="lighting"),
            ],
        )

    backend.on("POST", "/api/v1/repairs/mine", mine)
    _, dispatcher = run_action(backend, ActionRepairStatus(), make_tracker(form=None))
    assert texts(dispatcher) == ["您最近的报修：编号12，水管，正在维修；编号9，电梯，已修好。"]


def test_status_of_a_resolved_repair_invites_a_rating(backend: Backend) -> None:
    backend.on(
        "POST",
        "/api/v1/repairs/mine",
        lambda _r: httpx.Response(200, json=[repair_json(9, status="resolved", category="lift")]),
    )
    _, dispatcher = run_action(backend, ActionRepairStatus(), make_tracker(form=None))
    [text] = texts(dispatcher)
    assert text.startswith("您最近的报修：编号9，电梯，已修好。")
    assert "满意" in text


def test_status_with_no_repairs(backend: Backend) -> None:
    backend.on("POST", "/api/v1/repairs/mine", lambda _r: httpx.Response(200, json=[]))
    _, dispatcher = run_action(backend, ActionRepairStatus(), make_tracker(form=None))
    assert texts(dispatcher) == [NO_REPAIRS]


def test_status_when_the_backend_is_down(backend: Backend) -> None:
    backend.on("POST", "/api/v1/repairs/mine", lambda _r: problem(503, "down", "维护中"))
    _, dispatcher = run_action(backend, ActionRepairStatus(), make_tracker(form=None))
    assert texts(dispatcher) == [BACKEND_DOWN]


# --- rating ------------------------------------------------------------------------------


def mine_answer(*repairs: dict[str, Any]) -> Handler:
    def answer(request: httpx.Request) -> httpx.Response:
        assert json_of(request)["identity"] == SENDER
        return httpx.Response(200, json=list(repairs))

    return answer


def test_rating_form_finds_the_latest_finished_repair(backend: Backend) -> None:
    backend.on(
        "POST",
        "/api/v1/repairs/mine",
        mine_answer(
            repair_json(14, status="in_progress"),
            repair_json(12, status="resolved"),
            repair_json(9, status="closed", rating=5),
        ),
    )
    tracker = make_tracker(
        text="满意",
        intent="rate_service",
        entities={"rating": "satisfied"},
        form="repair_rate_form",
        activating=True,
        candidates={"repair_rating": "satisfied"},
    )
    slots, _, dispatcher = validate(backend, tracker, rate=True)
    assert slots["repair_rate_repair"] == 12
    assert slots["repair_rate_label"] == "水管"
    assert slots["repair_rating"] == 5
    assert slots["repair_rate_comment"] is None
    assert dispatcher.messages == []


def test_rating_form_looks_again_after_an_interrupted_rating(backend: Backend) -> None:
    backend.on("POST", "/api/v1/repairs/mine", mine_answer(repair_json(15, status="resolved")))
    tracker = make_tracker(
        text="我要评价维修服务",
        intent="rate_service",
        form="repair_rate_form",
        activating=True,
        prefilled={"repair_rating": 4},
        slots={"repair_rate_repair": 12, "repair_rate_label": "水管"},
    )
    slots, _, _ = validate(backend, tracker, rate=True)
    assert slots["repair_rate_repair"] == 15
    assert slots["repair_rating"] is None


def test_rating_form_with_nothing_to_rate_stops(backend: Backend) -> None:
    backend.on(
        "POST",
        "/api/v1/repairs/mine",
        mine_answer(
            repair_json(14, status="in_progress"), repair_json(9, status="closed", rating=4)
        ),
    )
    tracker = make_tracker(
        text="我要评价维修服务", intent="rate_service", form="repair_rate_form", activating=True
    )
    slots, events, dispatcher = validate(backend, tracker, rate=True)
    assert texts(dispatcher) == [NOTHING_TO_RATE]
    assert events[0] == {"event": "active_loop", "name": None, "timestamp": None}
    assert slots["requested_slot"] is None
    assert slots["repair_rating"] is None


def test_rating_form_when_the_backend_is_down(backend: Backend) -> None:
    backend.on("POST", "/api/v1/repairs/mine", lambda _r: problem(502, "down", "维护中"))
    tracker = make_tracker(
        text="我要评价", intent="rate_service", form="repair_rate_form", activating=True
    )
    _, events, dispatcher = validate(backend, tracker, rate=True)
    assert texts(dispatcher) == [BACKEND_DOWN]
    assert events[0] == {"event": "active_loop", "name": None, "timestamp": None}


@pytest.mark.parametrize(
    ("text", "entity", "score", "comment"),
    [
        ("4分", None, 4, None),
        ("五颗星", "5", 5, None),
        ("一般般吧", "3", 3, None),
        ("修完还是漏 不满意", "unsatisfied", 1, "修完还是漏 不满意"),
        ("三", None, 3, None),
    ],
)
def test_rating_answers(
    backend: Backend, text: str, entity: str | None, score: int, comment: str | None
) -> None:
    tracker = make_tracker(
        text=text,
        intent="rate_service",
        entities={"rating": entity} if entity else None,
        form="repair_rate_form",
        slots={"repair_rate_repair": 12, "repair_rate_label": "水管"},
        requested="repair_rating",
        candidates={"repair_rating": entity or text},
    )
    slots, _, dispatcher = validate(backend, tracker, rate=True)
    assert slots["repair_rating"] == score
    assert slots["repair_rate_comment"] == comment
    assert dispatcher.messages == []
    assert backend.requests == []  # the repair was found when the form started


def test_rating_not_understood_is_asked_again(backend: Backend) -> None:
    tracker = make_tracker(
        text="嗯",
        intent="affirm",
        form="repair_rate_form",
        slots={"repair_rate_repair": 12, "repair_rate_label": "水管"},
        requested="repair_rating",
        candidates={"repair_rating": "嗯"},
    )
    slots, _, dispatcher = validate(backend, tracker, rate=True)
    assert slots["repair_rating"] is None
    assert texts(dispatcher) == [SAY_RATING]


def test_rating_questions(backend: Backend) -> None:
    slots = {"repair_rate_repair": 12, "repair_rate_label": "水管", "repair_rating": 4}
    tracker = make_tracker(form="repair_rate_form", slots=slots)
    _, asked = run_action(backend, ActionAskRepairRating(), tracker)
    [message] = asked.messages
    assert message["text"] == "编号12的水管维修，您满意吗？也可以打1到5分。"
    assert message["expect"]["type"] == "choice"
    assert [o["payload"] for o in message["expect"]["options"]] == [
        '/rate_service{"rating":"satisfied"}',
        '/rate_service{"rating":"3"}',
        '/rate_service{"rating":"unsatisfied"}',
    ]
    _, confirm = run_action(backend, ActionAskRepairRateConfirm(), tracker)
    assert confirm.messages[0]["text"] == "您给编号12的水管维修打4分，对吗？"
    assert confirm.messages[0]["expect"]["type"] == "yes_no"


def rated_tracker(rating: int, confirmed: bool | None = True) -> Tracker:
    return make_tracker(
        text="对",
        intent="affirm",
        form="repair_rate_form",
        slots={
            "repair_rate_repair": 12,
            "repair_rate_label": "水管",
            "repair_rating": rating,
            "repair_rate_confirm": confirmed,
            "repair_rate_comment": "修完还是漏" if rating <= 2 else None,
        },
    )


def test_low_rating_is_sent_and_apologised_for(backend: Backend) -> None:
    def rate(request: httpx.Request) -> httpx.Response:
        assert json_of(request) == {"identity": SENDER, "rating": 1, "comment": "修完还是漏"}
        return httpx.Response(200, json=repair_json(12, status="resolved", rating=1))

    backend.on("POST", "/api/v1/repairs/12/rating", rate)
    events, dispatcher = run_action(backend, ActionRepairRateSubmit(), rated_tracker(1))
    assert texts(dispatcher) == [RATING_SORRY]
    assert slot_events(events)["repair_rate_repair"] is None


def test_good_rating_is_thanked_for(backend: Backend) -> None:
    backend.on(
        "POST",
        "/api/v1/repairs/12/rating",
        lambda _r: httpx.Response(200, json=repair_json(12, status="closed", rating=5)),
    )
    _, dispatcher = run_action(backend, ActionRepairRateSubmit(), rated_tracker(5))
    assert texts(dispatcher) == [RATING_THANKS]


def test_rating_refused_says_why(backend: Backend) -> None:
    detail = "这次维修您已经评价过了，谢谢您！"
    backend.on(
        "POST", "/api/v1/repairs/12/rating", lambda _r: problem(409, "already-rated", detail)
    )
    _, dispatcher = run_action(backend, ActionRepairRateSubmit(), rated_tracker(4))
    assert texts(dispatcher) == [detail]


def test_rating_is_retried_with_one_key_until_the_backend_answers(backend: Backend) -> None:
    answers = iter([problem(503, "down", "维护中"), httpx.Response(200, json=repair_json(12))])
    backend.on("POST", "/api/v1/repairs/12/rating", lambda _r: next(answers))
    _, dispatcher = run_action(backend, ActionRepairRateSubmit(), rated_tracker(4))
    assert texts(dispatcher) == [RATING_THANKS]
    keys = {r.headers["Idempotency-Key"] for r in backend.sent("/api/v1/repairs/12/rating")}
    assert len(backend.sent("/api/v1/repairs/12/rating")) == 2
    assert len(keys) == 1


def test_the_same_rating_sent_again_carries_the_same_key(backend: Backend) -> None:
    # An answer lost after the rating was saved: sent again, the backend replays it.
    backend.on(
        "POST", "/api/v1/repairs/12/rating", lambda _r: httpx.Response(200, json=repair_json(12))
    )
    for _ in range(2):
        run_action(backend, ActionRepairRateSubmit(), rated_tracker(4))
    keys = [r.headers["Idempotency-Key"] for r in backend.sent("/api/v1/repairs/12/rating")]
    assert len(keys) == 2
    assert keys[0] == keys[1]
    run_action(backend, ActionRepairRateSubmit(), rated_tracker(5))
    assert backend.sent("/api/v1/repairs/12/rating")[-1].headers["Idempotency-Key"] != keys[0]


def test_rating_while_the_backend_stays_down_is_not_claimed(backend: Backend) -> None:
    backend.on("POST", "/api/v1/repairs/12/rating", lambda _r: problem(503, "down", "维护中"))
    _, dispatcher = run_action(backend, ActionRepairRateSubmit(), rated_tracker(4))
    assert texts(dispatcher) == [BACKEND_DOWN]
    assert len(backend.sent("/api/v1/repairs/12/rating")) > 1


def test_no_at_the_rating_read_back_sends_nothing(backend: Backend) -> None:
    _, dispatcher = run_action(backend, ActionRepairRateSubmit(), rated_tracker(2, False))
    assert texts(dispatcher) == [NOT_RATED]
    assert backend.requests == []
