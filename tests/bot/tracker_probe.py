"""Run in Rasa's Python (.venv-rasa) from bot/: trackers built with Rasa's own code, then with ours.

Prints one JSON object: for each way, the class found for every event name, each slot's copy,
and a conversation's tracker after a round trip through the tracker store (its state, its past
states as the policies see them, its events).
"""

import copy
import json
import sys
from typing import Any

import rasa_speedups
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    AllSlotsReset,
    BotUttered,
    Event,
    FollowupAction,
    LoopInterrupted,
    Restarted,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.utils.common import all_subclasses

UNKNOWN_NAMES = ("teleport", "topic", "", "SLOT")


def said(text: str, intent: str, entities: list[dict[str, Any]] | None = None) -> UserUttered:
    """A resident's message as Rasa's NLU would have understood it."""
    understood = {"name": intent, "confidence": 0.9}
    parse = {"text": text, "intent": understood, "entities": entities or []}
    return UserUttered(text, understood, entities or [], parse)


CONVERSATION: list[Event] = [
    ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen"),
    said("我要报修", "report_repair"), ActionExecuted("repair_form"), ActiveLoop("repair_form"),
    SlotSet("requested_slot", "repair_category"), BotUttered("什么坏了？", {"custom": None}),
    ActionExecuted("action_listen"), said("灯坏了", "report_repair",
                                          [{"entity": "repair_category", "value": "lighting"}]),
    SlotSet("repair_category", "lighting"), LoopInterrupted(True), ActionExecuted("action_repeat"),
    FollowupAction("repair_form"), ActionExecuted("repair_form"), ActiveLoop(None),
    SlotSet("speech_rate", "slow"), AllSlotsReset(), Restarted(), ActionExecuted("action_listen"),
    said("你好", "greet"), ActionExecuted("utter_greet"), BotUttered("您好"),
]


def resolved(name: str) -> str:
    """The class Rasa finds for an event name, or what it raises."""
    try:
        found = Event.resolve_by_type(name)
    except ValueError as error:
        return f"ValueError: {error}"
    return getattr(found, "__name__", str(found))


def slot_copies(domain: Domain) -> dict[str, Any]:
    """Each slot's copy: its class, its state, and whether changing it leaves the original alone."""
    copies = {}
    for slot in domain.slots:
        twin = copy.copy(slot)
        twin.value = "changed"
        copies[slot.name] = [
            type(twin).__name__, sorted(vars(twin)), slot.value != "changed", twin is not slot,
        ]
    return copies


def round_trip(domain: Domain) -> dict[str, Any]:
    """A conversation saved to and read back from Rasa's tracker store, as policies see it."""
    store = InMemoryTrackerStore(domain)
    tracker = DialogueStateTracker.from_events("probe", CONVERSATION, domain.slots)
    store.store["probe"] = store.serialise_tracker(tracker)
    back = store.deserialise_tracker("probe", store.store["probe"])
    assert back is not None
    return {
        "state": back.current_state(),
        "past_states": back.past_states(domain),
        "events": [event.as_dict() for event in back.events],
        "slots": {name: slot.value for name, slot in back.slots.items()},
    }


def later_defined_event() -> str:
    """An event kind defined after the table was built is still found by its name."""

    class Teleported(Event):
        type_name = "teleported"

        def as_story_string(self) -> None:
            return None

        def __eq__(self, other: Any) -> bool:
            return isinstance(other, Teleported)

    return resolved("teleported")


def describe(domain: Domain) -> dict[str, Any]:
    """Everything the speed-ups touch, as Rasa currently computes it."""
    names = sorted({cls.type_name for cls in all_subclasses(Event)} | set(UNKNOWN_NAMES))
    return {
        "events": {name: resolved(name) for name in names},
        "default": str(Event.resolve_by_type("teleport", default=SlotSet)),
        "slots": slot_copies(domain),
        "round_trip": round_trip(domain),
    }


def main() -> None:
    """Describe with Rasa's own code, install ours (twice), describe again."""
    domain = Domain.load("domain")
    stock = describe(domain)
    rasa_speedups.install()
    rasa_speedups.install()
    ours = describe(domain)
    ours["later_event"] = later_defined_event()
    json.dump({"stock": stock, "ours": ours}, sys.stdout, ensure_ascii=False, default=str)


if __name__ == "__main__":
    main()
