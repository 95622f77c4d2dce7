"""Group commits: many rows per statement, the same outcome as one statement per row, in order."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bulkops.manifest import open_manifest
from bulkops.store import Store, _writer
from bulkops.store._writer import _COMPLETE, _INTENT, _RELEASE, _runs

IDS = [f"00000000-0000-4000-8000-{i:012d}" for i in range(1, 201)]


def make_run(store: Store, tmp: Path) -> str:
    path = tmp / "m.csv"
    path.write_text("device_id,action\n" + "".join(f"{i},blankpush\n" for i in IDS))
    m = open_manifest(path)
    return store.create_run(
        m,
        manifest_path=str(path),
        manifest_sha256=m.sha256(),
        manifest_format=m.format,
        tenant="t",
        options={},
    ).run_id


def resolved(line: int) -> str | None:
    """The device id an intent records: none for every fourth line (the row's id stays)."""
    return None if line % 4 == 0 else IDS[line - 2].upper()


def rows(db: Path) -> dict[int, tuple[Any, ...]]:
    con = sqlite3.connect(db)
    try:
        return {
            r[0]: r[1:]
            for r in con.execute(
                "SELECT line, state, attempts, http_status, error, secret, device_id, preview,"
                " sent_at IS NOT NULL, first_sent_at IS NOT NULL, done_at IS NOT NULL FROM items"
            )
        }
    finally:
        con.close()


def test_a_phase_of_many_rows_is_one_statement_with_all_their_arguments() -> None:
    writes = [(_INTENT, (1.0, 1.0, None, "r", n)) for n in range(1, 4)]
    writes.append((_RELEASE, ("r", 1)))  # line 1 again: a phase of its own
    got = list(_writer.statements(writes, update_from=True))
    assert [len(rows) for _, rows in got] == [1, 1]
    assert got[0][0].count("(?, ?, ?, ?, ?)") == 3
    assert got[0][1][0] == (1.0, 1.0, None, "r", 1, 1.0, 1.0, None, "r", 2, 1.0, 1.0, None, "r", 3)
    assert got[1] == (_RELEASE, [("r", 1)])  # one row: the plain statement
    assert list(_writer.statements(writes, update_from=False)) == list(_runs(writes))


def test_runs_keep_order_and_split_where_a_row_repeats() -> None:
    writes = [
        (_INTENT, (1.0, 1.0, None, "r", 1)),
        (_INTENT, (1.0, 1.0, None, "r", 2)),
        (_COMPLETE, ("succeeded", 200, None, None, None, None, 2.0, "r", 1)),
        (_RELEASE, ("r", 2)),
        (_INTENT, (3.0, 3.0, None, "r", 2)),
        (_INTENT, (3.0, 3.0, None, "r", 3)),
        (_INTENT, (3.0, 3.0, None, "r", 3)),  # twice in a row: must not share a statement
        ("UPDATE runs SET total = ?", (1,)),
        ("UPDATE runs SET total = ?", (2,)),
    ]
    got = [(sql[:20], [a[-1] for a in args]) for sql, args in _runs(writes)]
    assert (
        got
        == [
            (_INTENT[:20], [1, 2]),  # phase 1: lines 1 and 2, each at most once
            (_COMPLETE[:20], [1]),  # phase 2: line 1 again, and line 2's release
            (_RELEASE[:20], [2]),
            (_INTENT[:20], [2, 3]),  # phase 3: the intent after the release, and line 3
            (_INTENT[:20], [3]),  # phase 4: line 3 again
            ("UPDATE runs SET tota", [1]),  # not about one item: alone, in order
            ("UPDATE runs SET tota", [2]),
        ]
    )


@pytest.mark.parametrize("update_from", [True, False], ids=["update-from", "executemany"])
async def test_one_statement_for_many_rows_writes_what_one_per_row_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, update_from: bool
) -> None:
    """The same writes through group commits and one by one leave identical rows (as one
    ``UPDATE … FROM (VALUES …)`` per statement, and as ``executemany`` for SQLite < 3.33)."""
    if update_from and not _writer.UPDATE_FROM:
        pytest.skip(f"SQLite {sqlite3.sqlite_version} has no UPDATE FROM")
    monkeypatch.setattr(_writer.statements, "__kwdefaults__", {"update_from": update_from})
    results = []
    for name, linger in (("grouped", 10.0), ("single", 0.0)):
        db = tmp_path / f"{name}.db"
        store = Store(db, linger_s=linger)
        run_id = make_run(store, tmp_path)
        await store.start()

        async def settle(store: Store = store, one_by_one: bool = name == "single") -> None:
            if one_by_one:  # each write a commit of its own
                await store.flush()

        try:
            if name == "grouped":  # every intent of the first 100 lines in one commit
                await asyncio.gather(
                    *(store.mark_sending(run_id, n, device_id=resolved(n)) for n in range(2, 102))
                )
            else:
                for n in range(2, 102):
                    await store.mark_sending(run_id, n, device_id=resolved(n))
            for n in range(2, 102):
                if n % 10 == 0:
                    store.release(run_id, n)  # a 429: back to pending ...
                    await settle()
                    if n % 20 == 0:  # ... and sent again, in the same commit
                        await store.mark_sending(run_id, n, device_id=None)
                        store.complete(run_id, n, state="succeeded", http_status=200)
                        await settle()
                    continue
                state = ("succeeded", "failed", "unknown")[n % 3]
                store.complete(
                    run_id,
                    n,
                    state=state,
                    http_status=200 if state == "succeeded" else 400,
                    error=None if state == "succeeded" else f"reason é {n}",
                    secret=f"{n:06d}" if n % 7 == 0 else None,
                    preview='{"asset_tag": "new: x"}' if n % 5 == 0 else None,
                )
                await settle()
            for n in (3, 5, 7):  # finished: a late release changes nothing
                store.release(run_id, n)
                await settle()
            await store.flush()
        finally:
            await store.stop()
            store.close()
        results.append(rows(db))
    grouped, single = results
    assert grouped == single
    assert grouped[10][:2] == ("pending", 0)
    assert grouped[20][:2] == ("succeeded", 1)
    assert grouped[14][4] == "000014"
    assert grouped[3][:2] == ("succeeded", 1)
    assert (grouped[8][5], grouped[9][5]) == (IDS[8 - 2], IDS[9 - 2].upper())
    assert grouped[102][0] == "pending"  # untouched


