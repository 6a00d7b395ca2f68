"""Canteen meal actions: the booking form, cancelling, the menu.

The records backend is an ``httpx.MockTransport`` that checks each request (method, path,
query, JSON body, Idempotency-Key) and answers with bodies shaped like the real schemas
(checked against ``records.schemas.canteen`` below). Trackers carry the events Rasa sends
a form's validation action: the user message, the slots its mappings filled, the form's
run, then the slot candidates.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import meals, meals_cancel
from actions.common import BACKEND_DOWN
from actions.normalize import TZ
from actions.records_client import RecordsClient, RecordsSettings, form_idempotency_key
from records.schemas.canteen import BookingOut, MenuOut

ROOT = Path(__file__).resolve().parents[2]
SENDER = "telegram:42"
ADDRESS = "3号楼2单元501"
# Monday 23 November 2026, 08:00 in Shanghai: before today's lunch cut-off (9:30).
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=TZ)
TOMORROW = "2026-11-24"
STARTED = 1763856000.5  # when the form run began (scopes the idempotency key)

MENUS = "/api/v1/canteen/menus"
BOOKINGS = "/api/v1/canteen/bookings"
MINE = "/api/v1/canteen/bookings/mine"
CANCEL = "/api/v1/canteen/bookings/cancel"


def _domain() -> dict[str, Any]:
    domain: dict[str, Any] = {"slots": {}, "forms": {}}
    for name in ("core.yml", "meals.yml"):
        part = yaml.safe_load((ROOT / "bot" / "domain" / name).read_text(encoding="utf-8"))
        domain["slots"].update(part.get("slots") or {})
        domain["forms"].update(part.get("forms") or {})
    return domain


DOMAIN = _domain()


# --- realistic backend bodies ---------------------------------------------------------------


def dish(dish_id: int, name: str, tags: Iterable[str] = ()) -> dict[str, Any]:
    return {"id": dish_id, "name": name, "description": None, "tags": list(tags), "active": True}


LUNCH_DISHES = [
    dish(1, "杂粮饭", ["素", "控糖"]),
    dish(2, "红烧肉"),
    dish(3, "清蒸鲈鱼", ["少盐", "软食"]),
    dish(4, "香菇青菜", ["素", "少盐"]),
    dish(5, "冬瓜排骨汤", ["少盐"]),
]
LUNCH_TEXT = (
    "明天午饭：杂粮饭、红烧肉、清蒸鲈鱼、香菇青菜、冬瓜排骨汤，每份12元。"
    "还剩25份，上午9:30截止预订。"
)


def menu(**changes: Any) -> dict[str, Any]:
    """Tomorrow's lunch as GET /menus lists it (open, 25 places left)."""
    body = {
        "id": 31,
        "day": TOMORROW,
        "slot": "lunch",
        "slot_name": "午饭",
        "capacity": 50,
        "booked": 25,
        "remaining": 25,
        "cutoff_at": "2026-11-24T01:30:00Z",
        "open_for_booking": True,
        "price_cents": 1200,
        "dishes": LUNCH_DISHES,
        "text": LUNCH_TEXT,
    }
    body.update(changes)
    return body


def page(*items: dict[str, Any]) -> dict[str, Any]:
    return {"items": list(items), "total": len(items), "limit": 20, "offset": 0}


def booking(**changes: Any) -> dict[str, Any]:
    """A booking as POST /bookings and /bookings/mine return it."""
    body = {
        "id": 7,
        "menu_id": 31,
        "day": TOMORROW,
        "slot": "lunch",
        "resident_id": 12,
        "quantity": 2,
        "delivery": False,
        "dietary_notes": "少放盐 软一点",
        "status": "booked",
        "unit_price_cents": 1200,
        "subsidy_cents": 480,
        "total_cents": 1920,
        "channel": "telegram",
        "created_at": "2026-11-23T00:00:00Z",
        "cancelled_at": None,
        "cutoff_at": "2026-11-24T01:30:00Z",
        "text": "已为您订好明天午饭2份，共19.20元（已补贴4.80元），请到食堂用餐。",
    }
    body.update(changes)
    return body


def problem(status: int, code: str, detail: str) -> httpx.Response:
    body = {
        "type": f"https://linli.example/problems/{code}",
        "title": code.replace("-", " "),
        "status": status,
        "detail": detail,
    }
    return httpx.Response(status, json=body, headers={"content-type": "application/problem+json"})


NOT_REGISTERED = (
    "订餐需要先登记、核实身份。请联系社区工作人员登记，或者把工作人员给您的验证码告诉我。"
)


def test_every_action_can_be_registered_and_is_in_the_domain() -> None:
    """The action server instantiates every concrete Action subclass it finds."""
    meals_domain = (ROOT / "bot" / "domain" / "meals.yml").read_text(encoding="utf-8")
    declared = set(yaml.safe_load(meals_domain)["actions"])
    found = set()
    for module in (meals, meals_cancel):
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, Action)
                and value.__module__ == module.__name__
                and not inspect.isabstract(value)
            ):
                found.add(value().name())
    assert found == declared
    assert inspect.isabstract(meals.MealsFormValidation)


def test_bodies_match_the_backend_schemas() -> None:
    MenuOut.model_validate(menu())
    BookingOut.model_validate(booking())


# --- the fake backend and running actions -----------------------------------------------------

Answer = httpx.Response | dict[str, Any] | list[Any]


