"""Setup step: make sure the Mandarin Vosk model is there; find it, or download and verify it.

Looks in VOSK_MODEL_PATH, ../shared/models/ and var/models/ (voice.models.resolve_model_path);
otherwise downloads vosk-model-small-cn-0.22 from alphacephei.com into var/models/ and checks
the published sha256 sums. Where no model can be had (no network), it prints a warning and
exits 0, so that setup goes on without voice recognition; `--strict` makes that exit 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    """Find or fetch the model; print where it is, or why there is none."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only look, never download")
    parser.add_argument("--strict", action="store_true", help="exit 1 when there is no model")
    parser.add_argument("--connect-timeout", type=float, default=5.0, help="seconds (default 5)")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    from voice.config import SpeechSettings
    from voice.models import ModelNotFound, ensure_model, resolve_model_path

    settings = SpeechSettings()
    try:
        if args.check:
            path = resolve_model_path(settings)
        else:
            print(f"voice model: looking for {settings.vosk_model_name} ...", flush=True)
            path = ensure_model(settings, connect_timeout=args.connect_timeout)
    except ModelNotFound as exc:
        print(f"WARNING: no speech recognition model: {exc}", file=sys.stderr)
        print(
            "WARNING: voice and phone recognition stay off until a model is installed; "
            "everything else works.",
            file=sys.stderr,
        )
        return 1 if args.strict else 0
    print(f"voice model: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
