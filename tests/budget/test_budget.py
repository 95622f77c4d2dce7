"""The budget under load, in virtual time: windows, the second, restarts, sharing, the plan."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bulkops.budget import Budget, BudgetConfig, FakeClock, Permit, Rate, SendHistory

from .spy import Spy, max_aligned, max_sliding, per_window

START = 1_767_225_600.0  # a UTC hour boundary
RATE = Rate(1000, 10.0)  # an hour compressed 360 times
FAST = BudgetConfig(rate=RATE, per_second=10**6, burst=5, tenant="t")  # the window alone binds


def test_constructed_without_a_running_loop() -> None:
    budget = Budget(BudgetConfig())
    assert budget.window_left() == 9000
    budget.close()


def test_history_must_be_for_the_same_tenant() -> None:
    with SendHistory(None, tenant="a") as history, pytest.raises(ValueError, match="tenant"):
        Budget(BudgetConfig(tenant="b"), history=history)


async def test_many_tasks_over_five_windows_never_exceed_the_count() -> None:
    clock = FakeClock(START + 3.7)  # start mid-window
    budget = Budget(FAST, clock=clock)
    spy = Spy(budget, clock)
    end = START + 50.0
    await spy.hammer(tasks=50, until=end, latency_s=0.02)

    assert max_aligned(spy.grants, 10.0) <= 1000
    assert max_sliding(spy.grants, 10.0) <= 1000
    full = [per_window(spy.grants, 10.0)[int(START // 10) + k] for k in range(1, 5)]
    assert min(full) >= 0.99 * 1000, full  # ≥ 99 % of the rate in every full window
    assert sum(1 for t in spy.grants if t < end) >= 0.99 * 1000 * (50.0 - 3.7) / 10.0
    stats = budget.stats
    assert stats.sent == len(spy.grants)
    assert stats.max_in_window_seen == max_aligned(spy.grants, 10.0)
    assert stats.rate_limited == stats.pauses == 0
    budget.close()


async def test_burst_is_small_and_then_paced() -> None:
    clock = FakeClock()
    budget = Budget(FAST, clock=clock)
    spy = Spy(budget, clock)
    await spy.hammer(tasks=20, until=START + 1.0)
    at_once = sum(1 for t in spy.grants if t < START + 0.001)
    assert at_once == 5  # the burst, not the window's 1000
    assert max_sliding(spy.grants, 0.1) <= 5 + 0.1 * 995 / 10 + 1
    budget.close()


async def test_per_second_ceiling_holds_in_every_aligned_and_sliding_second() -> None:
    clock = FakeClock(START + 0.25)
    budget = Budget(BudgetConfig(rate=Rate(1_000_000, 3600.0), per_second=45), clock=clock)
    spy = Spy(budget, clock)
    await spy.hammer(tasks=100, until=START + 6.25, latency_s=0.005)

    assert max_aligned(spy.grants, 1.0) <= 45
    assert max_sliding(spy.grants, 1.0) <= 46 < 50
    seconds = per_window(spy.grants, 1.0)
    assert min(seconds[int(START) + k] for k in range(1, 6)) >= 44
    budget.close()


async def test_per_second_counter_is_the_guarantee_if_a_bucket_would_burst() -> None:
    """With a burst allowed in the second too, the aligned counter still caps each second."""
    clock = FakeClock(START + 0.5)
    budget = Budget(BudgetConfig(rate=Rate(40, 1.0), per_second=30, burst=20), clock=clock)
    spy = Spy(budget, clock)
    await spy.hammer(tasks=60, until=START + 5.5)
    assert max_aligned(spy.grants, 1.0) <= 30
    budget.close()


async def run_with_restarts(
    tmp_path: Path, *, start: float, restarts: int, segment_s: float, persist: bool
) -> list[float]:
    """Run, kill every task mid-flight, and start a new budget on the same file, again and again."""
    clock = FakeClock(start)
    grants: list[float] = []
    path = tmp_path / "budget.db"
    for _ in range(restarts + 1):
        history = SendHistory(path if persist else None, tenant="t")
        budget = Budget(FAST, history=history, clock=clock)
        spy = Spy(budget, clock)
        run = asyncio.create_task(spy.hammer(tasks=30, until=clock.now() + 999.0, latency_s=0.05))
        await clock.sleep(segment_s)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        history.close()
        grants += spy.grants
    return grants


async def test_restarts_do_not_reburst(tmp_path: Path) -> None:
    grants = await run_with_restarts(
        tmp_path, start=START + 1.3, restarts=5, segment_s=4.1, persist=True
    )
    assert max_aligned(grants, 10.0) <= 1000
    assert max_sliding(grants, 10.0) <= 1000
    # Right after each restart sends continue at the pace (≤ 1 per 10/995 s), no burst of 5.
    restarts = [START + 1.3 + k * 4.1 for k in range(1, 6)]
    for r in restarts:
        assert sum(1 for t in grants if r <= t < r + 0.03) <= 4
    assert len(grants) >= 0.99 * 1000 * 6 * 4.1 / 10.0


async def test_restarts_without_the_history_would_reburst(tmp_path: Path) -> None:
    """The control: a fresh ledger at each restart bursts again, and ten restarts break a window."""
    grants = await run_with_restarts(
        tmp_path, start=START, restarts=10, segment_s=1.0, persist=False
    )
    assert max_aligned(grants, 10.0) > 1000
    grants = await run_with_restarts(
        tmp_path, start=START, restarts=10, segment_s=1.0, persist=True
    )
    assert max_aligned(grants, 10.0) <= 1000


async def hammer_two(tmp_path: Path, *, shared: bool, until: float) -> tuple[Spy, Spy]:
    clock = FakeClock(START + 2.0)
    spies = []
    for name in ("a", "b"):
        path = tmp_path / ("budget.db" if shared else f"budget-{name}.db")
        budget = Budget(FAST, history=SendHistory(path, tenant="t"), clock=clock)
        spies.append(Spy(budget, clock))
    a, b = spies
    await asyncio.gather(
        a.hammer(tasks=20, until=until, latency_s=0.03),
        b.hammer(tasks=7, until=until, latency_s=0.01),
    )
    return a, b


async def test_two_runs_sharing_the_history_share_one_budget(tmp_path: Path) -> None:
    a, b = await hammer_two(tmp_path, shared=True, until=START + 30.0)
    both = a.grants + b.grants
    assert max_aligned(both, 10.0) <= 1000
    assert max_sliding(both, 10.0) <= 1000  # the smoothing bucket is shared too
    assert min(len(a.grants), len(b.grants)) > 300
    full = [per_window(both, 10.0)[int(START // 10) + k] for k in (1, 2)]
    assert min(full) >= 0.99 * 1000


async def test_two_runs_with_separate_histories_would_exceed(tmp_path: Path) -> None:
    a, b = await hammer_two(tmp_path, shared=False, until=START + 10.0)
    assert max_aligned(a.grants + b.grants, 10.0) > 1000


async def test_observe_caps_what_we_send_when_others_spend() -> None:
    clock = FakeClock(START)
    budget = Budget(FAST, clock=clock)
    spy = Spy(budget, clock)
    await spy.hammer(tasks=1, until=START + 1.0)
    before = len(spy.grants)
    budget.observe(remaining_hour=60)  # another integration spent most of this window
    assert budget.window_left() == 50
    await spy.hammer(tasks=10, until=START + 9.9)
    this_window = per_window(spy.grants, 10.0)[int(START // 10)]
    assert this_window - before == 60 - 10  # what remains, less the reserve
    await spy.hammer(tasks=10, until=START + 15.0)  # next window: our own count again
    assert per_window(spy.grants, 10.0)[int(START // 10) + 1] > 400
    budget.close()


async def test_observe_with_reset_pauses_until_the_server_window_resets() -> None:
    clock = FakeClock(START + 2.0)
    budget = Budget(FAST, clock=clock)
    spy = Spy(budget, clock)
    budget.observe(remaining_hour=3, reset_s=4.0)
    await spy.hammer(tasks=5, until=START + 7.0)
    assert all(t >= START + 6.0 for t in spy.grants)
    assert len(spy.grants) > 100


async def test_observe_with_plenty_left_changes_nothing() -> None:
    clock = FakeClock(START)
    budget = Budget(FAST, clock=clock)
    spy = Spy(budget, clock)
    budget.observe(remaining_hour=10_000)
    budget.observe()  # no header: ignored
    await spy.hammer(tasks=10, until=START + 10.0)
    assert len(spy.grants) >= 995


async def test_window_left_counts_every_run_on_the_tenant(tmp_path: Path) -> None:
    clock = FakeClock(START)
    path = tmp_path / "budget.db"
    mine = Budget(FAST, history=SendHistory(path, tenant="t"), clock=clock)
    theirs = Budget(FAST, history=SendHistory(path, tenant="t"), clock=clock)
    for _ in range(3):
        async with mine.acquire():
            pass
    for _ in range(2):
        async with theirs.acquire():
            pass
    assert mine.window_left() == theirs.window_left() == 995
    assert mine.stats.sent == 3 and mine.stats.sent_in_window == 5


async def test_eta_matches_a_simulated_run() -> None:
    clock = FakeClock(START)
    budget = Budget(FAST, clock=clock)
    predicted = budget.eta_s(2500)
    spy = Spy(budget, clock)

    async def send(n: int) -> None:
        for _ in range(n):
            await spy.request()

    await asyncio.gather(*(send(250) for _ in range(10)))
    actual = max(spy.grants) - START
    assert actual == pytest.approx(predicted, rel=0.01)
    budget.close()


async def test_eta_edges() -> None:
    clock = FakeClock(START + 5.0)
    budget = Budget(FAST, clock=clock)
    assert budget.eta_s(0) == 0.0
    assert budget.eta_s(1) == pytest.approx(10.0 / 996 + 1e-6)
    etas = [budget.eta_s(n) for n in (1, 400, 500, 1000, 2000, 5000)]
    assert etas == sorted(etas)
    budget.observe(remaining_hour=10)  # nothing left this window (10 - reserve)
    assert budget.eta_s(1) >= 5.0  # waits for the next window
    budget.close()


async def test_at_high_rates_one_transaction_leases_several_sends() -> None:
    """A lifted cap: sends recorded several at a time, taken from the stock, limits unchanged."""
    clock = FakeClock(START + 0.5)
    config = BudgetConfig(rate=Rate(10**7, 10.0), per_second=10**9, burst=10, tenant="t")
    history = SendHistory(None, tenant="t")
    budget = Budget(config, history=history, clock=clock)
    calls = 0
    real = history.try_send_many

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return real(*args, **kwargs)

    history.try_send_many = counting  # type: ignore[method-assign]
    grants = []
    for _ in range(1000):  # a fast worker: 2,000 requests a second
        async with budget.acquire() as permit:
            grants.append(permit.sent_at)
        await clock.sleep(0.0005)
    assert max_sliding(grants, 1e-6) <= 10  # never more at once than the burst
    assert calls <= len(grants) / 4
    assert budget.stats.sent == 1000
    budget.close()
    assert history.count_in_window(clock.now(), 10.0) == 1000  # leased and unused: uncounted
    history.close()


async def test_a_permit_whose_window_ends_before_the_send_is_counted_in_the_next() -> None:
    clock = FakeClock(START + 9.999)
    config = BudgetConfig(rate=Rate(100, 10.0), per_second=10**6, tenant="t")
    budget = Budget(config, clock=clock)
    async with budget.acquire() as permit:
        assert budget.stats.sent_in_window == 1
        await budget.refresh(permit)  # same window: nothing to do
        assert budget.refreshed == 0
        clock.advance(0.002)  # the intent's fsync took us past the boundary
        await budget.refresh(permit)
        assert budget.refreshed == 1
        assert permit.sent_at >= START + 10.0
        con = budget._history._con
        assert (
            con.execute("SELECT count(*) FROM sends WHERE t < ?", (START + 10.0,)).fetchone()[0]
            == 0
        )
        assert budget.stats.sent_in_window == 1
    budget.close()


async def test_sends_recorded_for_tasks_that_left_are_uncounted_on_close() -> None:
    clock = FakeClock(START + 1.0)
    config = BudgetConfig(rate=Rate(10_000, 10.0), per_second=10**6, tenant="t")
    history = SendHistory(None, tenant="t")
    budget = Budget(config, history=history, clock=clock)
    await budget._lock.acquire()  # hold the line so that the others queue
    waiters = [asyncio.create_task(budget._grant()) for _ in range(5)]
    await asyncio.sleep(0)
    budget._lock.release()
    await waiters[0]  # records one send for each task queued: 5
    for task in waiters[1:]:
        task.cancel()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    granted = [r for r in results if isinstance(r, Permit)]
    assert 1 <= len(granted) < 5
    assert history.count_in_window(clock.now(), 10.0) == 5
    budget.close()
    assert history.count_in_window(clock.now(), 10.0) == len(granted)
    history.close()


async def test_a_permit_whose_request_never_left_is_uncounted() -> None:
    clock = FakeClock(START)
    history = SendHistory(None, tenant="t")
    budget = Budget(FAST, history=history, clock=clock)
    async with budget.acquire():
        pass
    with pytest.raises(RuntimeError):
        async with budget.acquire() as permit:
            permit.unsent()  # e.g. the run stopped while its intent was committed
            raise RuntimeError("stopped")
    assert budget.stats.sent == 1
    assert history.count_in_window(clock.now(), FAST.rate.period_s) == 1
    budget.close()
