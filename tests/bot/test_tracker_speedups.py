"""Event classes found from a table and slots copied directly: trackers come out as before."""

from typing import Any

import pytest

from tests.bot.probes import run_probe


@pytest.fixture(scope="module")
def probe() -> dict[str, Any]:
    """Rasa's own and our trackers, events and slots, described in Rasa's Python."""
    return run_probe("tracker_probe.py")


def test_every_event_name_finds_the_same_class(probe: dict[str, Any]) -> None:
    assert len(probe["ours"]["events"]) > 20
    assert probe["ours"]["events"] == probe["stock"]["events"]
    assert probe["ours"]["events"]["slot"] == "SlotSet"
    assert probe["ours"]["events"]["teleport"] == "ValueError: Unknown event name 'teleport'."
    assert probe["ours"]["default"] == probe["stock"]["default"]


def test_an_event_kind_defined_later_is_found(probe: dict[str, Any]) -> None:
    assert probe["ours"]["later_event"] == "Teleported"


def test_slot_copies_are_the_same_and_independent(probe: dict[str, Any]) -> None:
    assert len(probe["ours"]["slots"]) > 30
    assert probe["ours"]["slots"] == probe["stock"]["slots"]
    assert all(alone and distinct for *_, alone, distinct in probe["ours"]["slots"].values())


@pytest.mark.parametrize("part", ["state", "past_states", "events", "slots"])
def test_a_conversation_reads_back_the_same(probe: dict[str, Any], part: str) -> None:
    assert probe["ours"]["round_trip"][part] == probe["stock"]["round_trip"][part]
