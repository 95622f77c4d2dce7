"""What every SQLite file of ours needs on opening, shared by the store and the budget ledger."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sized

__all__ = ["enable_wal", "marks"]


def enable_wal(con: sqlite3.Connection, *, timeout_s: float = 5.0) -> None:
    """Switch to WAL, waiting out another process doing the same on a new file.

    Two processes opening a fresh database at once can get "database is locked" from the
    journal-mode switch without SQLite's busy handler ever waiting, so we wait here.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            con.execute("PRAGMA journal_mode = WAL").fetchone()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def marks(values: Sized) -> str:
    """``?, ?, ?``: one placeholder per value (the values are bound, never formatted in)."""
    return ", ".join("?" * len(values))
