"""Kong-like gateway rate limit: per-second and per-hour windows shared by every token."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Literal

from bulkops.sim.clock import VirtualClock

__all__ = ["GatewayLimiter", "LimitCheck", "WindowKind"]

WindowKind = Literal["fixed", "sliding"]


@dataclass(frozen=True, slots=True)
class LimitCheck:
    """The limiter's answer for one request: admitted or not, and the headers to send."""

    allowed: bool
    headers: dict[str, str]


class _Window:
    """One limit over one period, counted as Kong does (rejected requests never count)."""

    __slots__ = (
        "base",
        "count",
        "index",
        "label",
        "limit",
        "limit_str",
        "log",
        "period_s",
        "sliding",
    )

    def __init__(self, *, label: str, period_s: int, limit: int, base: int, sliding: bool) -> None:
        self.label = label
        self.period_s = period_s
        self.limit = limit
        self.limit_str = str(limit)
        self.base = base  # requests "another integration" spends in every window
        self.sliding = sliding
        self.index = -1
        self.count = base
        self.log: deque[float] = deque()

    def used(self, now_v: float) -> int:
        """Requests counted in the window containing `now_v` (expiring old ones)."""
        if self.sliding:
            horizon = now_v - self.period_s
            log = self.log
            while log and log[0] <= horizon:
                log.popleft()
            return self.base + len(log)
        index = math.floor(now_v / self.period_s)
        if index != self.index:
            self.index = index
            self.count = self.base
        return self.count

    def record(self, now_v: float) -> None:
        """Count one admitted request (call after `used` for the same instant)."""
        if self.sliding:
            self.log.append(now_v)
        else:
            self.count += 1

    def reset_in_v(self, now_v: float, used: int) -> float:
        """Virtual seconds until the window has room again (fixed: until it ends)."""
        if not self.sliding:
            return (self.index + 1) * self.period_s - now_v
        # Sliding: the (used - limit)-th oldest counted request must leave the window first.
        log = self.log
        k = max(used - self.limit, 0)
        if k >= len(log):
            return float(self.period_s)
        return max(log[k] + self.period_s - now_v, 0.0)


class GatewayLimiter:
    """Fixed (UTC-aligned) or sliding windows of `second_limit`/s and `hour_limit`/h."""

    __slots__ = ("_clock", "_headers", "_windows")

    def __init__(
        self,
        *,
        hour_limit: int,
        second_limit: int,
        clock: VirtualClock,
        window: WindowKind = "fixed",
        other_per_hour: int = 0,
        headers: bool = True,
    ) -> None:
        if hour_limit < 1 or second_limit < 1:
            raise ValueError("hour_limit and second_limit must be >= 1")
        if window not in ("fixed", "sliding"):
            raise ValueError(f"window must be 'fixed' or 'sliding', got {window!r}")
        sliding = window == "sliding"
        self._clock = clock
        self._headers = headers
        self._windows = (
            _Window(label="Second", period_s=1, limit=second_limit, base=0, sliding=sliding),
            _Window(
                label="Hour", period_s=3600, limit=hour_limit, base=other_per_hour, sliding=sliding
            ),
        )

    def hit(self, now_v: float) -> LimitCheck:
        """Admit and count one request at virtual time `now_v`, or refuse it uncounted."""
        sec, hour = self._windows
        used_s = sec.used(now_v)
        used_h = hour.used(now_v)
        if used_s >= sec.limit or used_h >= hour.limit:
            if not self._headers:
                return _REFUSED_BARE
            retry_v = max(
                w.reset_in_v(now_v, u) for w, u in ((sec, used_s), (hour, used_h)) if u >= w.limit
            )
            headers = self._build(now_v, used_s, used_h)
            headers["Retry-After"] = str(self._clock.real_ceil_s(retry_v))
            return LimitCheck(False, headers)
        sec.record(now_v)
        hour.record(now_v)
        if not self._headers:
            return _ADMITTED_BARE
        return LimitCheck(True, self._build(now_v, used_s + 1, used_h + 1))

    def peek(self, now_v: float) -> dict[str, str]:
        """Headers describing the current state without counting a request."""
        if not self._headers:
            return {}
        sec, hour = self._windows
        return self._build(now_v, sec.used(now_v), hour.used(now_v))

    def remaining(self, now_v: float) -> dict[str, int]:
        """Remaining requests per window label (for tests and the CLI)."""
        return {w.label: max(w.limit - w.used(now_v), 0) for w in self._windows}

    def _build(self, now_v: float, used_s: int, used_h: int) -> dict[str, str]:
        sec, hour = self._windows
        rem_s = max(sec.limit - used_s, 0)
        rem_h = max(hour.limit - used_h, 0)
        # Most restrictive window: fewest remaining; a tie goes to the shorter window.
        if rem_s <= rem_h:
            limit, remaining, reset_v = sec.limit_str, rem_s, sec.reset_in_v(now_v, used_s)
        else:
            limit, remaining, reset_v = hour.limit_str, rem_h, hour.reset_in_v(now_v, used_h)
        return {
            "X-RateLimit-Limit-Second": sec.limit_str,
            "X-RateLimit-Remaining-Second": str(rem_s),
            "X-RateLimit-Limit-Hour": hour.limit_str,
            "X-RateLimit-Remaining-Hour": str(rem_h),
            "RateLimit-Limit": limit,
            "RateLimit-Remaining": str(remaining),
            "RateLimit-Reset": str(self._clock.real_ceil_s(reset_v)),
        }


_ADMITTED_BARE = LimitCheck(True, {})
_REFUSED_BARE = LimitCheck(False, {})
