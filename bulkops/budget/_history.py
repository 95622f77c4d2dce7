"""The send ledger: one SQLite file shared by every run on this machine, keyed by tenant.

Three tables. ``sends`` keeps one row per request sent within the longest window (pruned
after). ``windows`` keeps, per tenant and window length, the current aligned window's number
and count, and ``buckets`` each smoothing bucket's theoretical arrival time: so a check is O(1)
whatever the count (counting ``sends`` rows costs ~45 µs per 1,000 rows, every acquire).
Every run bumps *every* window row of its tenant, so runs with different rates still see each
other's sends; a window length seen for the first time is seeded by counting ``sends``.

Check-and-record is one ``BEGIN IMMEDIATE`` transaction: it takes SQLite's write lock before
reading, so two processes cannot both read "one left" and both send. ``busy_timeout`` makes the
loser wait (microseconds: the transaction is a handful of statements).

``synchronous=NORMAL`` in WAL mode: a killed *process* loses nothing; only an OS crash or power
loss can lose the last commits. That loss makes us undercount sends in the current window after a
reboot, which the gateway's 429 and ``X-RateLimit-Remaining-Hour`` correct; ``FULL`` would add an
fsync to every acquire. (The checkpoint store, where a lost commit means a resent lock, uses FULL.)
"""

from __future__ import annotations

import math
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bulkops.budget._limits import Limits, next_window_start, window_index
from bulkops.errors import CheckpointError

