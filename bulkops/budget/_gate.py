"""The 429 gate: one pause shared by every worker, then a single probe, then reopen.

A 429 means the window's quota is spent (by us or by another integration), not congestion, so
nothing is gained by each worker backing off on its own: the first 429 closes the gate until
``Retry-After`` (plus a little jitter) or, without the header, the next window boundary. Then one
probe goes out; its success reopens the gate for all, its 429 closes it again for an exponential
backoff with full jitter (capped at 15 minutes), and the next probe follows. Time is passed in,
so this is plain state you can test without a loop.
"""

from __future__ import annotations

import enum
import random

from bulkops.retry import backoff_s

__all__ = ["Gate", "GateState"]

PROBE_BACKOFF_BASE_S = 2.0
PROBE_BACKOFF_CAP_S = 900.0
JITTER_MAX_S = 1.0  # spread clients that paused together, without delaying much
JITTER_FRACTION = 0.1  # … and never more than a tenth of the pause itself


class GateState(enum.Enum):
    """Open; closed until a deadline; or one probe in flight."""

    OPEN = "open"
    CLOSED = "closed"
    PROBING = "probing"


class Gate:
    """The state machine; ``epoch`` counts closures so stale 429s can be told apart."""

    def __init__(self, *, rng: random.Random) -> None:
        self.state = GateState.OPEN
        self.until = 0.0
        self.epoch = 0
        self.failed_probes = 0
        self.pauses = 0
        self.paused_s = 0.0
        self._paused_since: float | None = None
        self._rng = rng

    def paused_for(self, now: float) -> float:
        """Total time spent paused, including a pause still running."""
        ongoing = 0.0 if self._paused_since is None else now - self._paused_since
        return self.paused_s + ongoing

    def on_429(
        self,
        now: float,
        *,
        retry_after_s: float | None,
        to_window_end_s: float,
        granted_epoch: int,
        probe: bool,
    ) -> None:
        """A 429: pause until Retry-After, else the window's end; a failed probe backs off."""
        if probe:
            # Refused without Retry-After, a probe says the server's window is not where ours is
            # (it slides, or the clocks differ): only the exponential backoff applies.
            self.failed_probes += 1
            backoff = backoff_s(
                self.failed_probes,
                base_s=PROBE_BACKOFF_BASE_S,
                cap_s=PROBE_BACKOFF_CAP_S,
                rng=self._rng,
            )
            told = 0.0 if retry_after_s is None else self._pause(retry_after_s)
            self._close(now + max(backoff, told))
            return
        if granted_epoch < self.epoch or self.state is not GateState.OPEN:
            return  # sent before the current pause began: that pause already covers it
        self.pauses += 1
        self._paused_since = now
        self._close(now + self._pause(to_window_end_s if retry_after_s is None else retry_after_s))

    def adopt(self, now: float, until: float) -> bool:
        """A pause another run noted (or this one before a restart): closed until ``until``,
        then a probe. Returns whether that closed or extended the gate."""
        if self.state is not GateState.OPEN and until <= self.until:
            return False
        if self.state is GateState.OPEN:
            self.pauses += 1
            self._paused_since = now
        self._close(now + self._pause(until - now))  # jitter of our own: runs probe apart
        return True

    def _close(self, until: float) -> None:
        self.state = GateState.CLOSED
        self.until = until
        self.epoch += 1

    def _pause(self, pause_s: float) -> float:
        pause_s = max(pause_s, 0.0)
        return pause_s + self._rng.random() * min(JITTER_MAX_S, JITTER_FRACTION * pause_s)

    def probe_due(self, now: float) -> bool:
        """Closed and past the deadline: the next permit is the probe."""
        return self.state is GateState.CLOSED and now >= self.until

    def start_probe(self) -> None:
        """The probe permit was granted."""
        self.state = GateState.PROBING

    def probe_answered(self, now: float) -> None:
        """The probe got a non-429 answer: reopen for every worker."""
        self.state = GateState.OPEN
        self.failed_probes = 0
        if self._paused_since is not None:
            self.paused_s += now - self._paused_since
            self._paused_since = None

    def probe_abandoned(self, now: float) -> None:
        """The probe was cancelled before an answer: the next waiter probes instead."""
        self.state = GateState.CLOSED
        self.until = now
