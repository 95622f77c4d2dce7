"""The 429 gate: one shared pause, one probe, reopen; exponential backoff when the probe fails."""

from __future__ import annotations

import asyncio
import itertools
import math
import random
from pathlib import Path

import pytest

from bulkops.budget import Budget, BudgetConfig, FakeClock, Rate, SendHistory
from bulkops.budget._gate import PROBE_BACKOFF_CAP_S, Gate, GateState

from .spy import FakeKong, MaxRandom, Spy

START = 1_767_225_600.0
CONFIG = BudgetConfig(rate=Rate(1000, 10.0), per_second=10**6, burst=5)


# --- the state machine alone -------------------------------------------------------------


def test_first_429_closes_until_retry_after_plus_small_jitter() -> None:
    gate = Gate(rng=MaxRandom())
    gate.on_429(100.0, retry_after_s=30.0, to_window_end_s=500.0, granted_epoch=0, probe=False)
    assert gate.state is GateState.CLOSED
    assert 130.0 < gate.until <= 131.0
    assert gate.pauses == 1 and gate.epoch == 1


def test_without_retry_after_the_pause_lasts_to_the_window_end() -> None:
    gate = Gate(rng=random.Random(1))
    gate.on_429(100.0, retry_after_s=None, to_window_end_s=500.0, granted_epoch=0, probe=False)
    assert 600.0 <= gate.until <= 601.0


def test_jitter_is_at_most_a_tenth_of_a_short_pause() -> None:
    gate = Gate(rng=MaxRandom())
    gate.on_429(100.0, retry_after_s=1.0, to_window_end_s=500.0, granted_epoch=0, probe=False)
    assert 101.0 < gate.until <= 101.1


def test_stale_429_from_before_the_pause_changes_nothing() -> None:
    gate = Gate(rng=random.Random(1))
    gate.on_429(100.0, retry_after_s=5.0, to_window_end_s=50.0, granted_epoch=0, probe=False)
    until = gate.until
    gate.on_429(101.0, retry_after_s=40.0, to_window_end_s=50.0, granted_epoch=0, probe=False)
    assert gate.until == until and gate.pauses == 1
    gate.start_probe()
    gate.probe_answered(106.0)
    gate.on_429(107.0, retry_after_s=40.0, to_window_end_s=50.0, granted_epoch=0, probe=False)
    assert gate.state is GateState.OPEN


def test_probe_failures_back_off_exponentially_up_to_the_cap() -> None:
    gate = Gate(rng=MaxRandom())
    gate.on_429(0.0, retry_after_s=None, to_window_end_s=10.0, granted_epoch=0, probe=False)
    now, waits = gate.until, []
    for _ in range(12):
        assert gate.probe_due(now)
        gate.start_probe()
        gate.on_429(now, retry_after_s=None, to_window_end_s=999.0, granted_epoch=0, probe=True)
        waits.append(gate.until - now)
        now = gate.until
    expected = [min(2.0 * 2**k, PROBE_BACKOFF_CAP_S) for k in range(12)]
    assert waits == pytest.approx(expected, rel=1e-5)
    assert gate.pauses == 1
    gate.start_probe()
    gate.probe_answered(now + 1.0)
    assert gate.state is GateState.OPEN and gate.failed_probes == 0
    assert gate.paused_for(now + 100.0) == pytest.approx(now + 1.0)


def test_probe_429_honours_a_longer_retry_after() -> None:
    gate = Gate(rng=MaxRandom())
    gate.on_429(0.0, retry_after_s=1.0, to_window_end_s=10.0, granted_epoch=0, probe=False)
    gate.start_probe()
    gate.on_429(2.0, retry_after_s=60.0, to_window_end_s=10.0, granted_epoch=1, probe=True)
    assert 62.0 <= gate.until <= 63.0


# --- the gate inside the budget ------------------------------------------------------------


