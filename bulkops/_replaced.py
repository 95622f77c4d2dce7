"""Runs that a ``--new-run`` of their manifest replaces, and what they already sent.

An unfinished run of a file is refused a second run of the edited file unless the user passes
``--new-run`` (``job.start_run``).  With it, the new run sends every row of the file as it is
now, so the old run must never be resumed (it would send the same rows again) and the rows it
already sent of an action that must not run twice (a lock, an erase) are not sent again: the new
plan skips them, naming the run that sent them.

Any other new run (``failed.csv`` of a run, another file naming the same devices) may hold rows
whose device an earlier run sent the same such action in the last day with an outcome never
settled (``unknown``, or ``sending`` when it stopped): ``unsettled_sends`` finds them, in this
database and, through the index of runs, in the others (``failed.csv`` run from another folder
gets another ``--db``), and the plan checks each device's commands before it sends.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from bulkops._sqlite import marks
from bulkops.actions import ACTIONS
from bulkops.client import KandjiClient
from bulkops.errors import ConfigError
from bulkops.reconcile import reconcile
from bulkops.store import RunInfo, Store, sends_elsewhere, settle_elsewhere, settle_rows
from bulkops.store._lock import RunLock
from bulkops.summary import ALREADY_SENT

__all__ = [
    "SENT_UNKNOWN",
    "SUPERSEDED",
    "UNSETTLED_LOOKBACK_S",
    "Unsettled",
    "check_unsettled",
    "copy_for_plan",
    "replaced_runs",
    "replacing_run",
    "runs_of_file",
    "sent_by_replaced",
    "sent_lately",
    "supersede",
    "unsettled_sends",
]

log = logging.getLogger("bulkops")

SUPERSEDED = "superseded"  # a run's status once a --new-run of its file replaced it
_SENT = ("succeeded", "unknown", "sending")  # it left, or may have: never again on its own
SENT_UNKNOWN = "sent, outcome unknown"  # the skip reason of a row a replaced run may have sent
_BY = "superseded_by:"  # + a run id: the meta key naming the run that replaced it
_UNSAFE = tuple(name for name, action in ACTIONS.items() if not action.safe_to_repeat)
_UNSETTLED = ("unknown", "sending")  # sent, and never found out whether it landed
UNSETTLED_LOOKBACK_S = 24 * 3600.0  # older sends are other jobs: a lock may be wanted again


def runs_of_file(store: Store, manifest_path: Path, tenant: str) -> list[RunInfo]:
    """Every run started from this manifest file (whatever its content then) on this tenant."""
    here = manifest_path.resolve()
    return [
        r for r in store.runs() if r.tenant == tenant and Path(r.manifest_path).resolve() == here
    ]


def replacing_run(store: Store, run_id: str) -> str | None:
    """The run that replaced ``run_id``, if one did."""
    return store.meta(_BY + run_id)


def replaced_runs(store: Store, run: RunInfo) -> list[RunInfo]:
    """The other runs of this file on this tenant that ``run`` replaces: the unfinished ones,
    and every run replaced before by one of those or by ``run`` itself (a chain of --new-run)."""
    mine = [
        other
        for other in runs_of_file(store, Path(run.manifest_path), run.tenant)
        if other.run_id != run.run_id
    ]
    replaced_by: dict[str, list[RunInfo]] = {}
    for other in mine:
        if other.status == SUPERSEDED:
            replaced_by.setdefault(replacing_run(store, other.run_id) or "", []).append(other)
    out = [other for other in mine if other.status not in ("done", SUPERSEDED)]
    todo = [run.run_id, *(other.run_id for other in out)]
    while todo:
        for other in replaced_by.pop(todo.pop(), []):
            out.append(other)
            todo.append(other.run_id)
    return out


def supersede(store: Store, run: RunInfo) -> None:
    """Mark the runs ``run`` replaces, once it is approved: none of them resumes again."""
    for other in replaced_runs(store, run):
        if other.status == SUPERSEDED:
            continue
        store.set_meta(_BY + other.run_id, run.run_id)
        store.set_run(other.run_id, status=SUPERSEDED)
        log.warning(
            "run %s of %s (%s) is replaced by this run: it will not be resumed",
            other.run_id,
            run.manifest_path,
            other.status,
        )


def copy_for_plan(source: Store, scratch: Store, run: RunInfo) -> None:
    """Into a plan's scratch store: the other runs of ``run``'s file and what they sent of the
    actions that must not run twice, and the tenant's recent unsettled sends of such actions,
    so that the plan skips and checks the rows its run would."""
    mine = [r.run_id for r in runs_of_file(source, Path(run.manifest_path), run.tenant)]
    others = [r.run_id for r in source.runs() if r.tenant == run.tenant and r.run_id not in mine]
    by = [(_BY + r, value) for r in mine if (value := replacing_run(source, r)) is not None]
    columns = "run_id, line, device_id, serial_number, action, params, state, sent_at"
    since = time.time() - UNSETTLED_LOOKBACK_S
    src, dst = source._conn, scratch._conn
    with scratch._sql("copy the earlier runs of this tenant into the plan's database"):
        for runs, states, after in ((mine, _SENT, None), (others, _UNSETTLED, since)):
            if not runs:
                continue
            rows = src.execute(f"SELECT * FROM runs WHERE run_id IN ({marks(runs)})", runs)  # noqa: S608
            got = rows.fetchall()
            dst.executemany(f"INSERT INTO runs VALUES ({marks(got[0])})", got)  # noqa: S608
            sent = src.execute(
                f"SELECT {columns} FROM items WHERE run_id IN ({marks(runs)})"  # noqa: S608
                f" AND action IN ({marks(_UNSAFE)}) AND state IN ({marks(states)})"
                " AND (? IS NULL OR sent_at >= ?)",  # never a secret
                (*runs, *_UNSAFE, *states, after, after),
            )
            into = f"INSERT INTO items ({columns}) VALUES ({marks(columns.split(','))})"  # noqa: S608
            dst.executemany(into, sent)
        dst.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", by)


@dataclass(frozen=True, slots=True)
class Unsettled:
    """A pending row whose device an earlier run sent the same action that must not run twice,
    in the last :data:`UNSETTLED_LOOKBACK_S`, and never learnt whether it landed."""

    line: int
    action: str
    device_id: str
    run_id: str  # the earlier run
    sent_at: float
    db: Path | None = None  # the earlier run's database when not this one
    live: bool = False  # a process holds that database: its send may still be in flight

    @property
    def earlier(self) -> str:
        where = f" (--db {self.db})" if self.db is not None else ""
        return f"run {self.run_id}{where}"


def unsettled_sends(
    store: Store,
    run: RunInfo,
    index: Path | None = None,
    *,
    since: float | None = None,
    hold: list[RunLock] | None = None,
) -> list[Unsettled]:
    """The pending rows of ``run`` an earlier run of its tenant may already have sent (since
    ``since``, by default :data:`UNSETTLED_LOOKBACK_S` ago): found in this database, and in the
    others ``index`` (the runs index) names, whose locks go to ``hold`` (see
    ``sends_elsewhere``)."""
    sql = (
        "SELECT new.line, new.action, new.device_id, old.run_id, max(old.sent_at)"  # noqa: S608 (placeholders only)
        " FROM items AS new JOIN items AS old"
        " ON old.device_id = new.device_id AND old.action = new.action"
        " JOIN runs ON runs.run_id = old.run_id"
        f" WHERE new.run_id = ? AND new.state = 'pending' AND new.action IN ({marks(_UNSAFE)})"
        f" AND old.run_id != new.run_id AND old.state IN ({marks(_UNSETTLED)})"
        " AND old.sent_at >= ? AND runs.tenant = ? GROUP BY new.line ORDER BY new.line"
    )
    since = time.time() - UNSETTLED_LOOKBACK_S if since is None else since
    args = (run.run_id, *_UNSAFE, *_UNSETTLED, since, run.tenant)
    found = {row[0]: Unsettled(*row) for row in store._conn.execute(sql, args)}
    if index is None:
        return list(found.values())
    wanted: dict[tuple[str, str], list[int]] = {}
    for line, device_id, action in _pending_unsafe(store, run):
        if line not in found:
            wanted.setdefault((device_id, action), []).append(line)
    if not wanted:  # no other database is opened for a run with nothing to check
        return list(found.values())
    elsewhere = sends_elsewhere(
        index,
        store.origin,
        tenant=run.tenant,
        actions=_UNSAFE,
        since=since,
        hold=hold,
        lock=not store.scratch,  # a plan takes no lock: it writes nothing anywhere
    )
    for sent in sorted(elsewhere, key=lambda s: s.sent_at):  # the latest send wins
        for line in wanted.get((sent.device_id, sent.action), ()):
            found[line] = Unsettled(
                line, sent.action, sent.device_id, sent.run_id, sent.sent_at, sent.db, sent.live
            )
    return sorted(found.values(), key=lambda u: u.line)


async def check_unsettled(
    store: Store, run: RunInfo, client: KandjiClient, *, index: Path | None = None
) -> list[tuple[int, tuple[str, str | None]]]:
    """``(line, (skip reason, secret))`` of the rows not to send: an earlier run (in this
    database, or in another one ``index`` names) sent their device the same action that must
    not run twice, never learnt whether it landed, and the device's commands show it did (or
    cannot be read). One read per such row; the others send.

    The other databases stay locked from their reading to the writing back of what the check
    found, so none of their runs resumes meanwhile. Refused (``ConfigError``) while another
    process holds one of them: its sends may be in flight, and the devices cannot tell yet.
    """
    since = time.time() - UNSETTLED_LOOKBACK_S
    held: list[RunLock] = []
    try:
        rows = await store.call(unsettled_sends, store, run, index, since=since, hold=held)
        if live := [row for row in rows if row.live]:
            first = live[0]
            raise ConfigError(
                f"{first.db} is in use by another bulkops process, and its run {first.run_id} "
                f"sent {first.action} to {len(live)} device{'s' if len(live) > 1 else ''} of "
                "this manifest without learning whether it landed; let that process finish, "
                "then run this again (nothing was sent)"
            )
        return [skip for row in rows if (skip := await _check(store, run, client, row, since))]
    finally:
        for lock in held:
            lock.release()


async def _check(
    store: Store, run: RunInfo, client: KandjiClient, row: Unsettled, since: float
) -> tuple[int, tuple[str, str | None]] | None:
    """Read the device of one unsettled row: the row's skip, or ``None`` to send it."""
    name, old = row.action, row.earlier
    verdict = await reconcile(client, ACTIONS[name], device_id=row.device_id, sent_at=row.sent_at)
    earlier = f"{old} sent {name} to this device and did not learn whether it landed"
    found = verdict.detail.removeprefix("outcome unknown: ")
    if not verdict.checked:  # not known either way: never sent blindly
        db = f" --db {row.db}" if row.db is not None else ""
        why = (
            f"{SENT_UNKNOWN}: {earlier}; {found}; check the device, or send it again with "
            f"`bulkops resume {row.run_id} --resend-unknown{db}`"
        )
        return row.line, (why, None)
    landed = verdict.state == "succeeded"
    settled = {
        "tenant": run.tenant,
        "device_id": row.device_id,
        "action": name,
        "since": since,
        "landed": landed,
    }
    if row.db is None:
        note = f"{found}, when run {run.run_id} checked the device"
        await store.call(settle_rows, store._conn, **settled, note=note, besides=run.run_id)
    elif not store.scratch:  # a plan keeps nothing, in any database
        note = f"{found}, when run {run.run_id} (--db {store.origin.resolve()}) checked the device"
        await store.call(settle_elsewhere, row.db, **settled, note=note)
    if not landed:
        return None
    return row.line, (f"{ALREADY_SENT}: {earlier}; {verdict.detail}", verdict.secret)


