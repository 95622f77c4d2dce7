"""The audit log: who ran what, where, with which confirmation, and how it ended.

One JSON Lines file per checkpoint database, beside it (``bulkops.db.audit.jsonl``), created
0600 and only ever appended to: each record is one ``write`` on a descriptor opened with
``O_APPEND`` and synced, so records of concurrent processes never interleave and a crash loses
at most the record being written.  Two records per pass of a run:

- ``start``, once the plan is approved and before the first write: operator (OS user, host,
  pid), tenant, run id, manifest path and SHA-256, rows per action, destructive sends and how
  they were confirmed (``--yes`` or typed), the requests the run had spent before;
- ``end``: outcome counts, requests spent (in all and in this pass), 429s, why it stopped, the
  exit code.

A ``start`` with no ``end`` is a pass that was killed.  No record holds a token or a PIN.
"""

from __future__ import annotations

import getpass
import os
import socket
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from bulkops._version import __version__
from bulkops.errors import ConfigError
from bulkops.redact import redact

if TYPE_CHECKING:
    from bulkops.engine import RunOptions
    from bulkops.job import JobResult
    from bulkops.planner import Plan
    from bulkops.store import RunInfo

__all__ = ["RunAudit", "audit_path", "operator", "read_audit", "write_audit"]


def audit_path(db_path: Path) -> Path:
    """The audit log of a checkpoint database: ``<db>.audit.jsonl`` beside it."""
    return db_path.with_name(db_path.name + ".audit.jsonl")


def operator() -> dict[str, Any]:
    """Who is running this: OS user, host name, process id."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name in the environment and none in the password database
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return {"user": user, "host": socket.gethostname(), "pid": os.getpid()}


def write_audit(path: Path, event: str, record: Mapping[str, Any]) -> None:
    """Append one record (``event`` plus ``record``, timestamped) to the audit log at ``path``."""
    line = orjson.dumps(
        {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "event": event,
            "bulkops": __version__,
            **operator(),
            **record,
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)  # made by someone else with a loose umask: ours alone now
        os.write(fd, line + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)


def read_audit(path: Path) -> Iterator[dict[str, Any]]:
    """The records of an audit log, oldest first; a torn last line (a crash) is skipped."""
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no audit log (it is written beside the --db of a run)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    with fh:
        for raw in fh:
            try:
                record = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if isinstance(record, dict):
                yield record


class RunAudit:
    """The two records of one pass of a run: ``start`` when approved, ``end`` when it ends."""

    def __init__(self, path: Path, *, command: str, run: RunInfo) -> None:
        self.path = path
        self._command = command
        self._run = run
        self._started = False

    def started(self, plan: Plan, *, options: RunOptions, confirmed_by: str | None) -> None:
        """Record the approved plan, before the first write."""
        run = self._run
        destructive = plan.destructive
        write_audit(
            self.path,
            "start",
            {
                "command": self._command,
                "run_id": run.run_id,
                "tenant": run.tenant,
                "manifest": run.manifest_path,
                "manifest_sha256": run.manifest_sha256,
                "rows": run.total,
                "actions": dict(sorted(plan.actions.items())),
                "to_send": dict(sorted(plan.sends.items())),
                "destructive": destructive,
                "confirmed_by": confirmed_by if destructive else None,
                "canary": options.canary or None,
                "resumed": plan.resumed,
                "requests_before": run.requests,
            },
        )
        self._started = True

    def ended(self, result: JobResult | None, *, exit_code: int, error: str | None = None) -> None:
        """Record how the pass ended (nothing when it was refused before it started)."""
        if not self._started:
            return
        summary = result.summary if result is not None else None
        record: dict[str, Any] = {"command": self._command, "run_id": self._run.run_id}
        if summary is not None:
            record |= {
                "outcomes": summary.outcomes,
                "requests": summary.requests,
                "requests_this_pass": summary.requests - self._run.requests,
                "rate_limited_429": summary.rate_limited,
            }
        stopped = error or (result.stopped if result is not None else None)
        if stopped is not None:
            stopped = redact(stopped)
        record |= {"stopped": stopped, "exit_code": exit_code}
        write_audit(self.path, "end", record)
