"""Storage faults: the checkpoint database locked by another process, read-only, or the disk full.

In every case the CLI must send nothing whose intent it could not commit (the ledger shows no
request for an item the database still has as ``pending``), stop with one ``error:`` line and
exit 3 (documented: aborted, storage failure), never a traceback or a hang; and once the fault
is gone the same command must finish the run without loss or duplicates.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.crash.conftest import Served
from tests.crash.harness import (
    ForkServer,
    Job,
    check,
    error_lines,
    hung,
    locked,
    mixed_rows,
    run_once,
    sent_without_intent,
    settled,
)

EXIT_ABORTED = 3


def new_job(served: Served, tmp: Path, items: int = 120, seed: int = 31) -> Job:
    return Job(
        tmp / "job", served.url, served.token, mixed_rows(served.sim, items=items, seed=seed)
    )


def start_then_kill(fork_server: ForkServer, job: Job, served: Served, requests: int) -> None:
    """A first pass killed once it has sent ``requests`` requests: a run half done."""
    before = len(served.sim.ledger)
    child = fork_server.spawn(job, job.run_argv())
    deadline = time.monotonic() + 60
    while len(served.sim.ledger) < before + requests and time.monotonic() < deadline:
        if child.wait(0.005) is not None:
            raise AssertionError(f"the first pass ended early: {job.err.read_text()}")
    child.signal(9)
    assert child.wait(30) == -9
    settled(served.sim)


def finish_cleanly(fork_server: ForkServer, job: Job, served: Served) -> None:
    """With the fault gone, the same command completes the run; the ledger agrees."""
    job.fresh_output()
    assert run_once(fork_server, job) in (0, 1), job.err.read_text()
    verdict = check(job.rows, list(served.sim.ledger.entries), job.reports)
    print(f"\n  after the fault: {verdict.figures()}")
    assert verdict.violations == []
    assert verdict.outcomes["succeeded"] + verdict.unknown == verdict.items


def assert_one_clear_line(job: Job, *words: str) -> None:
    """One ``error:`` line on stderr, naming the cause (any of ``words``), no traceback."""
    text = job.err.read_text()
    assert "Traceback" not in text, text
    lines = error_lines(job)
    print(f"\n  {lines}")
    assert len(lines) == 1, text
    assert any(w in lines[0] for w in words), lines[0]


def test_database_locked_at_start_sends_nothing(
    fork_server: ForkServer, serve: Callable[..., Served], tmp_path: Path
) -> None:
    served = serve(devices=120, seed=31)
    job = new_job(served, tmp_path)
    start_then_kill(fork_server, job, served, requests=30)
    states = job.states()
    sent = len(served.sim.ledger)

    with locked(job.db):
        job.fresh_output()
        t0 = time.monotonic()
        assert run_once(fork_server, job, timeout_s=60) == EXIT_ABORTED
        waited = time.monotonic() - t0
    assert len(served.sim.ledger) == sent  # not one request
    assert job.states() == states
    assert_one_clear_line(job, "locked", "another bulkops process")
    assert waited < 30
    finish_cleanly(fork_server, job, served)


@pytest.mark.parametrize("which", ["run.db", pytest.param("budget.db", marks=pytest.mark.slow)])
def test_database_locked_mid_run_stops_cleanly(
    fork_server: ForkServer, serve: Callable[..., Served], tmp_path: Path, which: str
) -> None:
    """Another process takes the write lock while requests are going out: the engine waits its
    busy timeout, then stops; whatever it sent had its intent on disk.  (``budget.db``: the
    send history every run on the machine shares.)"""
    served = serve(devices=200, seed=32)
    job = new_job(served, tmp_path, items=200, seed=32)
    before = len(served.sim.ledger)
    child = fork_server.spawn(job, job.run_argv())
    while len(served.sim.ledger) < before + 40:
        assert child.wait(0.005) is None, job.err.read_text()
    with locked(job.db if which == "run.db" else job.folder / which):
        during = len(served.sim.ledger)
        rc = child.wait(40)
        if rc is None:
            hung(child)
            print(job.err.read_text())
        fault_pass = served.sim.ledger.entries[before:]
        assert sent_without_intent(job, fault_pass) == []
    assert rc == EXIT_ABORTED, f"exit {rc} (None: hung with the database locked)"
    assert_one_clear_line(job, "locked", "another bulkops process")
    print(f"\n  sent after the lock was taken: {len(served.sim.ledger) - during}")
    finish_cleanly(fork_server, job, served)


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make a file or folder unwritable, even for root (``chattr +i``), else with ``chmod``."""
    if os.geteuid() == 0:
        if shutil.which("chattr") is None:
            pytest.skip("running as root without chattr: cannot make a file read-only")
        done = subprocess.run(["chattr", "+i", str(path)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"chattr +i is not supported here: {done.stderr.decode().strip()}")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        mode = path.stat().st_mode
        path.chmod(0o500 if path.is_dir() else 0o400)
        try:
            yield
        finally:
            path.chmod(mode)


@pytest.mark.parametrize("what", ["file", "folder"])
def test_read_only_database_sends_nothing(
    fork_server: ForkServer, serve: Callable[..., Served], tmp_path: Path, what: str
) -> None:
    served = serve(devices=120, seed=33)
    job = new_job(served, tmp_path, seed=33)
    start_then_kill(fork_server, job, served, requests=30)
    states = job.states()
    sent = len(served.sim.ledger)
    if what == "folder":
        conn = sqlite3.connect(job.db)  # the last connection to close removes -wal and -shm
        conn.execute("SELECT count(*) FROM items").fetchone()
        conn.close()
        assert not job.db.with_name("run.db-wal").exists()

    with read_only(job.db if what == "file" else job.db.parent):
        job.fresh_output()
        assert run_once(fork_server, job, timeout_s=60) == EXIT_ABORTED
    assert len(served.sim.ledger) == sent
    assert job.states() == states
    assert_one_clear_line(job, "read-only")
    finish_cleanly(fork_server, job, served)


def test_disk_full_stops_cleanly_and_sends_nothing_unrecorded(
    fork_server: ForkServer, serve: Callable[..., Served], tmp_path: Path
) -> None:
    """RLIMIT_FSIZE in the child: every write past the limit fails with EFBIG (SIGXFSZ ignored),
    as on a full disk.  The manifest is ingested first, so the limit bites mid-run."""
    served = serve(devices=200, seed=34)
    job = new_job(served, tmp_path, items=160, seed=34)
    start_then_kill(fork_server, job, served, requests=5)
    wal = job.db.with_name("run.db-wal")
    limit = max(wal.stat().st_size if wal.exists() else 0, job.db.stat().st_size) + 96 * 1024
    before = len(served.sim.ledger)

    job.fresh_output()
    rc = run_once(fork_server, job, spec={"rlimit_fsize": limit}, timeout_s=60)
    fault_pass = served.sim.ledger.entries[before:]
    assert rc == EXIT_ABORTED, job.err.read_text()
    assert len(fault_pass) > 0  # the limit bit mid-run, not before the first request
    assert sent_without_intent(job, fault_pass) == []
    assert_one_clear_line(job, "disk is full")
    print(f"\n  limit {limit} B: {len(fault_pass)} requests before the disk was full")
    finish_cleanly(fork_server, job, served)
