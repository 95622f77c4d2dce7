"""What handlers return (`Reply`) and the error bodies Kandji's services use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

__all__ = [
    "HTML_NOT_FOUND",
    "NOT_FOUND",
    "Reply",
    "bare_error",
    "detail",
    "empty",
    "field_errors",
    "json_reply",
]

JSON = "application/json"

HTML_NOT_FOUND = (
    b'\n<!doctype html><html lang="en"><head><title>Not Found</title></head><body>'
    b"<h1>Not Found</h1><p>The requested resource was not found on this server.</p>"
    b"</body></html>\n"
)


@dataclass(slots=True)
class Reply:
    """A response plus what the ledger should say about it."""

    status: int
    body: bytes = b""
    content_type: str | None = JSON
    outcome: str = "ok"
    applied: bool = False
    device_id: str | None = None
    action: str | None = None
    pin: str | None = None
    reason: str | None = None
    headers: dict[str, str] | None = None


def _outcome_for(status: int) -> str:
    if status == 404:
        return "not_found"
    return "rejected" if status >= 400 else "ok"


def json_reply(status: int, payload: Any, *, applied: bool = False, **extra: Any) -> Reply:
    """A JSON reply (2xx reads are `ok`, 2xx writes pass `applied=True`)."""
    outcome = "applied" if applied else _outcome_for(status)
    return Reply(status, orjson.dumps(payload), JSON, outcome, applied, **extra)


def empty(status: int = 200, *, applied: bool = True, **extra: Any) -> Reply:
    """An empty-bodied success (actions answer 200 with no body, DELETE 204)."""
    return Reply(status, b"", None, "applied" if applied else "ok", applied, **extra)


def detail(status: int, message: str, **extra: Any) -> Reply:
    """DRF's `{"detail": ...}` envelope."""
    return Reply(
        status,
        orjson.dumps({"detail": message}),
        JSON,
        _outcome_for(status),
        reason=message,
        **extra,
    )


def bare_error(message: str, *, status: int = 400, **extra: Any) -> Reply:
    """A bare JSON string body, as device actions answer (`"Command already running"`)."""
    return Reply(status, orjson.dumps(message), JSON, _outcome_for(status), reason=message, **extra)


def field_errors(errors: dict[str, list[str]], **extra: Any) -> Reply:
    """DRF's field-error body `{"field": ["message"]}` with status 400."""
    first = next(iter(errors.items()))
    return Reply(
        400, orjson.dumps(errors), JSON, "rejected", reason=f"{first[0]}: {first[1][0]}", **extra
    )


NOT_FOUND = "Not found."
