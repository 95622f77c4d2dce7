"""When to send a request again: backoff, retry quota, the per-error decision, the circuit breaker.

Anchors (engineering notes §2): AWS SDK "standard" retry mode (3 attempts counting the first, full
jitter capped at 20 s, a 500-token retry quota), Google SRE "Handling Overload" (retries under
10% of requests) and gRPC retry throttling. Everything here is pure or driven by an injected
clock; the engine's sender (``bulkops._sending``) holds the state and acts on the ``Decision``.

How an error maps to an outcome (``RetryPolicy.decide``):

=====================  ==================  ==================================================
error kind             safe to repeat       not safe to repeat (lock, erase, restart, …)
=====================  ==================  ==================================================
``429``                wait for the gate    wait for the gate (never an attempt, never a failure)
``connect``            retry                retry (the request never left this machine)
``timeout``            retry                unknown (it may have been applied)
``reset_after_send``   retry                unknown
``5xx``                retry                unknown (see below)
``bad_response``       retry                unknown (an unreadable answer may have said "done")
``4xx``                failed               failed (an answer: the request was refused)
=====================  ==================  ==================================================

Why a 5xx on an unsafe action is *unknown*, not failed: none of 500, 502, 503 and 504 proves the
action did not run. A 502/504 comes from the gateway when the application was too slow or
dropped the connection, often after it queued the MDM command; a 500 from the application can
come after its database commit (an error building the response). Calling it "failed" would
invite a rerun that locks a device twice and makes a second PIN. "Unknown" sends the item to
reconciliation (the device's command list) or to the user; it is never resent blindly.
A safe action that runs out of attempts is *failed*: resending it later is harmless.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

if TYPE_CHECKING:
    from bulkops.budget import Clock

__all__ = [
    "ERROR_KINDS",
    "CircuitBreaker",
    "Decision",
    "ErrorKind",
    "Outcome",
    "RetryPolicy",
    "RetryQuota",
    "backoff_s",
]

ErrorKind = Literal["connect", "timeout", "reset_after_send", "bad_response", "5xx", "4xx", "429"]
ERROR_KINDS: frozenset[str] = frozenset(get_args(ErrorKind))

# retry: send again after RetryPolicy.delay_s(attempt). wait_gate: a 429; acquire the budget
# again (not an attempt, not a failure). failed: final. unknown: may have been applied; never
# resent blindly: reconciled or reported.
Outcome = Literal["retry", "wait_gate", "failed", "unknown"]


def backoff_s(
    attempt: int, *, base_s: float = 0.5, cap_s: float = 20.0, rng: random.Random
) -> float:
    """Full jitter: ``rand(0, 1) * min(base_s * 2**(attempt - 1), cap_s)`` for attempt ≥ 1."""
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, got {attempt}")
    # Cap the exponent first: 2**attempt overflows a float long before attempts run out.
    ceiling = cap_s if attempt > 64 else min(base_s * 2.0 ** (attempt - 1), cap_s)
    return rng.random() * ceiling


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with a request that did not succeed, and the one-line reason to report."""

    outcome: Outcome
    reason: str

    @property
    def retry(self) -> bool:
        """Whether to send the request again (after ``RetryPolicy.delay_s``)."""
        return self.outcome == "retry"


