"""Budget cost per acquire and budget use per window, against a bare aiolimiter in the same run.

Part 1, overhead: acquires that never wait (a rate far above the loop's speed), one task and
many tasks, for a bare ``aiolimiter.AsyncLimiter`` (the floor), a ``Budget`` on an in-memory
history and a ``Budget`` on a SQLite file (WAL, synchronous=NORMAL). Best of ``--rounds``.

Part 2, use: many tasks hammering for 5 windows; the share of the configured rate achieved and
the most sends seen in one aligned window. The compressed window runs on the real clock; the
default 9000/h runs on the fake clock (5 virtual hours). The naive ``AsyncLimiter(N, period)``
is shown for comparison. Usage:

    python benchmarks/bench_budget.py [--acquires 5000] [--rounds 3] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiolimiter import AsyncLimiter

from bulkops.budget import Budget, BudgetConfig, Clock, FakeClock, Rate, SendHistory, SystemClock

UNBOUND = BudgetConfig(rate=Rate(10**12, 3600.0), per_second=10**12, tenant="bench")


async def time_acquires(acquire: Callable[[], Awaitable[None]], n: int, tasks: int) -> float:
    """Microseconds per acquire, ``n`` acquires spread over ``tasks`` tasks."""

    async def worker(count: int) -> None:
        for _ in range(count):
            await acquire()

    start = time.perf_counter()
    await asyncio.gather(*(worker(n // tasks) for _ in range(tasks)))
    return (time.perf_counter() - start) / n * 1e6


def bare_limiter() -> Callable[[], Awaitable[None]]:
    limiter = AsyncLimiter(10**12, 1.0)

    async def acquire() -> None:
        async with limiter:
            pass

    return acquire


def budget_acquire(budget: Budget) -> Callable[[], Awaitable[None]]:
    async def acquire() -> None:
        async with budget.acquire():
            pass

    return acquire


def table(*headers: str) -> Callable[..., None]:
    """Print a Markdown table header; return a function printing rows of the same widths."""
    widths = [max(len(h), 9) for h in headers]

    def row(*cells: object) -> None:
        texts = [
            f"{c:<{w}}" if i == 0 else f"{c:>{w}}"
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        print("| " + " | ".join(texts) + " |")

    row(*headers)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return row


async def overhead(n: int, rounds: int, tmp: Path) -> None:
    print(f"Per-acquire overhead, {n} acquires that never wait (best of {rounds}):\n")
    row = table(f"{'limiter':<34}", "tasks", "µs/acquire", "× aiolimiter")
    for tasks in (1, 50):
        results: dict[str, float] = {}
        for name in ("aiolimiter.AsyncLimiter", "Budget, in-memory history", "Budget, SQLite file"):
            best = math.inf
            for r in range(rounds):
                if name.startswith("aiolimiter"):
                    best = min(best, await time_acquires(bare_limiter(), n, tasks))
                    continue
                path = None if "memory" in name else tmp / f"overhead-{tasks}-{r}.db"
                with SendHistory(path, tenant="bench") as history:
                    budget = Budget(UNBOUND, history=history)
                    best = min(best, await time_acquires(budget_acquire(budget), n, tasks))
            results[name] = best
        floor = results["aiolimiter.AsyncLimiter"]
        for name, us in results.items():
            row(name, tasks, f"{us:.1f}", f"{us / floor:.1f}×")
    print()


async def hammer(
    acquire: Callable[[], Awaitable[None]], clock: Clock, *, tasks: int, seconds: float
) -> list[float]:
    """Grant times of ``tasks`` workers acquiring for ``seconds``."""
    grants: list[float] = []
    end = clock.now() + seconds

    async def worker() -> None:
        while clock.now() < end:
            await acquire()
            grants.append(clock.now())
            await clock.sleep(0.001)  # a request's latency

    await asyncio.gather(*(worker() for _ in range(tasks)))
    return [t for t in grants if t < end]


def use_cells(rate: Rate, grants: list[float], start: float, windows: int) -> tuple[object, ...]:
    """Rate, share of the rate achieved in the whole windows, max in one window, the count."""
    counts = Counter(math.floor(t / rate.period_s) for t in grants)
    first = math.floor(start / rate.period_s)
    full = [counts[first + k] for k in range(1, windows)]  # the windows we ran through whole
    achieved = sum(full) / (rate.count * len(full))
    return str(rate), f"{achieved:.1%}", max(counts.values()), rate.count


async def use(quick: bool, tmp: Path) -> None:
    print("Budget use over 5 windows (≥ 4 whole ones), 50 tasks, 1 ms latency:\n")
    row = table(f"{'limiter':<40}", "rate", "of rate", "max/window", "allowed")
    compressed = Rate(1000, 1.0)
    windows = 5
    real = SystemClock()
    if not quick:
        await asyncio.sleep(math.ceil(time.time()) - time.time())  # start on a boundary
        start = real.now()
        naive = AsyncLimiter(compressed.count, compressed.period_s)

        async def naive_acquire() -> None:
            async with naive:
                pass

        grants = await hammer(naive_acquire, real, tasks=50, seconds=windows)
        row("AsyncLimiter(1000, 1 s), real clock", *use_cells(compressed, grants, start, windows))

        await asyncio.sleep(math.ceil(time.time()) - time.time() + 0.37)  # start mid-window
        start = real.now()
        config = BudgetConfig(rate=compressed, per_second=10**6, tenant="bench")
        with SendHistory(tmp / "use.db", tenant="bench") as history:
            budget = Budget(config, history=history, clock=real)
            grants = await hammer(budget_acquire(budget), real, tasks=50, seconds=windows)
        row("Budget(1000/1 s), SQLite, real clock", *use_cells(compressed, grants, start, windows))

    clock = FakeClock(1_767_225_600.0 + 1234.5)
    start = clock.now()
    with SendHistory(tmp / "use-hour.db", tenant="default") as history:
        budget = Budget(BudgetConfig(), history=history, clock=clock)
        hours = 3 if quick else windows
        grants = await hammer(budget_acquire(budget), clock, tasks=50, seconds=hours * 3600.0)
    row(
        "Budget() 9000/h, SQLite, fake clock", *use_cells(BudgetConfig().rate, grants, start, hours)
    )
    print()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--acquires", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="skip the real-clock runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        await overhead(args.acquires, args.rounds, Path(tmp))
        await use(args.quick, Path(tmp))


if __name__ == "__main__":
    asyncio.run(main())
