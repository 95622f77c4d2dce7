"""How a run stops: its exit codes, and the one ``Stop`` the engine and its sender share.

A first Ctrl-C sets the ``Stop`` (requests in flight finish, nothing new leaves); an abort (the
token refused, the circuit breaker, the canary, the failure rate) sets it with a ``RunAborted``
reason, the first one winning, which the run raises once its workers have drained.

A worker waiting for the budget (the window used up, a 429 pause: up to an hour) has nothing in
flight, so the stop does not wait for it: it is withdrawn at once, and its item stays pending.
"""

from __future__ import annotations

import asyncio

from bulkops.errors import RunAborted

__all__ = ["EXIT_ABORTED", "EXIT_FAILED", "EXIT_INTERRUPTED", "Held", "Stop"]

EXIT_FAILED = 1
EXIT_ABORTED = 3
EXIT_INTERRUPTED = 130


class Held(Exception):  # a signal inside the engine, never raised to callers
    """The run is stopping: this item was not sent and stays pending."""


class Stop:
    """Set once the run takes no new items; ``reason`` says why when it aborted."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.reason: RunAborted | None = None
        self._waiting: set[asyncio.Task[object]] = set()  # for a permit, nothing in flight
        self._withdrawn: set[asyncio.Task[object]] = set()

    def set(self) -> None:
        """Stop without a reason to abort (Ctrl-C, a storage failure)."""
        self._event.set()
        self._withdraw()

    def wait_for_permit(self) -> asyncio.Task[object]:
        """The current task waits for a budget permit with nothing in flight: a stop withdraws
        it (see :meth:`withdrew`). Raises the stop's reason, or ``Held``, once stopping."""
        if self._event.is_set():
            raise self.reason or Held()
        task = asyncio.current_task()
        assert task is not None
        self._waiting.add(task)
        return task

    def permit_granted(self, task: asyncio.Task[object]) -> None:
        """The task got its permit: from here its request may leave, and a stop lets it."""
        self._waiting.discard(task)

    def withdrew(self, task: asyncio.Task[object]) -> bool:
        """Whether a ``CancelledError`` in ``task`` is this stop's: then it is consumed."""
        if task not in self._withdrawn:
            return False
        self._withdrawn.discard(task)
        task.uncancel()
        return True

    def _withdraw(self) -> None:
        for task in self._waiting:
            task.cancel()
        self._withdrawn |= self._waiting
        self._waiting.clear()

    def is_set(self) -> bool:
        """True once the run is stopping."""
        return self._event.is_set()

    async def wait(self) -> None:
        """Return once the run is stopping."""
        await self._event.wait()

    def abort(self, reason: RunAborted) -> None:
        """Stop with ``reason``, unless an earlier abort already gave one."""
        self.reason = self.reason or reason
        self.set()
