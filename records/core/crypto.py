"""Encryption of personal fields at rest, and blind indexes to look them up."""

import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class FieldCipher:
    """Encrypts personal data with Fernet; hashes lookup keys with HMAC-SHA256."""

    def __init__(self, keys: str, index_key: str) -> None:
        # Several comma-separated keys allow rotation: the first encrypts, all decrypt.
        self._fernet = MultiFernet([Fernet(k.strip()) for k in keys.split(",") if k.strip()])
        self._index_key = index_key.encode()

    def encrypt(self, plain: str) -> str:
        """Encrypt a string to a URL-safe token."""
        return self._fernet.encrypt(plain.encode()).decode()

    def decrypt(self, token: str) -> str:
        """Decrypt a token made by `encrypt`."""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("field cannot be decrypted with the configured keys") from exc

    def blind_index(self, plain: str) -> str:
        """A keyed hash that finds equal values without storing them."""
        return hmac.new(self._index_key, plain.encode(), hashlib.sha256).hexdigest()


_cipher: FieldCipher | None = None


def install_cipher(cipher: FieldCipher) -> None:
    """Make `cipher` the one column types use; called when an engine is created."""
    global _cipher
    _cipher = cipher


def current_cipher() -> FieldCipher:
    """The installed cipher, or a clear error when setup forgot to install one."""
    if _cipher is None:
        raise RuntimeError("no field cipher installed: call records.core.db.make_engine first")
    return _cipher
