"""Reports: per-device results, a summary, a manifest of what to re-run, and the PINs apart.

Written by streaming the store's rows, so a million-item run needs no more memory than a small
one.  Every file is created 0600 in a 0700 folder; CSVs are UTF-8 with a BOM and CRLF so Excel
and Numbers open them as they are, and a cell that a spreadsheet would run as a formula is
prefixed with an apostrophe (our own manifest reader takes that prefix off again).
"""

from __future__ import annotations

import csv
import os
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from bulkops.actions import ACTIONS, SECRET_NOT_READ
from bulkops.errors import RunAborted
from bulkops.store import RunInfo, Store

__all__ = [
    "DONE_SKIPS",
    "PERMISSION_MISSING",
    "ReportPaths",
    "Summary",
    "neutralise",
    "neutralised_sql",
    "write_reports",
]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CLEAR_MARKER = "CLEAR!"
MIN_RATE_SPAN_S = 600.0  # the shortest run whose hourly rate summary.json reports
TAG_SEPARATOR = ";"

RESULT_COLUMNS = (
    "line",
    "device_id",
    "serial_number",
    "action",
    "outcome",
    "http_status",
    "attempts",
    "error",
    "first_sent_at",
    "done_at",
)


def neutralise(value: object) -> str:
    """The text of a cell, made safe to open in a spreadsheet."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


def neutralised_sql(column: str) -> str:
    """SQL for ``neutralise(column)`` of a text column, so a million cells cost no Python call."""
    starts = ", ".join(f"char({ord(c)})" for c in _FORMULA_START)
    return (
        f"CASE WHEN substr({column}, 1, 1) IN ({starts}) THEN '''' || {column}"
        f" ELSE coalesce({column}, '') END"
    )


def _iso(ts: float | None) -> str:
    if ts is None:
        return ""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


@dataclass(frozen=True, slots=True)
class ReportPaths:
    """Where each report went."""

    folder: Path
    results_csv: Path
    results_jsonl: Path
    summary_json: Path
    failed_csv: Path | None
    secrets_csv: Path | None


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
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "duration_s": round((self.finished_at or 0) - (self.started_at or 0), 3)
            if self.started_at and self.finished_at
            else None,
            "rate_achieved_per_hour": None if rate is None else round(rate, 1),
        }


@contextmanager
def _private(path: Path, *, text: bool = True) -> Iterator[IO[Any]]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    if text:
        with open(fd, "w", encoding="utf-8-sig", newline="") as fh:
            yield fh
    else:
        with open(fd, "wb") as fh:
            yield fh


def _masked(action: str, params: dict[str, Any]) -> dict[str, Any]:
    """Parameters with secret ones (an erase PIN) replaced by a mask."""
    secret = {p.name for p in ACTIONS[action].params if p.secret}
    return {k: ("******" if k in secret else v) for k, v in params.items()}


def _cell(value: Any) -> str:
    """A parameter value as a manifest cell that our reader reads back to the same value."""
    if value is None:
        return CLEAR_MARKER
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return TAG_SEPARATOR.join(str(v) for v in value) if value else CLEAR_MARKER
    return neutralise(value)


# Reasons (up to their first ':') of skipped rows that still got what they asked for: the device
# was already so, or another row of the manifest sends it. The plan's --strict uses them too.
# A row a run replaced by --new-run already sent (a lock, an erase) is done as well.
ALREADY_SENT = "already sent"
PERMISSION_MISSING = "the API token lacks the permission"  # a 403's error starts so
DONE_SKIPS = ("already in target state", "duplicate", ALREADY_SENT)

# The rows ``failed.csv`` lists: those that ended without their change. Rows not sent yet are not
# among them: they belong to their run, and its resume sends them.
_UNDONE = ("failed", "unknown")


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


def write_reports(
    store: Store, run: RunInfo, folder: Path, *, stopped: RunAborted | None = None
) -> tuple[ReportPaths, Summary]:
    """Write every report of ``run`` into ``folder`` (created 0700); ``stopped`` is why the
    pass that just ended stopped early, when it did."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    paths = ReportPaths(
        folder=folder,
        results_csv=folder / "results.csv",
        results_jsonl=folder / "results.jsonl",
        summary_json=folder / "summary.json",
        failed_csv=None,
        secrets_csv=None,
    )
    retry_params: set[str] = set()
    n_retry = n_secret = n_unread = 0
    outcomes: Counter[str] = Counter()
    unapplied: Counter[str] = Counter()
    failed_by: Counter[str] = Counter()
    with (
        _private(paths.results_csv) as rcsv,
        _private(paths.results_jsonl, text=False) as rjsonl,
    ):
        writer = csv.writer(rcsv)
        writer.writerow(RESULT_COLUMNS)
        for row in store.results(run.run_id):
            outcome = (
                row["state"]
                if row["state"] in ("succeeded", "failed", "skipped", "unknown")
                else "pending"
            )
            outcomes[outcome] += 1
            if outcome == "failed":
                failed_by[failure_kind(row["http_status"], row["error"])] += 1
            writer.writerow(
                [
                    row["line"],
                    neutralise(row["device_id"]),
                    neutralise(row["serial_number"]),
                    row["action"],
                    outcome,
                    row["http_status"] or "",
                    row["attempts"],
                    neutralise(row["error"]),
                    _iso(row["first_sent_at"]),
                    _iso(row["done_at"]),
                ]
            )
            record = {k: row[k] for k in ("line", "device_id", "serial_number", "action")}
            record.update(
                outcome=outcome,
                http_status=row["http_status"],
                attempts=row["attempts"],
                error=row["error"],
                params=_masked(row["action"], orjson.loads(row["params"])),
                first_sent_at=_iso(row["first_sent_at"]),
                done_at=_iso(row["done_at"]),
            )
            rjsonl.write(orjson.dumps(record) + b"\n")
            why = not_applied(outcome, row["error"])
            if why is not None:
                unapplied[why] += 1
            if outcome in _UNDONE or why is not None:
                n_retry += 1
                retry_params.update(orjson.loads(row["params"]))
            if row["secret"]:
                n_secret += 1
            elif outcome == "succeeded" and SECRET_NOT_READ in (row["error"] or ""):
                n_unread += 1
    failed_path, secrets_path = folder / "failed.csv", folder / "secrets.csv"
    failed = _write_failed(store, run, failed_path, sorted(retry_params)) if n_retry else None
    secrets = _write_secrets(store, run, secrets_path) if n_secret else None
    if failed is None and failed_path.exists():
        failed_path.unlink()  # nothing left to re-run
    if secrets is None and secrets_path.exists():
        secrets = secrets_path  # written by an earlier pass; the db no longer holds the PINs
    summary = summarize(
        store,
        run,
        dict(unapplied.most_common()),
        secrets_not_read=n_unread,
        failed_by=dict(failed_by.most_common()),
        stopped=stopped,
    )
    with _private(paths.summary_json, text=False) as fh:
        fh.write(orjson.dumps(summary.as_dict(), option=orjson.OPT_INDENT_2) + b"\n")
    return (
        ReportPaths(
            paths.folder,
            paths.results_csv,
            paths.results_jsonl,
            paths.summary_json,
            failed,
            secrets,
        ),
        summary,
    )


