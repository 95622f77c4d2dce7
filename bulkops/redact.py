"""Secrets out of every line bulkops writes: logs, error messages, debug output.

Two nets.  A pattern net removes whatever follows ``Authorization:`` or ``Bearer`` (any value,
even one we never loaded).  A value net removes each secret the process has registered with
:func:`remember` (the API token, wherever it was found), in whatever context it turns up.

:class:`RedactingFilter` applies both to a log record (its message, arguments and traceback are
rendered and scrubbed once, on the way in); :class:`RedactingFormatter` scrubs the final text of
a handler.  The CLI puts both on the ``bulkops`` logger; the library itself never configures
logging.
"""

from __future__ import annotations

import logging
import re
import threading

__all__ = ["MASK", "RedactingFilter", "RedactingFormatter", "forget_all", "redact", "remember"]

MASK = "<redacted>"

_AUTH = re.compile(
    r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)(?:(bearer|token|basic)\s+)?[^\s,;\"'}\]]+"
)
# A value after "Bearer" is masked when it could be a token (8 characters or more, as for
# ``remember``) and "bearer" is a word of its own, not part of a path: "the bearer token was
# refused" and "/etc/bearer does not exist" keep every word.
_BEARER = re.compile(r"(?i)(?<![\w./\\-])(bearer\s+)[^\s,;\"'}\]]{8,}")

_lock = threading.Lock()
_secrets: frozenset[str] = frozenset()


def remember(secret: str) -> None:
    """Scrub ``secret`` from everything :func:`redact` sees from now on (short values ignored)."""
    global _secrets
    secret = secret.strip()
    if len(secret) < 8:  # a short value would mask ordinary text; tokens are 36 characters
        return
    with _lock:
        _secrets = _secrets | {secret}


def forget_all() -> None:
    """Drop every remembered secret (tests)."""
    global _secrets
    with _lock:
        _secrets = frozenset()


def redact(text: str) -> str:
    """``text`` with remembered secrets and ``Authorization``/``Bearer`` values masked."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    text = _AUTH.sub(lambda m: m.group(1) + (f"{m.group(2)} " if m.group(2) else "") + MASK, text)
    return _BEARER.sub(lambda m: m.group(1) + MASK, text)


class RedactingFilter(logging.Filter):
    """Renders a record's message (and traceback) once, scrubbed; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what we can show safely
            message = f"{record.msg!s} (unformattable arguments)"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class RedactingFormatter(logging.Formatter):
    """A formatter whose output is scrubbed as a whole (the last net before the file)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