__all__ = ["SendHistory", "Sent"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sends (
    id INTEGER PRIMARY KEY, tenant TEXT NOT NULL, t REAL NOT NULL);
CREATE INDEX IF NOT EXISTS sends_by_tenant_time ON sends (tenant, t);
CREATE TABLE IF NOT EXISTS windows (
    tenant TEXT NOT NULL, period_s REAL NOT NULL, idx INTEGER NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (tenant, period_s)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS buckets (
    tenant TEXT NOT NULL, key TEXT NOT NULL, tat REAL NOT NULL,
    PRIMARY KEY (tenant, key)) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True)
class Sent:
    """One recorded send: row id, time, the rate window's count with it, when the next may go."""

    id: int
    t: float
    window_count: int
    next_at: float  # as far as this process knows: another may have sent since


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
            return _configure(sqlite3.connect(":memory:", isolation_level=None))
        # Create the file owner-only before SQLite does (it copies the mode to -wal and -shm).
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        con = _configure(sqlite3.connect(self.path, isolation_level=None))
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
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
        """Record one send if every window and bucket allows it now, else return when to retry.

        ``now`` is read after the write lock is held, so commits are in time order across processes.
        """
        con = self._con
        try:
            con.execute("BEGIN IMMEDIATE")
            try:
                t = now()
                result = self._check_and_record(con, t, limits)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._error("record a send", exc) from exc
        return result

    def _check_and_record(self, con: sqlite3.Connection, t: float, limits: Limits) -> Sent | float:
        stored = self._windows(con, t, limits)
        # Every window as of ``t``: one that has ended counts from zero in the current one.
        windows = {}
        for period_s, (idx, count) in stored.items():
            current = window_index(t, period_s)
            windows[period_s] = (idx, count) if idx >= current else (current, 0)
        tats = dict(con.execute("SELECT key, tat FROM buckets WHERE tenant = ?", (self.tenant,)))
        retry_at = _earliest(limits, windows, tats)
        if retry_at > t:
            return retry_at

        windows = {period_s: (idx, count + 1) for period_s, (idx, count) in windows.items()}
        for bucket in limits.buckets:
            tats[bucket.key] = bucket.after_send(tats.get(bucket.key, -math.inf), t)
        con.executemany(
            "UPDATE windows SET idx = ?, count = ? WHERE tenant = ? AND period_s = ?",
            [(idx, count, self.tenant, period_s) for period_s, (idx, count) in windows.items()],
        )
        con.executemany(
            "INSERT OR REPLACE INTO buckets (tenant, key, tat) VALUES (?, ?, ?)",
            [(self.tenant, b.key, tats[b.key]) for b in limits.buckets],
        )
        cursor = con.execute("INSERT INTO sends (tenant, t) VALUES (?, ?)", (self.tenant, t))
        assert cursor.lastrowid is not None
        if any(windows[p][0] != stored[p][0] for p in stored):
            self._prune(con, t, windows)  # a window rolled over
        rate_count = windows[limits.rate_window.period_s][1]
        return Sent(cursor.lastrowid, t, rate_count, _earliest(limits, windows, tats))

    def _windows(
        self, con: sqlite3.Connection, t: float, limits: Limits
    ) -> dict[float, tuple[int, int]]:
        """Every window row of this tenant; rows for our window lengths are created if missing."""
        rows = con.execute(
            "SELECT period_s, idx, count FROM windows WHERE tenant = ?", (self.tenant,)
        ).fetchall()
        windows = {period_s: (idx, count) for period_s, idx, count in rows}
        for window in limits.windows:
            if window.period_s not in windows:
                windows[window.period_s] = seeded = self._seed(con, t, window.period_s)
                con.execute(
                    "INSERT INTO windows (tenant, period_s, idx, count) VALUES (?, ?, ?, ?)",
                    (self.tenant, window.period_s, *seeded),
                )
        return windows

    def _seed(self, con: sqlite3.Connection, t: float, period_s: float) -> tuple[int, int]:
        idx = window_index(t, period_s)
        (count,) = con.execute(
            "SELECT count(*) FROM sends WHERE tenant = ? AND t >= ?", (self.tenant, idx * period_s)
        ).fetchone()
        return idx, int(count)

    def _prune(
        self, con: sqlite3.Connection, t: float, windows: dict[float, tuple[int, int]]
    ) -> None:
        cutoff = t - max(windows)
        con.execute("DELETE FROM sends WHERE tenant = ? AND t < ?", (self.tenant, cutoff))

    def remove(self, sent: Sent) -> None:
        """Forget a send the gateway refused (429 is not counted by Kong): uncount it."""
        con = self._con
        try:
            con.execute("BEGIN IMMEDIATE")
            try:
                deleted = con.execute("DELETE FROM sends WHERE id = ?", (sent.id,)).rowcount
                if deleted:
                    rows = con.execute(
                        "SELECT period_s, idx FROM windows WHERE tenant = ?", (self.tenant,)
                    ).fetchall()
                    con.executemany(
                        "UPDATE windows SET count = count - 1"
                        " WHERE tenant = ? AND period_s = ? AND idx = ? AND count > 0",
                        [
                            (self.tenant, period_s, idx)
                            for period_s, idx in rows
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
                "SELECT idx, count FROM windows WHERE tenant = ? AND period_s = ?",
                (self.tenant, period_s),
            ).fetchone()
            if row is None:
                return self._seed(self._con, t, period_s)[1]
        except sqlite3.Error as exc:
            raise self._error("read the window count", exc) from exc
        idx, count = row
        return int(count) if idx >= window_index(t, period_s) else 0


def _earliest(
    limits: Limits, windows: dict[float, tuple[int, int]], tats: dict[str, float]
) -> float:
    """The first time every window (counts as of now) and every bucket allow one more send."""
    at = -math.inf
    for window in limits.windows:
        idx, count = windows[window.period_s]
        if count >= window.limit:
            at = max(at, next_window_start(idx, window.period_s))
    for bucket in limits.buckets:
        at = max(at, bucket.earliest(tats.get(bucket.key, -math.inf)))
    return at


def _configure(con: sqlite3.Connection) -> sqlite3.Connection:
    con.execute("PRAGMA busy_timeout = 5000")
    con.executescript(_SCHEMA)
    return con
