"""Opening the checkpoint database: file modes, pragmas, schema, and the sqlite3 error boundary."""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from bulkops._sqlite import enable_wal
from bulkops.errors import CheckpointError

__all__ = ["SCHEMA_VERSION", "connect", "sqlite_errors"]

SCHEMA_VERSION = 2  # 2: items lost device_ref and params_digest (derived in SQL)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    manifest_path TEXT NOT NULL,
    manifest_sha256 TEXT NOT NULL,
    manifest_format TEXT NOT NULL,
    tenant TEXT NOT NULL,
    options TEXT NOT NULL,
    status TEXT NOT NULL,
    total INTEGER NOT NULL DEFAULT 0,
    started_at REAL,
    finished_at REAL,
    requests INTEGER NOT NULL DEFAULT 0,
    rate_limited INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS items (
    run_id TEXT NOT NULL,
    line INTEGER NOT NULL,
    device_id TEXT,
    serial_number TEXT,
    action TEXT NOT NULL,
    params BLOB NOT NULL,  -- JSON with sorted keys: equal parameters are equal bytes
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    http_status INTEGER,
    error TEXT,
    first_sent_at REAL,
    sent_at REAL,
    done_at REAL,
    secret TEXT,
    req_method TEXT,
    req_route TEXT,
    req_device TEXT,
    req_body BLOB,
    preview TEXT,
    PRIMARY KEY (run_id, line)
) WITHOUT ROWID;

"""


READ_ONLY = "the file or its folder is read-only; fix its permissions or use another --db"
DISK_FULL = "the disk is full or failing; free space and resume"


@contextmanager
def sqlite_errors(doing: str, path: Path | str) -> Iterator[None]:
    """Translate sqlite3 and OS errors into one ``CheckpointError`` line."""
    try:
        yield
    except sqlite3.Error as exc:
        text = str(exc)
        if "locked" in text or "busy" in text:
            hint = "another bulkops process is using it; wait for it or use another --db"
        elif "readonly" in text or "read-only" in text or "unable to open" in text:
            hint = READ_ONLY  # "unable to open": it could not create -wal/-shm in the folder
        elif "full" in text or "disk I/O" in text:  # a write past RLIMIT_FSIZE is an I/O error
            hint = DISK_FULL
        elif "malformed" in text or "not a database" in text:
            hint = "the file is damaged or not a bulkops database"
        else:
            hint = "check the file and resume"
        raise CheckpointError(f"{path}: cannot {doing}: {text} ({hint})") from None
    except OSError as exc:
        why = exc.strerror or str(exc)
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            why += f" ({READ_ONLY})"
        elif exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            why += f" ({DISK_FULL})"
        raise CheckpointError(f"{path}: cannot {doing}: {why}") from None


def _private(path: str, *, create: bool) -> None:
    """Make ``path`` ours alone (0600), creating it so if asked: a file made earlier under a
    loose umask keeps its mode otherwise, and the database will hold unlock PINs."""
    fd = os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o600)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def connect(
    path: Path | str, *, readonly: bool = False, scratch: bool = False, immutable: bool = False
) -> sqlite3.Connection:
    """Open (creating 0600 with its -wal/-shm) the checkpoint database with durable pragmas.

    A ``scratch`` database (a plan's, deleted once the plan is shown) is not durable: no WAL, no
    fsync, no zeroing of deleted pages. An ``immutable`` one is read as a plain file, creating
    nothing beside it: only for a database nobody writes, whose write-ahead log is empty.
    """
    path = Path(path)
    with sqlite_errors("open the checkpoint database", path):
        if not readonly:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            _private(str(path), create=True)
            for beside in ("-wal", "-shm"):  # SQLite gives new ones the database's mode
                with contextlib.suppress(FileNotFoundError):
                    _private(f"{path}{beside}", create=False)
        # A URI: '#', '?' and '%' in a folder's name ("jobs #1/") must be escaped, or SQLite
        # opens another file (two --db folders would share one database).
        where = quote(str(path), safe="/")
        uri = f"file:{where}?mode=ro" if readonly else f"file:{where}"
        if readonly and immutable:
            uri += "&immutable=1"
        old = os.umask(0o077)  # -wal and -shm are created by SQLite later; keep them 0600 too
        try:
            conn = sqlite3.connect(
                uri, uri=True, isolation_level=None, check_same_thread=False, timeout=5.0
            )
            conn.execute("PRAGMA busy_timeout = 5000")
            # 8 MiB of page cache, and sorts (the ingest checks' grouping) spill to a temporary
            # file past it: a 1,000,000-row plan peaks at ~70 MB less than with 32 MiB and sorts
            # in memory, and is no slower (benchmarks/README.md, "1M-row plan").
            conn.execute("PRAGMA cache_size = -8000")
            # A PIN cleared once secrets.csv holds it must not linger in a free page: zero
            # what is deleted (some SQLite builds do by default, not all).
            conn.execute(f"PRAGMA secure_delete = {'OFF' if scratch else 'ON'}")
            if scratch:
                conn.execute("PRAGMA journal_mode = MEMORY")  # ROLLBACK still works
                conn.execute("PRAGMA synchronous = OFF")
            elif not readonly:
                enable_wal(conn)
                conn.execute("PRAGMA synchronous = FULL")
                if sys.platform == "darwin":
                    conn.execute("PRAGMA fullfsync = ON")
            if not readonly:
                conn.executescript(_SCHEMA)
                conn.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        finally:
            os.umask(old)
    if row is not None and row[0] != str(SCHEMA_VERSION):
        conn.close()
        raise CheckpointError(
            f"{path}: written by another version of bulkops (database schema {row[0]}, this"
            f" version uses {SCHEMA_VERSION}); finish its runs with that version"
            " or use another --db"
        )
    return conn