def _pending_unsafe(store: Store, run: RunInfo) -> list[tuple[int, str, str]]:
    """``(line, device, action)`` of the run's pending rows of actions that must not run twice."""
    return store._conn.execute(
        "SELECT line, device_id, action FROM items WHERE run_id = ? AND state = 'pending'"  # noqa: S608 (placeholders only)
        f" AND device_id IS NOT NULL AND action IN ({marks(_UNSAFE)})",
        (run.run_id, *_UNSAFE),
    ).fetchall()


def sent_lately(
    store: Store, run: RunInfo, index: Path | None = None
) -> dict[str, tuple[list[str], int]]:
    """Per action that must not run twice: the runs of the tenant (here, and in the databases
    ``index`` names) that sent it successfully in the last :data:`UNSETTLED_LOOKBACK_S` to a
    device this run is about to send it to, and how many such devices."""
    since = time.time() - UNSETTLED_LOOKBACK_S
    pending = {(device_id, action) for _, device_id, action in _pending_unsafe(store, run)}
    if not pending:
        return {}
    # A plan's scratch database holds copies of a few earlier rows: it reads the real one.
    sent: list[tuple[str, str, str]] = []
    if not store.scratch:
        sent += store._conn.execute(
            "SELECT device_id, action, items.run_id FROM items JOIN runs"  # noqa: S608 (placeholders only)
            " ON runs.run_id = items.run_id WHERE items.run_id != ? AND runs.tenant = ?"
            f" AND action IN ({marks(_UNSAFE)}) AND state = 'succeeded' AND sent_at >= ?",
            (run.run_id, run.tenant, *_UNSAFE, since),
        )
    if index is not None:
        here, origin = (store.path if store.scratch else store.origin), store.origin.resolve()
        for e in sends_elsewhere(
            index,
            here,
            tenant=run.tenant,
            actions=_UNSAFE,
            since=since,
            states=("succeeded",),
            lock=not store.scratch,
        ):
            sent.append(
                (e.device_id, e.action, e.run_id if e.db == origin else f"{e.run_id} (--db {e.db})")
            )
    runs: dict[str, dict[str, None]] = {}
    devices: dict[str, set[str]] = {}
    for device_id, action, old in sent:
        if (device_id, action) in pending:
            runs.setdefault(action, {})[old] = None
            devices.setdefault(action, set()).add(device_id)
    return {action: (list(olds), len(devices[action])) for action, olds in runs.items()}


