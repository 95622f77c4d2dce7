"""The checkpoint store: runs, items and their states, with group-committed intents.

Every item moves ``pending → sending → succeeded | failed | skipped | unknown``.  The ``sending``
row (the intent) is committed, fsynced, before its request leaves; a completion is queued and rides
along with the next commit (or a short linger timer), so at high rates one fsync covers many items
while no request is ever sent whose intent is not on disk.

All SQLite work runs on one dedicated thread; the event loop only waits on futures.  The queue
of writes and the task that commits it are ``_writer.Writer``; the transaction is the store's.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bulkops._sqlite import marks
from bulkops.actions import Request
from bulkops.store._checks import check_cross_rows
from bulkops.store._db import connect, sqlite_errors
from bulkops.store._ingest import Shape, insert_items
from bulkops.store._writer import _COMPLETE, _INTENT, _RELEASE, Write, Writer, statements

__all__ = ["OUTCOMES", "RunInfo", "Store", "WorkItem"]


OUTCOMES = ("succeeded", "failed", "skipped", "unknown")


@dataclass(frozen=True, slots=True)
class RunInfo:
    """One run recorded in the database."""

    run_id: str
    created_at: float
    manifest_path: str
    manifest_sha256: str
    manifest_format: str
    tenant: str
    options: Mapping[str, Any]
    status: str
    total: int
    started_at: float | None
    finished_at: float | None
    requests: int
    rate_limited: int


@dataclass(slots=True)
class WorkItem:
    """An item as the engine works on it; ``request`` once resolution planned it."""

    line: int
    device_id: str | None
    serial_number: str | None
    action: str
    params: dict[str, Any]
    state: str
    attempts: int
    sent_at: float | None
    request: Request | None = None


def new_run_id() -> str:
    """A sortable, readable run id: ``20261123-091530-3f9a``."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)


