"""A plan's throwaway database: ``bulkops plan`` keeps nothing, so it records nothing for good."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bulkops.store._db import sqlite_errors
from bulkops.store._store import Store

__all__ = ["scratch_store"]

_HOLD = ".held"  # flocked while its plan runs; the OS drops it when the process dies
_STALE_AFTER_S = 60.0  # younger files may belong to a plan that has not taken its hold yet
_LEFTOVERS = ("", "-journal", ".lock", _HOLD)


@contextmanager
def scratch_store(beside: Path) -> Iterator[Store]:
    """A store in a new file beside ``beside`` (same disk, 0600), deleted on the way out.

    The plan's rows never touch the real database: no million-row delete afterwards, no growth
    of its file, no fsync, and no wait for a run that holds the real database's lock. A plan
    killed before it could clean up (SIGTERM, kill -9) leaves its file behind; the next plan
    beside the same database removes it.
    """
    prefix = f".{beside.name}.plan-"
    made = [p for p in (beside.parent, *beside.parent.parents) if not p.exists()]
    with sqlite_errors("create the plan's scratch database beside it", beside):
        beside.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _sweep(beside.parent, prefix)
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=".db", dir=beside.parent)
        os.close(fd)
        hold = os.open(name + _HOLD, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(hold, fcntl.LOCK_EX)
    try:
        store = Store(name, scratch=True)
        store.origin = beside
        try:
            yield store
        finally:
            store.close()
    finally:
        for leftover in _LEFTOVERS:
            Path(name + leftover).unlink(missing_ok=True)
        os.close(hold)
        for folder in made:  # deepest first: a plan of a --db not yet made leaves no folder
            with contextlib.suppress(OSError):
                folder.rmdir()


def _sweep(folder: Path, prefix: str) -> None:
    """Remove scratch databases of plans that died: no process holds them, and they are old."""
    for old in folder.glob(prefix + "*.db"):
        try:
            if time.time() - old.stat().st_mtime < _STALE_AFTER_S:
                continue
            fd = os.open(str(old) + _HOLD, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)  # a plan in progress
            continue
        try:
            for leftover in _LEFTOVERS:
                Path(str(old) + leftover).unlink(missing_ok=True)
        finally:
            os.close(fd)
