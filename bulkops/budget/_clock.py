"""The clock every wait goes through: the wall clock in production, virtual time in tests.

Budget windows are aligned to the UTC wall clock (Kong counts ``floor(now / period)``), so
``now()`` is ``time.time()``, not the loop's monotonic clock. ``FakeClock`` runs virtual time:
when every task is blocked and at least one sleeps on it, time jumps to the earliest deadline,
so a simulated hour takes milliseconds and tests never sleep for real.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol

__all__ = ["Clock", "FakeClock", "SystemClock"]

# 2026-01-01T00:00:00Z: the start of a UTC hour, so tests begin at a window boundary.
DEFAULT_FAKE_START = 1_767_225_600.0


class Clock(Protocol):
    """Wall-clock time in seconds since the epoch, and a way to wait."""

    def now(self) -> float:
        """Seconds since the epoch (UTC), as ``time.time()``."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (returns at once for zero or less, after yielding to the loop)."""
        ...


class SystemClock:
    """The real clock: ``time.time()`` and ``asyncio.sleep``."""

    def now(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """Sleep on the running loop."""
        await asyncio.sleep(max(seconds, 0.0))


class FakeClock:
    """Virtual time that moves only by ``advance()`` or, with ``autojump``, when all tasks wait."""

    # The loop counts as idle when it has no ready callbacks: tasks blocked on sockets count as
    # idle too, so virtual time may pass while real I/O is in flight. Binds to the running loop
    # on the first sleep(), never at construction.

    def __init__(self, start: float = DEFAULT_FAKE_START, *, autojump: bool = True) -> None:
        self._now = float(start)
        self._autojump = autojump
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._jump_pending = False

    def now(self) -> float:
        """The current virtual time."""
        return self._now

    @property
    def sleepers(self) -> int:
        """How many tasks are sleeping on this clock."""
        return sum(1 for _, _, fut in self._sleepers if not fut.done())

    async def sleep(self, seconds: float) -> None:
        """Wait until virtual time reaches ``now() + seconds``."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), fut))
        if self._autojump and not self._jump_pending:
            self._jump_pending = True
            loop.call_soon(self._jump_when_idle, loop, 0)
        await fut

    def advance(self, seconds: float) -> None:
        """Move virtual time forward and wake every sleeper now due."""
        if seconds < 0:
            raise ValueError("a clock cannot go back")
        self._now += seconds
        self._wake_due()

    def _wake_due(self) -> None:
        heap = self._sleepers
        while heap and (heap[0][2].done() or heap[0][0] <= self._now):
            _, _, fut = heapq.heappop(heap)
            if not fut.done():
                fut.set_result(None)

    def _jump_when_idle(self, loop: asyncio.AbstractEventLoop, quiet: int) -> None:
        heap = self._sleepers
        while heap and heap[0][2].done():
            heapq.heappop(heap)
        if not heap:
            self._jump_pending = False
            return
        # ``_ready`` is asyncio's queue of runnable callbacks; loops without it fall back on
        # a few quiet iterations.
        busy = bool(getattr(loop, "_ready", ()))
        if busy or quiet < 2:
            loop.call_soon(self._jump_when_idle, loop, 0 if busy else quiet + 1)
            return
        self._now = max(self._now, heap[0][0])
        self._wake_due()
        # Sleepers left behind need another jump even if the woken tasks never sleep again.
        if heap:
            loop.call_soon(self._jump_when_idle, loop, 0)
        else:
            self._jump_pending = False
