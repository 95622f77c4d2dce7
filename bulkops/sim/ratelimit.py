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

    __slots__ = ("base", "count", "index", "label", "limit", "log", "period_s", "sliding")

    def __init__(self, *, label: str, period_s: int, limit: int, base: int, sliding: bool) -> None:
        self.label = label
        self.period_s = period_s
        self.limit = limit
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
        windows = self._windows
        used = [w.used(now_v) for w in windows]
        exceeded = [w for w, u in zip(windows, used, strict=True) if u + 1 > w.limit]
        if exceeded:
            if not self._headers:
                return LimitCheck(False, {})
            retry_v = max(
                w.reset_in_v(now_v, u) for w, u in zip(windows, used, strict=True) if w in exceeded
            )
            headers = self._build(now_v, used)
            headers["Retry-After"] = str(self._clock.real_ceil_s(retry_v))
            return LimitCheck(False, headers)
        for w in windows:
            w.record(now_v)
        if not self._headers:
            return LimitCheck(True, {})
        return LimitCheck(True, self._build(now_v, [u + 1 for u in used]))

    def peek(self, now_v: float) -> dict[str, str]:
        """Headers describing the current state without counting a request."""
        if not self._headers:
            return {}
        return self._build(now_v, [w.used(now_v) for w in self._windows])

    def remaining(self, now_v: float) -> dict[str, int]:
        """Remaining requests per window label (for tests and the CLI)."""
        return {w.label: max(w.limit - w.used(now_v), 0) for w in self._windows}

    def _build(self, now_v: float, used: list[int]) -> dict[str, str]:
        headers: dict[str, str] = {}
        best: tuple[int, float] | None = None
        best_limit = 0
        for w, u in zip(self._windows, used, strict=True):
            remaining = max(w.limit - u, 0)
            headers[f"X-RateLimit-Limit-{w.label}"] = str(w.limit)
            headers[f"X-RateLimit-Remaining-{w.label}"] = str(remaining)
            reset_v = w.reset_in_v(now_v, u)
            # Most restrictive window: fewest remaining; ties go to the shorter window.
            if best is None or remaining < best[0]:
                best = (remaining, reset_v)
                best_limit = w.limit
        assert best is not None
        headers["RateLimit-Limit"] = str(best_limit)
        headers["RateLimit-Remaining"] = str(best[0])
        headers["RateLimit-Reset"] = str(self._clock.real_ceil_s(best[1]))
        return headers