class RetryQuota:
    """AWS standard-mode retry quota: retries spend tokens, successes earn one back."""

    def __init__(
        self, *, capacity: int = 500, retry_cost: int = 5, timeout_cost: int = 10, refund: int = 1
    ) -> None:
        self.capacity = capacity
        self.retry_cost = retry_cost
        self.timeout_cost = timeout_cost
        self.refund = refund
        self.tokens = capacity

    def try_spend(self, *, timeout: bool = False) -> bool:
        """Take the cost of one retry (more after a timeout); ``False`` when the quota is empty."""
        cost = self.timeout_cost if timeout else self.retry_cost
        if self.tokens < cost:
            return False
        self.tokens -= cost
        return True

    def success(self) -> None:
        """A request succeeded: give back ``refund`` tokens, up to the capacity."""
        self.tokens = min(self.capacity, self.tokens + self.refund)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many attempts a request gets and how long to wait between them."""

    max_attempts: int = 3
    base_s: float = 0.5
    cap_s: float = 20.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be ≥ 1, got {self.max_attempts}")

    def decide(
        self,
        *,
        safe_to_repeat: bool,
        error_kind: ErrorKind,
        attempt: int,
        quota: RetryQuota | None = None,
    ) -> Decision:
        """The decision after attempt ``attempt`` (from 1) ended in ``error_kind``."""
        # An empty quota turns what would be a retry into "failed".
        if error_kind not in ERROR_KINDS:
            raise ValueError(
                f"unknown error kind {error_kind!r}; expected one of {sorted(ERROR_KINDS)}"
            )
        if error_kind == "429":
            return Decision("wait_gate", "rate limited: waiting for the budget, not an attempt")
        if error_kind == "4xx":
            return Decision("failed", "refused by the API (4xx)")
        what = _WHAT[error_kind]
        if error_kind != "connect" and not safe_to_repeat:
            return Decision("unknown", f"{what}; the action must not run twice: not resent")
        if attempt >= self.max_attempts:
            return Decision("failed", f"{what} on {self.max_attempts} attempts in a row")
        if quota is not None and not quota.try_spend(timeout=error_kind == "timeout"):
            return Decision("failed", f"{what}; retry quota exhausted (too many errors)")
        return Decision("retry", f"{what}; retrying (attempt {attempt + 1} of {self.max_attempts})")

    def delay_s(self, attempt: int, *, rng: random.Random) -> float:
        """The backoff before the retry that follows attempt number ``attempt``."""
        return backoff_s(attempt, base_s=self.base_s, cap_s=self.cap_s, rng=rng)


_WHAT = {
    "connect": "could not connect (nothing was sent)",
    "timeout": "no answer in time",
    "reset_after_send": "connection lost after sending",
    "bad_response": "unreadable answer",
    "5xx": "server error (5xx)",
}


class CircuitBreaker:
    """Trips when retries exceed ``max_retry_ratio`` of sends over the last ``window_s`` seconds."""

    # Counts live in one-second bins, so memory stays bounded at any request rate. Once tripped
    # it stays tripped until reset(): the engine pauses the run and reports ``reason``.

    def __init__(
        self,
        *,
        window_s: float = 120.0,
        max_retry_ratio: float = 0.10,
        min_requests: int = 50,
        clock: Clock | None = None,
    ) -> None:
        self.window_s = window_s
        self.max_retry_ratio = max_retry_ratio
        self.min_requests = min_requests
        self._now = clock.now if clock is not None else time.time
        self._bins: deque[list[int]] = deque()  # [second, requests, retries]
        self._requests = 0
        self._retries = 0
        self.reason: str | None = None

    def tripped(self) -> bool:
        """Whether the breaker has tripped since the last ``reset()``."""
        return self.reason is not None

    def record(self, *, retried: bool) -> None:
        """Count one request sent; ``retried`` when it repeats an earlier attempt."""
        second = math.floor(self._now())
        self._expire(second)
        if self._bins and self._bins[-1][0] == second:
            current = self._bins[-1]
        else:
            current = [second, 0, 0]
            self._bins.append(current)
        current[1] += 1
        self._requests += 1
        if retried:
            current[2] += 1
            self._retries += 1
            self._check()

    def record_error(self) -> None:
        """Count an error left ``unknown`` rather than retried (its action must not run twice):
        as much a sign of a failing API as a retry, though no request repeats it."""
        second = math.floor(self._now())
        self._expire(second)
        if not self._bins or self._bins[-1][0] != second:
            self._bins.append([second, 0, 0])
        self._bins[-1][2] += 1
        self._retries += 1
        self._check()

    def retry_ratio(self) -> float:
        """Retries divided by requests over the window (0 with no requests)."""
        self._expire(math.floor(self._now()))
        return self._retries / self._requests if self._requests else 0.0

    def reset(self) -> None:
        """Forget the trip and the counts (the run resumes after a pause)."""
        self._bins.clear()
        self._requests = self._retries = 0
        self.reason = None

    def _expire(self, second: int) -> None:
        oldest = second - self.window_s
        while self._bins and self._bins[0][0] <= oldest:
            _, requests, retries = self._bins.popleft()
            self._requests -= requests
            self._retries -= retries

    def _check(self) -> None:
        if self.reason is not None or self._requests < self.min_requests:
            return
        ratio = self._retries / self._requests
        if ratio > self.max_retry_ratio:
            self.reason = (
                f"{self._retries} of the last {self._requests} requests failed and were retried "
                f"or left unknown ({ratio:.0%}) "
                f"in {self.window_s:g} s, above {self.max_retry_ratio:.0%}: the API is failing"
            )
