"""Fault injection: a frozen `Faults` config and the seeded injector that draws from it."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

__all__ = ["ODD_KINDS", "FaultDecision", "FaultInjector", "Faults", "OddKind"]

OddKind = Literal["text", "html404", "empty", "truncated"]
ODD_KINDS: tuple[OddKind, ...] = ("text", "html404", "empty", "truncated")


def _check_rate(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be within [0, 1], got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Faults:
    """What goes wrong, how often (rates are per admitted request, all default 0)."""

    latency_s: float = 0.0
    latency_jitter_s: float = 0.0
    error_5xx_rate: float = 0.0
    error_5xx_statuses: tuple[int, ...] = (500, 502, 503)
    reset_before_rate: float = 0.0
    reset_after_rate: float = 0.0
    slow_rate: float = 0.0
    slow_s: float = 30.0
    odd_responses_rate: float = 0.0
    odd_kinds: tuple[OddKind, ...] = ODD_KINDS
    other_integration_per_window: int = 0
    routes: frozenset[tuple[str, str]] | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in (
            "error_5xx_rate",
            "reset_before_rate",
            "reset_after_rate",
            "slow_rate",
            "odd_responses_rate",
        ):
            _check_rate(name, getattr(self, name))
        if self.latency_s < 0 or self.latency_jitter_s < 0 or self.slow_s < 0:
            raise ValueError("latency_s, latency_jitter_s and slow_s must be >= 0")
        if self.other_integration_per_window < 0:
            raise ValueError("other_integration_per_window must be >= 0")
        if not self.odd_kinds or any(k not in ODD_KINDS for k in self.odd_kinds):
            raise ValueError(f"odd_kinds must be a non-empty subset of {ODD_KINDS}")
        if not self.error_5xx_statuses or any(not 500 <= s <= 599 for s in self.error_5xx_statuses):
            raise ValueError("error_5xx_statuses must be non-empty 5xx codes")

    @property
    def any_per_request(self) -> bool:
        """Whether any per-request fault or latency can fire."""
        return bool(
            self.latency_s
            or self.latency_jitter_s
            or self.error_5xx_rate
            or self.reset_before_rate
            or self.reset_after_rate
            or self.slow_rate
            or self.odd_responses_rate
        )


@dataclass(frozen=True, slots=True)
class FaultDecision:
    """The faults drawn for one request."""

    delay_s: float = 0.0
    error_5xx: int | None = None
    reset_before: bool = False
    reset_after: bool = False
    slow_s: float = 0.0
    odd: OddKind | None = None


NO_FAULT = FaultDecision()


class FaultInjector:
    """Draws a `FaultDecision` per request from one seeded RNG (same order → same faults)."""

    __slots__ = ("_active", "_faults", "_rng")

    def __init__(self, faults: Faults, *, seed: int) -> None:
        self._faults = faults
        self._rng = random.Random(faults.seed if faults.seed is not None else seed ^ 0x5EED)
        self._active = faults.any_per_request

    def draw(self, method: str, route: str | None) -> FaultDecision:
        """Decide the faults for one admitted request on `(method, route)`."""
        f = self._faults
        if not self._active:
            return NO_FAULT
        if f.routes is not None and (method, route or "") not in f.routes:
            return NO_FAULT
        rng = self._rng
        delay = f.latency_s + (rng.uniform(0.0, f.latency_jitter_s) if f.latency_jitter_s else 0.0)
        # Draws happen in a fixed order from one RNG, so a run's faults are reproducible.
        if f.reset_before_rate and rng.random() < f.reset_before_rate:
            return FaultDecision(delay_s=delay, reset_before=True)
        if f.error_5xx_rate and rng.random() < f.error_5xx_rate:
            return FaultDecision(delay_s=delay, error_5xx=rng.choice(f.error_5xx_statuses))
        if f.odd_responses_rate and rng.random() < f.odd_responses_rate:
            return FaultDecision(delay_s=delay, odd=rng.choice(f.odd_kinds))
        if f.reset_after_rate and rng.random() < f.reset_after_rate:
            return FaultDecision(delay_s=delay, reset_after=True)
        if f.slow_rate and rng.random() < f.slow_rate:
            return FaultDecision(delay_s=delay, slow_s=f.slow_s)
        return FaultDecision(delay_s=delay) if delay else NO_FAULT
