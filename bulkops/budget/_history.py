"""The send ledger: one SQLite file shared by every run on this machine, keyed by tenant.

Two tables. ``sends`` has one row per request sent, kept for the longest window. ``state`` has,
per tenant, one row per window length (the current aligned window's number and count), one
per smoothing bucket (its theoretical arrival time) and, once a 429 has paused the tenant's
requests, one with the pause's end, so a check costs the same whatever the
count (counting ``sends`` rows would cost ~45 µs per 1,000 rows, every acquire). Every run bumps
*every* window row of its tenant, so runs with different rates still count each other's sends;
a window length seen for the first time is seeded by counting ``sends``.

Check-and-record is one ``BEGIN IMMEDIATE`` transaction: it takes SQLite's write lock before
reading, so two processes cannot both read "one left" and both send. ``busy_timeout`` makes the
loser wait (microseconds: the transaction is four statements).

Cheap writes, measured (see benchmarks/bench_budget.py): each commit dirties two pages (the
state row page and the last ``sends`` page; no secondary index), and pages are 1 KiB, so the
WAL grows slowly and checkpoints are rare. ``synchronous=NORMAL`` in WAL mode: a killed
*process* loses nothing; only an OS crash or power loss can lose the last commits. That makes us
undercount the current window after a reboot, which the gateway's 429 and
``X-RateLimit-Remaining-Hour`` correct; ``FULL`` would put an fsync in every acquire. (The
checkpoint store, where a lost commit can mean a resent lock, uses FULL.)
"""

from __future__ import annotations

import math
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bulkops._sqlite import enable_wal
from bulkops.budget._limits import Limits, next_window_start, window_index
from bulkops.errors import CheckpointError

__all__ = ["PausedUntil", "SendHistory", "Sent"]

_VERSION = 1
_SCHEMA = f"""
PRAGMA user_version = {_VERSION};
CREATE TABLE IF NOT EXISTS sends (id INTEGER PRIMARY KEY, tenant TEXT NOT NULL, t REAL NOT NULL);
CREATE TABLE IF NOT EXISTS state (
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,  -- 'window:<period_s>' or a bucket's key
    period_s REAL,  -- a window's length; NULL for a bucket
    idx INTEGER NOT NULL,  -- a window's number (floor(t / period_s)); 0 for a bucket
    value REAL NOT NULL,  -- a window's count, or a bucket's theoretical arrival time
    PRIMARY KEY (tenant, name)) WITHOUT ROWID;
"""
_UPSERT = "INSERT OR REPLACE INTO state (tenant, name, period_s, idx, value) VALUES (?, ?, ?, ?, ?)"

Windows = dict[float, tuple[int, int]]  # period_s -> (window number, count)
_PAUSE = "pause:429"  # the state row holding the end of the latest 429 pause


class PausedUntil(float):
    """When to try again, set by a 429 pause: every run on the tenant waits until then."""


@dataclass(frozen=True, slots=True)
class Sent:
    """One recorded send: row id, time, the rate window's count with it, when the next may go."""

    id: int
    t: float
    window_count: int
    next_at: float  # as far as this process knows: another may have sent since
    until: float  # the first instant in another aligned window (of any length) than ``t``


