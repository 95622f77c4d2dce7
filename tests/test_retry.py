"""The retry policy: backoff, quota, per-error decisions, circuit breaker."""

from __future__ import annotations

import random
from typing import get_args

import pytest

from bulkops.budget import FakeClock
from bulkops.retry import (
    ERROR_KINDS,
    CircuitBreaker,
    Decision,
    ErrorKind,
    RetryPolicy,
    RetryQuota,
    backoff_s,
)


class Fixed(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


# --- backoff --------------------------------------------------------------------------------


def test_backoff_ceiling_doubles_to_the_cap() -> None:
    ceilings = [backoff_s(n, rng=Fixed(1.0)) for n in range(1, 10)]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 20.0, 20.0, 20.0]
    assert backoff_s(10_000, rng=Fixed(1.0)) == 20.0  # no overflow


def test_backoff_is_full_jitter() -> None:
    rng = random.Random(42)
    draws = [backoff_s(4, base_s=1.0, cap_s=100.0, rng=rng) for _ in range(2000)]
    assert all(0.0 <= d < 8.0 for d in draws)
    assert min(draws) < 0.1 and max(draws) > 7.9  # the whole range, not "8 ± a little"
    assert sum(draws) / len(draws) == pytest.approx(4.0, rel=0.05)


def test_backoff_attempts_count_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        backoff_s(0, rng=random.Random())


# --- quota ----------------------------------------------------------------------------------


def test_quota_costs_and_refunds() -> None:
    quota = RetryQuota()
    assert quota.tokens == 500
    assert quota.try_spend()
    assert quota.tokens == 495
    assert quota.try_spend(timeout=True)
    assert quota.tokens == 485
    quota.success()
    assert quota.tokens == 486


def test_quota_runs_dry_then_refills_slowly() -> None:
    quota = RetryQuota()
    spent = 0
    while quota.try_spend():
        spent += 1
    assert spent == 100 and quota.tokens == 0
    for _ in range(4):
        quota.success()
    assert not quota.try_spend()  # 4 tokens: a retry needs 5
    quota.success()
    assert quota.try_spend()
    for _ in range(1000):
        quota.success()
    assert quota.tokens == 500  # never above the capacity


# --- decisions ------------------------------------------------------------------------------

POLICY = RetryPolicy()


@pytest.mark.parametrize(
    ("kind", "safe", "outcome"),
    [
        ("429", True, "wait_gate"),
        ("429", False, "wait_gate"),
        ("connect", True, "retry"),
        ("connect", False, "retry"),  # nothing left the machine: safe for a lock too
        ("timeout", True, "retry"),
        ("timeout", False, "unknown"),
        ("reset_after_send", True, "retry"),
        ("reset_after_send", False, "unknown"),
        ("bad_response", True, "retry"),
        ("bad_response", False, "unknown"),
        ("5xx", True, "retry"),
        ("5xx", False, "unknown"),  # a 502/504 may hide an applied lock
        ("4xx", True, "failed"),
        ("4xx", False, "failed"),
    ],
)
def test_first_attempt_decisions(kind: ErrorKind, safe: bool, outcome: str) -> None:
    decision = POLICY.decide(safe_to_repeat=safe, error_kind=kind, attempt=1)
    assert decision.outcome == outcome
    assert decision.retry is (outcome == "retry")
    assert decision.reason


def test_every_error_kind_is_covered() -> None:
    assert set(get_args(ErrorKind)) == ERROR_KINDS
    for kind in get_args(ErrorKind):
        for safe in (True, False):
            assert isinstance(
                POLICY.decide(safe_to_repeat=safe, error_kind=kind, attempt=1), Decision
            )


@pytest.mark.parametrize("kind", ["connect", "timeout", "5xx", "reset_after_send"])
def test_three_attempts_counting_the_first(kind: ErrorKind) -> None:
    outcomes = [
        POLICY.decide(safe_to_repeat=True, error_kind=kind, attempt=n).outcome for n in (1, 2, 3)
    ]
    assert outcomes == ["retry", "retry", "failed"]
    final = POLICY.decide(safe_to_repeat=True, error_kind=kind, attempt=3)
    assert "3 attempts" in final.reason


def test_429_is_never_an_attempt() -> None:
    for attempt in (1, 3, 50):
        decision = POLICY.decide(safe_to_repeat=False, error_kind="429", attempt=attempt)
        assert decision.outcome == "wait_gate"


def test_unsafe_unknown_says_why() -> None:
    decision = POLICY.decide(safe_to_repeat=False, error_kind="timeout", attempt=1)
    assert "not resent" in decision.reason


def test_quota_turns_retries_into_failures_when_empty() -> None:
    quota = RetryQuota(capacity=10)
    kinds: list[ErrorKind] = ["5xx", "5xx", "5xx"]
    outcomes = [
        POLICY.decide(safe_to_repeat=True, error_kind=k, attempt=1, quota=quota).outcome
        for k in kinds
    ]
    assert outcomes == ["retry", "retry", "failed"]
    timeout = POLICY.decide(
        safe_to_repeat=True, error_kind="timeout", attempt=1, quota=RetryQuota(capacity=9)
    )
    assert timeout.outcome == "failed" and "quota" in timeout.reason


def test_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown error kind"):
        POLICY.decide(safe_to_repeat=True, error_kind="teapot", attempt=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)


def test_policy_delay_uses_its_base_and_cap() -> None:
    policy = RetryPolicy(base_s=1.0, cap_s=3.0)
    assert [policy.delay_s(n, rng=Fixed(1.0)) for n in (1, 2, 3)] == [1.0, 2.0, 3.0]


# --- circuit breaker ------------------------------------------------------------------------


def test_breaker_trips_above_ten_percent_with_enough_requests() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(clock=clock)
    for i in range(100):
        breaker.record(retried=i >= 90)  # exactly 10 %
        clock.advance(0.5)
    assert not breaker.tripped()
    breaker.record(retried=True)
    assert breaker.tripped()
    assert breaker.reason is not None and "11 of the last 101" in breaker.reason
    breaker.record(retried=False)
    assert breaker.tripped()  # latched until reset
    breaker.reset()
    assert not breaker.tripped() and breaker.retry_ratio() == 0.0


def test_breaker_needs_a_minimum_sample() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(clock=clock, min_requests=50)
    for _ in range(10):
        breaker.record(retried=True)
    assert not breaker.tripped()
    assert breaker.retry_ratio() == 1.0


def test_breaker_forgets_retries_older_than_the_window() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(clock=clock, window_s=120.0)
    for _ in range(30):
        breaker.record(retried=True)  # a burst of errors…
    clock.advance(121.0)  # … two minutes ago
    for i in range(60):
        breaker.record(retried=i % 20 == 0)
        clock.advance(1.0)
    assert not breaker.tripped()
    assert breaker.retry_ratio() == pytest.approx(3 / 60)


def test_breaker_without_a_clock_uses_the_wall_clock() -> None:
    breaker = CircuitBreaker(min_requests=1)
    breaker.record(retried=True)
    assert breaker.tripped()
