"""A run in numbers: its outcomes, what was not applied and why, and how the pass ended.

``summary.json`` is this, and so is the summary the CLI prints at the end of a run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from bulkops.errors import RunAborted
from bulkops.store import RunInfo, Store

__all__ = [
    "ALREADY_SENT",
    "DONE_SKIPS",
    "MIN_RATE_SPAN_S",
    "PERMISSION_MISSING",
    "Summary",
    "failure_kind",
    "iso",
    "not_applied",
    "summarize",
]

MIN_RATE_SPAN_S = 600.0  # the shortest run whose hourly rate summary.json reports

# Reasons (up to their first ':') of skipped rows that still got what they asked for: the device
# was already so, or another row of the manifest sends it. The plan's --strict uses them too.
# A row a run replaced by --new-run already sent (a lock, an erase) is done as well.
ALREADY_SENT = "already sent"
PERMISSION_MISSING = "the API token lacks the permission"  # a 403's error starts so
DONE_SKIPS = ("already in target state", "duplicate", ALREADY_SENT)


def iso(ts: float | None) -> str:
    """A Unix time as the UTC ISO 8601 the reports use; ``""`` for none."""
    if ts is None:
        return ""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


@dataclass(frozen=True, slots=True)
class Summary:
    """The run in numbers."""

    run_id: str
    tenant: str
    manifest: str
    total: int
    outcomes: dict[str, int]
    not_applied: dict[str, int]  # skipped rows that did not do what they asked, by reason
    requests: int
    rate_limited: int
    started_at: float | None
    finished_at: float | None
    secrets_not_read: int = 0  # applied (a Mac locked), its PIN not read back
    failed_by: dict[str, int] = field(default_factory=dict)  # failed rows, by failure_kind()
    status: str = "done"  # the run's: done, interrupted, aborted…
    stopped: str | None = None  # why the pass that wrote this stopped early, when it did
    stop_code: int | None = None  # its exit code then

    @property
    def exit_code(self) -> int | None:
        """The exit code of the pass that wrote this summary; ``None`` when not known (a
        report written again later of a run that had stopped)."""
        if self.stop_code is not None:
            return self.stop_code
        if self.status != "done":
            return None
        return 1 if self.attention else 0

    @property
    def attention(self) -> int:
        """Rows the admin must look at: not done, or done with their PIN nowhere here."""
        return self.not_done + self.secrets_not_read

    @property
    def not_done(self) -> int:
        """Rows that ended without their change: failed, unknown, or not applied."""
        o = self.outcomes
        return o.get("failed", 0) + o.get("unknown", 0) + sum(self.not_applied.values())

    @property
    def rate_per_hour(self) -> float | None:
        """Requests per hour over the run's wall time; ``None`` for a run under 10 minutes.

        Scaled up from a few seconds, a burst at the per-second ceiling reads as far above the
        tenant's hourly cap, which it never was.
        """
        if not self.started_at or not self.finished_at:
            return None
        elapsed = self.finished_at - self.started_at
        if elapsed < MIN_RATE_SPAN_S:
            return None
        return self.requests * 3600.0 / elapsed

    def as_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready data."""
        rate = self.rate_per_hour
        return {
            "run_id": self.run_id,
            "tenant": self.tenant,
            "manifest": self.manifest,
            "total": self.total,
            "outcomes": self.outcomes,
            "not_applied": self.not_applied,
            "failed_by": self.failed_by,
            "status": self.status,
            "stopped": self.stopped,
            "exit_code": self.exit_code,
            "pins_not_read": self.secrets_not_read,
            "requests": self.requests,
            "rate_limited_429": self.rate_limited,
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "duration_s": round((self.finished_at or 0) - (self.started_at or 0), 3)
            if self.started_at and self.finished_at
            else None,
            "rate_achieved_per_hour": None if rate is None else round(rate, 1),
        }


def not_applied(state: str, error: str | None) -> str | None:
    """Why a skipped row was not applied (``not found``, ``ambiguous``…), or ``None``."""
    if state != "skipped" or not error:
        return None
    reason = error.split(":", 1)[0]
    return None if reason in DONE_SKIPS else reason


def failure_kind(http_status: int | None, error: str | None) -> str:
    """What a failed row's error comes to, to count them: the permission a 403 names, else
    the HTTP status, else the error's first words."""
    text = error or "failed"
    if text.startswith(PERMISSION_MISSING):
        return text.split(";", 1)[0]
    if http_status:
        return f"HTTP {http_status}"
    return text.split(" (", 1)[0].split(";", 1)[0][:60]


def summarize(
    store: Store,
    run: RunInfo,
    unapplied: dict[str, int],
    *,
    secrets_not_read: int = 0,
    failed_by: dict[str, int] | None = None,
    stopped: RunAborted | None = None,
) -> Summary:
    """The summary of a run from the store; ``unapplied`` counts rows not applied, by reason."""
    counts = store.counts(run.run_id)
    return Summary(
        run_id=run.run_id,
        tenant=run.tenant,
        manifest=run.manifest_path,
        total=run.total,
        outcomes={
            k: counts.get(k, 0)
            for k in ("succeeded", "failed", "skipped", "unknown", "pending", "sending")
            if counts.get(k) or k in ("succeeded", "failed", "skipped", "unknown")
        },
        not_applied=unapplied,
        requests=run.requests,
        rate_limited=run.rate_limited,
        started_at=run.started_at,
        finished_at=run.finished_at,
        secrets_not_read=secrets_not_read,
        failed_by=failed_by or {},
        status=run.status,
        stopped=None if stopped is None else str(stopped),
        stop_code=None if stopped is None else stopped.exit_code,
    )
