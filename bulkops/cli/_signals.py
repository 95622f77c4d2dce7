"""The signals that stop a run in order: Ctrl-C, ``kill`` (SIGTERM), the Terminal window closing.

The first one stops the run after the requests in flight (they are answered and recorded); only a
second Ctrl-C stops it at once. Before the engine starts, while the rows are resolved, only reads
are in flight and nothing needs finishing: the first signal stops the command at once. A closing
window sends SIGHUP twice within a millisecond (the shell, then the kernel), so a repeated SIGHUP
or SIGTERM changes nothing. Once the terminal has hung up, what the run still prints goes to
``/dev/null`` rather than failing on a dead tty. Under ``nohup`` (SIGHUP ignored) the run keeps
going, as the user asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from typing import TYPE_CHECKING

from bulkops.cli._common import err

if TYPE_CHECKING:
    from bulkops.engine import Engine

__all__ = ["StopSignals"]


def say(text: str) -> None:
    """A note on stderr that may find no terminal left."""
    with contextlib.suppress(OSError):
        err.print(text)


class StopSignals:
    """While entered, SIGINT, SIGTERM and SIGHUP stop the engine ``attach`` hands over."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, grace_s: float) -> None:
        self._loop = loop
        self._grace_s = grace_s
        self._engine: Engine | None = None
        self._stopping = False
        self._task: asyncio.Task[object] | None = None
        self.cut_short = False  # stopped before the engine started: the task was cancelled
        self._ttys = [fd for fd in (1, 2) if os.isatty(fd)]
        self._signals = [signal.SIGINT, signal.SIGTERM]
        if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:  # nohup: keep ignoring it
            self._signals.append(signal.SIGHUP)

    def __enter__(self) -> StopSignals:
        self._task = asyncio.current_task(self._loop)
        for sig in self._signals:
            self._loop.add_signal_handler(sig, self._on_signal, sig)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig in self._signals:
            self._loop.remove_signal_handler(sig)

    def attach(self, engine: Engine) -> None:
        """The engine, once rows are resolved; a signal that came before stops it at once."""
        self._engine = engine
        if self._stopping:  # while rows were resolved: take no item at all
            engine.request_stop()

    def _on_signal(self, sig: signal.Signals) -> None:
        if sig == signal.SIGHUP:
            self._hang_up()
        engine = self._engine
        if self._stopping:
            if sig == signal.SIGINT and engine is not None:
                engine.abort_now()  # Ctrl-C twice: now
            return
        self._stopping = True
        if engine is None:  # still resolving rows (reads only): nothing to finish, stop now
            if self._task is not None:
                self.cut_short = True
                self._task.cancel()
            return
        engine.request_stop()
        self._loop.call_later(self._grace_s, engine.abort_now)
        again = " (Ctrl-C again to stop at once)" if sig == signal.SIGINT else ""
        say(f"stopping after the requests in flight{again}…")

    def _hang_up(self) -> None:
        """The terminal is gone: stdout and stderr that were on it now write to /dev/null."""
        if not self._ttys:
            return
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            for fd in self._ttys:
                os.dup2(null, fd)
        finally:
            os.close(null)
        self._ttys = []
