"""The engine: take a run's items from the store to outcomes, under the budget, crash-safely.

One pass of a run is: recover items a killed process left in ``sending`` (resend what is safe to
repeat, reconcile the rest), then stream ``pending`` items in manifest order through a bounded
queue to a few workers.  Each worker hands its item to the ``Sender`` (``bulkops._sending``),
which waits for the budget, commits the intent, sends, and queues the outcome; the engine keeps
the counts the canary and ``--max-failure-rate`` judge, and every stop goes through one ``Stop``.
Nothing here knows an action by name: the catalogue says what is safe to repeat and where a
secret comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from bulkops._sending import Outcome, Sender
from bulkops._stop import EXIT_ABORTED, EXIT_FAILED, EXIT_INTERRUPTED, Held, Stop
from bulkops.actions import ACTIONS
from bulkops.client import KandjiClient
from bulkops.errors import RunAborted
from bulkops.reconcile import reconcile
from bulkops.schedule import TimeWindow
from bulkops.store import RunInfo, Store, WorkItem

__all__ = ["EXIT_ABORTED", "EXIT_FAILED", "EXIT_INTERRUPTED", "Engine", "Progress", "RunOptions"]

log = logging.getLogger("bulkops")


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How a run is driven."""

    concurrency: int = 8
    max_attempts: int = 3
    resend_unknown: bool = False
    grace_s: float = 15.0
    reconcile_skew_s: float = 300.0
    progress_interval_s: float = 0.25
    verify: bool = False
    canary: int = 0
    max_failure_rate: float | None = None
    failure_sample: int = 20
    window: TimeWindow | None = None


@dataclass(slots=True)
class Progress:
    """A snapshot of the run for the progress display and the summary."""

    run_id: str
    total: int
    counts: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    rate_limited: int = 0
    window_left: int = 0
    paused_s: float = 0.0  # until a 429 pause ends
    started_at: float = field(default_factory=time.time)
    eta_s: float | None = None
    note: str = ""

    @property
    def done(self) -> int:
        """Items with an outcome."""
        return sum(self.counts[s] for s in ("succeeded", "failed", "skipped", "unknown"))


