"""Train the Rasa model only when its inputs changed; print the model's path.

The model is named after a hash of everything training reads (pipeline, domain, stories,
NLU data, the Jieba dictionary, the Rasa version), so an unchanged checkout reuses the model
in bot/models/ and a changed one trains exactly once.
"""

import argparse
import hashlib
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOT = ROOT / "bot"
MODELS = BOT / "models"
RASA = ROOT / ".venv-rasa" / "bin" / "rasa"
INPUTS = (
    BOT / "config.yml",
    BOT / "domain",
    BOT / "data",
    BOT / "dict",
    ROOT / "nlu_data",
    ROOT / "requirements" / "rasa.txt",
)
KEEP_MODELS = 3


def input_files(paths: Iterable[Path] = INPUTS) -> list[Path]:
    """Every file training reads, in a stable order."""
    files: list[Path] = []
    for path in paths:
        files += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return files


def inputs_hash(files: Iterable[Path]) -> str:
    """A short hash of the files' paths and contents."""
    digest = hashlib.sha256()
    for file in files:
        digest.update(str(file.relative_to(ROOT)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def model_path(digest: str) -> Path:
    """Where the model for these inputs lives."""
    return MODELS / f"linli-{digest}.tar.gz"


def train(digest: str) -> None:
    """Run `rasa train` in bot/ (the pipeline's dictionary path is relative to it)."""
    command = [
        str(RASA),
        "train",
        "--config",
        "config.yml",
        "--domain",
        "domain",
        "--data",
        "data",
        str(ROOT / "nlu_data"),
        "--out",
        "models",
        "--fixed-model-name",
        f"linli-{digest}",
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "SQLALCHEMY_SILENCE_UBER_WARNING": "1"}
    subprocess.run(command, cwd=BOT, env=env, check=True)  # noqa: S603 - fixed command


def prune(keep: Path) -> None:
    """Keep the newest few models, so bot/models/ does not grow without end."""
    models = sorted(MODELS.glob("linli-*.tar.gz"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in [m for m in models if m != keep][KEEP_MODELS - 1 :]:
        old.unlink()


def main(argv: list[str] | None = None) -> int:
    """Print the current model's path, training it first if needed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if training is needed")
    args = parser.parse_args(argv)
    digest = inputs_hash(input_files())
    path = model_path(digest)
    if not path.exists():
        if args.check:
            return 1
        print(f"model: inputs changed, training {path.name} (a few minutes)", file=sys.stderr)
        train(digest)
        prune(path)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
