"""Unit leaders (联户长) answer requests from their households: 收到 and 上报 by one tap.

A notification's button names the request (`/leader_ack{"request": "repair:12"}`), so a tap
answers at once. Said by voice or typed ("报修那个我收到了"), the request is the position said
in the list last read ("第二个"), else the only one waiting, else the waiting ones are listed
with buttons. The backend checks the sender is a verified unit leader (or grid worker) of the
household the request came from: POST /api/v1/leaders/requests/acknowledge|escalate.
"""

import re
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import ask_choice, entity_value, identity_of, latest_text, say_error
from actions.identity import latest_intent
from actions.records_client import RecordsError, get_client
from actions.volunteers import position

PATH = "/api/v1/leaders/requests"
VERBS = {"leader_ack": "acknowledge", "leader_escalate": "escalate"}
LIST_LIMIT = 5
REQUEST_REF = re.compile(r"^(repair|alert):[1-9][0-9]{0,9}$")

NOTHING_WAITING = "现在没有等您处理的事。"
WHICH = {"leader_ack": "您收到的是哪一件？", "leader_escalate": "要上报哪一件？"}


def request_ref(tracker: Tracker) -> str | None:
    """The request a button names ("repair:12"), if well formed."""
    value = entity_value(tracker, "request")
    if isinstance(value, str) and REQUEST_REF.match(value.strip()):
        return value.strip()
    return None


class ActionLeaderAnswer(Action):
    """收到 or 上报 for one request; lists the waiting ones when it is not clear which."""

    def name(self) -> str:
        return "action_leader_answer"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        intent = latest_intent(tracker) or ""
        verb = VERBS.get(intent)
        if verb is None:
            return []
        identity = identity_of(tracker)
        ref = request_ref(tracker)
        if ref is None:
            listed = tracker.get_slot("leader_listed_requests") or []
            said = position(tracker, latest_text(tracker))
            if said is not None and 1 <= said <= len(listed):
                ref = str(listed[said - 1])
        try:
            if ref is None:
                waiting = await get_client().post(f"{PATH}/open", {"identity": identity})
                waiting = [w for w in waiting or [] if isinstance(w, dict)]
                if len(waiting) != 1:
                    return self._ask_which(dispatcher, intent, waiting)
                ref = str(waiting[0]["request"])
            body = {"identity": identity, "request": ref}
            answer = await get_client().post(f"{PATH}/{verb}", body)
        except RecordsError as error:
            say_error(dispatcher, error)
            return []
        message = (answer or {}).get("message") if isinstance(answer, dict) else None
        dispatcher.utter_message(text=message or "好的。")
        return [SlotSet("leader_listed_requests", None)]

    @staticmethod
    def _ask_which(
        dispatcher: CollectingDispatcher, intent: str, waiting: list[dict[str, Any]]
    ) -> list[EventType]:
        if not waiting:
            dispatcher.utter_message(text=NOTHING_WAITING)
            return [SlotSet("leader_listed_requests", None)]
        shown = waiting[:LIST_LIMIT]
        listed = "；".join(f"第{i}件，{w.get('summary')}" for i, w in enumerate(shown, start=1))
        ask_choice(
            dispatcher,
            f"{WHICH[intent]}{listed}。请说第几件，或者点下面的按钮。",
            [(str(w.get("summary")), f'/{intent}{{"request": "{w["request"]}"}}') for w in shown],
        )
        return [SlotSet("leader_listed_requests", [str(w["request"]) for w in shown])]