def _write_failed(store: Store, run: RunInfo, path: Path, params: list[str]) -> Path:
    """A manifest of the rows that ended without their change, ready for ``bulkops run``:
    failed, unknown, and skipped as not found, ambiguous or ineligible."""
    with _private(path) as fh:
        writer = csv.writer(fh)
        writer.writerow(["device_id", "serial_number", "action", *params, "note"])
        for row in store.results(run.run_id):
            if row["state"] not in _UNDONE and not_applied(row["state"], row["error"]) is None:
                continue
            values = orjson.loads(row["params"])
            writer.writerow(
                [
                    row["device_id"] or "",
                    neutralise(row["serial_number"]),  # kept: a rerun checks it against the id
                    row["action"],
                    *[_cell(values[p]) if p in values else "" for p in params],
                    neutralise(row["error"]),
                ]
            )
    return path


SECRET_COLUMNS = ("line", "device_id", "serial_number", "action", "secret_kind", "secret")


def _write_secrets(store: Store, run: RunInfo, path: Path) -> Path:
    """The PINs the run was given, 0600, apart from everything else; never one lost.

    The database forgets a PIN once a finished run has written it here, and a later pass (a
    resend of unknown items) may bring new ones: the file keeps every earlier row, the new pass
    adds or updates its own, and the new file replaces the old in one rename.
    """
    rows: dict[int, list[str]] = {}
    if path.exists():
        with path.open(encoding="utf-8-sig", newline="") as fh:
            for old in csv.DictReader(fh):
                if old.get("line", "").isdigit():
                    rows[int(old["line"])] = [old.get(c, "") for c in SECRET_COLUMNS]
    for row in store.results(run.run_id):
        if row["secret"]:
            rows[row["line"]] = [
                str(row["line"]),
                row["device_id"] or "",
                neutralise(row["serial_number"]),
                row["action"],
                ACTIONS[row["action"]].secret_key or "secret",
                row["secret"],
            ]
    partial = path.with_name(path.name + ".partial")
    with _private(partial) as fh:
        writer = csv.writer(fh)
        writer.writerow(SECRET_COLUMNS)
        writer.writerows(rows[line] for line in sorted(rows))
    partial.replace(path)
    return path