async def test_a_commit_failing_with_any_error_fails_its_waiters_not_strands_them() -> None:
    from bulkops.errors import CheckpointError
    from bulkops.store._writer import Writer

    async def broken(writes: list[Any]) -> None:
        raise RuntimeError("cannot schedule new futures after shutdown")

    writer = Writer(broken, linger_s=0.01)
    writer.start()  # the committer stops at its first failure: nothing to stop afterwards
    with pytest.raises(CheckpointError, match="cannot write the checkpoint: cannot schedule"):
        await asyncio.wait_for(writer.commit(_RELEASE, ("r", 1)), timeout=5)
    with pytest.raises(CheckpointError):
        writer.check()  # and nothing more is accepted


async def test_flush_waits_for_a_commit_already_running() -> None:
    """Review: with nothing queued, ``flush`` returned while a commit was still running on the
    store's thread, so a stop (Ctrl-C during resolution) could close the database under it."""
    from bulkops.store._writer import Writer

    started, release = asyncio.Event(), asyncio.Event()
    done: list[int] = []

    async def slow(writes: list[Any]) -> None:
        started.set()
        await release.wait()
        done.append(len(writes))

    writer = Writer(slow, linger_s=0.001)
    writer.start()
    writer.queue("UPDATE runs SET status = ?", ("x",), now=True)
    await started.wait()  # the commit is running; nothing is queued
    flushed = asyncio.ensure_future(writer.flush())
    await asyncio.sleep(0.01)
    assert not flushed.done()
    release.set()
    await flushed
    assert done == [1]
    await writer.stop()
