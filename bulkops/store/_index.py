"""Where each run's checkpoint database is, so that a command typed in another folder finds it.

The default ``--db`` is ``bulkops.db`` in the current folder. The same command typed elsewhere
(a new Terminal tab in ``$HOME``, a cron job) opens another database, knows nothing of the run,
and would send every row again, locks and erases included. So each new run adds one line to
``runs.jsonl`` in the state folder (beside the budget's send history): its database, id, tenant
and manifest hash. A new run of the same content for the same tenant looks there first.

The index is a convenience on top of the databases, never the truth: a line whose database or
run is gone, or cannot be read, is passed over, and failing to write a line never stops a run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from bulkops.errors import CheckpointError
from bulkops.store._db import connect
from bulkops.store._store import OUTCOMES, RunInfo

__all__ = ["RunElsewhere", "databases_of_run", "note_run", "runs_elsewhere"]

log = logging.getLogger("bulkops")

_PLAN = ".plan-"  # a plan's scratch database (bulkops.store._scratch): never a run to point at


@dataclass(frozen=True, slots=True)
class RunElsewhere:
    """A run of the same content and tenant, recorded in another database."""

    db: Path
    run_id: str
    status: str
    done: int
    total: int


def note_run(index: Path, db: Path, run: RunInfo) -> None:
    """Add ``run`` of database ``db`` to the index (one appended line, 0600)."""
    line = orjson.dumps(
        {
            "db": str(db.resolve()),
            "run_id": run.run_id,
            "tenant": run.tenant,
            "sha256": run.manifest_sha256,
        }
    )
    try:
        index.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(index, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line + b"\n")  # one write of one short line: never interleaved
        finally:
            os.close(fd)
    except OSError as exc:
        log.warning("could not note run %s in %s (%s)", run.run_id, index, exc.strerror)


def runs_elsewhere(index: Path, db: Path, *, sha256: str, tenant: str) -> list[RunElsewhere]:
    """Runs of this content and tenant in databases other than ``db``, newest first."""
    here = db.resolve()
    seen: set[tuple[str, str]] = set()
    found = []
    for entry in reversed(list(_entries(index))):
        where, run_id = entry.get("db"), entry.get("run_id")
        if entry.get("sha256") != sha256 or entry.get("tenant") != tenant:
            continue
        if not isinstance(where, str) or not isinstance(run_id, str):
            continue
        if Path(where) == here or (where, run_id) in seen or _PLAN in Path(where).name:
            continue
        seen.add((where, run_id))
        run = _read(Path(where), run_id)
        if run is not None:
            found.append(run)
    return found


def databases_of_run(index: Path, run_id: str) -> list[Path]:
    """The databases, still there, that the index says hold a run whose id starts so."""
    found: list[Path] = []
    for entry in _entries(index):
        where, rid = entry.get("db"), entry.get("run_id")
        if not (isinstance(where, str) and isinstance(rid, str) and rid.startswith(run_id)):
            continue
        if Path(where) not in found and Path(where).is_file():
            found.append(Path(where))
    return found


def _entries(index: Path) -> Iterator[dict[str, object]]:
    try:
        with index.open("rb") as fh:
            for line in fh:
                with contextlib.suppress(orjson.JSONDecodeError):
                    value = orjson.loads(line)
                    if isinstance(value, dict):
                        yield value
    except OSError:
        return


def _read(db: Path, run_id: str) -> RunElsewhere | None:
    """The run's state in its own database (read only), or ``None`` if it cannot be read."""
    if not db.is_file():
        return None
    try:
        conn = connect(db, readonly=True)
    except CheckpointError:  # gone, damaged, another version: not ours to judge here
        return None
    try:
        row = conn.execute("SELECT status, total FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            return None
        marks = ", ".join("?" * len(OUTCOMES))
        (done,) = conn.execute(
            f"SELECT count(*) FROM items WHERE run_id = ? AND state IN ({marks})",
            (run_id, *OUTCOMES),
        ).fetchone()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    return RunElsewhere(db, run_id, str(row[0]), int(done), int(row[1]))