def sent_by_replaced(store: Store, run: RunInfo) -> list[tuple[int, str]]:
    """``(line, reason)`` of the pending rows whose device a replaced run already sent the same
    action that must not run twice."""
    replaced = [r.run_id for r in replaced_runs(store, run)]
    if not replaced:
        return []
    in_unsafe, in_replaced, in_sent = marks(_UNSAFE), marks(replaced), marks(_SENT)
    sql = (
        "SELECT new.line, new.action, old.run_id, old.state FROM items AS new"  # noqa: S608 (placeholders only)
        " JOIN items AS old ON old.device_id = new.device_id AND old.action = new.action"
        f" WHERE new.run_id = ? AND new.state = 'pending' AND new.action IN ({in_unsafe})"
        f" AND old.run_id IN ({in_replaced}) AND old.state IN ({in_sent}) ORDER BY new.line"
    )
    rows = store._conn.execute(sql, (run.run_id, *_UNSAFE, *replaced, *_SENT))
    found: dict[int, str] = {}
    for line, action, old_run, state in rows:
        if state == "succeeded":
            why = (
                f"{ALREADY_SENT}: run {old_run}, which this run replaces, sent {action} to this "
                "device and it succeeded; it must not run twice, so it is not sent again"
            )
        else:  # it left, or may have: whether it landed is not known, so not done either
            why = (
                f"{SENT_UNKNOWN}: run {old_run}, which this run replaces, sent {action} to this "
                f"device and its outcome is {state}; check the device, and to send it again "
                "run a manifest of this row"
            )
        if line not in found or state == "succeeded":
            found[line] = why
    return list(found.items())
