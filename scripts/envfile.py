"""Read Linli's ``.env`` file and create or complete it from ``.env.example``.

Stdlib only and Python 3.8 compatible, because ``scripts/setup.sh`` may run it with
whatever ``python3`` the machine has before any virtualenv exists::

    python3 scripts/envfile.py sync .env.example .env

``scripts/run.py`` imports :func:`read_env_file` from here.
"""

from __future__ import annotations

import base64
import datetime
import os
import re
import secrets
import sys
from pathlib import Path

#: Value placeholder in .env.example that is replaced by a fresh secret.
RANDOM_MARKER = "__random__"
#: Keys whose secret must be a Fernet key (urlsafe base64 of 32 random bytes).
FERNET_KEYS = frozenset({"FIELD_ENCRYPTION_KEY", "ACTIONS_OUTBOX_KEY"})

_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class EnvFileError(ValueError):
    """A line of an env file is not ``KEY=VALUE``."""


def parse_line(line: str) -> tuple[str, str] | None:
    """Parse one line; None for blank lines and comments.

    Deliberately simple: ``KEY=VALUE`` with optional ``export`` prefix and optional
    matching quotes around the value. No escapes, no interpolation, no comments
    after a value (secrets may contain ``#``).
    """
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return None
    if stripped.startswith("export "):
        stripped = stripped[len("export ") :].lstrip()
    key, sep, value = stripped.partition("=")
    key = key.strip()
    if not sep or not _KEY_RE.fullmatch(key):
        raise EnvFileError(f"expected KEY=VALUE, got {line.strip()!r}")
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return key, value


def parse_env(text: str) -> dict[str, str]:
    """Parse the text of an env file; later duplicates win, like in a shell."""
    result: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            parsed = parse_line(line)
        except EnvFileError as exc:
            raise EnvFileError(f"line {number}: {exc}") from None
        if parsed is not None:
            result[parsed[0]] = parsed[1]
    return result


def read_env_file(path: Path) -> dict[str, str]:
    """Parse an env file, naming the file in errors."""
    try:
        return parse_env(path.read_text(encoding="utf-8"))
    except EnvFileError as exc:
        raise EnvFileError(f"{path}: {exc}") from None


def new_secret(key: str) -> str:
    """A fresh random value for ``key`` (256 bits of entropy either way)."""
    if key in FERNET_KEYS:
        return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")
    return secrets.token_urlsafe(32)


def render_entries(example_text: str, wanted: frozenset[str] | None = None) -> str:
    """Render ``.env.example`` with secrets filled in.

    With ``wanted``, only those keys are rendered, each with the comment block
    directly above it in the example, so appended keys stay documented.
    """
    out: list[str] = []
    comments: list[str] = []
    for line in example_text.splitlines():
        parsed = parse_line(line)
        if parsed is None:
            is_comment = line.strip().startswith("#")
            if wanted is None:
                out.append(line)
            elif is_comment:
                comments.append(line)
            else:  # a blank line ends a comment block
                comments = []
            continue
        key, value = parsed
        if wanted is None or key in wanted:
            if wanted is not None:
                out.extend(comments)
            out.append(f"{key}={new_secret(key) if value == RANDOM_MARKER else value}")
        comments = []
    return "\n".join(out) + "\n"


def sync(example: Path, target: Path) -> list[str]:
    """Create ``target`` from ``example`` or append the keys it lacks.

    Existing values are never changed. Returns the keys written.
    """
    example_text = example.read_text(encoding="utf-8")
    example_keys = list(parse_env(example_text))
    if not target.exists():
        # O_EXCL + mode: the secrets are never readable by others, not even briefly.
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(render_entries(example_text))
        return example_keys

    existing_text = target.read_text(encoding="utf-8")
    existing = parse_env(existing_text)
    for key, value in existing.items():
        if value == RANDOM_MARKER:
            print(f"warning: {target}: {key} is still {RANDOM_MARKER}", file=sys.stderr)
    missing = [key for key in example_keys if key not in existing]
    if not missing:
        return []
    today = datetime.date.today().isoformat()
    block = render_entries(example_text, frozenset(missing))
    with target.open("a", encoding="utf-8") as fh:
        if existing_text and not existing_text.endswith("\n"):
            fh.write("\n")
        fh.write(f"\n# Added from {example.name} by scripts/setup.sh on {today}\n{block}")
    os.chmod(target, 0o600)
    return missing


def main(argv: list[str]) -> int:
    if len(argv) != 4 or argv[1] != "sync":
        print(f"usage: {argv[0]} sync EXAMPLE TARGET", file=sys.stderr)
        return 2
    example, target = Path(argv[2]), Path(argv[3])
    existed = target.exists()
    try:
        written = sync(example, target)
    except (OSError, EnvFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not existed:
        print(f"created {target} with fresh secrets (mode 600)")
    elif written:
        print(f"added to {target}: {', '.join(written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
