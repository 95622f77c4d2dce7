"""Logging for the command line: warnings on stderr, ``--debug`` request lines, all redacted.

The library logs to the ``bulkops`` logger and never configures it; the CLI does, here.  Every
handler it adds scrubs ``Authorization``/``Bearer`` values and the token in use
(:mod:`bulkops.redact`), and a filter on the logger does so before any handler sees a record.
``--debug`` adds one line per request (method, path, status, duration: the client never logs
headers or bodies) to ``bulkops-debug.log`` beside the database, created 0600, or to stderr.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from bulkops.redact import RedactingFilter, RedactingFormatter

__all__ = ["DEBUG_LOG", "enable_debug", "install"]

DEBUG_LOG = "bulkops-debug.log"
_FORMAT = "%(asctime)s.%(msecs)03dZ %(levelname)s %(message)s"
_DATES = "%Y-%m-%dT%H:%M:%S"

log = logging.getLogger("bulkops")


def install() -> None:
    """Warnings to stderr as one plain line each, redacted (what Python would print, scrubbed)."""
    if not any(isinstance(f, RedactingFilter) for f in log.filters):
        log.addFilter(RedactingFilter())
    if not any(getattr(h, "_bulkops", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setLevel(logging.WARNING)
        handler.setFormatter(RedactingFormatter("%(message)s"))
        handler.addFilter(RedactingFilter())
        handler._bulkops = True  # type: ignore[attr-defined]
        log.addHandler(handler)


def enable_debug(target: Path | None, *, db: Path) -> str:
    """Log every request from now on to ``target`` (``-`` is stderr; default beside ``db``)."""
    install()
    path = target if target is not None else db.parent / DEBUG_LOG
    handler: logging.Handler
    if str(path) == "-":
        handler = logging.StreamHandler(sys.stderr)
        where = "stderr"
        for other in log.handlers:  # warnings go through this handler now: once, not twice
            if getattr(other, "_bulkops", False):
                other.setLevel(logging.CRITICAL + 1)
    else:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.fchmod(fd, 0o600)  # an older log made under another umask becomes ours alone
        os.close(fd)
        handler = logging.FileHandler(path, mode="a", encoding="utf-8")
        where = str(path)
    handler.setLevel(logging.DEBUG)
    formatter = RedactingFormatter(_FORMAT, datefmt=_DATES)
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    handler.addFilter(RedactingFilter())
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    return where
