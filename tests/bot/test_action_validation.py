"""Action server replies: our prepared validator answers exactly as Rasa's own, only faster."""

from typing import Any

import pytest

from tests.bot.probes import run_probe


@pytest.fixture(scope="module")
def probe() -> dict[str, Any]:
    """Stock and prepared validation of the same replies, in Rasa's own Python."""
    return run_probe("validation_probe.py", timeout=300)


def test_valid_replies_pass_and_invalid_ones_are_refused_as_before(
    probe: dict[str, Any],
) -> None:
    assert probe["ours"] == probe["stock"]
    for name in ("form_turn", "no_events", "many_kinds"):
        assert probe["ours"][name] == "ok", name
    for name in (
        "unknown_event", "slot_without_name", "responses_not_a_list", "event_without_kind",
        "event_not_an_object", "events_not_a_list", "timestamp_as_text", "user_ranking_not_a_list",
    ):
        assert probe["ours"][name].startswith("ValidationError: "), name
        assert "Failed to validate Action server response" in probe["ours"][name]


def test_the_schema_is_not_checked_again_for_every_reply(probe: dict[str, Any]) -> None:
    # Measured in one run, as a ratio (the machine is noisy): stock re-checks the schema.
    assert probe["ours_ms"] * 3 < probe["stock_ms"]
