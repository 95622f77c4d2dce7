"""``Budget``: the one object every request waits on before it is sent.

``async with budget.acquire() as permit:`` waits, in this order, for the 429 gate, the server's
own count (``observe``), then — atomically in the send history — the aligned window counters
(the rate's window and the second) and the smoothing buckets, and records the send. One task at
a time does the waiting (an ``asyncio.Lock``, first come first served); the rest queue behind it,
so a wake-up never stampedes. At high rates one history transaction records several sends at
once (a lease: as many as the limits allow at this instant, up to what this process grants in
``STOCK_TTL_S``); the next acquires take them from the stock while it is that fresh and in the
same aligned windows, else the stock is uncounted. A send recorded and never made only ever
counts against us. On a 429 the caller calls ``permit.rate_limited(retry_after_s)`` and simply
acquires again: a 429 is not an attempt and not a failure.

A send is recorded when its permit is granted, and its request leaves a little later (the
engine commits its intent in between). Just before the request leaves, ``refresh(permit)``
re-records a permit whose aligned window ended meanwhile, so every request is counted in the
window it is actually sent in.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bulkops.budget._clock import Clock, SystemClock
from bulkops.budget._config import BudgetConfig
from bulkops.budget._gate import Gate, GateState
from bulkops.budget._history import PausedUntil, SendHistory, Sent
from bulkops.budget._limits import Limits, window_end

__all__ = ["SERVER_RESERVE", "Budget", "BudgetStats", "Permit"]

log = logging.getLogger("bulkops")

# Requests kept back from what the server says remains: responses race in-flight requests.
SERVER_RESERVE = 10
# Added to every wait: a clock that wakes an ulp early (float sums, loop vs wall clock) would
# otherwise cost a second check for each send.
WAKE_SLACK_S = 1e-6
# Leases: a stocked send is usable this long after it was recorded (and in the same windows).
STOCK_TTL_S = 0.01
MAX_LEASE = 64  # the most sends one history transaction records
LEASE_AFTER = 32  # grants one by one first: short runs and tests see exact counts


@dataclass(frozen=True, slots=True)
class BudgetStats:
    """A snapshot of what the budget did (counts are this process's unless said otherwise)."""

    sent: int  # permits granted: requests that went out
    sent_in_window: int  # sends in the current rate window, by every run on this tenant
    rate_limited: int  # 429 answers
    pauses: int  # times the gate closed
    paused_s: float  # time the gate was closed or probing
    max_in_window_seen: int  # the highest shared window count seen at a grant


class Permit:
    """The right to send one request; tell it about a 429, else leaving the block means answered."""

    __slots__ = ("_budget", "_epoch", "_sent", "_uncounted", "is_probe")

    def __init__(self, budget: Budget, sent: Sent, *, is_probe: bool, epoch: int) -> None:
        self._budget = budget
        self._sent = sent
        self._epoch = epoch
        self._uncounted = False  # refused by a 429, or never sent: not in the history
        self.is_probe = is_probe

    @property
    def sent_at(self) -> float:
        """When the permit was granted (wall clock)."""
        return self._sent.t

    def rate_limited(self, retry_after_s: float | None) -> None:
        """The request got 429: pause every worker (the gate) and uncount this send."""
        if not self._uncounted:
            self._uncounted = True
            self._budget._on_429(self, retry_after_s)

    def unsent(self) -> None:
        """The request never left (the run stopped first): uncount it here and in the history."""
        if not self._uncounted:
            self._uncounted = True
            self._budget._uncount(self)

    def __repr__(self) -> str:
        return (
            f"<Permit sent_at={self.sent_at:.3f} probe={self.is_probe} uncounted={self._uncounted}>"
        )


class Budget:
    """One tenant's request budget: smoothing, hard window counts, per-second ceiling, 429 gate."""

    def __init__(
        self,
        config: BudgetConfig,
        *,
        history: SendHistory | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if history is not None and history.tenant != config.tenant:
            raise ValueError(
                f"send history tenant {history.tenant!r} is not the budget's {config.tenant!r}"
            )
        self.config = config
        self._owns_history = history is None
        self._history = history if history is not None else SendHistory(None, tenant=config.tenant)
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._limits = Limits.from_config(config)
        self._gate = Gate(rng=rng if rng is not None else random.Random())
        self._lock = asyncio.Lock()  # binds to the running loop on first use
        self._queued = 0  # tasks waiting for the lock
        self._stock: deque[Sent] = deque()  # sends leased together, not yet granted
        self._gap_s = math.inf  # the time between grants here (moving average)
        self._last_grant = -math.inf
        self._probe_done = asyncio.Event()
        self._not_before = -math.inf  # our own windows and buckets are closed before this
        self._cap_left: int | None = None
        self._cap_until = 0.0
        self._in_flight = 0
        self._sent = 0
        self._rate_limited = 0
        self._max_in_window = 0
        self.refreshed = 0  # permits re-recorded because their window ended before the send
        self._refreshing = 0
        self._no_refresh = asyncio.Event()
        self._no_refresh.set()
        paused = self._history.paused_until()  # a 429 pause outlives the run that met it
        if paused > self._clock.now():
            self._adopt(paused)

    def close(self) -> None:
        """Uncount leased sends never granted; close the history if the budget opened it."""
        self._drop_stock()
        if self._owns_history:
            self._history.close()

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[Permit]:
        """Wait until one request may be sent, record it, and yield its permit."""
        permit = await self._grant()
        try:
            yield permit
        except BaseException as exc:
            self._finish(permit, exc)
            raise
        self._finish(permit, None)

    async def _grant(self) -> Permit:
        clock, gate = self._clock, self._gate
        self._queued += 1
        try:
            await self._lock.acquire()
        finally:
            self._queued -= 1
        try:
            while True:
                if self._refreshing:  # a permit re-recorded before its send goes first
                    await self._no_refresh.wait()
                    continue
                now = clock.now()
                if gate.state is not GateState.OPEN:
                    self._drop_stock()  # leased before the pause: never sent, so uncounted
                if gate.state is GateState.PROBING:
                    await self._probe_done.wait()
                    continue
                if gate.state is GateState.CLOSED and now < gate.until:
                    await clock.sleep(gate.until - now + WAKE_SLACK_S)
                    continue
                cap = self._cap_left
                if cap is not None:
                    if now >= self._cap_until:
                        self._cap_left = cap = None
                    elif cap <= 0:
                        self._drop_stock()
                        await clock.sleep(self._cap_until - now + WAKE_SLACK_S)
                        continue
                sent = self._take(now, cap)
                if isinstance(sent, float):
                    await clock.sleep(sent - clock.now() + WAKE_SLACK_S)
                    continue
                return self._granted(sent)
        finally:
            self._lock.release()

    def _take(self, now: float, cap: int | None) -> Sent | float:
        """A send from the stock, else recorded now (with a lease); else when to try again."""
        if self._stock:
            if self._fresh(self._stock[0], now):
                return self._stock.popleft()
            self._drop_stock()  # one lease: all recorded at the same instant
        if now < self._not_before:  # known without asking the history
            return self._not_before
        sent = self._history.try_send_many(self._clock.now, self._limits, want=self._lease(cap))
        if isinstance(sent, float):
            if isinstance(sent, PausedUntil):  # another run's 429: pause, then probe, as for ours
                self._adopt(sent)
            return sent
        self._stock.extend(sent[1:])
        return sent[0]

    def _lease(self, cap: int | None) -> int:
        """How many sends to record now: one, or what half of ``STOCK_TTL_S`` will use here."""
        if self._gate.state is not GateState.OPEN:
            return 1  # the probe goes alone
        want = 1 + self._queued
        if self._sent >= LEASE_AFTER and self._gap_s < STOCK_TTL_S:
            want = max(want, int(STOCK_TTL_S / 2 / max(self._gap_s, 1e-9)))
        want = min(want, MAX_LEASE)
        return want if cap is None else max(1, min(want, cap))

    @staticmethod
    def _fresh(sent: Sent, now: float) -> bool:
        """A leased send is still good: recent, and in the aligned windows it was counted in."""
        return now - sent.t <= STOCK_TTL_S and now < sent.until

    def _drop_stock(self) -> None:
        if self._stock:
            self._history.remove_many(list(self._stock))
            self._stock.clear()

    def stale(self, permit: Permit) -> bool:
        """Whether an aligned window the permit was counted in has ended: ``refresh`` it."""
        return self._clock.now() >= permit._sent.until

    async def refresh(self, permit: Permit) -> bool:
        """Just before sending: re-record a permit whose aligned window ended since its grant.

        The send then counts in the window the request really goes out in (it waits for room
        there like any acquire, without passing the 429 gate again: the permit already did).
        Returns ``False``, the permit uncounted, when a 429 pause began meanwhile: the request
        must not wait it out with its intent on disk; it goes back and acquires again.
        """
        if not self.stale(permit):
            return True
        if self._gate.state is GateState.CLOSED:  # a 429 since its grant: it waits its turn
            permit.unsent()
            return False
        # Its intent is on disk: it goes ahead of every task waiting for a new permit (they
        # wait while any refresh is pending), so it leaves as soon as the limits allow.
        clock = self._clock
        self._refreshing += 1
        self._no_refresh.clear()
        try:
            self._history.remove(permit._sent)
            sent = self._take(clock.now(), self._cap_left)
            while isinstance(sent, float):
                if isinstance(sent, PausedUntil):  # another run's 429: adopted by _take
                    permit.unsent()
                    return False
                await clock.sleep(sent - clock.now() + WAKE_SLACK_S)
                sent = self._take(clock.now(), self._cap_left)
        finally:
            self._refreshing -= 1
            if not self._refreshing:
                self._no_refresh.set()
        self._max_in_window = max(self._max_in_window, sent.window_count)
        self.refreshed += 1
        permit._sent = sent
        return True

    def _granted(self, sent: Sent) -> Permit:
        probe = self._gate.probe_due(sent.t)  # closed, and the pause is over: this one probes
        if probe:
            self._gate.start_probe()
            self._probe_done.clear()
        self._not_before = sent.next_at  # the same for every send of one lease
        now = self._clock.now()
        gap = now - self._last_grant
        self._gap_s = gap if self._gap_s == math.inf else 0.8 * self._gap_s + 0.2 * gap
        self._last_grant = now
        self._sent += 1
        self._in_flight += 1
        if self._cap_left is not None:
            self._cap_left -= 1
        self._max_in_window = max(self._max_in_window, sent.window_count)
        return Permit(self, sent, is_probe=probe, epoch=self._gate.epoch)

    def _finish(self, permit: Permit, exc: BaseException | None) -> None:
        self._in_flight -= 1
        if permit.is_probe and not permit._uncounted:
            if isinstance(exc, asyncio.CancelledError):
                self._gate.probe_abandoned(self._clock.now())
            else:  # an answer other than 429, or a transport error: the spec reopens
                self._gate.probe_answered(self._clock.now())
            self._probe_done.set()

    def _uncount(self, permit: Permit) -> None:
        self._history.remove(permit._sent)
        self._sent -= 1
        if self._cap_left is not None:
            self._cap_left += 1
        if permit.is_probe:  # no answer will come: let the next request probe
            self._gate.probe_abandoned(self._clock.now())
            self._probe_done.set()

    def _on_429(self, permit: Permit, retry_after_s: float | None) -> None:
        self._rate_limited += 1
        self._history.remove(permit._sent)  # Kong does not count refused requests; neither do we
        now = self._clock.now()
        epoch = self._gate.epoch
        self._gate.on_429(
            now,
            retry_after_s=retry_after_s,
            to_window_end_s=window_end(now, self.config.rate.period_s) - now,
            granted_epoch=permit._epoch,
            probe=permit.is_probe,
        )
        if self._gate.epoch != epoch:  # a new pause: say so once, also where no progress shows
            self._history.pause(min(self._gate.until, now + self._longest_pause_s()))
            log.warning(
                "429: the tenant's hourly quota is used up (by this run or another of its "
                "integrations); %s waits until %s",
                "the probe failed again, every request" if permit.is_probe else "every request",
                self._until_text(now),
            )
        if permit.is_probe:
            self._probe_done.set()

    def _longest_pause_s(self) -> float:
        """A noted pause never holds other runs longer than a window: no 429 means more."""
        return self.config.rate.period_s + 1.0

    def _adopt(self, until: float) -> None:
        now = self._clock.now()
        if self._gate.adopt(now, min(until, now + self._longest_pause_s())):
            self._drop_stock()
            log.warning(
                "429: another run on this tenant (or this one before a restart) met the hourly "
                "quota; every request waits until %s",
                self._until_text(now),
            )

    def _until_text(self, now: float) -> str:
        """``13:00:00 UTC (40 min)``: the end of the gate's pause."""
        wait_s = self._gate.until - now
        return "{} UTC ({})".format(
            time.strftime("%H:%M:%S", time.gmtime(self._gate.until)),
            f"{wait_s:.0f} s" if wait_s < 120 else f"{wait_s / 60:.0f} min",
        )

    def pause_left_s(self) -> float:
        """Seconds until a 429 pause lets requests go again; 0 while none holds them back."""
        if self._gate.state is GateState.OPEN:
            return 0.0
        return max(self._gate.until - self._clock.now(), 0.0)

    def observe(self, *, remaining_hour: int | None = None, reset_s: float | None = None) -> None:
        """Cap what we still send at what the server says remains (X-RateLimit-Remaining-Hour)."""
        # The cap is what remains less requests in flight and SERVER_RESERVE; it lasts reset_s
        # (seconds until the server's window resets, when known) or until our aligned window
        # ends. Each call replaces the previous cap: the latest count is the truth.
        if remaining_hour is None:
            return
        now = self._clock.now()
        self._cap_left = max(remaining_hour - self._in_flight - SERVER_RESERVE, 0)
        self._cap_until = now + reset_s if reset_s is not None else self._window_end(now)

    def window_left(self) -> int:
        """How many more requests the current window allows us (shared count, server cap);
        none while a 429 pause holds every request back."""
        if self._gate.state is not GateState.OPEN:
            return 0
        now = self._clock.now()
        rate = self.config.rate
        left = max(rate.count - self._history.count_in_window(now, rate.period_s), 0)
        if self._stock and self._fresh(self._stock[0], now):
            left += len(self._stock)  # leased: counted in the history, still ours to send
        if self._cap_left is not None and now < self._cap_until:
            left = min(left, max(self._cap_left, 0))
        return left

    def eta_s(self, requests: int) -> float:
        """Roughly how long ``requests`` more sends take at this budget (no bursts, no 429s)."""
        if requests <= 0:
            return 0.0
        now = self._clock.now()
        pace_s = self._limits.pace_s
        to_end = self._window_end(now) - now
        first = min(self.window_left(), math.floor(to_end / pace_s))
        if requests <= first:
            return requests * pace_s
        period_s = self.config.rate.period_s
        per_window = max(min(self.config.rate.count, math.floor(period_s / pace_s)), 1)
        full, rest = divmod(requests - first, per_window)
        if rest == 0:
            full, rest = full - 1, per_window
        return to_end + full * period_s + rest * pace_s

    def _window_end(self, now: float) -> float:
        return window_end(now, self.config.rate.period_s)

    @property
    def stats(self) -> BudgetStats:
        """Counts so far; ``sent_in_window`` is read from the shared history."""
        now = self._clock.now()
        return BudgetStats(
            sent=self._sent,
            sent_in_window=self._history.count_in_window(now, self.config.rate.period_s),
            rate_limited=self._rate_limited,
            pauses=self._gate.pauses,
            paused_s=self._gate.paused_for(now),
            max_in_window_seen=self._max_in_window,
        )