class Store:
    """A checkpoint database; sync methods for the CLI, async ones for the running engine."""

    def __init__(self, path: Path | str, *, linger_s: float = 0.02, scratch: bool = False) -> None:
        self.path = Path(path)
        self.scratch = scratch  # a plan's throwaway database
        self.origin = self.path  # the database it stands for (a plan's: the real --db)
        self._conn = connect(self.path, scratch=scratch)
        self._exec: ThreadPoolExecutor | None = None
        self._writer = Writer(self._commit, linger_s=linger_s)
        self._ingested: dict[str, tuple[Shape, tuple[int, int]]] = {}  # take_ingest_shape

    @property
    def commits(self) -> int:
        """Group commits so far (one transaction and one fsync each)."""
        return self._writer.commits

    # ---- sync API (CLI, ingest, reports) -------------------------------------------------

    def _sql(self, doing: str) -> Any:
        return sqlite_errors(doing, self.path)

    def runs(self) -> list[RunInfo]:
        """Every run in the database, newest first."""
        with self._sql("read runs"):
            rows = self._conn.execute("SELECT * FROM runs ORDER BY created_at DESC").fetchall()
        return [_run_info(r) for r in rows]

    def run(self, run_id: str) -> RunInfo | None:
        """The run called ``run_id`` (a unique prefix is enough), or ``None``."""
        with self._sql("read runs"):
            rows = self._conn.execute(
                "SELECT * FROM runs WHERE run_id LIKE ? || '%' ORDER BY created_at DESC",
                (run_id,),
            ).fetchall()
        return _run_info(rows[0]) if len(rows) == 1 else None

    def find_run(self, *, manifest_sha256: str, tenant: str) -> RunInfo | None:
        """The newest run of this manifest content against this tenant."""
        with self._sql("read runs"):
            row = self._conn.execute(
                "SELECT * FROM runs WHERE manifest_sha256 = ? AND tenant = ? "
                "ORDER BY created_at DESC LIMIT 1",
                (manifest_sha256, tenant),
            ).fetchone()
        return _run_info(row) if row else None

    def create_run(
        self,
        items: Iterable[Any],
        *,
        manifest_path: str,
        manifest_sha256: str,
        manifest_format: str,
        tenant: str,
        options: Mapping[str, Any],
    ) -> RunInfo:
        """Ingest every manifest item in one transaction; on any error nothing is kept."""
        run_id = new_run_id()
        conn = self._conn
        with self._sql("record the run"):
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "INSERT INTO runs (run_id, created_at, manifest_path, manifest_sha256, "
                    "manifest_format, tenant, options, status) VALUES (?,?,?,?,?,?,?,'ready')",
                    (
                        run_id,
                        time.time(),
                        manifest_path,
                        manifest_sha256,
                        manifest_format,
                        tenant,
                        orjson.dumps(dict(options)).decode(),
                    ),
                )
                shape: Shape = Counter()
                total = insert_items(conn, run_id, items, shape)
                actions = {action for action, _, _ in shape}
                repeats = check_cross_rows(conn, run_id, manifest_path, total, actions)
                conn.execute("UPDATE runs SET total = ? WHERE run_id = ?", (total, run_id))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        if not repeats:  # else some rows are skipped already: the plan surveys them
            self._ingested[run_id] = (shape, self._version())
        info = self.run(run_id)
        assert info is not None
        return info

    def take_ingest_shape(self, run_id: str) -> Shape | None:
        """Once: rows per (action, by serial only, by id and serial) of a run this store just
        ingested, all pending and unplanned; ``None`` once anything was written since."""
        shape, version = self._ingested.pop(run_id, (None, None))
        return shape if version == self._version() else None

    def _version(self) -> tuple[int, int]:
        """Changes by this connection and commits by any other: equal means nothing written."""
        (data_version,) = self._conn.execute("PRAGMA data_version").fetchone()
        return self._conn.total_changes, int(data_version)

    def delete_run(self, run_id: str) -> None:
        """Forget a run and its items (one refused before any write: nothing of it is kept)."""
        with self._sql("delete the run"):
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute("DELETE FROM items WHERE run_id = ?", (run_id,))
            self._conn.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
            self._conn.execute("DELETE FROM meta WHERE key LIKE '%:' || ?", (run_id,))
            self._conn.execute("COMMIT")

    def counts(self, run_id: str) -> dict[str, int]:
        """Items per state."""
        with self._sql("count items"):
            rows = self._conn.execute(
                "SELECT state, count(*) FROM items WHERE run_id = ? GROUP BY state", (run_id,)
            ).fetchall()
        return {state: n for state, n in rows}

    def fetch(
        self,
        run_id: str,
        *,
        states: tuple[str, ...],
        after_line: int,
        limit: int,
        unplanned: bool = False,
    ) -> list[WorkItem]:
        """The next items in these states, in manifest order."""
        only = " AND req_route IS NULL" if unplanned else ""
        with self._sql("read items"):
            rows = self._conn.execute(
                "SELECT line, device_id, serial_number, action, params, state, attempts, sent_at,"
                " req_method, req_route, req_device, req_body"
                f" FROM items WHERE run_id = ? AND line > ? AND state IN ({marks(states)}){only}"
                " ORDER BY line LIMIT ?",
                (run_id, after_line, *states, limit),
            ).fetchall()
        return [
            WorkItem(
                r[0],
                r[1],
                r[2],
                r[3],
                orjson.loads(r[4]),
                r[5],
                r[6],
                r[7],
                Request(r[8], r[9], r[10], orjson.loads(r[11]) if r[11] else None)
                if r[9]
                else None,
            )
            for r in rows
        ]

    def plan_request(
        self,
        run_id: str,
        line: int,
        request: Request,
        *,
        device_id: str | None,
        preview: str | None,
    ) -> None:
        """Queue the exact request resolution planned for an item."""
        self._writer.queue(
            "UPDATE items SET req_method = ?, req_route = ?, req_device = ?, req_body = ?,"
            " device_id = coalesce(?, device_id), preview = ? WHERE run_id = ? AND line = ?",
            (
                request.method,
                request.route,
                request.device_id,
                orjson.dumps(request.body) if request.body is not None else None,
                device_id,
                preview,
                run_id,
                line,
            ),
        )

    def results(self, run_id: str) -> Iterator[sqlite3.Row]:
        """Every item of the run with its outcome, in manifest order (streamed)."""
        cur = self._conn.cursor()
        cur.row_factory = sqlite3.Row
        with self._sql("read results"):
            yield from cur.execute("SELECT * FROM items WHERE run_id = ? ORDER BY line", (run_id,))

    def meta(self, key: str) -> str | None:
        """A value noted with ``set_meta``, or ``None``."""
        with self._sql("read the database"):
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Note a value (``RUN_ID`` at the end of a key ties it to that run's deletion)."""
        with self._sql("write the database"):
            self._conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def set_run(self, run_id: str, **fields: Any) -> None:
        """Update run columns (status, started_at, finished_at, requests, rate_limited)."""
        cols = ", ".join(f"{k} = ?" for k in fields)
        with self._sql("update the run"):
            self._conn.execute(
                f"UPDATE runs SET {cols} WHERE run_id = ?", (*fields.values(), run_id)
            )

    def forget_secrets(self, run_id: str) -> None:
        """Drop PINs from the database once ``secrets.csv`` holds them."""
        with self._sql("clear secrets"):
            self._conn.execute(
                "UPDATE items SET secret = NULL WHERE run_id = ? AND secret IS NOT NULL", (run_id,)
            )

    def reset_unknown(self, run_id: str) -> int:
        """Make ``unknown`` items ``pending`` again (an explicit user choice to resend them)."""
        with self._sql("reset unknown items"):
            cur = self._conn.execute(
                "UPDATE items SET state = 'pending', error = NULL"
                " WHERE run_id = ? AND state = 'unknown'",
                (run_id,),
            )
        return cur.rowcount

    def close(self) -> None:
        """Close the database (after ``stop()`` when the engine ran), once its thread is idle."""
        if self._exec is not None:
            self._exec.shutdown(wait=True)
            self._exec = None
        self._conn.close()

    # ---- async API (engine) ------------------------------------------------------------

    async def start(self) -> None:
        """Start the writer thread and the committer task on the running loop."""
        self._exec = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bulkops-store")
        self._writer.start()

    async def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a sync store method on the store's thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._exec, lambda: fn(*args, **kwargs))

    async def mark_sending(self, run_id: str, line: int, *, device_id: str | None) -> None:
        """Commit the intent to send this item; returns once it is on disk."""
        now = time.time()
        await self._writer.commit(_INTENT, (now, now, device_id, run_id, line))

    def complete(
        self,
        run_id: str,
        line: int,
        *,
        state: str,
        http_status: int | None = None,
        error: str | None = None,
        secret: str | None = None,
        device_id: str | None = None,
        preview: str | None = None,
    ) -> None:
        """Queue an item's outcome; it is durable at the next commit (within ``linger_s``)."""
        self._writer.check()
        self._writer.queue(
            _COMPLETE,
            (state, http_status, error, secret, device_id, preview, time.time(), run_id, line),
            now=secret is not None,  # a PIN is never left waiting for the linger timer
        )

    def note_requests(self, run_id: str, *, requests: int, rate_limited: int) -> None:
        """Queue the run's request counts so far: ``bulkops status`` shows them while it runs."""
        self._writer.queue(
            "UPDATE runs SET requests = ?, rate_limited = ? WHERE run_id = ?",
            (requests, rate_limited, run_id),
        )

    def release(self, run_id: str, line: int) -> None:
        """Put an item refused before it reached the server (429, 401) back to ``pending``."""
        self._writer.queue(_RELEASE, (run_id, line))

    async def flush(self) -> None:
        """Wait until every queued write is on disk."""
        await self._writer.flush()

    async def stop(self) -> None:
        """Flush and stop the committer (the database stays open for reports)."""
        await self._writer.stop()

    async def _commit(self, writes: list[Write]) -> None:
        await asyncio.get_running_loop().run_in_executor(self._exec, self._apply, writes)

    def _apply(self, writes: list[Write]) -> None:
        conn = self._conn
        with self._sql("write the checkpoint"):
            conn.execute("BEGIN IMMEDIATE")
            try:
                for sql, rows in statements(writes):
                    conn.executemany(sql, rows)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise


def _run_info(row: tuple[Any, ...]) -> RunInfo:
    return RunInfo(
        run_id=row[0],
        created_at=row[1],
        manifest_path=row[2],
        manifest_sha256=row[3],
        manifest_format=row[4],
        tenant=row[5],
        options=orjson.loads(row[6]),
        status=row[7],
        total=row[8],
        started_at=row[9],
        finished_at=row[10],
        requests=row[11],
        rate_limited=row[12],
    )
