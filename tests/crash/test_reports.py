"""A run marked done, then killed before its reports: running the same command writes them.

Found by the crash-point sweep (``test_sweep.py``, the point just after ``run-status done``):
``bulkops run`` answered "already finished" and never wrote ``results.csv`` or ``secrets.csv``,
so the PINs of the locks stayed only in the database.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.crash.conftest import Served
from tests.crash.harness import ForkServer, Job, Row, check, devices_of, entries_for, run_once


def test_killed_between_done_and_reports_the_same_command_writes_them(
    fork_server: ForkServer, serve: Callable[..., Served], tmp_path: Path
) -> None:
    """The run is marked done, then killed before its reports: nothing may be left unreported."""
    served = serve(devices=40, seed=3, latency_s=0.0)
    macs = devices_of(served.sim, "Mac")[:3]
    rows = [
        Row(n + 2, d["device_id"], "lock", {"device_id": d["device_id"], "action": "lock"})
        for n, d in enumerate(macs)
    ]
    job = Job(tmp_path / "job", served.url, served.token, rows)

    assert run_once(fork_server, job, spec={"crash_on": "after run-status done"}) == 137
    assert job.states() == {2: "succeeded", 3: "succeeded", 4: "succeeded"}
    assert not (job.reports / "secrets.csv").exists()

    assert run_once(fork_server, job) == 0
    verdict = check(rows, entries_for(served.sim, rows), job.reports)
    assert verdict.violations == []
    assert verdict.pins_kept == verdict.pins_issued == 3
    assert "already finished" in job.out.read_text()
