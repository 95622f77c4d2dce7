"""The HTTP client: one aiohttp session, the budget in front of every request, our errors behind it.

This module is the only place that sees aiohttp exceptions; ``_translate`` maps them to
``TransportError``, and error statuses become the ``StatusError`` family.  A 429 never leaves
``request``: it closes the budget's gate and the request waits its turn again.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import orjson

from bulkops._version import __version__
from bulkops.budget import Budget
from bulkops.errors import (
    AuthError,
    BadResponse,
    ConfigError,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerError,
    StatusError,
    TransportError,
)
from bulkops.retry import backoff_s

__all__ = ["READ_ATTEMPTS", "USER_AGENT", "Connection", "KandjiClient", "Reply", "check_base_url"]

log = logging.getLogger("bulkops")

USER_AGENT = f"bulkops/{__version__}"
# Tries per read: a sweep of 10 pages through 30% of 5xx fails with 3 (~24% of the time), with 5
# it fails ~2% of the time, for at most 6 s more of backoff per read.
READ_ATTEMPTS = 5

Hook = Callable[[], Awaitable[None]]

# The response headers a Reply keeps (looked up, case-insensitively, rather than filtering all).
_KEPT_HEADERS = (
    "X-RateLimit-Limit-Hour",
    "X-RateLimit-Remaining-Hour",
    "X-RateLimit-Limit-Second",
    "X-RateLimit-Remaining-Second",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "Retry-After",
    "X-Total-Count",
)
_JSON_BODY: Mapping[str, str] = {"Content-Type": "application/json"}  # aiohttp copies it


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(url: str) -> str:
    """The base URL without a trailing slash; https required except for loopback."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(
            f"base URL {url!r} is not an http(s) URL (e.g. https://acme.api.kandji.io)"
        )
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigError(
            f"base URL {url!r} uses plain http; only https is allowed (http only for loopback)"
        )
    if parts.path not in ("", "/") or parts.query:
        raise ConfigError(f"base URL {url!r} must be the tenant root, without a path or query")
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True, slots=True)
class Connection:
    """Where and how to reach the tenant. The token never shows in a repr."""

    base_url: str
    token: str = field(repr=False)
    timeout_s: float = 30.0
    connect_timeout_s: float = 10.0
    max_connections: int = 32

    def __repr__(self) -> str:
        return f"Connection(base_url={self.base_url!r}, token=<redacted>)"


@dataclass(frozen=True, slots=True)
class Reply:
    """A successful response: status, the headers we use, and the parsed JSON (or ``None``)."""

    status: int
    data: Any
    headers: Mapping[str, str]


def _detail(status: int, raw: bytes, content_type: str) -> str:
    """A one-line message from any of the API's error envelopes."""
    if not raw:
        return "(empty body)"
    if "json" in content_type:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return raw[:200].decode("utf-8", "replace").strip()
        if isinstance(body, str):
            return body
        if isinstance(body, list):
            return "; ".join(str(x) for x in body)
        if isinstance(body, dict):
            for key in ("detail", "message", "error"):
                if isinstance(body.get(key), str):
                    return str(body[key])
            return "; ".join(
                f"{k}: {' '.join(map(str, v)) if isinstance(v, list) else v}"
                for k, v in body.items()
            )
    text = raw[:200].decode("utf-8", "replace")
    if "<" in text:
        return f"HTTP {status} page ({content_type or 'no content type'})"
    return text.strip().splitlines()[0] if text.strip() else "(empty body)"


