"""Ctrl-C: once finishes the requests in flight and stops; twice stops at once. Both exit 130 and
the same command resumes without loss or duplicates.

The simulator applies each action at once and answers it ``slow_s`` later, so a signal always
finds requests in flight that the server has already acted on.
"""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from bulkops.actions import ACTIONS
from bulkops.sim import Faults
from tests.crash.conftest import Served
from tests.crash.harness import (
    FINISHED,
    ForkServer,
    Job,
    Row,
    check,
    devices_of,
    mixed_rows,
    run_once,
)

EXIT_INTERRUPTED = 130
ACTION_ROUTES = frozenset(("POST", f"/api/v1/devices/{{device_id}}/action/{a}") for a in ACTIONS)


def slow_actions(slow_s: float) -> Faults:
    return Faults(slow_rate=1.0, slow_s=slow_s, routes=ACTION_ROUTES)


def posts(served: Served, since: float = 0.0) -> int:
    return sum(
        1 for e in list(served.sim.ledger.entries) if e.method == "POST" and e.t_real > since
    )


def wait_for_posts(served: Served, n: int, child: object, job: Job) -> None:
    deadline = time.monotonic() + 60
    while posts(served) < n:
        assert child.wait(0.005) is None, job.err.read_text()  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "no requests went out"


@pytest.mark.parametrize(
    "sig",
    [signal.SIGINT, signal.SIGTERM, signal.SIGHUP],  # Ctrl-C; kill or launchd; the window closed
    ids=["SIGINT", "SIGTERM", "SIGHUP"],
)
def test_one_ctrl_c_finishes_in_flight_then_exits_130(
    fork_server: ForkServer, serve: Callable[..., Served], tmp_path: Path, sig: signal.Signals
) -> None:
    served = serve(devices=120, seed=51, faults=slow_actions(0.4))
    rows = mixed_rows(served.sim, items=40, seed=51)
    job = Job(tmp_path / "job", served.url, served.token, rows, concurrency=4)

    child = fork_server.spawn(job, job.run_argv())
    wait_for_posts(served, 8, child, job)
    t_signal = time.time()
    child.signal(sig)
    if sig == signal.SIGHUP:  # a closing window: the shell's, then the kernel's, 1 ms apart
        time.sleep(0.001)
        child.signal(sig)
    rc = child.wait(20)

    assert rc == EXIT_INTERRUPTED, job.err.read_text()
    summary = json.loads((job.reports / "summary.json").read_text())
    assert summary["requests"] == len(served.sim.ledger.entries)  # none counted that never left
    assert "stopping after the requests in flight" in job.err.read_text()
    assert "Traceback" not in job.err.read_text()
    states = Counter(job.states().values())
    assert states["sending"] == 0  # every request in flight was answered and recorded
    assert 0 < states["pending"] < len(rows)
    # No new item is taken: only workers that already held one may still send it.
    assert posts(served, since=t_signal) <= job.concurrency

    job.fresh_output()
    assert run_once(fork_server, job) == 0
    verdict = check(rows, list(served.sim.ledger.entries), job.reports)
    print(f"\n  one Ctrl-C, then resume: {verdict.figures()}")
    assert verdict.violations == []
    assert verdict.outcomes == {"succeeded": len(rows)}


def test_two_ctrl_c_stop_at_once_and_the_resume_reconciles(
    fork_server: ForkServer, serve: Callable[..., Served], tmp_path: Path
) -> None:
    slow_s = 3.0
    served = serve(devices=60, seed=52, faults=slow_actions(slow_s))
    macs = devices_of(served.sim, "Mac")
    phone = next(d for d in devices_of(served.sim, "iPhone") if d["lost_mode_status"] == "")
    plan = [
        (macs[0], "lock", {}),
        (macs[1], "erase", {"pin": "654321"}),
        (macs[2], "restart", {}),
        (phone, "enablelostmode", {"message": "Lost"}),
        *((d, "blankpush", {}) for d in macs[3:7]),
    ]
    rows = [
        Row(n + 2, d["device_id"], a, {"device_id": d["device_id"], "action": a, **cells})
        for n, (d, a, cells) in enumerate(plan)
    ]
    job = Job(tmp_path / "job", served.url, served.token, rows, concurrency=4)

    child = fork_server.spawn(job, job.run_argv())
    wait_for_posts(served, 4, child, job)  # the four unsafe actions: applied, answers pending
    child.signal(signal.SIGINT)
    time.sleep(0.2)
    t_second = time.monotonic()
    child.signal(signal.SIGINT)
    rc = child.wait(20)
    took = time.monotonic() - t_second

    assert rc == EXIT_INTERRUPTED, job.err.read_text()
    assert took < slow_s - 0.5  # it did not wait for the answers
    assert "Traceback" not in job.err.read_text()
    states = job.states()
    assert [states[r.line] for r in rows[:4]] == ["sending"] * 4
    assert posts(served) == 4

    job.fresh_output()
    assert run_once(fork_server, job) in FINISHED
    verdict = check(rows, list(served.sim.ledger.entries), job.reports)
    print(f"\n  two Ctrl-C ({took:.2f} s to stop), then resume: {verdict.figures()}")
    assert verdict.violations == []
    assert verdict.outcomes == {"succeeded": len(rows)}
    assert verdict.reconciled == 4  # found on the devices, not sent again
    assert verdict.pins_kept == verdict.pins_issued == 1


def test_ctrl_c_while_rows_are_resolved_sends_nothing(
    fork_server: ForkServer, serve: Callable[..., Served], tmp_path: Path
) -> None:
    """Resolution reads the inventory before any write; a Ctrl-C then must still stop the run."""
    sweep_page = Faults(latency_s=0.6, routes=frozenset({("GET", "/api/v1/devices")}))
    served = serve(devices=700, seed=53, latency_s=0.0, faults=sweep_page)
    rows = [
        Row(n + 2, d["device_id"], "update", {"serial_number": d["serial_number"], **cells})
        for n, d in enumerate(devices_of(served.sim)[:100])
        for cells in ({"action": "update", "asset_tag": f"SIG-{n}"},)
    ]
    job = Job(tmp_path / "job", served.url, served.token, rows)

    child = fork_server.spawn(job, job.run_argv())
    deadline = time.monotonic() + 30
    while not any(e.path == "/api/v1/devices" for e in list(served.sim.ledger.entries)):
        assert child.wait(0.005) is None, job.err.read_text()
        assert time.monotonic() < deadline
    child.signal(signal.SIGINT)  # the inventory sweep has pages left to read
    rc = child.wait(30)
    if rc is None:
        child.signal(signal.SIGKILL)
        child.wait(30)

    writes = [e for e in list(served.sim.ledger.entries) if e.method != "GET"]
    assert (rc, len(writes)) == (EXIT_INTERRUPTED, 0), job.err.read_text()
    assert "Traceback" not in job.err.read_text()

    assert run_once(fork_server, job) == 0
    verdict = check(rows, list(served.sim.ledger.entries), job.reports)
    assert verdict.violations == []
    assert verdict.outcomes == {"succeeded": len(rows)}
