"""The one exception tree of bulkops.

::

    BulkopsError
    ├── ManifestError          a manifest row or file is invalid (nothing was sent)
    │   └── BadRows            several rows are invalid: each one's error, one per line
    ├── ConfigError            an option, credential or tenant setting is invalid
    ├── ApiError               the API could not be used for one request
    │   ├── TransportError     no HTTP response (reset, timeout, DNS…)
    │   ├── BadResponse        a response we could not read (HTML, truncated JSON…)
    │   └── StatusError        an HTTP error status
    │       ├── RateLimited    429 from the gateway
    │       ├── AuthError      401: token invalid, revoked or expired
    │       ├── PermissionDenied  403: the token lacks one route's permission
    │       ├── NotFound       404
    │       └── ServerError    5xx
    ├── CheckpointError        the checkpoint store could not be read or written
    └── RunAborted             the run stopped before its end (resumable)

Third-party exceptions (aiohttp, sqlite3, OSError) are translated at one boundary each:
``bulkops.client`` for HTTP and ``bulkops.store`` for SQLite.
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "AuthError",
    "BadResponse",
    "BadRows",
    "BulkopsError",
    "CheckpointError",
    "ConfigError",
    "ManifestError",
    "NotFound",
    "PermissionDenied",
    "RateLimited",
    "RunAborted",
    "ServerError",
    "StatusError",
    "TransportError",
]


class BulkopsError(Exception):
    """Base of every error bulkops raises on purpose."""


class ManifestError(BulkopsError):
    """A manifest file or row is invalid; carries file, line and column."""

    def __init__(
        self,
        message: str,
        *,
        path: str = "",
        line: int | None = None,
        column: str | None = None,
        hint: str = "",
    ) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.column = column
        self.hint = hint
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """``file:line: column 'x': message (hint)`` — the form users see."""
        where = self.path or "<manifest>"
        if self.line is not None:
            where += f":{self.line}"
        text = f"{where}: "
        if self.column:
            text += f"{self.column}: "
        text += self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


class BadRows(ManifestError):
    """Several rows of one manifest are invalid: each row's error, in file order.

    Its own fields are the first bad row's, so code that reads one error reads the first.
    ``errors`` holds the first few of them, ``count`` every bad row read, and ``stopped_at`` the
    line where reading stopped when there were too many to read on. ``str()`` is one line per
    row and a last line with the count.
    """

    LISTED = 20
    """The most rows one error names; the count says how many more there are."""

    def __init__(
        self, errors: list[ManifestError], *, count: int, stopped_at: int | None = None
    ) -> None:
        first = errors[0]
        super().__init__(
            first.message, path=first.path, line=first.line, column=first.column, hint=first.hint
        )
        self.errors = tuple(errors)
        self.count = count
        self.stopped_at = stopped_at
        self.args = ("\n".join(self.lines()),)

    def lines(self) -> list[str]:
        """One line per listed row, then the count and what to do."""
        total = f"{self.path or '<manifest>'}: {self.count} bad rows"
        if self.stopped_at is not None:
            total += f", reading stopped at line {self.stopped_at}"
        if self.count > len(self.errors):
            total += f"; {len(self.errors)} of them are above"
        return [*(e.one_line() for e in self.errors), total + "; fix them and run again"]


class ConfigError(BulkopsError):
    """An option, credential or tenant setting is invalid."""


class ApiError(BulkopsError):
    """A request to the API failed; carries the route and the device when known."""

    def __init__(self, message: str, *, method: str = "", path: str = "") -> None:
        self.method = method
        self.path = path
        super().__init__(message)


class TransportError(ApiError):
    """No HTTP response arrived; ``maybe_applied`` when the request may have reached the server."""

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        path: str = "",
        maybe_applied: bool = True,
        timed_out: bool = False,
    ) -> None:
        self.maybe_applied = maybe_applied
        self.timed_out = timed_out
        super().__init__(message, method=method, path=path)


class BadResponse(ApiError):
    """The server answered, but the body could not be read as the API promises.

    ``json_cut`` when it said JSON and the JSON was cut short or garbled: the API answered.
    Anything else (an HTML page, plain text, a redirect) may come from something in between.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        method: str = "",
        path: str = "",
        json_cut: bool = False,
    ) -> None:
        self.status = status
        self.json_cut = json_cut
        super().__init__(message, method=method, path=path)


class StatusError(ApiError):
    """The server answered with an error status; ``detail`` is its message."""

    def __init__(self, status: int, detail: str, *, method: str = "", path: str = "") -> None:
        self.status = status
        self.detail = detail
        super().__init__(f"HTTP {status}: {detail}", method=method, path=path)


class RateLimited(StatusError):
    """429: the tenant's window is used up; ``retry_after_s`` when the gateway said."""

    def __init__(
        self, detail: str, *, retry_after_s: float | None, method: str = "", path: str = ""
    ) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(429, detail, method=method, path=path)


class AuthError(StatusError):
    """401: the token is invalid, revoked or expired."""


class PermissionDenied(StatusError):
    """403: the token lacks the permission for this route."""


class NotFound(StatusError):
    """404: the device or path does not exist in the tenant."""


class ServerError(StatusError):
    """5xx: the server failed; retried only for requests safe to repeat."""


class CheckpointError(BulkopsError):
    """The checkpoint store could not be read or written; nothing more is sent."""


class RunAborted(BulkopsError):
    """The run stopped before its end and can be resumed; ``exit_code`` says why."""

    def __init__(self, message: str, *, exit_code: int) -> None:
        self.exit_code = exit_code
        super().__init__(message)
