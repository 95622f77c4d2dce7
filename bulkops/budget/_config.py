"""The configured budget: a rate such as ``9000/h``, the per-second ceiling and the burst.

Why 9,000/h by default: Kandji / Iru allow 10,000 requests per hour per *tenant*, and every API
token, Iru Compliance's own collection, the hosted MCP server and any other integration (SIEM,
inventory sync, scripts) draw on that one budget. A bulk run lasts hours and cannot see the
others spend (only ``X-RateLimit-Remaining-Hour``, when the gateway sends it), so it keeps a
reserve of 1,000/h (~17 requests a minute) for them. Likewise 45/s leaves 5/s of Kong's 50/s.
``--rate`` overrides the rate for tenants with no other integration, or with busier ones.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

__all__ = ["DEFAULT_RATE", "BudgetConfig", "Rate"]

_UNITS_S = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "hour": 3600.0}
_RATE_RE = re.compile(
    r"^\s*([0-9][0-9_]*(?:\.[0-9]+)?)\s*/\s*([0-9]+(?:\.[0-9]+)?)?\s*([a-z]+)\s*$"
)
_EXAMPLES = "expected COUNT/UNIT such as 9000/h, 150/m or 2.5/s (units: s, m, h)"


@dataclass(frozen=True, slots=True)
class Rate:
    """At most ``count`` requests in every clock-aligned window of ``period_s`` seconds."""

    count: int
    period_s: float

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise ValueError(f"rate count must be a whole number ≥ 1, got {self.count!r}")
        if not (math.isfinite(self.period_s) and self.period_s > 0):
            raise ValueError(
                f"rate period must be a positive number of seconds, got {self.period_s!r}"
            )

    @classmethod
    def parse(cls, text: str) -> Rate:
        """Read ``9000/h``, ``150/m``, ``2.5/s`` or ``100/10s`` (2.5/s becomes 25 per 10 s)."""
        match = _RATE_RE.match(text.lower())
        if match is None:
            raise ValueError(f"invalid rate {text!r}: {_EXAMPLES}")
        count_text, multiple_text, unit = match.groups()
        if unit not in _UNITS_S:
            raise ValueError(f"invalid rate {text!r}: unknown unit {unit!r}; {_EXAMPLES}")
        try:
            count = Decimal(count_text.replace("_", ""))
            period = Decimal(multiple_text or "1") * Decimal(_UNITS_S[unit])
        except InvalidOperation:  # pragma: no cover - the regex admits only decimals
            raise ValueError(f"invalid rate {text!r}: {_EXAMPLES}") from None
        if count <= 0 or period <= 0:
            raise ValueError(f"invalid rate {text!r}: count and period must be above zero")
        # 2.5/s is 25 per 10 s: scale both until the count is whole, keeping windows exact.
        while count != count.to_integral_value():
            count *= 10
            period *= 10
        return cls(int(count), float(period))

    @property
    def per_hour(self) -> float:
        """The same rate expressed per hour."""
        return self.count * 3600.0 / self.period_s

    def __str__(self) -> str:
        units = {3600.0: "h", 60.0: "m", 1.0: "s"}
        if self.period_s in units:
            return f"{self.count}/{units[self.period_s]}"
        return f"{self.count}/{self.period_s:g}s"


DEFAULT_RATE = Rate(9000, 3600.0)


@dataclass(frozen=True, slots=True)
class BudgetConfig:
    """What one tenant's budget allows: the rate, the per-second ceiling and the burst."""

    rate: Rate = field(default=DEFAULT_RATE)
    per_second: int = 45
    burst: int = 10
    tenant: str = "default"

    def __post_init__(self) -> None:
        if self.per_second < 1:
            raise ValueError(f"per_second must be ≥ 1, got {self.per_second}")
        if self.burst < 1:
            raise ValueError(f"burst must be ≥ 1, got {self.burst}")
        if not self.tenant:
            raise ValueError("tenant must not be empty")

    @property
    def effective_burst(self) -> int:
        """The burst actually allowed: at most 1% of the window's count (and at least 1).

        The smoothing bucket sends ``count - burst + 1`` per window once the burst is spent, so
        a burst above 1% of the count would cost more than 1% of the rate in every window.
        """
        return max(1, min(self.burst, self.rate.count // 100))