async def test_first_429_stops_every_worker_then_one_probe_then_all() -> None:
    clock = FakeClock(START + 2.0)
    server = FakeKong(clock, limit=300, period_s=10.0)  # others spent 700 of this window
    budget = Budget(CONFIG, clock=clock, rng=random.Random(7))
    spy = Spy(budget, clock, server=server)
    await spy.hammer(tasks=20, until=START + 12.0, latency_s=0.2)

    refused = [e for e in spy.events if e.refused]
    first_429 = min(e.answered for e in refused)
    pause_end = START + 10.0  # Retry-After: the window's end
    after = sorted((e for e in spy.events if e.granted > first_429), key=lambda e: e.granted)
    assert after[0].granted >= pause_end  # nothing granted during the pause
    assert after[0].granted <= pause_end + 1.0  # … and not much later (jitter ≤ 1 s)
    probe = after[0]
    assert probe.probe and not probe.refused
    assert all(e.granted >= probe.answered for e in after[1:])  # alone until it answered
    assert sum(1 for e in after if e.granted < probe.answered + 0.1) > 5  # then all reopen
    assert sum(e.probe for e in spy.events) == 1

    stats = budget.stats
    assert stats.pauses == 1
    assert stats.rate_limited == len(refused)
    assert stats.paused_s == pytest.approx(probe.answered - first_429, abs=1e-6)
    assert server.counts[int(START // 10)] == 300
    # Refused requests were uncounted: the window we paused in shows only accepted sends.
    assert stats.max_in_window_seen >= 300
    budget.close()


async def test_probe_refused_again_backs_off_exponentially() -> None:
    clock = FakeClock(START + 2.0)
    server = FakeKong(clock, limit=10**6, period_s=10.0, refuse_until=START + 200.0)
    budget = Budget(CONFIG, clock=clock, rng=MaxRandom())
    spy = Spy(budget, clock, server=server)
    await spy.hammer(tasks=10, until=START + 230.0, latency_s=0.1)

    probes = [e for e in spy.events if e.probe]
    assert [p.refused for p in probes] == [True] * (len(probes) - 1) + [False]
    gaps = [b.granted - a.answered for a, b in itertools.pairwise(probes)]
    # Full jitter at its ceiling: 2, 4, 8, … seconds after each refused probe.
    assert gaps[:6] == pytest.approx([2.0 * 2**k for k in range(6)], abs=1e-3)
    # The first pause (no Retry-After) lasted to the window's end.
    assert START + 10.0 <= probes[0].granted <= START + 11.0
    # Between probes nothing else was granted.
    first, last = probes[0].granted, probes[-1].granted
    others = [e for e in spy.events if first <= e.granted <= last and not e.probe]
    assert others == []
    assert budget.stats.pauses == 1
    budget.close()


async def test_a_refused_send_is_uncounted() -> None:
    clock = FakeClock(START)
    budget = Budget(CONFIG, clock=clock)
    async with budget.acquire():
        pass
    async with budget.acquire() as permit:
        assert budget.window_left() == 998
        permit.rate_limited(5.0)
        permit.rate_limited(5.0)  # twice: counted once
    assert budget.stats.sent_in_window == 1  # the refused one is not in the history
    assert budget.window_left() == 0  # and while the pause lasts, nothing is left to us
    assert budget.stats.rate_limited == 1
    assert budget.stats.sent == 2
    budget.close()


async def test_a_cancelled_probe_hands_the_probe_to_the_next_waiter() -> None:
    clock = FakeClock(START)
    budget = Budget(CONFIG, clock=clock)
    async with budget.acquire() as permit:
        permit.rate_limited(1.0)

    async def probe_then_die() -> None:
        async with budget.acquire() as probe:
            assert probe.is_probe
            await clock.sleep(100.0)

    doomed = asyncio.create_task(probe_then_die())
    while not budget.stats.paused_s or clock.now() < START + 1.2:
        await clock.sleep(0.1)
    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    async with budget.acquire() as second:
        assert second.is_probe
    async with budget.acquire() as third:
        assert not third.is_probe
    budget.close()


async def test_a_transport_error_on_the_probe_reopens_the_gate() -> None:
    clock = FakeClock(START)
    budget = Budget(CONFIG, clock=clock)
    async with budget.acquire() as permit:
        permit.rate_limited(None)
    with pytest.raises(ConnectionResetError):
        async with budget.acquire() as probe:
            assert probe.is_probe
            raise ConnectionResetError
    async with budget.acquire() as after:
        assert not after.is_probe
    assert clock.now() >= START + 10.0  # no Retry-After: the pause lasted to the window's end
    assert not math.isnan(budget.stats.paused_s)
    budget.close()


async def test_a_pause_is_said_once_with_its_end_and_shows_in_what_is_left(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Review: a 429 pause of ~40 minutes showed "window left 8980 · ETA 8s" and, without a
    terminal, nothing at all. One warning names the end; the window shows nothing left."""
    clock = FakeClock(START + 3.0)  # 7 s before the 10-s window ends
    budget = Budget(CONFIG, clock=clock)
    assert budget.pause_left_s() == 0.0
    eta_open = budget.eta_s(50)
    with caplog.at_level("WARNING", logger="bulkops"):
        async with budget.acquire() as first:
            first.rate_limited(None)  # no Retry-After: to the window's end
        async with budget.acquire() as probe:  # after the pause; answered: no second line
            assert probe.is_probe
    lines = [r.getMessage() for r in caplog.records if "429" in r.getMessage()]
    assert len(lines) == 1, lines
    assert "every request waits until" in lines[0] and "UTC" in lines[0], lines[0]
    budget.close()

    clock = FakeClock(START + 3.0)
    budget = Budget(CONFIG, clock=clock)
    async with budget.acquire() as permit:
        permit.rate_limited(None)
    assert 7.0 <= budget.pause_left_s() <= 7.0 + 1.0  # the window's end, plus a little jitter
    assert budget.window_left() == 0
    assert budget.eta_s(50) > eta_open + 6.0
    budget.close()


async def test_a_pause_holds_every_run_on_the_tenant_and_outlives_a_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Review: a restarted run (or a second run on the same machine) knew nothing of the pause,
    promised thousands of requests in its plan, and met the 429 again with its first request.
    The pause is in the shared send history: each run waits it out, then one probe goes."""
    clock = FakeClock(START + 3.0)  # 7 s before the 10-s window ends
    path = tmp_path / "budget.db"
    first, second = (
        Budget(CONFIG, history=SendHistory(path, tenant=CONFIG.tenant), clock=clock)
        for _ in range(2)
    )
    async with first.acquire() as permit:
        permit.rate_limited(None)  # no Retry-After: to the window's end
    end = START + 10.0
    assert end <= first.pause_left_s() + clock.now() <= end + 1.0
    with caplog.at_level("WARNING", logger="bulkops"):
        async with second.acquire() as probe:  # waits for the first run's pause, then probes
            assert probe.is_probe
            assert clock.now() >= first._gate.until
    assert any("another run on this tenant" in r.getMessage() for r in caplog.records)
    assert second.stats.pauses == 1
    for budget in (first, second):
        budget._history.close()

    clock = FakeClock(START + 3.0)  # a restart during the pause
    with SendHistory(path, tenant=CONFIG.tenant) as history:
        restarted = Budget(CONFIG, history=history, clock=clock)
        assert restarted.window_left() == 0 and restarted.pause_left_s() >= 7.0
        assert restarted._gate.until != first._gate.until  # its own jitter: they probe apart
        async with restarted.acquire() as probe:
            assert probe.is_probe and clock.now() >= end
        async with restarted.acquire() as after:
            assert not after.is_probe
        restarted.close()


@pytest.mark.parametrize("whose", ["another run's", "this run's"])
async def test_a_stale_permit_never_waits_out_a_pause_with_its_intent_on_disk(
    tmp_path: Path, whose: str
) -> None:
    """Diff review: a permit re-recorded because its window ended during the intent's commit
    waited out a whole 429 pause (30 minutes here) in ``refresh``, its item in ``sending``,
    out of reach of a stop, and then went out beside the probe. It goes back instead: uncounted,
    to acquire again behind the gate."""
    clock = FakeClock(START + 9.999)
    config = BudgetConfig(rate=Rate(100, 10.0), per_second=10**6, tenant=CONFIG.tenant)
    path = tmp_path / "budget.db"
    mine = Budget(config, history=SendHistory(path, tenant=CONFIG.tenant), clock=clock)
    other = Budget(config, history=SendHistory(path, tenant=CONFIG.tenant), clock=clock)
    refuser = other if whose == "another run's" else mine
    async with mine.acquire() as permit:
        async with refuser.acquire() as refused:
            refused.rate_limited(1800.0)
        clock.advance(0.002)  # the intent's commit took us past the window's boundary
        before = clock.now()
        assert await mine.refresh(permit) is False
        assert clock.now() == before  # no wait
        assert mine.stats.sent == (1 if refuser is mine else 0)  # the refused one stays counted
    async with mine.acquire() as again:  # behind the gate: after the pause, as the probe
        # (another run's pause is adopted for at most the rate's window and a second: 11 s)
        assert again.is_probe and clock.now() >= START + 9.999 + 11.0
    for budget in (mine, other):
        budget._history.close()
