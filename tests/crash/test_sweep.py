"""Crash-point sweep: stop the CLI just after its k-th checkpoint write or HTTP event, for every k
and each action class, resume with the same command, and hold the result to the ledger.

The points are counted by ``tests.crash.runner`` from outside the code (it wraps the store's
commit, the client's send, the run-status writes and the reports), so production code has no
test knob.  The controls run the same sweep against two deliberately wrong orders and must fail.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.crash.conftest import Served
from tests.crash.harness import (
    ForkServer,
    Job,
    Point,
    Row,
    check,
    devices_of,
    entries_for,
    integrity,
    run_once,
    sweep,
    sweep_table,
)

# action class → (platforms, action, extra cells, given by serial number)
CLASSES: dict[str, tuple[tuple[str, ...], str, dict[str, str], bool]] = {
    "nudge": ((), "blankpush", {}, False),
    "patch": ((), "update", {"asset_tag": "SWEEP"}, True),
    "lock-pin": (("Mac",), "lock", {"message": "Call IT"}, False),
    "erase": (("Mac",), "erase", {"pin": "123456"}, False),
    "delete": ((), "delete", {}, False),
    "restart": ((), "restart", {}, False),
    "lostmode": (("iPhone",), "enablelostmode", {"message": "Lost"}, False),
}
DEFAULT = ("nudge", "patch", "lock-pin", "erase", "delete")
# Events a sweep of each class must pass through: if a refactor renames what the runner wraps,
# the sweep would silently stop crashing there.
MUST_SEE = ("after commit intent", "after commit outcome", "after run-status done", "after reports")


def job_maker(served: Served, tmp: Path, cls: str) -> Callable[[int], Job]:
    """Each k gets a fresh job on its own device."""
    platforms, action, cells, by_serial = CLASSES[cls]
    pool = [
        d
        for d in devices_of(served.sim, *platforms)
        if action != "enablelostmode" or d["lost_mode_status"] != "ENABLED"
    ]

    def new_job(k: int) -> Job:
        dev = pool.pop()
        given: dict[str, Any] = {"action": action, **cells}
        if by_serial:
            given["serial_number"] = dev["serial_number"]
        else:
            given["device_id"] = dev["device_id"]
        if "asset_tag" in given:
            given["asset_tag"] = f"SWEEP-{k}"
        rows = [Row(2, dev["device_id"], action, given)]
        return Job(tmp / f"{cls}-{k}", served.url, served.token, rows)

    return new_job


def run_sweep(
    fork_server: ForkServer,
    serve: Callable[..., Served],
    tmp: Path,
    cls: str,
    *,
    spec: dict[str, Any] | None = None,
    after_only: bool = True,
) -> list[Point]:
    served = serve(devices=400, seed=11, latency_s=0.0)
    points = sweep(
        fork_server,
        job_maker(served, tmp, cls),
        served.sim,
        spec=spec,
        after_only=after_only,
    )
    print("\n" + sweep_table(f"{cls} {spec or ''}".strip(), points))
    return points


@pytest.mark.parametrize("cls", DEFAULT)
def test_every_crash_point_resumes_without_loss_or_duplicates(
    fork_server: ForkServer, serve: Callable[..., Served], tmp_path: Path, cls: str
) -> None:
    points = run_sweep(fork_server, serve, tmp_path, cls)

    labels = [p.label for p in points]
    for event in MUST_SEE:
        assert any(label.startswith(event) for label in labels), (event, labels)
    assert all(p.crashed == 137 for p in points)
    assert [p.integrity for p in points] == ["ok"] * len(points)
    assert all(p.resumed in (0, 1) for p in points), [(p.k, p.resumed) for p in points]
    bad = {p.k: p.verdict.violations for p in points if p.verdict.violations}
    assert bad == {}, sweep_table(cls, points)
    outcomes = Counter(o for p in points for o in p.verdict.outcomes.elements())
    assert outcomes["succeeded"] + outcomes["unknown"] == len(points)
    if cls in ("lock-pin", "erase"):
        # After the intent and before the answer, an unsafe item is settled by reconciliation:
        # seen on the device (succeeded), or not (unknown) — never sent a second time.
        assert any(p.verdict.reconciled for p in points)
        assert outcomes["unknown"] >= 1
    else:
        assert outcomes["unknown"] == 0


def test_controls_fail_the_sweep(
    fork_server: ForkServer, serve: Callable[..., Served], tmp_path: Path
) -> None:
    """Both wrong orders of §3 must be caught: done-before-send loses items, no intent repeats."""
    early = run_sweep(
        fork_server, serve, tmp_path / "a", "lock-pin", spec={"variant": "done-before-send"}
    )
    lost = [p for p in early if p.verdict.lost]
    assert lost, sweep_table("done-before-send", early)
    assert all("commit outcome" in p.label for p in lost)

    blind = run_sweep(fork_server, serve, tmp_path / "b", "erase", spec={"variant": "no-intent"})
    dupes = [p for p in blind if p.verdict.duplicates]
    assert dupes, sweep_table("no-intent", blind)
    assert all("http POST" in p.label for p in dupes)


@pytest.mark.slow
@pytest.mark.parametrize("cls", sorted(CLASSES))
def test_every_point_before_and_after_each_event(
    fork_server: ForkServer, serve: Callable[..., Served], tmp_path: Path, cls: str
) -> None:
    """The full sweep: a crash before and after every event, every class."""
    points = run_sweep(fork_server, serve, tmp_path, cls, after_only=False)
    assert [p.integrity for p in points] == ["ok"] * len(points)
    bad = {p.k: p.verdict.violations for p in points if p.verdict.violations}
    assert bad == {}, sweep_table(cls, points)


@pytest.mark.slow
@pytest.mark.parametrize("cls", ["lock-pin", "erase", "patch"])
def test_a_second_crash_during_the_resume(
    fork_server: ForkServer, serve: Callable[..., Served], tmp_path: Path, cls: str
) -> None:
    """Crash at k1, then crash the resume at k2 (recovery, reconciliation…), for every pair."""
    served = serve(devices=1200, seed=12, latency_s=0.0)
    new_job = job_maker(served, tmp_path, cls)
    pairs, outcomes = 0, Counter[str]()
    for k1 in range(1, 40):
        probe = new_job(k1 * 100)
        if run_once(fork_server, probe, spec={"crash_at": k1, "after_only": True}) in (0, 1):
            break
        for k2 in range(1, 40):
            job = new_job(k1 * 100 + k2)
            assert run_once(fork_server, job, spec={"crash_at": k1, "after_only": True}) == 137
            second = run_once(fork_server, job, spec={"crash_at": k2, "after_only": True})
            last = run_once(fork_server, job)
            assert last in (0, 1), job.err.read_text()
            assert integrity(job.db) == "ok"
            verdict = check(job.rows, entries_for(served.sim, job.rows), job.reports)
            assert verdict.violations == [], (k1, k2, verdict.violations)
            pairs += 1
            outcomes.update(verdict.outcomes)
            if second in (0, 1):
                break
    print(f"\n{cls}: {pairs} (k1, k2) pairs, outcomes {dict(outcomes)}, 0 violations")
    assert pairs >= 10
