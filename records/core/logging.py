"""Logging that never writes personal data: phone numbers and identity ids are masked."""

import logging
import re

_PHONE = re.compile(r"(\+?\d[\d\- ]{6,}\d)")
_IDENTITY = re.compile(r"\b(telegram|wechat|phone|web):[^\s\"',/]+")


def redact(text: str) -> str:
    """Mask phone numbers and channel identities in a log message."""
    text = _IDENTITY.sub(lambda m: f"{m.group(1)}:***", text)
    return _PHONE.sub("***", text)


class RedactingFilter(logging.Filter):
    """A filter that redacts every record's rendered message."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the message and its string arguments (formatters may unpack `args`)."""
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def install_redaction() -> None:
    """Attach the redacting filter to the root and uvicorn handlers."""
    for name in ("", "uvicorn", "uvicorn.access", "uvicorn.error"):
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(RedactingFilter())
        logging.getLogger(name).addFilter(RedactingFilter())
