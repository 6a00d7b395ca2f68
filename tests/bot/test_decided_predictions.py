"""TED skipped where another policy's prediction wins anyway: Rasa picks the same every time."""

from typing import Any

import pytest

from tests.bot.probes import run_probe
from tests.e2e.stack import trained_model


@pytest.fixture(scope="module")
def probe() -> dict[str, Any]:
    """Every prediction of the test stories and self-play, both ways, in Rasa's Python."""
    return run_probe("prediction_probe.py", str(trained_model().resolve()))


def test_every_prediction_is_the_same(probe: dict[str, Any]) -> None:
    assert len(probe["stock"]["predictions"]) > 500
    assert probe["ours"]["predictions"] == probe["stock"]["predictions"]


def test_ted_runs_only_where_no_other_policy_decides(probe: dict[str, Any]) -> None:
    assert probe["stock"]["ted_runs"] == len(probe["stock"]["predictions"])
    assert 0 < probe["ours"]["ted_runs"] < probe["stock"]["ted_runs"] / 4
