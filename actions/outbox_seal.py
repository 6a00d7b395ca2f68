"""Outbox requests sealed at rest: residents' phones and addresses never lie in the file in clear.

The outbox keeps whole request bodies (an emergency alert holds the caller's phone identity)
and the backend's replies. With ``ACTIONS_OUTBOX_KEY`` (a Fernet key; setup writes one into
``.env``) each is stored encrypted and authenticated, marked ``fernet:``; without it, as plain
JSON, as before. Rows stored before the key was set stay readable.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from actions.records_client import load_env

SEALED = "fernet:"


class OutboxKeyError(RuntimeError):
    """A sealed outbox entry cannot be opened with the configured key (or without one)."""


@dataclass(frozen=True, slots=True)
class Sealer:
    """Seals values to stored text and opens them again."""

    fernet: Fernet | None = None

    def seal(self, value: Any) -> str:
        """The value as stored: sealed JSON with a key, plain JSON without."""
        text = json.dumps(value, ensure_ascii=False)
        if self.fernet is None:
            return text
        return SEALED + self.fernet.encrypt(text.encode("utf-8")).decode("ascii")

    def open(self, stored: str) -> Any:
        """The value stored (plain JSON, from before sealing, is read as it is)."""
        if not stored.startswith(SEALED):
            return json.loads(stored)
        if self.fernet is None:
            raise OutboxKeyError("outbox entry is sealed but ACTIONS_OUTBOX_KEY is not set")
        try:
            return json.loads(self.fernet.decrypt(stored[len(SEALED) :].encode("ascii")))
        except InvalidToken:
            raise OutboxKeyError(
                "outbox entry was sealed with another ACTIONS_OUTBOX_KEY than the one set now"
            ) from None


def sealer_from_env(environ: Mapping[str, str] | None = None) -> Sealer:
    """The sealer for ACTIONS_OUTBOX_KEY (env or ``.env``); a bad key is a clear error."""
    key = load_env(environ).get("ACTIONS_OUTBOX_KEY", "").strip()
    if not key:
        return Sealer()
    try:
        return Sealer(Fernet(key))
    except ValueError:
        raise OutboxKeyError(
            "ACTIONS_OUTBOX_KEY must be a Fernet key (urlsafe base64 of 32 bytes)"
        ) from None
