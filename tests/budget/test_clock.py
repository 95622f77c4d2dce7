"""The fake clock: virtual time that moves only when every task waits."""

from __future__ import annotations

import asyncio
import time

import pytest

from bulkops.budget import Clock, FakeClock, SystemClock

START = 1_767_225_600.0


def test_constructed_without_a_loop() -> None:
    clock = FakeClock()
    assert clock.now() == START
    _: Clock = clock  # satisfies the protocol (checked by mypy)


async def test_sleep_moves_virtual_time_exactly() -> None:
    clock = FakeClock()
    real = time.perf_counter()
    await clock.sleep(3600.0)
    assert clock.now() == START + 3600.0
    assert time.perf_counter() - real < 0.5


async def test_sleepers_wake_in_deadline_order() -> None:
    clock = FakeClock()
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.now()))

    await asyncio.gather(
        sleeper("c", 3.0), sleeper("a", 1.0), sleeper("b", 2.0), sleeper("a2", 1.0)
    )
    assert woke == [("a", START + 1), ("a2", START + 1), ("b", START + 2), ("c", START + 3)]


async def test_time_stands_still_while_any_task_can_run() -> None:
    clock = FakeClock()
    seen: set[float] = set()

    async def busy() -> None:
        for _ in range(200):
            seen.add(clock.now())
            await asyncio.sleep(0)

    await asyncio.gather(busy(), clock.sleep(10.0))
    assert seen == {START}
    assert clock.now() == START + 10.0


async def test_remaining_sleepers_wake_after_the_woken_ones_finish() -> None:
    clock = FakeClock()
    await asyncio.gather(clock.sleep(1.0), clock.sleep(5.0))
    assert clock.now() == START + 5.0


async def test_cancelled_sleeper_does_not_hold_others() -> None:
    clock = FakeClock()
    doomed = asyncio.create_task(clock.sleep(1.0))
    await asyncio.sleep(0)
    doomed.cancel()
    await clock.sleep(2.0)
    assert clock.now() == START + 2.0
    assert doomed.cancelled()
    assert clock.sleepers == 0


async def test_manual_advance_without_autojump() -> None:
    clock = FakeClock(100.0, autojump=False)
    task = asyncio.create_task(clock.sleep(5.0))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not task.done() and clock.now() == 100.0 and clock.sleepers == 1
    clock.advance(4.0)
    await asyncio.sleep(0)
    assert not task.done()
    clock.advance(1.0)
    await task
    with pytest.raises(ValueError, match="back"):
        clock.advance(-1.0)


async def test_zero_sleep_yields_without_moving_time() -> None:
    clock = FakeClock()
    await clock.sleep(0.0)
    await clock.sleep(-3.0)
    assert clock.now() == START


async def test_system_clock_is_the_wall_clock() -> None:
    clock = SystemClock()
    assert abs(clock.now() - time.time()) < 1.0
    before = time.monotonic()
    await clock.sleep(0.002)
    await clock.sleep(-1.0)
    assert time.monotonic() - before >= 0.002
