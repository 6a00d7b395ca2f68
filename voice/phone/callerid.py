"""Who is calling: the caller's number from SIP headers, in E.164, and its log-safe hash."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string

import phonenumbers

REGION = "CN"
# <sip:13800001001@host>, sip:+8613800001001@host;user=phone, tel:+86-138-0000-1001
_URI = re.compile(r"(?:sips?|tel):(?P<user>[^@;>\s]+)", re.IGNORECASE)
_HEADER = re.compile(r"^(?P<name>[A-Za-z-]+)\s*:\s*(?P<value>.*)$")
# Headers that carry the network-asserted caller, most trusted first.
_ASSERTED = ("p-asserted-identity", "remote-party-id")
_PRIVACY_ANONYMOUS = {"anonymous", "unknown", "unavailable", "restricted", "private"}


def uri_user(uri: str) -> str | None:
    """The user part of the first SIP/tel URI in a header value, percent-decoding '+'."""
    match = _URI.search(uri)
    if not match:
        return None
    return match.group("user").replace("%2B", "+").replace("%2b", "+")


def asserted_uri(whole_msg: str) -> str | None:
    """The value of P-Asserted-Identity (or Remote-Party-ID) in a raw SIP request, if any."""
    head = whole_msg.split("\r\n\r\n", 1)[0]
    found: dict[str, str] = {}
    for line in head.splitlines()[1:]:
        match = _HEADER.match(line)
        if match:
            name = match.group("name").lower()
            found.setdefault(name, match.group("value"))
    return next((found[name] for name in _ASSERTED if name in found), None)


def to_e164(user: str | None, region: str = REGION) -> str | None:
    """A caller's number in E.164 (+8613800001001), or None when it is no phone number."""
    if not user:
        return None
    digits = user.strip()
    if digits.lower() in _PRIVACY_ANONYMOUS:
        return None
    # Only dialable characters; SIP user names such as "caller" are no numbers.
    if not re.fullmatch(r"\+?[\d\-\s().]{3,}", digits):
        return None
    try:
        number = phonenumbers.parse(digits, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def caller_number(remote_uri: str, whole_msg: str = "") -> str | None:
    """The caller's E.164 number: the asserted identity if present, else the From URI."""
    for candidate in (asserted_uri(whole_msg) if whole_msg else None, remote_uri):
        if candidate:
            number = to_e164(uri_user(candidate))
            if number:
                return number
    return None


class CallerHasher:
    """Keyed hashes of numbers for the call log: same number, same tag, never the number."""

    def __init__(self, key: str | None = None) -> None:
        self._key = (key or secrets.token_hex(16)).encode()

    def tag(self, number: str | None) -> str:
        """A short stable tag for a number ("anonymous" when there is none)."""
        if not number:
            return "anonymous"
        digest = hmac.new(self._key, number.encode(), hashlib.sha256).digest()
        return letters(digest, 12)


def letters(data: bytes, count: int) -> str:
    """Bytes as lowercase letters only: log redaction masks long digit runs, so ids have none."""
    value = int.from_bytes(data, "big")
    out = []
    for _ in range(count):
        value, index = divmod(value, 26)
        out.append(string.ascii_lowercase[index])
    return "".join(out)