class Backend:
    """Answers scripted per (method, path); keeps every request it got."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Answer | Callable[[httpx.Request], Answer]] = {}
        self.requests: list[httpx.Request] = []

    def on(self, method: str, path: str, answer: Answer | Callable[..., Answer]) -> None:
        self.routes[(method, path)] = answer

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.routes.get((request.method, request.url.path))
        if answer is None:
            raise AssertionError(f"unexpected {request.method} {request.url.path}")
        if callable(answer):
            answer = answer(request)
        if isinstance(answer, httpx.Response):
            return answer
        return httpx.Response(200, json=answer)

    def sent(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and r.url.path == path]


def body_of(request: httpx.Request) -> dict[str, Any]:
    return json.loads(request.content)


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> Backend:
    fake = Backend()

    async def no_sleep(_seconds: float) -> None:
        return None

    settings = RecordsSettings(base_url="http://records.test", token="t" * 32, attempts=2)
    client = RecordsClient(settings, transport=httpx.MockTransport(fake), sleep=no_sleep)
    monkeypatch.setattr(meals, "get_client", lambda: client)
    monkeypatch.setattr(meals_cancel, "get_client", lambda: client)
    monkeypatch.setattr(meals, "now", lambda: NOW)
    return fake


def run(action: Action, tracker: Tracker) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, DOMAIN))
    return events, dispatcher.messages


def set_slots(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def followups(events: list[dict[str, Any]]) -> list[str]:
    return [e["name"] for e in events if e.get("event") == "followup"]


def texts(messages: list[dict[str, Any]]) -> list[str]:
    return [m["text"] for m in messages]


def slot_event(name: str, value: Any) -> dict[str, Any]:
    return {"event": "slot", "name": name, "value": value, "timestamp": None}


def tracker(
    *,
    text: str = "",
    intent: str = "book_meal",
    entities: dict[str, str] | None = None,
    form: str | None = "meal_form",
    requested: str | None = None,
    extracted: dict[str, Any] | None = None,
    slots: dict[str, Any] | None = None,
    activation: bool = False,
    after_listen: bool = True,
    sender: str = SENDER,
) -> Tracker:
    """A tracker as a form's validation (or any action) receives it after a message.

    ``extracted``: what the slot mappings took from this message; ``slots``: the values
    from before. With ``activation`` the form starts in this turn.
    """
    extracted = extracted or {}
    values: dict[str, Any] = {
        "home_address": ADDRESS,
        "resident_known": True,
        "verified": False,
        "speech_rate": "normal",
        **(slots or {}),
        **extracted,
        "requested_slot": requested,
    }
    latest = {
        "text": text,
        "intent": {"name": intent, "confidence": 0.9},
        "entities": [{"entity": k, "value": v} for k, v in (entities or {}).items()],
    }
    events: list[dict[str, Any]] = [{"event": "action", "name": "action_listen"}]
    if form and not activation:
        events.append({"event": "active_loop", "name": form, "timestamp": STARTED})
    events += [slot_event(k, v) for k, v in (slots or {}).items()]
    events.append({"event": "user", "text": text, "parse_data": latest, "timestamp": STARTED + 9})
    if form and activation:
        events.append({"event": "active_loop", "name": form, "timestamp": STARTED + 9.1})
    if form and after_listen:
        events += [slot_event(k, v) for k, v in extracted.items()]
        events.append(slot_event("requested_slot", None if activation else requested))
        events.append({"event": "action", "name": form})
        # the candidates: everything prefilled at activation, else what was extracted
        candidates = {**(slots or {}), **extracted} if activation else extracted
        events += [slot_event(k, v) for k, v in candidates.items() if v is not None]
    elif form:
        events.append({"event": "action", "name": "action_repeat"})
        events.append({"event": "action", "name": form})
    return Tracker(
        sender, values, latest, events, False, None,
        {"name": form} if form else {}, events[-1].get("name"),
    )  # fmt: skip


def open_menu(backend: Backend, *, mine: Answer | None = None, **changes: Any) -> None:
    backend.on("GET", MENUS, page(menu(**changes)))
    backend.on("POST", MINE, [] if mine is None else mine)


BOOKED_TOMORROW = {
    "meal_date": TOMORROW,
    "meal_slot": "lunch",
    "meal_menu": {"id": 31, "price_cents": 1200, "remaining": 25},
}


# --- meal_form: day, meal and the menu check ---------------------------------------------------


def test_first_message_fills_day_meal_and_quantity_and_checks_the_menu(backend: Backend) -> None:
    open_menu(backend)
    events, messages = run(
        meals.ValidateMealForm(),
        tracker(
            text="订明天午饭两份",
            entities={"date": "明天", "meal_slot": "lunch", "quantity": "两份"},
            extracted={"meal_date": "明天", "meal_slot": "lunch", "meal_quantity": "两份"},
            activation=True,
        ),
    )
    slots = set_slots(events)
    assert slots["meal_date"] == TOMORROW
    assert slots["meal_slot"] == "lunch"
    assert slots["meal_quantity"] == 2
    assert slots["meal_menu"] == {"id": 31, "price_cents": 1200, "remaining": 25}
    assert slots["requested_slot"] == "meal_delivery"
    assert texts(messages) == [LUNCH_TEXT]
    (menus,) = backend.sent("GET", MENUS)
    assert dict(menus.url.params) == {"day": TOMORROW, "slot": "lunch"}
    (mine,) = backend.sent("POST", MINE)
    assert body_of(mine) == {"identity": SENDER, "from_day": TOMORROW}
    assert followups(events) == []


def test_day_and_meal_said_together_fill_both(backend: Backend) -> None:
    open_menu(backend)
    events, _ = run(
        meals.ValidateMealForm(),
        tracker(text="明天中午", requested="meal_date", extracted={"meal_date": "明天中午"}),
    )
    slots = set_slots(events)
    assert (slots["meal_date"], slots["meal_slot"]) == (TOMORROW, "lunch")
    assert slots["requested_slot"] == "meal_quantity"


def test_a_day_in_the_past_is_asked_again(backend: Backend) -> None:
    events, messages = run(
        meals.ValidateMealForm(),
        tracker(text="昨天", requested="meal_date", extracted={"meal_date": "昨天"}),
    )
    assert set_slots(events)["meal_date"] is None
    assert set_slots(events)["requested_slot"] == "meal_date"
    assert texts(messages) == [meals.PAST_DAY]
    assert backend.requests == []


def test_several_days_at_once_are_asked_again(backend: Backend) -> None:
    events, messages = run(
        meals.ValidateMealForm(),
        tracker(text="这周每天都要", requested="meal_date", extracted={"meal_date": "这周"}),
    )
    assert set_slots(events)["meal_date"] is None
    assert texts(messages) == [meals.ONE_DAY]


def test_meal_words_are_understood_and_nonsense_is_asked_again(backend: Backend) -> None:
    slots = {"meal_date": "2026-11-25"}
    backend.on("GET", MENUS, page())
    events, messages = run(
        meals.ValidateMealForm(),
        tracker(text="随便", requested="meal_slot", extracted={"meal_slot": "随便"}, slots=slots),
    )
    assert set_slots(events)["meal_slot"] is None
    assert texts(messages) == [meals.ASK_SLOT_AGAIN]
    events, messages = run(
        meals.ValidateMealForm(),
        tracker(
            text="晚上的", requested="meal_slot", extracted={"meal_slot": "晚上的"}, slots=slots
        ),
    )
    assert set_slots(events)["meal_slot"] == "dinner"
    assert texts(messages) == ["后天晚饭还没有排菜单。"]


def test_no_menu_ends_the_form_plainly(backend: Backend) -> None:
    backend.on("GET", MENUS, page())
    events, messages = run(
        meals.ValidateMealForm(),
        tracker(
            text="订明天午饭",
            entities={"date": "明天", "meal_slot": "lunch"},
            extracted={"meal_date": "明天", "meal_slot": "lunch"},
            activation=True,
        ),
    )
    assert texts(messages) == ["明天午饭还没有排菜单。"]
    slots = set_slots(events)
    assert slots["meal_stop"] is True
    assert slots["requested_slot"] is None
    assert followups(events) == ["action_meal_submit"]
    assert backend.sent("POST", MINE) == []


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"open_for_booking": False, "text": "明天午饭：红烧肉，每份12元。已经截止预订了。"},
         "已经截止预订了"),
        ({"remaining": 0, "booked": 50, "text": "明天午饭：红烧肉，每份12元。已经订满了。"},
         "已经订满了"),
    ],
)  # fmt: skip
def test_closed_or_full_ends_the_form_with_the_reason(
    backend: Backend, changes: dict[str, Any], reason: str
) -> None:
    open_menu(backend, **changes)
    events, messages = run(
        meals.ValidateMealForm(),
        tracker(text="明天", requested="meal_date", extracted={"meal_date": "明天"},
                slots={"meal_slot": "lunch"}),
    )  # fmt: skip
    assert len(messages) == 1
    assert reason in messages[0]["text"]
    assert set_slots(events)["meal_stop"] is True
    assert followups(events) == ["action_meal_submit"]


def test_unknown_resident_hears_how_to_verify(backend: Backend) -> None:
    open_menu(backend, mine=problem(403, "not-registered", NOT_REGISTERED))
    events, messages = run(
        meals.ValidateMealForm(),
        tracker(
            text="订明天午饭",
            extracted={"meal_date": "明天", "meal_slot": "lunch"},
            activation=True,
            sender="phone:+8613800000009",
            slots={"resident_known": False, "home_address": None},
        ),
    )
    assert texts(messages) == [NOT_REGISTERED + meals.VERIFY_HINT]
    assert "验证身份" in messages[0]["text"]
    assert set_slots(events)["meal_stop"] is True
    (mine,) = backend.sent("POST", MINE)
    assert body_of(mine)["identity"] == "phone:+8613800000009"


def test_already_booked_meal_ends_the_form(backend: Backend) -> None:
    open_menu(backend, mine=[booking(quantity=1)])
    events, messages = run(
        meals.ValidateMealForm(),
        tracker(text="订明天午饭", extracted={"meal_date": "明天", "meal_slot": "lunch"},
                activation=True),
    )  # fmt: skip
    assert texts(messages) == [
        "您已经订过明天午饭了（1份）。要改份数，请先说“取消订餐”，再重新订。"
    ]
    assert set_slots(events)["meal_stop"] is True


def test_backend_down_at_the_menu_check_says_nothing_was_done(backend: Backend) -> None:
    backend.on("GET", MENUS, httpx.Response(503))
    events, messages = run(
        meals.ValidateMealForm(),
        tracker(text="明天", requested="meal_date", extracted={"meal_date": "明天"},
                slots={"meal_slot": "lunch"}),
    )  # fmt: skip
    assert texts(messages) == [BACKEND_DOWN]
    assert set_slots(events)["meal_stop"] is True
    assert len(backend.sent("GET", MENUS)) == 2  # retried once


def test_stop_words_end_the_booking(backend: Backend) -> None:
    events, messages = run(
        meals.ValidateMealForm(),
        tracker(text="算了 不订了", intent="deny", requested="meal_quantity",
                extracted={"meal_quantity": "算了 不订了"}, slots=BOOKED_TOMORROW),
    )  # fmt: skip
    assert texts(messages) == [meals.STOPPED]
    assert set_slots(events)["meal_stop"] is True
    assert followups(events) == ["action_meal_submit"]


def test_activation_clears_values_left_by_an_interrupted_run(backend: Backend) -> None:
    stale = {**BOOKED_TOMORROW, "meal_quantity": 3, "meal_delivery": True, "meal_confirm": True}
    events, messages = run(
        meals.ValidateMealForm(), tracker(text="我要订餐", slots=stale, activation=True)
    )
    slots = set_slots(events)
    for name in stale:
        assert slots[name] is None
    assert slots["requested_slot"] == "meal_date"
    assert messages == []
    assert backend.requests == []


def test_a_bad_guess_in_the_first_message_is_dropped_quietly(backend: Backend) -> None:
    events, messages = run(
        meals.ValidateMealForm(),
        tracker(text="订个饭吧", extracted={"meal_date": "订个饭吧"}, activation=True),
    )
    assert set_slots(events)["meal_date"] is None
    assert set_slots(events)["requested_slot"] == "meal_date"
    assert messages == []


def test_what_cannot_be_booked_in_the_first_message_is_explained(backend: Backend) -> None:
    events, messages = run(
        meals.ValidateMealForm(),
        tracker(text="这周的午饭都订上", extracted={"meal_date": "这周"}, activation=True),
    )  # fmt: skip
    assert set_slots(events)["meal_date"] is None
    assert set_slots(events)["meal_slot"] == "lunch"
    assert texts(messages) == [meals.ONE_DAY]


def test_a_turn_without_answers_changes_nothing(backend: Backend) -> None:
    """After "repeat" (or before an emergency) the form must be free to give way."""
    events, messages = run(
        meals.ValidateMealForm(),
        tracker(text="再说一遍", intent="repeat", requested="meal_quantity",
                slots=BOOKED_TOMORROW, after_listen=False),
    )  # fmt: skip
    assert {k for k in set_slots(events) if k != "requested_slot"} == set()
    assert messages == []
    assert backend.requests == []


# --- meal_form: quantity, delivery, notes, read-back -------------------------------------------


@pytest.mark.parametrize(
    ("said", "expected", "message"),
    [
        ("两份", 2, None),
        ("俩", 2, None),
        ("3", 3, None),
        ("二十份", None, meals.TOO_MANY),
        ("好多好多", None, meals.ASK_QUANTITY_AGAIN),
        ("三十个人的", None, meals.TOO_MANY),
    ],
)
def test_quantity(backend: Backend, said: str, expected: int | None, message: str | None) -> None:
    events, messages = run(
        meals.ValidateMealForm(),
        tracker(text=said, requested="meal_quantity", extracted={"meal_quantity": said},
                slots=BOOKED_TOMORROW),
    )  # fmt: skip
    assert set_slots(events)["meal_quantity"] == expected
    assert texts(messages) == ([message] if message else [])


def test_quantity_above_the_places_left_is_asked_again(backend: Backend) -> None:
    slots = {**BOOKED_TOMORROW, "meal_menu": {"id": 31, "price_cents": 1200, "remaining": 3}}
    events, messages = run(
        meals.ValidateMealForm(),
        tracker(text="五份", requested="meal_quantity", extracted={"meal_quantity": "五份"},
                slots=slots),
    )  # fmt: skip
    assert set_slots(events)["meal_quantity"] is None
    assert texts(messages) == ["只剩3份了，请少订一些。"]


def test_delivery_is_skipped_without_a_home_address(backend: Backend) -> None:
    open_menu(backend)
    events, _ = run(
        meals.ValidateMealForm(),
        tracker(
            text="订明天午饭一份",
            extracted={"meal_date": "明天", "meal_slot": "lunch", "meal_quantity": "一份"},
            slots={"home_address": None},
            activation=True,
        ),
    )
    slots = set_slots(events)
    assert slots["meal_delivery"] is False
    assert slots["requested_slot"] == "meal_has_notes"


@pytest.mark.parametrize(
    ("said", "intent", "expected"),
    [
        (True, "affirm", True),
        (False, "deny", False),
        ("送到家吧", "book_meal", True),
        ("我自己去食堂吃", "book_meal", False),
        ("要", "nlu_fallback", True),
        ("啥", "nlu_fallback", None),
    ],
)
def test_delivery_answers(backend: Backend, said: Any, intent: str, expected: bool | None) -> None:
    events, messages = run(
        meals.ValidateMealForm(),
        tracker(text=str(said), intent=intent, requested="meal_delivery",
                extracted={"meal_delivery": said}, slots={**BOOKED_TOMORROW, "meal_quantity": 1}),
    )  # fmt: skip
    assert set_slots(events)["meal_delivery"] is expected
    assert texts(messages) == ([] if expected is not None else [meals.ASK_DELIVERY_AGAIN])


def test_wishes_in_the_first_message_are_kept(backend: Backend) -> None:
    open_menu(backend)
    events, _ = run(
        meals.ValidateMealForm(),
        tracker(
            text="明天午饭一份 送到家 少盐 软一点",
            extracted={"meal_date": "明天", "meal_slot": "lunch", "meal_quantity": "一份"},
            activation=True,
        ),
    )
    slots = set_slots(events)
    assert slots["meal_delivery"] is True
    assert (slots["meal_has_notes"], slots["meal_notes"]) == (True, "少盐、软烂一点")
    assert slots["requested_slot"] == "meal_confirm"


def test_delivery_asked_for_without_an_address_is_explained(backend: Backend) -> None:
    open_menu(backend)
    events, messages = run(
        meals.ValidateMealForm(),
        tracker(
            text="订明天午饭一份 送餐上门",
            extracted={"meal_date": "明天", "meal_slot": "lunch", "meal_quantity": "一份"},
            slots={"home_address": None},
            activation=True,
        ),
    )
    assert set_slots(events)["meal_delivery"] is False
    assert texts(messages) == [LUNCH_TEXT, meals.NO_ADDRESS]


NOTES_BEFORE = {**BOOKED_TOMORROW, "meal_quantity": 1, "meal_delivery": False}


@pytest.mark.parametrize(
    ("said", "expected", "next_slot"),
    [
        (True, {"meal_has_notes": True}, "meal_notes"),
        (False, {"meal_has_notes": False, "meal_notes": None}, "meal_confirm"),
        ("有", {"meal_has_notes": True}, "meal_notes"),
        ("要少盐", {"meal_has_notes": True, "meal_notes": "少盐"}, "meal_confirm"),
        ("我不吃辣", {"meal_has_notes": True, "meal_notes": "不要辣"}, "meal_confirm"),
        ("没有", {"meal_has_notes": False, "meal_notes": None}, "meal_confirm"),
    ],
)
def test_dietary_wishes_question(
    backend: Backend, said: Any, expected: dict[str, Any], next_slot: str
) -> None:
    events, messages = run(
        meals.ValidateMealForm(),
        tracker(text=str(said), requested="meal_has_notes", extracted={"meal_has_notes": said},
                slots=NOTES_BEFORE),
    )  # fmt: skip
    slots = set_slots(events)
    assert {k: slots[k] for k in expected} == expected
    assert slots["requested_slot"] == next_slot
    assert messages == []


def test_dietary_notes_in_the_residents_words(backend: Backend) -> None:
    before = {**NOTES_BEFORE, "meal_has_notes": True}
    events, _ = run(
        meals.ValidateMealForm(),
        tracker(text="少放盐 软一点。", requested="meal_notes",
                extracted={"meal_notes": "少放盐 软一点。"}, slots=before),
    )  # fmt: skip
    assert set_slots(events)["meal_notes"] == "少放盐 软一点"
    assert set_slots(events)["requested_slot"] == "meal_confirm"
    events, _ = run(
        meals.ValidateMealForm(),
        tracker(text="算了 没有", intent="deny", requested="meal_notes",
                extracted={"meal_notes": "算了 没有"}, slots=before),
    )  # fmt: skip
    assert set_slots(events)["meal_has_notes"] is False
    assert set_slots(events)["requested_slot"] == "meal_confirm"


@pytest.mark.parametrize(
    ("said", "expected"), [(True, True), (False, False), ("对的", True), ("嗯…不知道", None)]
)
def test_read_back_answer(backend: Backend, said: Any, expected: bool | None) -> None:
    before = {**NOTES_BEFORE, "meal_has_notes": False}
    events, messages = run(
        meals.ValidateMealForm(),
        tracker(text=str(said), requested="meal_confirm", extracted={"meal_confirm": said},
                slots=before),
    )  # fmt: skip
    slots = set_slots(events)
    assert slots["meal_confirm"] is expected
    assert slots["requested_slot"] == (None if expected is not None else "meal_confirm")
    assert texts(messages) == ([] if expected is not None else [meals.ASK_CONFIRM_AGAIN])


def test_no_with_a_correction_reads_back_again(backend: Backend) -> None:
    before = {**NOTES_BEFORE, "meal_has_notes": False}
    events, messages = run(
        meals.ValidateMealForm(),
        tracker(
            text="不对 要三份",
            intent="deny",
            requested="meal_confirm",
            extracted={"meal_quantity": "三份", "meal_confirm": False},
            slots=before,
        ),
    )
    slots = set_slots(events)
    assert (slots["meal_quantity"], slots["meal_confirm"]) == (3, None)
    assert slots["requested_slot"] == "meal_confirm"
    assert messages == []


def test_only_the_meal_said_for_the_day_question(backend: Backend) -> None:
    events, messages = run(
        meals.ValidateMealForm(),
        tracker(text="中午的", requested="meal_date", extracted={"meal_date": "中午的"}),
    )
    slots = set_slots(events)
    assert (slots["meal_date"], slots["meal_slot"]) == (None, "lunch")
    assert slots["requested_slot"] == "meal_date"
    assert messages == []
    assert ask(meals.ActionAskMealDate(), slots)["text"] == "订哪天的午饭？"


def test_an_unclear_answer_is_not_remarked_on_when_another_slot_was_given(
    backend: Backend,
) -> None:
    backend.on(
        "GET", MENUS, page(menu(id=40, day="2026-11-25", slot="dinner", text="后天晚饭：饺子。"))
    )
    backend.on("POST", MINE, [])
    events, messages = run(
        meals.ValidateMealForm(),
        tracker(
            text="后天晚饭吧",
            requested="meal_quantity",
            extracted={"meal_date": "后天", "meal_slot": "dinner", "meal_quantity": "后天晚饭吧"},
            slots=BOOKED_TOMORROW,
        ),
    )
    slots = set_slots(events)
    assert (slots["meal_date"], slots["meal_slot"]) == ("2026-11-25", "dinner")
    assert slots["meal_quantity"] is None
    assert slots["requested_slot"] == "meal_quantity"
    assert texts(messages) == ["后天晚饭：饺子。"]


# --- meal_form: the questions -----------------------------------------------------------------


def ask(action: Action, slots: dict[str, Any] | None = None) -> dict[str, Any]:
    _, messages = run(action, tracker(slots=slots, after_listen=False))
    (message,) = messages
    return message


def test_questions_carry_what_answer_they_expect(backend: Backend) -> None:
    day = ask(meals.ActionAskMealDate(), {"meal_slot": "lunch"})
    assert day["text"] == "订哪天的午饭？"
    assert day["expect"]["type"] == "choice"
    assert [o["label"] for o in day["expect"]["options"]] == ["今天", "明天", "后天"]
    assert day["expect"]["options"][1] == {
        "key": "2", "label": "明天", "payload": '/book_meal{"date": "明天"}'
    }  # fmt: skip
    meal = ask(meals.ActionAskMealSlot())
    assert meal["expect"]["type"] == "choice"
    assert [o["payload"] for o in meal["expect"]["options"]] == [
        '/book_meal{"meal_slot": "breakfast"}',
        '/book_meal{"meal_slot": "lunch"}',
        '/book_meal{"meal_slot": "dinner"}',
    ]
    quantity = ask(meals.ActionAskMealQuantity())
    assert quantity["text"] == "要几份？"
    assert quantity["expect"] == {"type": "number", "min": 1, "max": 10}
    delivery = ask(meals.ActionAskMealDelivery())
    assert delivery["text"] == f"要送到家里（{ADDRESS}）吗？"
    assert delivery["expect"]["type"] == "yes_no"
    notes = ask(meals.ActionAskMealHasNotes())
    assert notes["text"] == "有没有忌口，比如少盐、软一点？"
    assert notes["expect"]["type"] == "yes_no"
    assert ask(meals.ActionAskMealNotes())["expect"] == {"type": "free_text"}


def test_read_back_says_everything_before_booking(backend: Backend) -> None:
    slots = {**BOOKED_TOMORROW, "meal_quantity": 2, "meal_delivery": True,
             "meal_has_notes": True, "meal_notes": "少盐"}  # fmt: skip
    message = ask(meals.ActionAskMealConfirm(), slots)
    assert message["text"] == "我帮您记下了：明天午饭，2份，送到家，忌口：少盐，每份12元。对吗？"
    assert message["expect"]["type"] == "yes_no"
    later = {**slots, "meal_date": "2026-11-28", "meal_delivery": False, "meal_has_notes": False}
    assert ask(meals.ActionAskMealConfirm(), later)["text"] == (
        "我帮您记下了：11月28日周六午饭，2份，到食堂吃，每份12元。对吗？"
    )


# --- meal_form: submitting --------------------------------------------------------------------

CONFIRMED = {
    **BOOKED_TOMORROW,
    "meal_quantity": 2,
    "meal_delivery": False,
    "meal_has_notes": True,
    "meal_notes": "少放盐 软一点",
    "meal_confirm": True,
}


def submit(backend: Backend, slots: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    events, messages = run(
        meals.ActionMealSubmit(), tracker(slots=slots, after_listen=False, form="meal_form")
    )
    for name in meals.FORM_SLOTS:
        assert set_slots(events)[name] is None
    return events, texts(messages)


def test_confirmed_booking_is_posted_once_and_the_backend_text_said(backend: Backend) -> None:
    backend.on("POST", BOOKINGS, lambda request: httpx.Response(201, json=booking()))
    _, said = submit(backend, CONFIRMED)
    assert said == [booking()["text"]]
    (request,) = backend.sent("POST", BOOKINGS)
    assert body_of(request) == {
        "identity": SENDER,
        "day": TOMORROW,
        "slot": "lunch",
        "quantity": 2,
        "delivery": False,
        "dietary_notes": "少放盐 软一点",
        "channel": "telegram",
    }
    expected_key = form_idempotency_key(
        SENDER,
        "meal_form",
        {k: v for k, v in body_of(request).items() if k != "identity"},
        scope=str(STARTED),
    )
    assert request.headers["Idempotency-Key"] == expected_key
    submit(backend, CONFIRMED)  # the same form submitted again: the same key
    assert backend.sent("POST", BOOKINGS)[1].headers["Idempotency-Key"] == expected_key


def test_no_wishes_this_time_leaves_the_usual_notes(backend: Backend) -> None:
    backend.on("POST", BOOKINGS, httpx.Response(201, json=booking(dietary_notes=None)))
    submit(backend, {**CONFIRMED, "meal_has_notes": False, "meal_notes": None})
    assert body_of(backend.sent("POST", BOOKINGS)[0])["dietary_notes"] is None


def test_no_at_the_read_back_books_nothing(backend: Backend) -> None:
    _, said = submit(backend, {**CONFIRMED, "meal_confirm": False})
    assert said == [meals.NOT_SUBMITTED]
    assert backend.requests == []


def test_a_stopped_form_is_only_cleared(backend: Backend) -> None:
    _, said = submit(backend, {**BOOKED_TOMORROW, "meal_stop": True})
    assert said == []
    assert backend.requests == []


@pytest.mark.parametrize(
    ("response", "said"),
    [
        (problem(409, "booking-closed", "明天午饭的预订已经在上午9:30截止了。"),
         "明天午饭的预订已经在上午9:30截止了。"),
        (problem(409, "sold-out", "明天午饭已经订满了。"), "明天午饭已经订满了。"),
        (problem(403, "not-registered", NOT_REGISTERED), NOT_REGISTERED + meals.VERIFY_HINT),
        (httpx.Response(503), BACKEND_DOWN),
    ],
)  # fmt: skip
def test_refusals_and_outages_are_said_never_success(
    backend: Backend, response: httpx.Response, said: str
) -> None:
    backend.on("POST", BOOKINGS, response)
    _, messages = submit(backend, CONFIRMED)
    assert messages == [said]
    assert not any("订好" in m for m in messages)


# --- cancelling -------------------------------------------------------------------------------

DINNER_AFTER = booking(id=9, day="2026-11-25", slot="dinner", quantity=1,
                       text="已为您订好后天晚饭1份，共10元，请到食堂用餐。")  # fmt: skip
OPTIONS = [
    {"day": TOMORROW, "slot": "lunch", "quantity": 2},
    {"day": "2026-11-25", "slot": "dinner", "quantity": 1},
]


def cancel_tracker(**kwargs: Any) -> Tracker:
    kwargs.setdefault("intent", "cancel_meal")
    return tracker(form="meal_cancel_form", **kwargs)


def test_cancel_the_meal_named_in_the_message(backend: Backend) -> None:
    backend.on("POST", MINE, [booking(), DINNER_AFTER])
    events, messages = run(
        meals_cancel.ValidateMealCancelForm(),
        cancel_tracker(
            text="明天的午饭不要了",
            extracted={"meal_cancel_date": "明天", "meal_cancel_slot": "lunch"},
            activation=True,
        ),
    )
    slots = set_slots(events)
    assert (slots["meal_cancel_date"], slots["meal_cancel_slot"]) == (TOMORROW, "lunch")
    assert slots["meal_cancel_options"] == OPTIONS
    assert slots["requested_slot"] == "meal_cancel_confirm"
    assert messages == []
    assert body_of(backend.sent("POST", MINE)[0]) == {"identity": SENDER}
    confirm = ask(meals_cancel.ActionAskMealCancelConfirm(), slots)
    assert confirm["text"] == "要取消明天午饭的2份吗？"
    assert confirm["expect"]["type"] == "yes_no"


def test_cancel_offers_the_upcoming_bookings(backend: Backend) -> None:
    backend.on("POST", MINE, [booking(), DINNER_AFTER])
    events, _ = run(
        meals_cancel.ValidateMealCancelForm(), cancel_tracker(text="取消订餐", activation=True)
    )
    slots = set_slots(events)
    assert slots["requested_slot"] == "meal_cancel_date"
    question = ask(meals_cancel.ActionAskMealCancelDate(), slots)
    assert question["text"] == "要取消哪一顿？"
    assert question["expect"]["options"] == [
        {"key": "1", "label": "明天午饭2份",
         "payload": '/cancel_meal{"date": "2026-11-24", "meal_slot": "lunch"}'},
        {"key": "2", "label": "后天晚饭1份",
         "payload": '/cancel_meal{"date": "2026-11-25", "meal_slot": "dinner"}'},
    ]  # fmt: skip


def test_cancel_offers_the_bookings_of_the_meal_said(backend: Backend) -> None:
    lunch_after = booking(id=11, day="2026-11-25", quantity=1)
    backend.on("POST", MINE, [booking(), DINNER_AFTER, lunch_after])
    events, _ = run(
        meals_cancel.ValidateMealCancelForm(),
        cancel_tracker(text="午饭不要了", extracted={"meal_cancel_slot": "lunch"}, activation=True),
    )
    slots = set_slots(events)
    assert slots["requested_slot"] == "meal_cancel_date"
    question = ask(meals_cancel.ActionAskMealCancelDate(), slots)
    assert [o["label"] for o in question["expect"]["options"]] == ["明天午饭2份", "后天午饭1份"]
    events, _ = run(
        meals_cancel.ValidateMealCancelForm(),
        cancel_tracker(
            text="第二个", requested="meal_cancel_date", extracted={"meal_cancel_date": "第二个"},
            slots=slots,
        ),
    )  # fmt: skip
    chosen = set_slots(events)
    assert (chosen["meal_cancel_date"], chosen["meal_cancel_slot"]) == ("2026-11-25", "lunch")


def test_cancel_picks_the_only_booking(backend: Backend) -> None:
    backend.on("POST", MINE, [DINNER_AFTER])
    events, _ = run(
        meals_cancel.ValidateMealCancelForm(), cancel_tracker(text="退餐", activation=True)
    )
    slots = set_slots(events)
    assert (slots["meal_cancel_date"], slots["meal_cancel_slot"]) == ("2026-11-25", "dinner")
    assert slots["requested_slot"] == "meal_cancel_confirm"


@pytest.mark.parametrize("said", ["第二个", "2", "二"])
def test_cancel_choice_by_number(backend: Backend, said: str) -> None:
    events, _ = run(
        meals_cancel.ValidateMealCancelForm(),
        cancel_tracker(text=said, requested="meal_cancel_date",
                       extracted={"meal_cancel_date": said},
                       slots={"meal_cancel_options": OPTIONS}),
    )  # fmt: skip
    slots = set_slots(events)
    assert (slots["meal_cancel_date"], slots["meal_cancel_slot"]) == ("2026-11-25", "dinner")
    assert slots["requested_slot"] == "meal_cancel_confirm"
    assert backend.requests == []


def test_cancel_a_day_without_a_booking_offers_the_others(backend: Backend) -> None:
    events, messages = run(
        meals_cancel.ValidateMealCancelForm(),
        cancel_tracker(text="大后天的", requested="meal_cancel_date",
                       extracted={"meal_cancel_date": "大后天"},
                       slots={"meal_cancel_options": OPTIONS}),
    )  # fmt: skip
    assert texts(messages) == ["您没有订11月26日周四的饭。"]
    slots = set_slots(events)
    assert slots["meal_cancel_date"] is None
    assert slots["requested_slot"] == "meal_cancel_date"


def test_cancel_a_past_day_is_asked_again(backend: Backend) -> None:
    events, messages = run(
        meals_cancel.ValidateMealCancelForm(),
        cancel_tracker(text="昨天的饭不要了", requested="meal_cancel_date",
                       extracted={"meal_cancel_date": "昨天"},
                       slots={"meal_cancel_options": OPTIONS}),
    )  # fmt: skip
    assert texts(messages) == [meals.PAST_DAY]
    assert set_slots(events)["meal_cancel_date"] is None


def test_cancel_with_nothing_booked_ends(backend: Backend) -> None:
    backend.on("POST", MINE, [])
    events, messages = run(
        meals_cancel.ValidateMealCancelForm(), cancel_tracker(text="退餐", activation=True)
    )
    assert texts(messages) == [meals_cancel.NOTHING_BOOKED]
    assert set_slots(events)["meal_cancel_stop"] is True
    assert followups(events) == ["action_meal_cancel_submit"]


def test_cancel_by_an_unknown_resident(backend: Backend) -> None:
    backend.on("POST", MINE, problem(403, "not-registered", NOT_REGISTERED))
    events, messages = run(
        meals_cancel.ValidateMealCancelForm(), cancel_tracker(text="退餐", activation=True)
    )
    assert texts(messages) == [NOT_REGISTERED + meals.VERIFY_HINT]
    assert set_slots(events)["meal_cancel_stop"] is True


def test_cancel_changed_mind(backend: Backend) -> None:
    events, messages = run(
        meals_cancel.ValidateMealCancelForm(),
        cancel_tracker(text="算了 不取消了", intent="deny", requested="meal_cancel_date",
                       extracted={"meal_cancel_date": "算了 不取消了"},
                       slots={"meal_cancel_options": OPTIONS}),
    )  # fmt: skip
    assert texts(messages) == [meals_cancel.NOT_CANCELLED]
    assert set_slots(events)["meal_cancel_stop"] is True


CANCEL_CONFIRMED = {
    "meal_cancel_date": TOMORROW,
    "meal_cancel_slot": "lunch",
    "meal_cancel_options": OPTIONS,
    "meal_cancel_confirm": True,
}


def cancel_submit(slots: dict[str, Any]) -> list[str]:
    events, messages = run(
        meals_cancel.ActionMealCancelSubmit(),
        tracker(form="meal_cancel_form", slots=slots, after_listen=False),
    )
    for name in meals_cancel.FORM_SLOTS:
        assert set_slots(events)[name] is None
    return texts(messages)


def test_cancel_confirmed(backend: Backend) -> None:
    cancelled = booking(status="cancelled", cancelled_at="2026-11-23T00:05:00Z",
                        text="明天午饭的2份已经取消了。")  # fmt: skip
    backend.on("POST", CANCEL, cancelled)
    assert cancel_submit(CANCEL_CONFIRMED) == ["明天午饭的2份已经取消了。"]
    (request,) = backend.sent("POST", CANCEL)
    assert body_of(request) == {"identity": SENDER, "day": TOMORROW, "slot": "lunch"}
    BookingOut.model_validate(cancelled)


def test_cancel_denied_cancels_nothing(backend: Backend) -> None:
    assert cancel_submit({**CANCEL_CONFIRMED, "meal_cancel_confirm": False}) == [
        meals_cancel.NOT_CANCELLED
    ]
    assert backend.requests == []


@pytest.mark.parametrize(
    ("response", "said"),
    [
        (problem(409, "cancel-closed",
                 "今天午饭的预订已经在上午9:30截止了，现在不能取消了。如有需要请直接联系食堂。"),
         "今天午饭的预订已经在上午9:30截止了，现在不能取消了。如有需要请直接联系食堂。"),
        (httpx.Response(503), BACKEND_DOWN),
    ],
)  # fmt: skip
def test_cancel_refused_or_backend_down(
    backend: Backend, response: httpx.Response, said: str
) -> None:
    backend.on("POST", CANCEL, response)
    assert cancel_submit(CANCEL_CONFIRMED) == [said]


def test_cancel_slot_question_lists_that_days_bookings(backend: Backend) -> None:
    options = [*OPTIONS, {"day": TOMORROW, "slot": "dinner", "quantity": 1}]
    question = ask(
        meals_cancel.ActionAskMealCancelSlot(),
        {"meal_cancel_date": TOMORROW, "meal_cancel_options": options},
    )
    assert question["text"] == "要取消明天哪一顿？"
    assert [o["label"] for o in question["expect"]["options"]] == ["午饭2份", "晚饭1份"]


# --- the menu ---------------------------------------------------------------------------------


def menu_reply(backend: Backend, text: str, entities: dict[str, str] | None = None) -> list[str]:
    _, messages = run(
        meals.ActionMealMenu(), tracker(text=text, intent="ask_menu", entities=entities, form=None)
    )
    return texts(messages)


def test_menu_of_one_meal(backend: Backend) -> None:
    backend.on("GET", MENUS, page(menu()))
    assert menu_reply(backend, "明天中午有啥菜", {"date": "明天", "meal_slot": "lunch"}) == [
        LUNCH_TEXT
    ]
    (request,) = backend.requests
    assert dict(request.url.params) == {"limit": "30", "day": TOMORROW, "slot": "lunch"}


def test_menu_of_a_day_without_entities(backend: Backend) -> None:
    dinner = menu(id=32, slot="dinner", slot_name="晚饭", text="明天晚饭：饺子，每份10元。")
    backend.on("GET", MENUS, page(menu(), dinner))
    assert menu_reply(backend, "明儿吃什么") == [LUNCH_TEXT + "明天晚饭：饺子，每份10元。"]
    assert dict(backend.requests[0].url.params)["day"] == TOMORROW


def test_menu_default_is_the_next_meal_open(backend: Backend) -> None:
    closed = menu(
        id=30, day="2026-11-23", open_for_booking=False, text="今天午饭：红烧肉…已经截止预订了。"
    )
    backend.on("GET", MENUS, page(closed, menu()))
    assert menu_reply(backend, "菜单") == [LUNCH_TEXT]
    params = dict(backend.requests[0].url.params)
    assert (params["from"], params["to"]) == ("2026-11-23", TOMORROW)


def test_menu_not_planned(backend: Backend) -> None:
    backend.on("GET", MENUS, page())
    assert menu_reply(backend, "后天午餐是什么", {"date": "后天", "meal_slot": "lunch"}) == [
        "后天午饭还没有排菜单。"
    ]


def test_menu_dish_and_kind_questions(backend: Backend) -> None:
    backend.on("GET", MENUS, page(menu()))
    assert menu_reply(backend, "明天有红烧肉吗", {"date": "明天", "dish": "红烧肉"}) == [
        f"有：红烧肉。{LUNCH_TEXT}"
    ]
    assert menu_reply(backend, "有没有饺子", {"dish": "饺子"}) == ["最近的菜单里没有饺子。"]
    assert menu_reply(backend, "有少盐的菜吗") == [
        f"有：清蒸鲈鱼、香菇青菜、冬瓜排骨汤。{LUNCH_TEXT}"
    ]
    assert "day" not in dict(backend.requests[1].url.params)  # the coming week


def test_menu_backend_down(backend: Backend) -> None:
    backend.on("GET", MENUS, httpx.Response(503))
    assert menu_reply(backend, "菜单") == [BACKEND_DOWN]
