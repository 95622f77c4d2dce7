"""Reconciliation after a crash, and ``resume --resend-unknown``.

An unsafe item found in ``sending`` is never resent blindly: its command visible in the
device's ``/commands`` makes it succeeded (a Mac lock's PIN read back from
``secrets/unlockpin``); not visible makes it ``unknown``; only ``resume RUN_ID --resend-unknown``
sends it again, exactly once more.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.crash.conftest import Served
from tests.crash.harness import (
    FINISHED,
    ForkServer,
    Job,
    Row,
    check,
    devices_of,
    entries_for,
    read_csv,
    run_once,
)


def unsafe_rows(served: Served) -> list[Row]:
    """Two Mac locks (PINs), an erase with a PIN, lost mode on an iPhone, a restart."""
    macs = devices_of(served.sim, "Mac")
    phone = next(d for d in devices_of(served.sim, "iPhone") if d["lost_mode_status"] != "ENABLED")
    plan = [
        (macs[0], "lock", {}),
        (macs[1], "lock", {"message": "Call IT"}),
        (macs[2], "erase", {"pin": "123456"}),
        (phone, "enablelostmode", {"message": "Lost"}),
        (macs[3], "restart", {}),
    ]
    return [
        Row(n + 2, d["device_id"], a, {"device_id": d["device_id"], "action": a, **cells})
        for n, (d, a, cells) in enumerate(plan)
    ]


def crash_each_item(fork_server: ForkServer, job: Job, point: str) -> int:
    """One pass per item, each ended at ``point`` of its request; then a pass to the end."""
    for _ in job.rows:
        assert run_once(fork_server, job, spec={"crash_on": point}) == 137, job.err.read_text()
    return run_once(fork_server, job)


def gets(served: Served, job: Job, tail: str) -> int:
    return sum(
        1 for e in entries_for(served.sim, job.rows) if e.method == "GET" and e.path.endswith(tail)
    )


def test_an_applied_unrecorded_request_is_reconciled_from_the_device(
    fork_server: ForkServer, serve: Callable[..., Served], tmp_path: Path
) -> None:
    served = serve(devices=60, seed=41, latency_s=0.0)
    rows = unsafe_rows(served)
    job = Job(tmp_path / "job", served.url, served.token, rows, concurrency=1)

    # Each pass dies right after the server answered one request, before the outcome is committed.
    assert crash_each_item(fork_server, job, "after http POST") == 0

    verdict = check(rows, entries_for(served.sim, rows), job.reports)
    assert verdict.violations == []
    assert verdict.outcomes["succeeded"] == len(rows)
    assert verdict.reconciled == len(rows)  # every one settled from /commands, none resent
    assert all(served.sim.ledger.applied_count(r.device_id, r.action) == 1 for r in rows)
    assert gets(served, job, "/commands") == len(rows)
    assert gets(served, job, "/secrets/unlockpin") == 2
    assert verdict.pins_issued == verdict.pins_kept == 2
    secrets = {int(s["line"]): s["secret"] for s in read_csv(job.reports / "secrets.csv")}
    assert secrets == {r.line: served.sim.ledger.pins(r.device_id)[0] for r in rows[:2]}


def test_a_request_that_never_left_is_unknown_until_the_user_resends_it(
    fork_server: ForkServer, serve: Callable[..., Served], tmp_path: Path
) -> None:
    served = serve(devices=60, seed=42, latency_s=0.0)
    rows = unsafe_rows(served)
    job = Job(tmp_path / "job", served.url, served.token, rows, concurrency=1)

    # Each pass dies with the intent committed and the request not yet sent.
    assert crash_each_item(fork_server, job, "before http POST") == 1
    verdict = check(rows, entries_for(served.sim, rows), job.reports)
    assert verdict.outcomes == {"unknown": len(rows)}
    assert verdict.violations == []
    assert served.sim.ledger.applied_count() == 0
    assert gets(served, job, "/commands") == len(rows)  # looked for, not found
    results = read_csv(job.reports / "results.csv")
    assert all("outcome unknown" in r["error"] for r in results)

    # The same command does not resend them: the run is finished, the choice is the user's;
    # it exits 1 all the same, as unknown outcomes are not a success.
    sent = len(served.sim.ledger)
    assert run_once(fork_server, job) == 1
    assert len(served.sim.ledger) == sent

    # resume --resend-unknown: each sent exactly once more.
    argv = job.resume_argv(job.run_id(), "--resend-unknown")
    assert run_once(fork_server, job, argv) in FINISHED
    verdict = check(rows, entries_for(served.sim, rows), job.reports)
    assert verdict.violations == []
    assert verdict.outcomes == {"succeeded": len(rows)}
    posts = [e for e in entries_for(served.sim, rows) if e.method == "POST"]
    assert len(posts) == len(rows)
    assert all(served.sim.ledger.applied_count(r.device_id, r.action) == 1 for r in rows)
    assert verdict.pins_issued == verdict.pins_kept == 2
