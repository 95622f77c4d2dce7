"""Reports: per-device results, a summary, a manifest of what to re-run, and the PINs apart.

Written by streaming the store's rows, so a million-item run needs no more memory than a small
one.  Every file is created 0600 in a 0700 folder; CSVs are UTF-8 with a BOM and CRLF so Excel
and Numbers open them as they are, and a cell that a spreadsheet would run as a formula is
prefixed with an apostrophe (our own manifest reader takes that prefix off again).
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from bulkops.actions import ACTIONS, SECRET_NOT_READ
from bulkops.errors import ConfigError, RunAborted
from bulkops.store import RunInfo, Store
from bulkops.summary import Summary, failure_kind, iso, not_applied, summarize

__all__ = [
    "ReportPaths",
    "check_folder",
    "claim_folder",
    "neutralise",
    "neutralised_sql",
    "write_reports",
]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CLEAR_MARKER = "CLEAR!"
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


@dataclass(frozen=True, slots=True)
class ReportPaths:
    """Where each report went."""

    folder: Path
    results_csv: Path
    results_jsonl: Path
    summary_json: Path
    failed_csv: Path | None
    secrets_csv: Path | None


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


_OWNER = ".bulkops-run"  # the id of the run whose reports a folder holds
_REPORT_FILES = ("results.csv", "results.jsonl", "summary.json", "failed.csv", "secrets.csv")


def folder_owner(folder: Path) -> str | None:
    """The run whose reports ``folder`` holds; ``""`` when it holds report files of no known
    run (written by hand, or by a version that left no mark); ``None`` when it holds none."""
    try:
        return (folder / _OWNER).read_text(encoding="utf-8-sig").strip() or ""
    except (FileNotFoundError, NotADirectoryError):  # no mark, or no folder: said when written
        pass
    except OSError:
        return ""
    try:
        owner = orjson.loads((folder / "summary.json").read_bytes()).get("run_id")
        return owner if isinstance(owner, str) else ""
    except (OSError, orjson.JSONDecodeError, AttributeError):
        pass
    return "" if any((folder / name).exists() for name in _REPORT_FILES) else None


def check_folder(folder: Path, run_id: str) -> None:
    """Refuse a report folder that holds other reports: writing there would replace them, and
    a ``secrets.csv`` holds PINs that are nowhere else once it has them."""
    owner = folder_owner(folder)
    if owner is None or owner == run_id:
        return
    whose = f"the reports of run {owner}" if owner else "report files of another run"
    raise ConfigError(
        f"{folder} holds {whose}; writing this run's there would replace them (a secrets.csv "
        f"holds lock PINs kept nowhere else): choose another --out, or leave --out out for "
        f"reports/{run_id}/ (nothing was sent)"
    )


def claim_folder(folder: Path, run_id: str) -> None:
    """``check_folder``, then mark the folder as this run's (creating it 0700)."""
    check_folder(folder, run_id)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if folder_owner(folder) != run_id:
        with _private(folder / _OWNER) as fh:
            fh.write(run_id + "\n")


# The rows ``failed.csv`` lists: those that ended without their change. Rows not sent yet are not
# among them: they belong to their run, and its resume sends them.
_UNDONE = ("failed", "unknown")


def write_reports(
    store: Store, run: RunInfo, folder: Path, *, stopped: RunAborted | None = None
) -> tuple[ReportPaths, Summary]:
    """Write every report of ``run`` into ``folder`` (created 0700; an existing one keeps its
    mode, its files are 0600); ``stopped`` is why the pass that just ended stopped early, when
    it did. Refused (``ConfigError``) when the folder holds another run's reports."""
    claim_folder(folder, run.run_id)
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
                if row["state"] in ("succeeded", "failed", "skipped", "unknown", "sending")
                else "pending"
            )
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
                    iso(row["first_sent_at"]),
                    iso(row["done_at"]),
                ]
            )
            record = {k: row[k] for k in ("line", "device_id", "serial_number", "action")}
            record.update(
                outcome=outcome,
                http_status=row["http_status"],
                attempts=row["attempts"],
                error=row["error"],
                params=_masked(row["action"], orjson.loads(row["params"])),
                first_sent_at=iso(row["first_sent_at"]),
                done_at=iso(row["done_at"]),
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
