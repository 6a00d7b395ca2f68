"""Run a probe script in Rasa's own Python (.venv-rasa) from bot/ and read its JSON report."""

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.e2e.stack import ROOT

RASA_PYTHON = ROOT / ".venv-rasa" / "bin" / "python"
HERE = Path(__file__).parent


def run_probe(script: str, *args: str, timeout: float = 600) -> dict[str, Any]:
    """The JSON object the probe prints on its last line (the test fails on a non-zero exit)."""
    done = subprocess.run(
        [str(RASA_PYTHON), str(HERE / script), *args],
        cwd=ROOT / "bot",
        env={
            "PYTHONPATH": f"{ROOT / 'bot'}:{HERE}",
            "PATH": "/usr/bin:/bin",
            "TF_CPP_MIN_LOG_LEVEL": "3",
        },
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report