def _retry_after_s(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare; the budget then waits for the window's end


def _status_error(
    status: int, detail: str, method: str, path: str, ra: float | None
) -> StatusError:
    if status == 429:
        return RateLimited(detail, retry_after_s=ra, method=method, path=path)
    kinds: dict[int, type[StatusError]] = {401: AuthError, 403: PermissionDenied, 404: NotFound}
    if status in kinds:
        return kinds[status](status, detail, method=method, path=path)
    if status >= 500:
        return ServerError(status, detail, method=method, path=path)
    return StatusError(status, detail, method=method, path=path)


class KandjiClient:
    """Sends requests to one tenant under one budget; use as an async context manager."""

    def __init__(self, connection: Connection, *, budget: Budget) -> None:
        self._conn = connection
        self._budget = budget
        self._session: aiohttp.ClientSession | None = None
        self._rng = random.Random()
        self.rate_limited = 0
        self.answered = False  # an HTTP response came back: the URL and the network are right

    async def __aenter__(self) -> KandjiClient:
        timeout = aiohttp.ClientTimeout(
            total=self._conn.timeout_s, sock_connect=self._conn.connect_timeout_s
        )
        self._session = aiohttp.ClientSession(
            base_url=self._conn.base_url,
            timeout=timeout,
            connector=aiohttp.TCPConnector(limit=self._conn.max_connections),
            headers={
                "Authorization": f"Bearer {self._conn.token}",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            },
            json_serialize=lambda obj: orjson.dumps(obj).decode(),
            raise_for_status=False,
        )
        # aiohttp silently sends a GET or DELETE once more when a reused connection drops: a
        # request the budget never granted, and a DELETE whose first send landed comes back 404
        # as if the device never existed. Whether to send again is the engine's call alone.
        self._session._retry_connection = False
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def budget(self) -> Budget:
        """The budget every request of this client spends."""
        return self._budget

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
        before_send: Hook | None = None,
        after_refusal: Hook | None = None,
    ) -> Reply:
        """Send once the budget allows; wait and send again after a 429.

        ``before_send`` runs after the budget grants the slot and before the bytes leave (the
        engine commits its intent there); ``after_refusal`` runs when a 429 refused the request.
        """
        while True:
            async with self._budget.acquire() as permit:
                if before_send is not None:
                    try:
                        await before_send()
                    except BaseException:
                        # Stopped before the request left: it costs nothing. Best effort: were
                        # the history to fail here, the send stays counted (safe) and the
                        # reason for the stop is what the caller sees.
                        with contextlib.suppress(Exception):
                            permit.unsent()
                        raise
                # Counted in the window it is sent in; a 429 pause that began meanwhile sends
                # it back, unsent, to wait with the others rather than here with its intent.
                if not self._budget.stale(permit) or await self._budget.refresh(permit):
                    try:
                        return await self._send(method, path, json=json, params=params)
                    except RateLimited as exc:
                        self.rate_limited += 1
                        permit.rate_limited(exc.retry_after_s)
                        log.info("429 on %s %s; all requests pause", method, path)
            if after_refusal is not None:
                await after_refusal()

    async def read(
        self,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        attempts: int = READ_ATTEMPTS,
    ) -> Reply:
        """GET with retries: a read is always safe to repeat (5xx, resets, garbled bodies)."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self.request("GET", path, params=params)
            except (TransportError, ServerError, BadResponse) as exc:
                if attempt >= attempts:
                    raise
                if isinstance(exc, TransportError) and exc.timed_out:  # said: it takes a while
                    log.warning(
                        "no answer from the tenant in %g s (GET %s); trying again (%d of %d)",
                        self._conn.timeout_s,
                        path,
                        attempt + 1,
                        attempts,
                    )
                else:
                    log.info("retrying GET %s after %s", path, exc)
                await asyncio.sleep(backoff_s(attempt, rng=self._rng))

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any,
        params: Mapping[str, str | int] | None,
    ) -> Reply:
        assert self._session is not None, "use KandjiClient as an async context manager"
        data = orjson.dumps(json) if json is not None else None
        headers = _JSON_BODY if data is not None else None
        started = time.monotonic()
        try:
            async with self._session.request(  # the API never redirects: a proxy or login
                method, path, data=data, params=params, headers=headers, allow_redirects=False
            ) as resp:
                raw = await resp.read()
                status = resp.status
                ctype = resp.headers.get("Content-Type", "")
                got = resp.headers
                hdrs = {k: v for k in _KEPT_HEADERS if (v := got.get(k)) is not None}
                location = got.get("Location", "") if 300 <= status < 400 else ""
        except Exception as exc:
            error = _translate(exc, method, path)
            _debug_line(method, path, params, error, started)
            raise error from None
        _debug_line(method, path, params, status, started)
        self.answered = True
        self._observe(hdrs)
        if status == 404 and "html" in ctype:
            # The API answers a missing device with JSON; an HTML page comes from something in
            # between (a proxy, a wrong path) and says nothing about the device.
            raise BadResponse(
                "HTML 404 page instead of an API answer", status=404, method=method, path=path
            )
        if 300 <= status < 400:  # never followed: a POST must not land on a sign-in page
            raise BadResponse(
                f"redirected ({status}) to {location[:100] or 'another address'}: the API never "
                "redirects; check --base-url and any proxy or sign-in page in between",
                status=status,
                method=method,
                path=path,
            )
        if status >= 400:
            detail = _detail(status, raw, ctype)
            raise _status_error(
                status, detail, method, path, _retry_after_s(hdrs.get("Retry-After"))
            )
        if not raw:
            if method == "GET":  # every read answers JSON; nothing is not an empty list
                raise BadResponse(
                    "empty body where JSON was due", status=status, method=method, path=path
                )
            return Reply(status, None, hdrs)
        if "json" not in ctype:
            raise BadResponse(
                f"expected JSON, got {ctype or 'no content type'}",
                status=status,
                method=method,
                path=path,
            )
        try:
            return Reply(status, orjson.loads(raw), hdrs)
        except orjson.JSONDecodeError as exc:
            raise BadResponse(
                f"unreadable JSON ({exc.msg} at byte {exc.pos})",
                status=status,
                method=method,
                path=path,
                json_cut=True,
            ) from None

    def _observe(self, headers: Mapping[str, str]) -> None:
        remaining = headers.get("X-RateLimit-Remaining-Hour")
        if remaining is not None and remaining.isdigit():
            reset = headers.get("RateLimit-Reset")
            self._budget.observe(
                remaining_hour=int(remaining),
                reset_s=float(reset) if reset and reset.isdigit() else None,
            )


def _debug_line(
    method: str,
    path: str,
    params: Mapping[str, str | int] | None,
    outcome: object,
    started: float,
) -> None:
    """The request line ``--debug`` shows: never a header (the token) nor a body (PINs)."""
    if log.isEnabledFor(logging.DEBUG):
        shown = f"{path}?{urlencode(params)}" if params else path
        ms = (time.monotonic() - started) * 1000
        log.debug("%s %s -> %s (%.0f ms)", method, shown, outcome, ms)


def _translate(exc: BaseException, method: str, path: str) -> TransportError:
    """Map an aiohttp / OS error to ``TransportError``; says whether the request may have landed."""
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.InvalidURL):
        return TransportError(
            f"cannot connect: {exc.strerror or type(exc).__name__}"
            if isinstance(exc, aiohttp.ClientConnectorError)
            else "invalid URL",
            method=method,
            path=path,
            maybe_applied=False,
        )
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return TransportError(
            "timed out waiting for the response", method=method, path=path, timed_out=True
        )
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return TransportError("server closed the connection", method=method, path=path)
    if isinstance(exc, aiohttp.ClientPayloadError):
        return TransportError("response body cut short", method=method, path=path)
    if isinstance(exc, aiohttp.ClientError | OSError):
        return TransportError(f"connection error: {type(exc).__name__}", method=method, path=path)
    raise exc
