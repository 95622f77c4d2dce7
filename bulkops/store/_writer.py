"""Group commits: the checkpoint's small writes, queued and committed many to a transaction.

A write waits in a queue for the next commit.  One that must be on disk before its caller goes on
(an intent) or must not wait (a secret) wakes the committer at once; the rest ride along within a
short linger timer, so at high rates one transaction and one fsync cover many items.  ``Writer``
owns the queue and the committer task; the store gives it the transaction, which runs on the
store's thread and runs each phase's rows of one statement as one ``UPDATE … FROM (VALUES …)``
(``statements``), keeping the order of the writes to each item.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from itertools import chain
from typing import Any

from bulkops.errors import CheckpointError

__all__ = ["Write", "Writer", "statements"]

Write = tuple[str, tuple[Any, ...]]  # a statement and its arguments

_MANY_ROWS = 1000  # writes per phase at most

# The engine's writes, one row each. A commit runs the rows of one statement together as one
# statement (see ``statements``).
_INTENT = (
    "UPDATE items SET state = 'sending', attempts = attempts + 1, sent_at = ?,"
    " first_sent_at = coalesce(first_sent_at, ?), device_id = coalesce(?, device_id)"
    " WHERE run_id = ? AND line = ?"
)
_COMPLETE = (
    "UPDATE items SET state = ?, http_status = ?, error = ?,"
    " secret = coalesce(?, secret), device_id = coalesce(?, device_id),"
    " preview = coalesce(?, preview), done_at = ? WHERE run_id = ? AND line = ?"
)
_RELEASE = (
    "UPDATE items SET state = 'pending', attempts = max(attempts - 1, 0)"
    " WHERE run_id = ? AND line = ? AND state = 'sending'"
)
_ITEM_WRITES = frozenset({_INTENT, _COMPLETE, _RELEASE})  # their last two arguments: the item

# Each item write for many rows at once: v.columnN is the row's Nth argument. Why one statement:
# the store's thread gives up the GIL for every SQLite step, and ``executemany`` steps once per
# row. While another thread runs Python, each step then waits for the GIL again: a 30-row
# intent commit took 341 ms that way and 38 ms as one statement (0.6 ms each on an idle
# process; benchmarks/bench_commit.py), and every intent in it waits for that commit.
_AS_ONE = {
    _INTENT: (
        "UPDATE items SET state = 'sending', attempts = attempts + 1, sent_at = v.column1,"
        " first_sent_at = coalesce(first_sent_at, v.column2),"
        " device_id = coalesce(v.column3, items.device_id)"
        " FROM (VALUES {values}) AS v WHERE run_id = v.column4 AND line = v.column5"
    ),
    _COMPLETE: (
        "UPDATE items SET state = v.column1, http_status = v.column2, error = v.column3,"
        " secret = coalesce(v.column4, items.secret),"
        " device_id = coalesce(v.column5, items.device_id),"
        " preview = coalesce(v.column6, items.preview), done_at = v.column7"
        " FROM (VALUES {values}) AS v WHERE run_id = v.column8 AND line = v.column9"
    ),
    _RELEASE: (
        "UPDATE items SET state = 'pending', attempts = max(attempts - 1, 0)"
        " FROM (VALUES {values}) AS v"
        " WHERE run_id = v.column1 AND line = v.column2 AND state = 'sending'"
    ),
}
UPDATE_FROM = sqlite3.sqlite_version_info >= (3, 33, 0)  # older SQLite: executemany


class Writer:
    """The queue of writes and the task that commits them, through ``commit``, in groups."""

    def __init__(
        self, commit: Callable[[list[Write]], Awaitable[None]], *, linger_s: float
    ) -> None:
        self._commit = commit
        self._linger_s = linger_s
        self._writes: list[Write] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._wake: asyncio.Event | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._committer: asyncio.Task[None] | None = None
        self._failure: CheckpointError | None = None
        self._busy = False  # a commit is running on the store's thread
        self.commits = 0

    def start(self) -> None:
        """Start the committer task on the running loop."""
        self._wake = asyncio.Event()
        self._committer = asyncio.create_task(self._commit_loop(), name="bulkops-committer")

    def check(self) -> None:
        """Raise the error a commit failed with, if one did: nothing more will be committed."""
        if self._failure is not None:
            raise self._failure

    def queue(self, sql: str, args: tuple[Any, ...], *, now: bool = False) -> None:
        """Queue a write for the next commit: wake the committer ``now``, or within ``linger_s``."""
        self._writes.append((sql, args))
        if now:
            assert self._wake is not None
            self._wake.set()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._linger_s, self._wake_up)

    async def commit(self, sql: str, args: tuple[Any, ...]) -> None:
        """Queue a write and return once it is on disk."""
        self.check()
        self._writes.append((sql, args))
        await self._committed()

    async def flush(self) -> None:
        """Wait until every queued write is on disk, and no commit is running."""
        self.check()
        if not self._writes and not self._busy:
            return
        await self._committed()

    async def stop(self) -> None:
        """Flush and stop the committer."""
        if self._committer is None:
            return
        try:
            await self.flush()
        finally:
            self._committer.cancel()
            await asyncio.gather(self._committer, return_exceptions=True)
            self._committer = None

    async def _committed(self) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        assert self._wake is not None
        self._wake.set()
        await fut

    def _wake_up(self) -> None:
        self._timer = None
        if self._wake is not None:
            self._wake.set()

    async def _commit_loop(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            writes, self._writes = self._writes, []
            waiters, self._waiters = self._waiters, []
            if not writes:
                for fut in waiters:
                    if not fut.done():
                        fut.set_result(None)
                continue
            self._busy = True
            try:
                await self._commit(writes)
            except Exception as exc:  # anything else (a closed executor…) must not strand waiters
                if not isinstance(exc, CheckpointError):
                    exc = CheckpointError(f"cannot write the checkpoint: {exc}")
                self._failure = exc
                # Writes queued while this commit waited (up to the busy timeout) fail too: no
                # one may wait forever on an intent this loop will never commit.
                waiters += self._waiters
                self._waiters = []
                for fut in waiters:
                    if not fut.done():
                        fut.set_exception(exc)
                return
            finally:
                self._busy = False
            self.commits += 1
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)


def _runs(writes: list[Write]) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
    """The writes grouped by statement, one group per statement in each phase.

    Writes to different items commute, so a phase gathers writes until one touches an item
    already written in it: only the order of writes to one item matters (a 429's release, then
    the next intent). A statement not about one item is a phase of its own.
    """
    phase: dict[str, list[tuple[Any, ...]]] = {}
    keys: set[tuple[Any, Any]] = set()
    for sql, args in writes:
        key = (args[-2], args[-1]) if sql in _ITEM_WRITES else None  # (run_id, line)
        if key is None or key in keys or len(keys) >= _MANY_ROWS:
            yield from phase.items()
            phase, keys = {}, set()
        if key is None:
            yield sql, [args]
            continue
        phase.setdefault(sql, []).append(args)
        keys.add(key)
    yield from phase.items()


def statements(
    writes: list[Write], *, update_from: bool = UPDATE_FROM
) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
    """What a commit runs, in order, each for ``executemany``: a phase's rows of one item write
    as one statement with all their arguments, everything else as it is."""
    for sql, rows in _runs(writes):
        template = _AS_ONE.get(sql)
        if template is None or len(rows) == 1 or not update_from:
            yield sql, rows
            continue
        row = f"({', '.join(['?'] * len(rows[0]))})"
        args = tuple(chain.from_iterable(rows))  # ≤ 9 × _MANY_ROWS: under SQLite's 32,766
        yield template.format(values=", ".join([row] * len(rows))), [args]
