"""Pure arithmetic of the budget: clock-aligned windows and GCRA smoothing buckets.

Two kinds of limit compose, each for the hour-class window (the configured rate) and the second:

- a **window counter**: at most ``limit`` sends in ``[k * period, (k + 1) * period)``, the
  fixed UTC-aligned window Kong counts. This is the guarantee.
- a **GCRA bucket** (generic cell rate algorithm, one number of state: the theoretical arrival
  time ``tat``): sends are spaced ``interval_s`` apart with ``burst`` allowed at once. With
  ``interval = period / (count - burst + 1)`` (plus a microsecond, more than the float rounding
  of one step) no half-open interval of ``period`` seconds, aligned or sliding, sees more than
  ``count``: after a burst at ``t0`` the next ``count - burst`` sends fall before ``t0 + period``
  and the one after on or past it. This is what keeps us safe if the gateway's window slides,
  and what stops a restarted process from bursting; the steady pace is ``count - burst + 1``
  per period, ≥ 99% of the count since the burst is at most 1% of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bulkops.budget._config import BudgetConfig

__all__ = ["Bucket", "Limits", "Window", "next_window_start", "window_end", "window_index"]

# Added to every bucket interval: each step of ``tat += interval`` may round by half an ulp
# (1.2e-7 s at today's epoch seconds), so the sum of ``count`` intervals never falls short of
# the period. Costs 0.1% of the rate at 1,000 per second, nothing at 10,000 per hour.
INTERVAL_MARGIN_S = 1e-6


def window_index(t: float, period_s: float) -> int:
    """The number of the aligned window holding ``t``: ``floor(t / period_s)``."""
    return math.floor(t / period_s)


def next_window_start(index: int, period_s: float) -> float:
    """The first float that belongs to the window after window number ``index``."""
    end = (index + 1) * period_s
    # Float rounding can put the product an ulp or two off the boundary either way.
    while window_index(end, period_s) <= index:
        end = math.nextafter(end, math.inf)
    while window_index(before := math.nextafter(end, -math.inf), period_s) > index:
        end = before
    return end


def window_end(t: float, period_s: float) -> float:
    """The first instant that belongs to the window after the one holding ``t``."""
    return next_window_start(window_index(t, period_s), period_s)


@dataclass(frozen=True, slots=True)
class Window:
    """At most ``limit`` sends in each aligned window of ``period_s``."""

    period_s: float
    limit: int


@dataclass(frozen=True, slots=True)
class Bucket:
    """A GCRA bucket: one send per ``interval_s``, up to ``burst`` back to back."""

    key: str
    interval_s: float
    burst: int

    @property
    def tolerance_s(self) -> float:
        """How far ahead of schedule a send may be: ``(burst - 1) * interval``."""
        return (self.burst - 1) * self.interval_s

    def earliest(self, tat: float) -> float:
        """The first time a send is allowed, given the stored theoretical arrival time."""
        return tat - self.tolerance_s

    def after_send(self, tat: float, t: float) -> float:
        """The theoretical arrival time once a send happens at ``t``."""
        return max(tat, t) + self.interval_s


@dataclass(frozen=True, slots=True)
class Limits:
    """Every window and bucket one acquire must pass, derived from a ``BudgetConfig``."""

    windows: tuple[Window, ...]
    buckets: tuple[Bucket, ...]

    @classmethod
    def from_config(cls, config: BudgetConfig) -> Limits:
        """The rate window and its bucket, plus the per-second window and its spacing."""
        rate, burst = config.rate, config.effective_burst
        rate_bucket = Bucket(
            key=f"rate:{rate.count}/{rate.period_s!r}:burst{burst}",
            interval_s=rate.period_s / (rate.count - burst + 1) + INTERVAL_MARGIN_S,
            burst=burst,
        )
        # The same rule for the second: no sliding second sees more than per_second (45 < Kong's
        # 50), and the aligned counter keeps each second ≤ per_second too. No burst up to 199/s;
        # far above any gateway's ceiling (a lifted cap), 1% of it may go at once.
        second_burst = max(1, config.per_second // 100)
        second_bucket = Bucket(
            key=f"second:{config.per_second}",
            interval_s=1.0 / (config.per_second - second_burst + 1) + INTERVAL_MARGIN_S,
            burst=second_burst,
        )
        return cls(
            windows=(Window(rate.period_s, rate.count), Window(1.0, config.per_second)),
            buckets=(rate_bucket, second_bucket),
        )

    @property
    def rate_window(self) -> Window:
        """The configured rate's window (the first)."""
        return self.windows[0]

    @property
    def pace_s(self) -> float:
        """Seconds between sends when sending steadily (the slowest bucket's interval)."""
        return max(bucket.interval_s for bucket in self.buckets)
