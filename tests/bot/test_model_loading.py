"""Rasa's models loaded without a training step and called directly answer exactly as before."""

from typing import Any

import pytest

from tests.bot.probes import run_probe
from tests.e2e.stack import trained_model


@pytest.fixture(scope="module")
def reports() -> dict[str, dict[str, Any]]:
    """Both ways, one after the other (never side by side on a 2-core machine)."""
    model = str(trained_model().resolve())
    ways = ("stock", "ours", "unmatched")
    return {how: run_probe("loading_probe.py", model, how) for how in ways}


def test_rasa_trains_each_model_one_step_to_load_it_and_ours_does_not(
    reports: dict[str, dict[str, Any]],
) -> None:
    assert sorted(reports["stock"]["training_runs"]) == ["DIET", "TED"]
    assert reports["ours"]["training_runs"] == []


@pytest.mark.parametrize("model", ["diet_weights", "ted_weights"])
def test_every_weight_is_the_same(reports: dict[str, dict[str, Any]], model: str) -> None:
    assert len(reports["ours"][model]) > 10
    assert reports["ours"][model] == reports["stock"][model]


def test_every_held_out_utterance_is_understood_the_same(
    reports: dict[str, dict[str, Any]],
) -> None:
    assert len(reports["ours"]["parses"]) > 200
    assert reports["ours"]["parses"] == reports["stock"]["parses"]


def test_ted_predicts_the_same_actions(reports: dict[str, dict[str, Any]]) -> None:
    assert reports["ours"]["ted"] == reports["stock"]["ted"]


def test_after_loading_every_prediction_calls_the_graph_directly(
    reports: dict[str, dict[str, Any]],
) -> None:
    stock = reports["stock"]["dispatched_calls"]
    assert stock["diet"] >= len(reports["stock"]["parses"])
    assert stock["ted"] > 10
    assert reports["ours"]["dispatched_calls"] == {"diet": 0, "ted": 0}


def test_a_weight_missing_from_the_checkpoint_makes_it_load_the_model_rasas_way(
    reports: dict[str, dict[str, Any]],
) -> None:
    assert sorted(reports["unmatched"]["training_runs"]) == ["DIET", "TED"]
    assert reports["unmatched"]["parses"] == reports["stock"]["parses"]
