"""Rasa's models loaded without a training step and called directly answer exactly as before."""

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.stack import ROOT, trained_model

RASA_PYTHON = ROOT / ".venv-rasa" / "bin" / "python"
PROBE = Path(__file__).with_name("loading_probe.py")


def load_and_answer(model: Path, how: str) -> dict[str, Any]:
    """The probe's report for one way of loading, run in Rasa's own Python."""
    done = subprocess.run(
        [str(RASA_PYTHON), str(PROBE), str(model.resolve()), how],
        cwd=ROOT / "bot",
        env={"PYTHONPATH": str(ROOT / "bot"), "PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


@pytest.fixture(scope="module")
def reports() -> dict[str, dict[str, Any]]:
    """Both ways, one after the other (never side by side on a 2-core machine)."""
    model = trained_model()
    return {how: load_and_answer(model, how) for how in ("stock", "ours")}


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
