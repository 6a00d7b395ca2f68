"""TED skipped where another policy's prediction wins anyway: Rasa picks the same every time."""

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.stack import ROOT, trained_model

RASA_PYTHON = ROOT / ".venv-rasa" / "bin" / "python"
PROBE = Path(__file__).with_name("prediction_probe.py")


@pytest.fixture(scope="module")
def probe() -> dict[str, Any]:
    """Every prediction of the test stories and self-play, both ways, in Rasa's Python."""
    done = subprocess.run(
        [str(RASA_PYTHON), str(PROBE), str(trained_model().resolve())],
        cwd=ROOT / "bot",
        env={
            "PYTHONPATH": f"{ROOT / 'bot'}:{PROBE.parent}",
            "PATH": "/usr/bin:/bin",
            "TF_CPP_MIN_LOG_LEVEL": "3",
        },
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_every_prediction_is_the_same(probe: dict[str, Any]) -> None:
    assert len(probe["stock"]["predictions"]) > 500
    assert probe["ours"]["predictions"] == probe["stock"]["predictions"]


def test_ted_runs_only_where_no_other_policy_decides(probe: dict[str, Any]) -> None:
    assert probe["stock"]["ted_runs"] == len(probe["stock"]["predictions"])
    assert 0 < probe["ours"]["ted_runs"] < probe["stock"]["ted_runs"] / 4
