"""The checkpoint store on its own: intents durable before they return, modes, concurrent opens."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bulkops.errors import BadRows, CheckpointError, ManifestError
from bulkops.manifest import open_manifest
from bulkops.store import Store

IDS = [f"00000000-0000-4000-8000-{i:012d}" for i in range(1, 41)]


def make_run(store: Store, tmp: Path, text: str) -> str:
    path = tmp / "m.csv"
    path.write_text(text)
    m = open_manifest(path)
    run = store.create_run(
        m,
        manifest_path=str(path),
        manifest_sha256=m.sha256(),
        manifest_format=m.format,
        tenant="t",
        options={},
    )
    return run.run_id


def states(db: Path) -> dict[int, str]:
    """What another connection (another process after a crash) sees on disk."""
    con = sqlite3.connect(db)
    try:
        return dict(con.execute("SELECT line, state FROM items").fetchall())
    finally:
        con.close()


async def test_an_intent_is_on_disk_before_mark_sending_returns(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db", linger_s=10.0)  # completions would wait 10 s
    run_id = make_run(
        store, tmp_path, "device_id,action\n" + "".join(f"{i},blankpush\n" for i in IDS)
    )
    await store.start()
    try:
        await store.mark_sending(run_id, 2, device_id=IDS[0])
        assert states(tmp_path / "s.db")[2] == "sending"  # committed, not merely queued
        store.complete(run_id, 2, state="succeeded", http_status=200)
        assert states(tmp_path / "s.db")[2] == "sending"  # a completion may wait for the batch
        await store.mark_sending(run_id, 3, device_id=IDS[1])  # ... and rides the next intent
        assert states(tmp_path / "s.db")[2] == "succeeded"
    finally:
        await store.stop()
        store.close()


async def test_concurrent_intents_share_commits(tmp_path: Path) -> None:
    import asyncio

    store = Store(tmp_path / "s.db")
    run_id = make_run(
        store, tmp_path, "device_id,action\n" + "".join(f"{i},blankpush\n" for i in IDS)
    )
    await store.start()
    try:
        await asyncio.gather(
            *(store.mark_sending(run_id, line, device_id=None) for line in range(2, 42))
        )
        assert set(states(tmp_path / "s.db").values()) == {"sending"}
        assert store.commits < 40  # grouped: fewer fsyncs than intents
    finally:
        await store.stop()
        store.close()


def test_files_are_private(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    make_run(store, tmp_path, f"device_id,action\n{IDS[0]},blankpush\n")
    store.close()
    for suffix in ("", "-wal", "-shm"):
        path = Path(str(tmp_path / "s.db") + suffix)
        if path.exists():
            assert path.stat().st_mode & 0o777 == 0o600, path


def test_a_database_made_earlier_with_a_loose_mode_becomes_private(tmp_path: Path) -> None:
    """It will hold unlock PINs: a file someone made 0644 (touch, a copy) is ours alone on open."""
    db = tmp_path / "v.db"
    Store(db).close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").touch()
        os.chmod(f"{db}{suffix}", 0o644)
    Store(db).close()
    for suffix in ("", "-wal", "-shm"):
        path = Path(f"{db}{suffix}")
        if path.exists():
            assert path.stat().st_mode & 0o777 == 0o600, path


def test_one_device_id_given_two_serial_numbers_is_refused(tmp_path: Path) -> None:
    """Not a copy to skip: one of the two rows names the wrong Mac."""
    store = Store(tmp_path / "s.db")
    try:
        text = f"device_id,serial_number,action\n{IDS[0]},C02AAAAAAAA1,blankpush\n"
        text += f"{IDS[0]},C02BBBBBBBB2,blankpush\n"
        with pytest.raises(ManifestError, match="with other parameters or another serial number"):
            make_run(store, tmp_path, text)
    finally:
        store.close()


@pytest.mark.parametrize(
    ("rows", "line", "fragment"),
    [
        (
            [f"{IDS[0]},lock,a", f"{IDS[1]},lock,a", f"{IDS[0]},lock,a", f"{IDS[0]},lock,b"],
            5,  # line 4 only repeats line 2: skipped, not refused
            "conflicts with line 2: lock for device",
        ),
        ([f"{IDS[0]},blankpush,", f"{IDS[0]},delete,"], 3, "delete must be the only action"),
        ([f"{IDS[0]},enablelostmode,hi", f"{IDS[0]},disablelostmode,"], 3, "undo each other"),
    ],
)
def test_cross_row_checks_name_both_lines_and_keep_nothing(
    tmp_path: Path, rows: list[str], line: int, fragment: str
) -> None:
    store = Store(tmp_path / "s.db")
    try:
        header = (
            "device_id,action,message\n" if len(rows[0].split(",")) == 3 else "device_id,action\n"
        )
        with pytest.raises(ManifestError) as info:
            make_run(store, tmp_path, header + "\n".join(rows) + "\n")
        assert info.value.line == line
        assert fragment in str(info.value)
        assert store.runs() == []
        assert (
            sqlite3.connect(tmp_path / "s.db").execute("SELECT count(*) FROM items").fetchone()[0]
            == 0
        )
    finally:
        store.close()


def test_every_conflicting_row_is_named_in_line_order(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    try:
        rows = [
            f"{IDS[0]},lock,a",
            f"{IDS[1]},blankpush,",
            f"{IDS[1]},delete,",  # 4: delete must be the only action
            f"{IDS[0]},lock,b",  # 5: line 2 with another message
            f"{IDS[2]},lock,a",
            f"{IDS[2]},lock,a",  # 7: a copy, skipped, not refused
        ]
        text = "device_id,action,message\n" + "\n".join(rows) + "\n"
        with pytest.raises(BadRows) as info:
            make_run(store, tmp_path, text)
        assert info.value.count == 2
        assert [(e.line, e.message.split(":")[0]) for e in info.value.errors] == [
            (4, "conflicts with line 3"),
            (5, "conflicts with line 2"),
        ]
        assert "delete must be the only action" in info.value.errors[0].message
        assert store.runs() == []
    finally:
        store.close()


@pytest.mark.parametrize("kind", ["store", "budget"])
def test_many_processes_opening_a_new_database_at_once(tmp_path: Path, kind: str) -> None:
    """A fresh file opened by several processes in the same instant: none may fail."""
    opener = {
        "store": "from bulkops.store import Store; Store(sys.argv[1]).close()",
        "budget": "from bulkops.budget import SendHistory as H; H(sys.argv[1], tenant='t').close()",
    }[kind]
    for attempt in range(4):
        db = tmp_path / f"{kind}-{attempt}.db"
        start = time.time() + 0.6
        code = textwrap.dedent(
            f"""
            import sys, time
            while time.time() < {start}: pass
            {opener}
            """
        )
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", code, str(db)], stderr=subprocess.PIPE, text=True
            )
            for _ in range(6)
        ]
        for p in procs:
            _, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
    assert os.listdir(tmp_path)


def test_a_database_from_another_schema_version_is_refused_in_one_line(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    Store(db).close()
    con = sqlite3.connect(db)
    con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    with pytest.raises(CheckpointError) as caught:
        Store(db)
    message = str(caught.value)
    assert "\n" not in message and str(db) in message
    assert "schema 1" in message and "use another --db" in message


def test_an_ingest_counts_its_rows_exactly_as_a_pass_over_the_table_would(tmp_path: Path) -> None:
    from bulkops.planner import _survey

    rows = [f"{IDS[i]},,blankpush" for i in range(5)]
    rows += [f",C02SERIAL{i:03d},restart" for i in range(3)]
    rows += [f"{IDS[10 + i]},C02BOTH{i:05d},lock" for i in range(2)]
    rows += [f"{IDS[20]},,restart", ",C02ONLY0001,blankpush"]
    store = Store(tmp_path / "b.db")
    try:
        run_id = make_run(store, tmp_path, "device_id,serial_number,action\n" + "\n".join(rows))
        counted = sorted(_survey(store, run_id), key=repr)  # from the ingest
        assert store.take_ingest_shape(run_id) is None  # given once
        scanned = sorted(_survey(store, run_id), key=repr)  # from the table
    finally:
        store.close()
    assert counted == scanned
    assert sum(g.n for g in counted) == len(rows)
    assert {(g.action, g.by_serial, g.id_and_serial, g.n) for g in counted} == {
        ("blankpush", False, False, 5),
        ("blankpush", True, False, 1),
        ("restart", True, False, 3),
        ("restart", False, False, 1),
        ("lock", False, True, 2),
    }


def test_an_ingest_count_is_not_given_once_anything_was_written_since(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db")
    try:
        run_id = make_run(store, tmp_path, "device_id,action\n" + f"{IDS[0]},blankpush\n")
        store._conn.execute("UPDATE items SET state = 'unknown' WHERE run_id = ?", (run_id,))
        assert store.take_ingest_shape(run_id) is None
    finally:
        store.close()


def test_an_ingest_count_is_not_given_once_another_process_wrote(tmp_path: Path) -> None:
    store = Store(tmp_path / "d.db")
    try:
        run_id = make_run(store, tmp_path, "device_id,action\n" + f"{IDS[0]},blankpush\n")
        other = sqlite3.connect(tmp_path / "d.db")  # as a second bulkops process would
        other.execute("UPDATE items SET state = 'succeeded' WHERE run_id = ?", (run_id,))
        other.commit()
        other.close()
        assert store.take_ingest_shape(run_id) is None
    finally:
        store.close()


def test_a_plan_removes_what_a_killed_plan_left_but_not_a_plan_in_progress(
    tmp_path: Path,
) -> None:
    import fcntl

    from bulkops.store import scratch_store

    db = tmp_path / "bulkops.db"
    dead = tmp_path / ".bulkops.db.plan-dead.db"
    alive = tmp_path / ".bulkops.db.plan-alive.db"
    for path in (dead, alive):
        path.write_bytes(b"x")
        os.utime(path, (time.time() - 3600, time.time() - 3600))
    hold = os.open(str(alive) + ".held", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(hold, fcntl.LOCK_EX)  # as the plan still running holds it
    try:
        with scratch_store(db) as store:
            assert store.path.name.startswith(".bulkops.db.plan-")
            assert store.path.stat().st_mode & 0o777 == 0o600
    finally:
        os.close(hold)
    assert sorted(p.name for p in tmp_path.iterdir()) == [alive.name, alive.name + ".held"]


def test_an_unused_new_database_is_discarded_and_a_used_one_kept(tmp_path: Path) -> None:
    from bulkops.store import discard_if_unused
    from bulkops.store._lock import RunLock

    empty = tmp_path / "empty.db"
    Store(empty).close()
    assert discard_if_unused(empty)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # with its -wal, -shm and lock

    used = tmp_path / "used.db"
    store = Store(used)
    make_run(store, tmp_path, f"device_id,action\n{IDS[0]},blankpush\n")
    store.close()
    assert not discard_if_unused(used) and used.exists()

    held = tmp_path / "held.db"
    Store(held).close()
    lock = RunLock(held)
    lock.acquire()  # another bulkops is about to send from it
    try:
        assert not discard_if_unused(held) and held.exists()
    finally:
        lock.release()

    busy = tmp_path / "busy.db"
    Store(busy).close()
    writer = sqlite3.connect(busy, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process mid-ingest: its run is not yet visible
    try:
        assert not discard_if_unused(busy) and busy.exists()
    finally:
        writer.close()
    assert discard_if_unused(busy)


def test_a_database_in_a_folder_named_with_hash_or_percent_is_its_own(tmp_path: Path) -> None:
    """Diff review: the path went into a `file:` URI unescaped, so `--db "jobs #1/bulkops.db"`
    and `--db "jobs #2/bulkops.db"` both opened a file `jobs ` and shared one database, and a
    `%` in a path failed to open at all."""
    from bulkops.store import connect

    paths = [tmp_path / name / "bulkops.db" for name in ("jobs #1", "jobs #2", "50% done", "a?b")]
    for n, path in enumerate(paths):
        conn = connect(path)
        conn.execute("INSERT INTO meta VALUES ('who', ?)", (str(n),))
        conn.close()
    for n, path in enumerate(paths):
        assert path.is_file()
        conn = connect(path, readonly=True)
        assert conn.execute("SELECT value FROM meta WHERE key = 'who'").fetchone() == (str(n),)
        conn.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["50% done", "a?b", "jobs #1", "jobs #2"]


def test_a_database_reached_through_a_symlink_has_one_lock(tmp_path: Path) -> None:
    """Diff review: the index keeps a database's resolved path, while a run working through a
    symlink to it locked `<link>.lock`: a check of the database did not see that run."""
    from bulkops.store._lock import RunLock

    real = tmp_path / "real" / "bulkops.db"
    real.parent.mkdir()
    real.write_bytes(b"")
    link = tmp_path / "link.db"
    link.symlink_to(real)
    working = RunLock(link)
    working.acquire()
    try:
        assert RunLock(real).in_use()
    finally:
        working.release()
    assert not RunLock(real).in_use()
