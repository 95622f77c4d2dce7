"""One sending process per checkpoint database.

Two processes working the same run would both find its items pending and send them twice (and
each would "reconcile" the other's requests in flight).  A sender holds an exclusive, advisory
lock on ``<db>.lock`` for as long as it may send; the operating system drops it when the process
dies, even by ``kill -9``, so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from bulkops.errors import ConfigError

__all__ = ["RunLock"]


class RunLock:
    """An exclusive lock on a checkpoint database for the process that sends."""

    def __init__(self, db_path: Path | str) -> None:
        # resolved: a run working through a symlink to the database takes the same lock
        self.path = Path(str(Path(db_path).resolve()) + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or say in one line who holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise ConfigError(
                f"{self.path.with_suffix('')} is in use by bulkops ({holder}); wait for that run "
                "to finish or stop it, or use another --db (nothing was sent)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}".encode())
        self._fd = fd

    def in_use(self) -> bool:
        """Whether a process holds the lock now (probed without taking it for more than a
        moment, and without writing to the lock file)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # drops the probe's shared lock, if it got one
        return False

    def release(self) -> None:
        """Let the next sender in (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None
