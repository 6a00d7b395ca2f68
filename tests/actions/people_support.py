"""Test support for the identity and volunteer actions: trackers, the domain, a fake backend.

The records backend is replaced by an ``httpx.MockTransport`` that records every request
(method, path, JSON body, Idempotency-Key) and answers with bodies shaped like the real
schemas; the shared client of ``actions.records_client`` is pointed at it for one run.
"""

import asyncio
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import records_client
from actions.records_client import RecordsClient, RecordsSettings

ROOT = Path(__file__).resolve().parents[2]
SENDER = "telegram:42"


def load_domain() -> dict[str, Any]:
    """The bot's domain as the action server receives it (core plus people)."""
    domain: dict[str, Any] = {"slots": {}, "forms": {}}
    for name in ("core.yml", "people.yml"):
        part = yaml.safe_load((ROOT / "bot" / "domain" / name).read_text(encoding="utf-8"))
        domain["slots"].update(part.get("slots") or {})
        domain["forms"].update(part.get("forms") or {})
    return domain


DOMAIN = load_domain()


def make_tracker(
    *,
    text: str = "",
    intent: str = "nlu_fallback",
    entities: Iterable[dict[str, Any]] = (),
    slots: dict[str, Any] | None = None,
    active_loop: str | None = None,
    requested_slot: str | None = None,
    answer: tuple[str, Any] | None = None,
    sender: str = SENDER,
) -> Tracker:
    """A tracker after the user's latest message.

    ``answer`` is the slot the form's mapping just filled from that message, as Rasa sends
    it to a validation action: the last events are the form's run and that SlotSet.
    """
    values: dict[str, Any] = {
        "verified": False,
        "resident_known": False,
        "resident_name": None,
        "home_address": None,
        "requested_slot": requested_slot,
        **(slots or {}),
    }
    latest = {
        "text": text,
        "intent": {"name": intent, "confidence": 0.93},
        "entities": list(entities),
    }
    events: list[dict[str, Any]] = [
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": text, "parse_data": latest, "timestamp": 1764000000.0},
    ]
    if active_loop:
        events.append({"event": "action", "name": active_loop})
    if answer is not None:
        values[answer[0]] = answer[1]
        events.append({"event": "slot", "name": answer[0], "value": answer[1]})
    return Tracker(
        sender,
        values,
        latest,
        events,
        False,
        None,
        {"name": active_loop} if active_loop else {},
        "action_listen",
    )


@dataclass
class Call:
    """One request the fake backend received."""

    method: str
    path: str
    body: Any
    key: str | None


Reply = tuple[int, Any]


class FakeRecords:
    """Answers by path; a list of replies is used one per request; unknown paths fail."""

    def __init__(self, routes: dict[str, Reply | list[Reply] | Callable[[Any], Reply]]):
        self.routes = routes
        self.calls: list[Call] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.calls.append(
            Call(request.method, request.url.path, body, request.headers.get("Idempotency-Key"))
        )
        route = self.routes.get(request.url.path)
        if route is None:
            raise AssertionError(f"unexpected request {request.method} {request.url.path}")
        if callable(route):
            status, payload = route(body)
        elif isinstance(route, list):
            status, payload = route.pop(0)
        else:
            status, payload = route
        headers = {"content-type": "application/problem+json"} if status >= 400 else {}
        return httpx.Response(status, json=payload, headers=headers)

    def paths(self) -> list[str]:
        """The paths requested, in order."""
        return [call.path for call in self.calls]


def problem(status: int, code: str, detail: str) -> Reply:
    """A problem+json refusal as the backend sends it."""
    return status, {
        "type": f"https://linli.example/problems/{code}",
        "title": code.replace("-", " "),
        "status": status,
        "detail": detail,
    }


async def _no_sleep(_seconds: float) -> None:
    return None


def run_action(
    action: Action,
    tracker: Tracker,
    backend: FakeRecords | None = None,
    domain: dict[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run an action against the fake backend; its events and the messages it sent."""
    backend = backend if backend is not None else FakeRecords({})
    dispatcher = CollectingDispatcher()

    async def go() -> list[dict[str, Any]]:
        client = RecordsClient(
            RecordsSettings(base_url="http://records.test", token="test-token", attempts=3),
            transport=httpx.MockTransport(backend),
            sleep=_no_sleep,
        )
        saved = records_client._default_client, records_client._default_loop
        records_client._default_client = client
        records_client._default_loop = asyncio.get_running_loop()
        try:
            events = await action.run(dispatcher, tracker, domain if domain is not None else DOMAIN)
            return list(events)
        finally:
            records_client._default_client, records_client._default_loop = saved
            await client.aclose()

    events = asyncio.run(go())
    return events, list(dispatcher.messages)


def slot_events(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The slot values the events set (the last one wins)."""
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def texts(messages: list[dict[str, Any]]) -> list[str]:
    """The texts of the messages."""
    return [m.get("text") or "" for m in messages]


def expect_of(message: dict[str, Any]) -> dict[str, Any]:
    """The expected-answer metadata of a question (extra kwargs of utter_message)."""
    return message.get("expect") or {}
