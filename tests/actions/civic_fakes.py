"""Test doubles for the proposal and vote actions: a scripted records API behind
httpx.MockTransport, trackers as Rasa sends them to the action server, and response bodies
shaped like records/schemas/{proposals,votes}.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import civic, records_client
from actions.records_client import RecordsClient, RecordsSettings

ROOT = Path(__file__).resolve().parents[2]
DOMAIN: dict[str, Any] = yaml.safe_load((ROOT / "bot/domain/civic.yml").read_text("utf-8"))
CORE_SLOTS = (
    "speech_rate",
    "resident_name",
    "resident_known",
    "verified",
    "home_address",
    "offered_handoff",
    "requested_slot",
)
SENDER = "telegram:42"
# 10:00 in Shanghai on Monday 23 November 2026.
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
PROBLEM = "application/problem+json"

Responder = Callable[[httpx.Request], httpx.Response]


def problem(status: int, code: str, detail: str) -> httpx.Response:
    """A refusal as the records backend sends it (RFC 9457, Chinese detail)."""
    body = {
        "type": f"https://linli.example/problems/{code}",
        "title": code.replace("-", " "),
        "status": status,
        "detail": detail,
    }
    return httpx.Response(status, json=body, headers={"Content-Type": PROBLEM})


NOT_VERIFIED_PROBLEM = (
    403,
    "not-verified",
    "需要先核实身份。请向社区工作人员要一个验证码，再告诉我。",
)


@dataclass
class FakeRecords:
    """Routes (method, path) to scripted answers and keeps every request it got."""

    routes: dict[tuple[str, str], Responder | httpx.Response | Any] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def on(self, method: str, path: str, answer: Responder | httpx.Response | Any) -> None:
        """Answer `method path` with a response, a JSON body (200) or a function."""
        self.routes[(method, path)] = answer

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.routes.get((request.method, request.url.path))
        if answer is None:
            return problem(404, "not-found", "没有找到相关记录。")
        if callable(answer):
            return answer(request)
        if isinstance(answer, httpx.Response):
            return answer
        return httpx.Response(200, json=answer)

    def sent(self, method: str, path: str) -> list[httpx.Request]:
        """The requests made to `method path`."""
        return [r for r in self.requests if r.method == method and r.url.path == path]

    @staticmethod
    def body(request: httpx.Request) -> Any:
        return json.loads(request.content)


def install(monkeypatch: pytest.MonkeyPatch) -> FakeRecords:
    """Point the actions' records client at a FakeRecords, and the clock at NOW."""
    fake = FakeRecords()
    settings = RecordsSettings(base_url="http://records.test", token="test-token", attempts=1)
    client = RecordsClient(settings, transport=httpx.MockTransport(fake.handler))
    monkeypatch.setattr(records_client, "get_client", lambda: client)
    monkeypatch.setattr(civic, "now", lambda: NOW)
    return fake


# --- trackers ---------------------------------------------------------------------------------


def _user(text: str, intent: str | None, entities: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "event": "user",
        "text": text,
        "parse_data": {
            "intent": {"name": intent, "confidence": 0.9},
            "entities": entities,
            "text": text,
        },
    }


def tracker(
    *,
    text: str = "",
    intent: str | None = None,
    entities: dict[str, str] | None = None,
    slots: dict[str, Any] | None = None,
    form: str | None = None,
    requested: str | None = None,
    started: bool = False,
    after: str | None = None,
    candidates: dict[str, Any] | None = None,
    sender: str = SENDER,
) -> Tracker:
    """A tracker as Rasa hands it to an action.

    With `form`, as a form's validation gets it: the form's run appended after the user's
    message; `started` when the form was activated in this turn, `after` an action that ran
    in between (repeat, help: the form resumes), `candidates` the slots Rasa extracted.
    """
    found = [
        {"entity": name, "value": value, "start": 0, "end": 1}
        for name, value in (entities or {}).items()
    ]
    values = dict.fromkeys([*DOMAIN["slots"], *CORE_SLOTS])
    values.update(slots or {})
    values["requested_slot"] = requested
    events: list[dict[str, Any]] = [
        {"event": "action", "name": "action_listen"},
        _user(text, intent, found),
    ]
    if form:
        if started:
            events.append({"event": "active_loop", "name": form})
        if after:
            events.append({"event": "action", "name": after})
        events += [
            {"event": "slot", "name": "requested_slot", "value": requested},
            {"event": "action", "name": form},
        ]
        for name, value in (candidates or {}).items():
            events.append({"event": "slot", "name": name, "value": value})
            values[name] = value
    return Tracker(
        sender_id=sender,
        slots=values,
        latest_message={
            "text": text,
            "intent": {"name": intent, "confidence": 0.9},
            "entities": found,
        },
        events=events,
        paused=False,
        followup_action=None,
        active_loop={"name": form} if form else {},
        latest_action_name=form or "action_listen",
    )


def run(action: Action, state: Tracker) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run an action; its events and the messages it said."""
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, state, DOMAIN))
    return events, dispatcher.messages


def slots_of(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The slot values the events set (the last one wins)."""
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def texts(messages: list[dict[str, Any]]) -> list[str]:
    return [m.get("text") or "" for m in messages]


def expect_of(message: dict[str, Any]) -> dict[str, Any]:
    """The expected-answer metadata of a question (the channels read it)."""
    return message.get("expect") or (message.get("custom") or {}).get("expect") or {}


# --- bodies shaped like the records schemas ---------------------------------------------------


def proposal(
    pid: int, title: str, *, status: str = "published", supports: int = 3
) -> dict[str, Any]:
    """A ProposalOut."""
    return {
        "id": pid,
        "title": title,
        "content": f"{title}。",
        "author_id": 7,
        "status": status,
        "support_threshold": 10,
        "support_count": supports,
        "review_note": None,
        "created_at": "2026-11-20T02:00:00Z",
        "published_at": "2026-11-21T02:00:00Z",
        "threshold_reached_at": None,
        "answer_due_at": None,
        "answer": None,
        "answered_at": None,
        "closed_at": None,
        "vote_id": None,
        "channel": "telegram",
    }


def page(items: list[dict[str, Any]], total: int | None = None, limit: int = 3) -> dict[str, Any]:
    """A Page."""
    return {
        "items": items,
        "total": len(items) if total is None else total,
        "limit": limit,
        "offset": 0,
    }


def vote(
    vid: int,
    title: str,
    *,
    options: list[str] | None = None,
    closes_at: str = "2026-11-23T10:00:00Z",
    state: str = "open",
    scope: str = "community",
    scope_name: str = "本社区",
) -> dict[str, Any]:
    """A VoteOut: yes/no unless option labels are given."""
    if options:
        kind = "options"
        listed = [
            {"code": str(n), "label": label, "position": n}
            for n, label in enumerate(options, start=1)
        ]
    else:
        kind = "yes_no"
        listed = [
            {"code": "yes", "label": "同意", "position": 1},
            {"code": "no", "label": "反对", "position": 2},
            {"code": "abstain", "label": "弃权", "position": 3},
        ]
    return {
        "id": vid,
        "title": title,
        "description": None,
        "kind": kind,
        "scope": scope,
        "scope_building_id": 3 if scope == "building" else None,
        "scope_unit_id": None,
        "scope_name": scope_name,
        "eligibility": "resident",
        "opens_at": "2026-11-20T00:00:00Z",
        "closes_at": closes_at,
        "state": state,
        "options": listed,
    }
