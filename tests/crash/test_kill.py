"""kill -9 at random moments, then the same command again, until the run finishes.

The CLI runs as a real process against the simulator on loopback; the simulator's ledger is the
ground truth.  After every kill the database must pass ``PRAGMA integrity_check``; at the end no
item may be lost (never executed and not reported unknown), no unsafe action may be applied twice
or resent, every PIN the simulator issued must be in ``secrets.csv`` (or its item unknown), and
``results.csv`` must agree with the ledger.  The controls run the same harness against the two
wrong orders of a checkpoint and must be caught.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bulkops.sim import Faults
from tests.crash.conftest import Served
from tests.crash.harness import (
    ExecLauncher,
    ForkServer,
    Job,
    KillRun,
    Launcher,
    Verdict,
    check,
    mixed_rows,
    run_once,
    run_until_done,
)

# Requests take 10–30 ms, and one in five is answered 100 ms after the server applied it: kills
# land before, during and after the server acts.
FAULTS = Faults(latency_s=0.01, latency_jitter_s=0.02, slow_rate=0.2, slow_s=0.1, seed=1)


def kill_job(
    launcher: Launcher,
    served: Served,
    folder: Path,
    *,
    items: int,
    kills: int,
    seed: int,
    max_delay_s: float,
    spec: dict[str, str] | None = None,
    early: float = 0.15,
) -> tuple[KillRun, Verdict, Job]:
    rows = mixed_rows(served.sim, items=items, seed=seed)
    assert len(rows) == items
    job = Job(folder, served.url, served.token, rows)
    kr = run_until_done(
        launcher,
        job,
        served.sim,
        kills=kills,
        seed=seed,
        max_delay_s=max_delay_s,
        spec=spec,
        early=early,
    )
    verdict = check(rows, list(served.sim.ledger.entries), job.reports)
    print(
        f"\nseed {seed}{' ' + str(spec) if spec else ''}: kills {kr.kills} · passes {kr.passes} · "
        f"exit {kr.exit_code} · {kr.elapsed_s:.1f} s · integrity errors "
        f"{len(kr.integrity_errors)}\n  {verdict.figures()}"
    )
    return kr, verdict, job


def assert_clean(kr: KillRun, verdict: Verdict, job: Job) -> None:
    assert kr.integrity_errors == []
    assert verdict.violations == [], verdict.violations[:20]
    assert verdict.outcomes["succeeded"] + verdict.unknown == verdict.items
    assert kr.exit_code == (1 if verdict.unknown else 0)
    assert "Traceback" not in job.err.read_text()


def test_kill_9_at_random_moments_loses_and_repeats_nothing(
    fork_server: ForkServer, serve: Callable[..., Served], tmp_path: Path
) -> None:
    served = serve(devices=200, seed=21, faults=FAULTS)
    kr, verdict, job = kill_job(
        fork_server, served, tmp_path, items=320, kills=20, seed=21, max_delay_s=0.4
    )
    assert kr.kills == 20  # every kill landed in a pass that had work left
    assert_clean(kr, verdict, job)
    assert verdict.pins_issued >= 8 and verdict.pins_kept + verdict.unknown >= verdict.pins_issued
    # The same command once more sends nothing and keeps the reports whole; it exits 1 when
    # some outcomes are failed or unknown (they are not a success), else 0.
    sent = len(served.sim.ledger)
    unsettled = verdict.outcomes.get("unknown", 0) + verdict.outcomes.get("failed", 0)
    assert run_once(fork_server, job) == (1 if unsettled else 0)
    assert len(served.sim.ledger) == sent
    assert check(job.rows, list(served.sim.ledger.entries), job.reports).violations == []


def test_the_console_script_itself_survives_kill_9(
    serve: Callable[..., Served], tmp_path: Path
) -> None:
    """The same harness with ``bulkops`` exec'd each pass (no fork server in between)."""
    served = serve(devices=120, seed=22, faults=FAULTS)
    kr, verdict, job = kill_job(
        ExecLauncher(), served, tmp_path, items=120, kills=3, seed=22, max_delay_s=0.6
    )
    assert kr.kills == 3
    assert_clean(kr, verdict, job)


def test_harness_catches_done_before_send(
    fork_server: ForkServer, serve: Callable[..., Served], tmp_path: Path
) -> None:
    """Control (a): the outcome committed before the request leaves → items are lost."""
    served = serve(devices=120, seed=23, faults=FAULTS)
    kr, verdict, _ = kill_job(
        fork_server,
        served,
        tmp_path,
        items=150,
        kills=6,
        seed=23,
        max_delay_s=0.5,
        spec={"variant": "done-before-send"},
        early=0.0,
    )
    assert kr.kills == 6
    assert len(verdict.lost) >= 1, verdict.figures()
    assert any(v.startswith("lost:") for v in verdict.violations)


def test_harness_catches_a_send_without_intent(
    fork_server: ForkServer, serve: Callable[..., Served], tmp_path: Path
) -> None:
    """Control (b): no ``sending`` row before the request → unsafe actions run twice."""
    slow = Faults(latency_s=0.005, slow_rate=0.8, slow_s=0.15, seed=2)
    served = serve(devices=120, seed=24, faults=slow)
    kr, verdict, _ = kill_job(
        fork_server,
        served,
        tmp_path,
        items=150,
        kills=8,
        seed=24,
        max_delay_s=0.5,
        spec={"variant": "no-intent"},
        early=0.0,
    )
    assert kr.kills == 8
    assert len(verdict.duplicates) >= 1, verdict.figures()
    assert len(verdict.resent_unsafe) >= len(verdict.duplicates)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [101, 202, 303])
def test_soak_kill_9_over_a_3000_item_manifest(
    serve: Callable[..., Served], tmp_path: Path, seed: int
) -> None:
    """≥ 200 kills in all (68 per seed), the real console script, 3,000 mixed items per seed."""
    served = serve(devices=1500, seed=seed, faults=FAULTS)
    kr, verdict, job = kill_job(
        ExecLauncher(), served, tmp_path, items=3000, kills=68, seed=seed, max_delay_s=1.5
    )
    assert kr.kills == 68
    assert_clean(kr, verdict, job)
