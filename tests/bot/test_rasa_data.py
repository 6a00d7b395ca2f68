"""The bot's training data and test stories, checked by Rasa itself."""

import os
import subprocess
from pathlib import Path

from tests.e2e.stack import RASA, ROOT

BOT = ROOT / "bot"
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "SQLALCHEMY_SILENCE_UBER_WARNING": "1"}


def rasa(*args: str) -> subprocess.CompletedProcess[str]:
    """Run a Rasa command in bot/."""
    return subprocess.run(
        [RASA, *args], cwd=BOT, env=ENV, capture_output=True, text=True, check=False
    )


def test_data_validates_cleanly() -> None:
    result = rasa(
        "data", "validate", "--domain", "domain", "--data", "data", str(ROOT / "nlu_data"),
        "--config", "config.yml", "--fail-on-warnings",
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def test_stories_predict_as_written(model: Path, tmp_path: Path) -> None:
    stories = BOT / "tests" / "stories"
    assert list(stories.glob("test_*_stories.yml")), "no test stories"
    result = rasa(
        "test", "core", "--model", str(model), "--stories", str(stories),
        "--out", str(tmp_path), "--fail-on-prediction-errors", "--no-plot",
    )
    failed = (tmp_path / "failed_test_stories.yml")
    details = failed.read_text() if failed.exists() else ""
    assert result.returncode == 0, details[-6000:] + result.stdout[-3000:]