class Engine:
    """Drives one run to completion (or to a clean, resumable stop)."""

    def __init__(
        self,
        *,
        store: Store,
        client: KandjiClient,
        run: RunInfo,
        options: RunOptions = RunOptions(),
        on_progress: Callable[[Progress], None] | None = None,
        counts: Mapping[str, int] | None = None,
    ) -> None:
        """``counts``: the run's items per state, when the caller has just counted them."""
        self._store = store
        self._counts = counts
        self._client = client
        self._run = run
        self._opts = options
        self._on_progress = on_progress
        self._stop = Stop()
        self._sender = Sender(
            store=store,
            client=client,
            run_id=run.run_id,
            stop=self._stop,
            complete=self._complete,
            max_attempts=options.max_attempts,
            verify=options.verify,
            reconcile_skew_s=options.reconcile_skew_s,
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._pass_done = 0
        self._canary_size = 0
        self._canary_done = asyncio.Event()
        self._pass_bad = 0
        self.progress = Progress(run_id=run.run_id, total=run.total)

    # ---- control ------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Take no new items; let those in flight finish (first Ctrl-C)."""
        self.progress.note = "stopping: finishing requests in flight…"
        self._stop.set()

    def abort_now(self) -> None:
        """Stop at once (second Ctrl-C); items in flight stay ``sending`` for the next resume."""
        self.progress.note = "stopping now"
        self._stop.set()
        for task in self._tasks:
            task.cancel()

    # ---- the run --------------------------------------------------------------------------

    async def run(self) -> Progress:
        """Work the run; returns the final progress, raises ``RunAborted`` on a resumable stop."""
        store, run_id = self._store, self._run.run_id
        counts = self._counts
        if self._opts.resend_unknown:
            n = await store.call(store.reset_unknown, run_id)
            log.info("%d unknown items will be sent again", n)
            counts = None
        if counts is None:  # a pass over every row: a plan hands its counts over instead
            counts = await store.call(store.counts, run_id)
        self.progress.counts.update(counts)
        await store.call(
            store.set_run, run_id, status="running", started_at=self._run.started_at or time.time()
        )
        ticker = asyncio.create_task(self._tick())
        try:
            await self._recover()
            self._pass_done = self._pass_bad = 0  # canary and failure rate count this pass's sends
            await self._dispatch()
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            await self._finish()
        if self._stop.reason is not None:
            raise self._stop.reason
        if self._stop.is_set() and self._remaining() > 0:
            raise RunAborted(
                "interrupted; run the same command again to resume", exit_code=EXIT_INTERRUPTED
            )
        return self.progress

    def _remaining(self) -> int:
        return self.progress.total - self.progress.done

    async def _finish(self) -> None:
        store, run_id = self._store, self._run.run_id
        await store.flush()
        stats = self._client.budget.stats
        self.progress.requests = stats.sent
        self.progress.rate_limited = self._client.rate_limited
        remaining = self._remaining()
        status = "done" if remaining == 0 else ("aborted" if self._stop.reason else "interrupted")
        await store.call(
            store.set_run,
            run_id,
            status=status,
            finished_at=time.time(),
            requests=self._run.requests + stats.sent,
            rate_limited=self._run.rate_limited + self._client.rate_limited,
        )
        self._emit()

    async def _recover(self) -> None:
        """Settle items a killed process left in ``sending``."""
        store, run_id = self._store, self._run.run_id
        after = 0
        while True:
            batch = await store.call(
                store.fetch, run_id, states=("sending",), after_line=after, limit=200
            )
            if not batch:
                return
            to_check = []
            for item in batch:
                after = item.line
                if ACTIONS[item.action].safe_to_repeat or item.device_id is None:
                    store.release(run_id, item.line)
                    self.progress.counts["sending"] -= 1
                    self.progress.counts["pending"] += 1
                else:
                    to_check.append(item)
            # Reads only: as many at once as the run sends (review: one at a time, 5 checks
            # against a slow API took 4 minutes).
            limit = asyncio.Semaphore(self._opts.concurrency)
            checks = [asyncio.create_task(self._settle(item, limit)) for item in to_check]
            try:
                await asyncio.gather(*checks)
            except BaseException:  # the first error, as it is (a refused token stops the run)
                for check in checks:
                    check.cancel()
                await asyncio.gather(*checks, return_exceptions=True)
                raise
            await store.flush()

    async def _settle(self, item: WorkItem, limit: asyncio.Semaphore) -> None:
        """Read the device of an item left in ``sending``: found, unknown, or not sent."""
        assert item.device_id is not None
        async with limit:
            verdict = await reconcile(
                self._client,
                ACTIONS[item.action],
                device_id=item.device_id,
                sent_at=item.sent_at or 0.0,
                skew_s=self._opts.reconcile_skew_s,
            )
        self._complete(item, Outcome(verdict.state, None, verdict.detail, verdict.secret))

    async def _dispatch(self) -> None:
        queue: asyncio.Queue[WorkItem | None] = asyncio.Queue(maxsize=self._opts.concurrency * 2)
        workers = [
            asyncio.create_task(self._worker(queue), name=f"bulkops-worker-{i}")
            for i in range(self._opts.concurrency)
        ]
        producer = asyncio.create_task(self._produce(queue))
        self._tasks = [producer, *workers]
        try:
            results = await asyncio.gather(*self._tasks, return_exceptions=True)
        finally:
            for task in self._tasks:
                task.cancel()
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result

    async def _produce(self, queue: asyncio.Queue[WorkItem | None]) -> None:
        store, run_id = self._store, self._run.run_id
        after = 0
        sent = 0
        try:
            while not self._stop.is_set():
                batch = await store.call(
                    store.fetch, run_id, states=("pending",), after_line=after, limit=500
                )
                if not batch:
                    break
                for item in batch:
                    await self._wait_for_window()
                    if self._stop.is_set():
                        break
                    await queue.put(item)
                    after = item.line
                    sent += 1
                    if sent == self._opts.canary:
                        await self._judge_canary(sent)
        finally:
            for _ in range(self._opts.concurrency):
                await queue.put(None)

    async def _worker(self, queue: asyncio.Queue[WorkItem | None]) -> None:
        failure: Exception | None = None
        while (item := await queue.get()) is not None:
            if self._stop.is_set():
                continue
            try:
                await self._process(item)
            except Held:
                continue  # not sent: it stays pending for the resume
            except RunAborted as exc:
                self._stop.abort(exc)
            except Exception as exc:  # the store failed (locked, disk full…): stop, keep draining
                failure = failure or exc  # so the producer is never left waiting on a full queue
                self._stop.set()
        if failure is not None:
            raise failure

    async def _wait_for_window(self) -> None:
        """Outside ``--window``: wait (waking for a stop) until it opens."""
        window = self._opts.window
        said = False
        while window is not None and not self._stop.is_set():
            wait = window.wait_s(datetime.now())
            if wait <= 0:
                self.progress.note = ""
                return
            self.progress.note = (
                f"waiting for the send window {window} (opens in {int(wait // 60)} min)"
            )
            if not said:  # also where no progress line shows (cron, a pipe)
                log.warning("outside --window %s: nothing is sent for %s", window, _mins(wait))
                said = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=min(wait, 30.0))

    async def _judge_canary(self, size: int) -> None:
        """Wait for the canary items' outcomes; stop the run unless every one succeeded."""
        self.progress.note = f"canary: waiting for the first {size} items"
        self._canary_size = size
        if self._pass_done >= size:
            self._canary_done.set()
        else:
            stopped = asyncio.ensure_future(self._stop.wait())
            try:
                await asyncio.wait(
                    {stopped, asyncio.ensure_future(self._canary_done.wait())},
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                stopped.cancel()
        self.progress.note = ""
        bad = self._pass_bad
        if bad and self._stop.reason is None:
            self._stop.abort(
                RunAborted(
                    f"canary: {bad} of the first {size} items did not succeed (see the reports); "
                    "nothing more was sent. Fix the cause, then the same command sends the rest "
                    "and failed.csv the rows that failed",
                    exit_code=EXIT_ABORTED,
                )
            )

    # ---- one item -----------------------------------------------------------------------

    async def _process(self, item: WorkItem) -> None:
        """Take one item from its request to its outcome."""
        await self._sender.process(item)

    def _complete(self, item: WorkItem, outcome: Outcome) -> None:
        state = outcome.state
        self._store.complete(
            self._run.run_id,
            item.line,
            state=state,
            http_status=outcome.http_status,
            error=outcome.error,
            secret=outcome.secret,
            device_id=item.device_id,
        )
        self.progress.counts[item.state] -= 1
        self.progress.counts[state] += 1
        item.state = state
        self._pass_done += 1
        if self._canary_size and self._pass_done >= self._canary_size:
            self._canary_done.set()
        if state in ("failed", "unknown"):
            self._pass_bad += 1
        limit = self._opts.max_failure_rate
        if (
            limit is not None
            and self._pass_done >= self._opts.failure_sample
            and self._pass_bad * 100.0 / self._pass_done > limit
            and self._stop.reason is None
        ):
            self._stop.abort(
                RunAborted(
                    f"{self._pass_bad} of the first {self._pass_done} outcomes of this pass were "
                    f"failed or unknown, above --max-failure-rate {limit:g}%; fix the cause, "
                    "then the same command sends the rest and failed.csv the rows that failed",
                    exit_code=EXIT_ABORTED,
                )
            )

    # ---- progress -------------------------------------------------------------------------

    async def _tick(self) -> None:
        noted, noted_at = -1, 0.0
        while True:
            self._emit()
            now = time.monotonic()
            if self.progress.requests != noted and now - noted_at >= 1.0:
                noted, noted_at = self.progress.requests, now
                self._store.note_requests(  # rides the next group commit
                    self._run.run_id,
                    requests=self._run.requests + self.progress.requests,
                    rate_limited=self._run.rate_limited + self.progress.rate_limited,
                )
            await asyncio.sleep(self._opts.progress_interval_s)

    def _emit(self) -> None:
        budget = self._client.budget
        p = self.progress
        p.requests = budget.stats.sent
        p.rate_limited = self._client.rate_limited
        p.window_left = budget.window_left()
        p.paused_s = budget.pause_left_s()
        p.eta_s = budget.eta_s(self._remaining())
        if self._opts.window is not None:  # sent only while it is open
            p.eta_s = self._opts.window.finish_s(datetime.now(), p.eta_s)
        if self._on_progress is not None:
            self._on_progress(p)


def _mins(seconds: float) -> str:
    """``45 min``, ``7 h 05 min``: how long a wait is, for a person."""
    m = int(seconds // 60) + 1
    return f"{m // 60} h {m % 60:02d} min" if m >= 60 else f"{m} min"
