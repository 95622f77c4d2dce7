"""Leave nothing behind: a database a command created and then never used is deleted again.

``bulkops run`` opens its database before the manifest's last row is validated (the rows stream
into it). When the manifest is refused, or the run is declined before any write, the file it
created holds no run; keeping it would leave an empty ``bulkops.db`` the user never asked for.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bulkops.errors import ConfigError
from bulkops.store._lock import RunLock

__all__ = ["discard_if_unused"]

_BESIDE = ("-wal", "-shm", "-journal")


def discard_if_unused(path: Path) -> bool:
    """Delete the (closed) database at ``path`` if it holds no run; whether it was deleted.

    Kept when anything may be using it: another bulkops holds its lock, a writer is in a
    transaction, or it cannot be read.
    """
    lock = RunLock(path)
    try:
        lock.acquire()
    except ConfigError:
        return False  # a sender has it
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=0.0)
        try:
            conn.execute("BEGIN IMMEDIATE")  # no other writer from here to the unlink
            (runs,) = conn.execute("SELECT count(*) FROM runs").fetchone()
            if runs:
                return False
            path.unlink(missing_ok=True)
        except sqlite3.Error:
            return False
        finally:
            conn.close()
        for suffix in _BESIDE:
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        lock.path.unlink(missing_ok=True)
        return True
    finally:
        lock.release()
