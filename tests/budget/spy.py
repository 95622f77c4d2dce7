"""Test helpers: a spy that records every grant, a Kong-like fake gateway, window counters."""

from __future__ import annotations

import asyncio
import bisect
import math
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bulkops.budget import Budget, FakeClock


def per_window(times: Iterable[float], period_s: float) -> Counter[int]:
    """How many grants fell in each aligned window."""
    return Counter(math.floor(t / period_s) for t in times)


def max_aligned(times: Iterable[float], period_s: float) -> int:
    """The most grants in any one aligned window."""
    counts = per_window(times, period_s)
    return max(counts.values(), default=0)


def max_sliding(times: Iterable[float], period_s: float) -> int:
    """The most grants in any half-open interval ``[t, t + period_s)``."""
    ordered = sorted(times)
    return max(
        (bisect.bisect_left(ordered, t + period_s) - i for i, t in enumerate(ordered)), default=0
    )


class MaxRandom(random.Random):
    """A random source that always draws (almost) 1: full jitter becomes its ceiling."""

    def random(self) -> float:
        return 0.999999


@dataclass
class FakeKong:
    """Kong's rate-limiting plugin in miniature: aligned windows, refusals not counted."""

    clock: FakeClock
    limit: int
    period_s: float
    send_retry_after: bool = True
    refuse_until: float = -math.inf  # refuse everything before this time (without Retry-After)
    counts: Counter[int] = field(default_factory=Counter)

    def answer(self) -> float | bool | None:
        """``True`` when allowed, else the Retry-After (``None`` when the header is absent)."""
        now = self.clock.now()
        if now < self.refuse_until:
            return None
        index = math.floor(now / self.period_s)
        if self.counts[index] >= self.limit:
            return (index + 1) * self.period_s - now if self.send_retry_after else None
        self.counts[index] += 1
        return True


@dataclass
class Event:
    """One request seen by the spy."""

    granted: float
    probe: bool
    answered: float = math.nan
    refused: bool = False


class Spy:
    """Wraps a budget like a client: acquire, 'send' (sleep the latency), report 429s."""

    def __init__(self, budget: Budget, clock: FakeClock, *, server: FakeKong | None = None) -> None:
        self.budget = budget
        self.clock = clock
        self.server = server
        self.events: list[Event] = []
        self.in_flight = 0
        self.max_in_flight = 0

    @property
    def grants(self) -> list[float]:
        """Grant times of every request (refused ones included)."""
        return [e.granted for e in self.events]

    @property
    def accepted(self) -> list[float]:
        """Grant times of requests the server accepted."""
        return [e.granted for e in self.events if not e.refused]

    async def request(self, latency_s: float = 0.0) -> bool:
        """One request; ``False`` when it was refused with 429."""
        async with self.budget.acquire() as permit:
            event = Event(self.clock.now(), permit.is_probe)
            assert event.granted == permit.sent_at
            self.events.append(event)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                if latency_s:
                    await self.clock.sleep(latency_s)
                verdict = True if self.server is None else self.server.answer()
                event.answered = self.clock.now()
                if verdict is not True:
                    event.refused = True
                    permit.rate_limited(verdict if isinstance(verdict, float) else None)
                    return False
                return True
            finally:
                self.in_flight -= 1

    async def hammer(self, *, tasks: int, until: float, latency_s: float = 0.0) -> None:
        """``tasks`` workers sending (and resending refused requests) until virtual ``until``."""

        async def worker() -> None:
            while self.clock.now() < until:
                await self.request(latency_s)

        await asyncio.gather(*(worker() for _ in range(tasks)))
