"""How a run stops: its exit codes, and the one ``Stop`` the engine and its sender share.

A first Ctrl-C sets the ``Stop`` (requests in flight finish, nothing new leaves); an abort (the
token refused, the circuit breaker, the canary, the failure rate) sets it with a ``RunAborted``
reason, the first one winning, which the run raises once its workers have drained.
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

    def set(self) -> None:
        """Stop without a reason to abort (Ctrl-C, a storage failure)."""
        self._event.set()

    def is_set(self) -> bool:
        """True once the run is stopping."""
        return self._event.is_set()

    async def wait(self) -> None:
        """Return once the run is stopping."""
        await self._event.wait()

    def abort(self, reason: RunAborted) -> None:
        """Stop with ``reason``, unless an earlier abort already gave one."""
        self.reason = self.reason or reason
        self._event.set()
