"""Passwords, tokens and one-time verification codes."""

import hmac
import secrets

from pwdlib import PasswordHash

_hasher = PasswordHash.recommended()


def hash_password(password: str) -> str:
    """Hash a staff password (Argon2)."""
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    """Check a password against its hash."""
    return _hasher.verify(password, password_hash)


def tokens_equal(given: str, expected: str) -> bool:
    """Compare secrets in constant time."""
    return hmac.compare_digest(given.encode(), expected.encode())


def new_verification_code() -> str:
    """Six digits, easy to read out over the phone."""
    return f"{secrets.randbelow(1_000_000):06d}"