class SendHistory:
    """The persisted ledger of sends for one tenant (in memory when ``path`` is ``None``)."""

    def __init__(self, path: str | Path | None, *, tenant: str) -> None:
        if not tenant:
            raise ValueError("tenant must not be empty")
        self.path = None if path is None else Path(path)
        self.tenant = tenant
        try:
            self._con = self._connect()
        except (sqlite3.Error, OSError) as exc:
            raise self._error("open", exc) from exc

    def _connect(self) -> sqlite3.Connection:
        if self.path is None:
            con = sqlite3.connect(":memory:", isolation_level=None)
        else:
            # Create the file owner-only before SQLite does (it copies the mode to -wal and -shm).
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            con = sqlite3.connect(self.path, isolation_level=None)
            con.execute("PRAGMA busy_timeout = 5000")
            con.execute("PRAGMA page_size = 1024")  # takes effect on a new file only
            enable_wal(con)
            con.execute("PRAGMA synchronous = NORMAL")
        (version,) = con.execute("PRAGMA user_version").fetchone()
        if version not in (0, _VERSION):
            con.close()
            raise sqlite3.DatabaseError(f"unknown send history version {version}")
        con.executescript(_SCHEMA)
        return con

    def close(self) -> None:
        """Close the database (idempotent)."""
        self._con.close()

    def __enter__(self) -> SendHistory:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SendHistory({str(self.path) if self.path else None!r}, tenant={self.tenant!r})"

    def _error(self, doing: str, exc: Exception) -> CheckpointError:
        where = self.path if self.path is not None else "<memory>"
        return CheckpointError(f"send history {where}: cannot {doing}: {exc}")

    def try_send(self, now: Callable[[], float], limits: Limits) -> Sent | float:
        """Record one send if every window and bucket allows it now, else return when to retry."""
        result = self.try_send_many(now, limits, want=1)
        return result if isinstance(result, float) else result[0]

    def try_send_many(
        self, now: Callable[[], float], limits: Limits, *, want: int
    ) -> list[Sent] | float:
        """Record up to ``want`` sends at once, as many as every window and bucket allows now.

        One transaction for several tasks waiting together: each send is recorded, counted and
        spaced exactly as if recorded one by one at the same instant. Returns when to retry if
        not even one is allowed: a :class:`PausedUntil` while a 429 pause holds.
        """
        # now() is read once the write lock is held, so sends are recorded in time order.
        con = self._con
        try:
            con.execute("BEGIN IMMEDIATE")
            try:
                result = self._check_and_record(con, now(), limits, max(want, 1))
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._error("record a send", exc) from exc
        return result

    def pause(self, until: float) -> None:
        """Pause this tenant's sends, by every run and the next ones, until ``until``: the
        latest 429 is the best word on when the window reopens, so it replaces an earlier one."""
        try:
            self._con.execute(_UPSERT, (self.tenant, _PAUSE, None, 0, until))
        except sqlite3.Error as exc:
            raise self._error("note a 429 pause", exc) from exc

    def paused_until(self) -> float:
        """The end of the latest 429 pause noted for this tenant (``-inf`` if none)."""
        try:
            row = self._con.execute(
                "SELECT value FROM state WHERE tenant = ? AND name = ?", (self.tenant, _PAUSE)
            ).fetchone()
        except sqlite3.Error as exc:
            raise self._error("read the 429 pause", exc) from exc
        return -math.inf if row is None else float(row[0])

    def _check_and_record(
        self, con: sqlite3.Connection, t: float, limits: Limits, want: int
    ) -> list[Sent] | float:
        stored, tats = self._state(con, t, limits)
        paused = tats.get(_PAUSE, -math.inf)  # read with the buckets: no query of its own
        if paused > t:
            return PausedUntil(paused)
        # Every window as of ``t``: one that has ended counts from zero in the current one.
        windows: Windows = {}
        for period_s, (idx, count) in stored.items():
            current = window_index(t, period_s)
            windows[period_s] = (idx, count) if idx >= current else (current, 0)
        retry_at = _earliest(limits, windows, tats)
        if retry_at > t:
            return retry_at

        rate_period = limits.rate_window.period_s
        counts: list[int] = []  # the rate window's count with each send
        while True:
            windows = {period_s: (idx, count + 1) for period_s, (idx, count) in windows.items()}
            for bucket in limits.buckets:
                tats[bucket.key] = bucket.after_send(tats.get(bucket.key, -math.inf), t)
            counts.append(windows[rate_period][1])
            if len(counts) >= want:
                break
            next_at = _earliest(limits, windows, tats)
            if next_at > t:
                break
        con.executemany(
            _UPSERT,
            [(self.tenant, _window_name(p), p, idx, count) for p, (idx, count) in windows.items()]
            + [(self.tenant, b.key, None, 0, tats[b.key]) for b in limits.buckets],
        )
        n = len(counts)
        values = ", ".join(["(?, ?)"] * n)  # placeholders only
        cursor = con.execute(f"INSERT INTO sends (tenant, t) VALUES {values}", (self.tenant, t) * n)  # noqa: S608
        last = cursor.lastrowid
        assert last is not None
        longest = max(windows)
        if windows[longest][0] != stored[longest][0]:  # the longest window rolled over
            con.execute("DELETE FROM sends WHERE tenant = ? AND t < ?", (self.tenant, t - longest))
        next_at = _earliest(limits, windows, tats)
        until = min(next_window_start(idx, p) for p, (idx, _) in windows.items())
        # Row ids of one multi-row INSERT inside a write transaction are consecutive.
        return [Sent(last - n + 1 + i, t, c, next_at, until) for i, c in enumerate(counts)]

    def _state(
        self, con: sqlite3.Connection, t: float, limits: Limits
    ) -> tuple[Windows, dict[str, float]]:
        """This tenant's window rows and bucket times; our window lengths are seeded if new."""
        windows: Windows = {}
        tats: dict[str, float] = {}
        for name, period_s, idx, value in con.execute(
            "SELECT name, period_s, idx, value FROM state WHERE tenant = ?", (self.tenant,)
        ):
            if period_s is None:
                tats[name] = value
            else:
                windows[period_s] = (idx, int(value))
        for window in limits.windows:
            if window.period_s not in windows:
                windows[window.period_s] = self._seed(con, t, window.period_s)
        return windows, tats

    def _seed(self, con: sqlite3.Connection, t: float, period_s: float) -> tuple[int, int]:
        idx = window_index(t, period_s)
        (count,) = con.execute(
            "SELECT count(*) FROM sends WHERE tenant = ? AND t >= ?", (self.tenant, idx * period_s)
        ).fetchone()
        return idx, int(count)

    def remove(self, sent: Sent) -> None:
        """Forget a send the gateway refused (Kong does not count a 429): uncount it."""
        self.remove_many([sent])

    def remove_many(self, sends: list[Sent]) -> None:
        """Forget sends never made or refused, in one transaction (a window that ended is kept)."""
        con = self._con
        try:
            con.execute("BEGIN IMMEDIATE")
            try:
                rows = con.execute(
                    "SELECT name, period_s, idx FROM state"
                    " WHERE tenant = ? AND period_s IS NOT NULL",
                    (self.tenant,),
                ).fetchall()
                for sent in sends:
                    if not con.execute("DELETE FROM sends WHERE id = ?", (sent.id,)).rowcount:
                        continue  # already removed, or pruned with its window
                    con.executemany(
                        "UPDATE state SET value = value - 1"
                        " WHERE tenant = ? AND name = ? AND value > 0",
                        [
                            (self.tenant, name)
                            for name, period_s, idx in rows
                            if idx == window_index(sent.t, period_s)
                        ],
                    )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._error("remove a send", exc) from exc

    def count_in_window(self, t: float, period_s: float) -> int:
        """How many sends this tenant made in the aligned window of ``period_s`` holding ``t``."""
        try:
            row = self._con.execute(
                "SELECT idx, value FROM state WHERE tenant = ? AND name = ?",
                (self.tenant, _window_name(period_s)),
            ).fetchone()
            if row is None:
                return self._seed(self._con, t, period_s)[1]
        except sqlite3.Error as exc:
            raise self._error("read the window count", exc) from exc
        idx, count = row
        return int(count) if idx >= window_index(t, period_s) else 0


def _window_name(period_s: float) -> str:
    return f"window:{period_s!r}"


def _earliest(limits: Limits, windows: Windows, tats: dict[str, float]) -> float:
    """The first time every window (counts as of now) and every bucket allow one more send."""
    at = -math.inf
    for window in limits.windows:
        idx, count = windows[window.period_s]
        if count >= window.limit:
            at = max(at, next_window_start(idx, window.period_s))
    for bucket in limits.buckets:
        at = max(at, bucket.earliest(tats.get(bucket.key, -math.inf)))
    return at
