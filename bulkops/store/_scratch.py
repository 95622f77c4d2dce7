"""A plan's throwaway database: ``bulkops plan`` keeps nothing, so it records nothing for good."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bulkops.store._db import sqlite_errors
from bulkops.store._store import Store

__all__ = ["scratch_store"]


@contextmanager
def scratch_store(beside: Path) -> Iterator[Store]:
    """A store in a new file beside ``beside`` (same disk, 0600), deleted on the way out.

    The plan's rows never touch the real database: no million-row delete afterwards, no growth
    of its file, no fsync, and no wait for a run that holds the real database's lock.
    """
    with sqlite_errors("create the plan's scratch database beside it", beside):
        beside.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, name = tempfile.mkstemp(prefix=f".{beside.name}.plan-", suffix=".db", dir=beside.parent)
        os.close(fd)
    try:
        store = Store(name, scratch=True)
        try:
            yield store
        finally:
            store.close()
    finally:
        for leftover in ("", "-journal", ".lock"):
            Path(name + leftover).unlink(missing_ok=True)
