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
from typing import Any

import orjson

from bulkops._sqlite import marks
from bulkops.errors import CheckpointError, ConfigError
from bulkops.store._db import connect
from bulkops.store._lock import RunLock
from bulkops.store._store import OUTCOMES, RunInfo

__all__ = [
    "RunElsewhere",
    "SentElsewhere",
    "databases_of_run",
    "note_run",
    "runs_elsewhere",
    "sends_elsewhere",
    "settle_elsewhere",
    "settle_rows",
]

log = logging.getLogger("bulkops")

_PLAN = ".plan-"  # a plan's scratch database (bulkops.store._scratch): never a run to point at
_UNSETTLED = ("unknown", "sending")  # sent, and never found out whether it landed


@dataclass(frozen=True, slots=True)
class SentElsewhere:
    """A send of a run in another database whose outcome that run never learnt."""

    db: Path
    live: bool  # that database's run is working now: its ``sending`` may still be in flight
    run_id: str
    device_id: str
    action: str
    sent_at: float


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


def sends_elsewhere(
    index: Path,
    here: Path,
    *,
    tenant: str,
    actions: tuple[str, ...],
    since: float,
    states: tuple[str, ...] = _UNSETTLED,
    hold: list[RunLock] | None = None,
    lock: bool = True,
) -> list[SentElsewhere]:
    """Sends of ``actions`` since ``since`` by runs of ``tenant`` in the indexed databases other
    than ``here``, in ``states`` (by default those whose outcome they never learnt).

    Each database is read under its run lock, so that no run of it sends meanwhile; one whose
    lock a process holds is ``live`` (read as it is). With ``hold``, the locks of the databases
    that had such sends stay taken, appended there for the caller to release once it has
    checked and settled them; the others are let go at once. Without ``lock`` (a plan, which
    writes nothing anywhere) the lock is only probed. Reading writes nothing either: no schema,
    and no -wal/-shm files unless a log of unsaved writes is there already. A database that
    cannot be read is said in a warning line, never passed over in silence.
    """
    mine = here.resolve()
    found: list[SentElsewhere] = []
    for db in dict.fromkeys(
        Path(where)
        for entry in _entries(index)
        if entry.get("tenant") == tenant and isinstance(where := entry.get("db"), str)
    ):
        if db == mine or _PLAN in db.name or not _touched_since(db, since):
            continue
        run_lock, rows = RunLock(db), []
        try:
            if lock:
                run_lock.acquire()
                live = False
            else:
                live = run_lock.in_use()
        except ConfigError:  # a process holds it: a run of it, a plan, another run's check
            live = True
        except OSError as exc:
            _cannot_check(db, tenant, exc.strerror)
            continue
        try:
            rows = _sent_in(db, tenant, actions, since, states, still=not live)
        finally:
            if live or hold is None or not rows:
                run_lock.release()
            else:
                hold.append(run_lock)
        found += [SentElsewhere(db, live, *row) for row in rows]
    return found


def settle_rows(
    conn: sqlite3.Connection,
    *,
    tenant: str,
    device_id: str,
    action: str,
    since: float,
    landed: bool,
    note: str,
    besides: str = "",
) -> None:
    """Write on the unsettled rows of this device and action, sent since ``since`` (what a
    check of the device covered) by runs of ``tenant`` other than ``besides``, what the check
    found, so that no later run checks them (and skips its own rows) again."""
    state = "succeeded" if landed else "failed"
    conn.execute(
        "UPDATE items SET state = ?, error = ? WHERE device_id = ? AND action = ?"
        f" AND state IN ({marks(_UNSETTLED)}) AND sent_at >= ? AND run_id != ?"
        " AND run_id IN (SELECT run_id FROM runs WHERE tenant = ?)",
        (state, note, device_id, action, *_UNSETTLED, since, besides, tenant),
    )


def settle_elsewhere(db: Path, **found: Any) -> None:
    """``settle_rows`` in another database, whose lock the caller holds. Best effort: a log
    line if it cannot."""
    try:
        conn = connect(db)
    except CheckpointError as exc:
        log.warning("could not note what the check found in %s (%s)", db, exc)
        return
    try:
        settle_rows(conn, **found)
    except sqlite3.Error as exc:
        log.warning("could not note what the check found in %s (%s)", db, exc)
    finally:
        conn.close()


_SAID: set[Path] = set()  # databases already said unreadable by this process


def _cannot_check(db: Path, tenant: str, why: object) -> None:
    if db not in _SAID:
        _SAID.add(db)
        log.warning("could not check %s for sends of %s left unsettled (%s)", db, tenant, why)


def _unsaved(db: Path) -> bool:
    """Whether the database's write-ahead log holds writes not yet copied into it."""
    try:
        return Path(f"{db}-wal").stat().st_size > 0
    except OSError:
        return False


def _touched_since(db: Path, since: float) -> bool:
    """Whether the database changed since ``since``: its file, or a write-ahead log holding
    writes not yet copied back (an empty one is only what a reader left)."""
    stamps = []
    with contextlib.suppress(OSError):
        stamps.append(db.stat().st_mtime)
    with contextlib.suppress(OSError):
        wal = Path(f"{db}-wal").stat()
        if wal.st_size:
            stamps.append(wal.st_mtime)
    return bool(stamps) and max(stamps) >= since


def _sent_in(
    db: Path,
    tenant: str,
    actions: tuple[str, ...],
    since: float,
    states: tuple[str, ...],
    *,
    still: bool,
) -> list[tuple[str, str, str, float]]:
    """``(run, device, action, last sent at)`` of one database's sends in ``states``, read
    only; as a plain file when it is ``still`` (nobody writes it) and its log is empty."""
    try:
        conn = connect(db, readonly=True, immutable=still and not _unsaved(db))
    except CheckpointError as exc:  # damaged, another version: said, then passed over
        _cannot_check(db, tenant, exc)
        return []
    sql = (
        "SELECT items.run_id, device_id, action, max(sent_at) FROM items"
        " JOIN runs ON runs.run_id = items.run_id"
        f" WHERE runs.tenant = ? AND action IN ({marks(actions)})"
        f" AND state IN ({marks(states)}) AND sent_at >= ?"
        " AND device_id IS NOT NULL GROUP BY device_id, action"
    )
    try:
        return [
            (str(r), str(d), str(a), float(t))
            for r, d, a, t in conn.execute(sql, (tenant, *actions, *states, since))
        ]
    except sqlite3.Error as exc:
        _cannot_check(db, tenant, exc)
        return []
    finally:
        conn.close()


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
        (done,) = conn.execute(
            f"SELECT count(*) FROM items WHERE run_id = ? AND state IN ({marks(OUTCOMES)})",
            (run_id, *OUTCOMES),
        ).fetchone()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    return RunElsewhere(db, run_id, str(row[0]), int(done), int(row[1]))
