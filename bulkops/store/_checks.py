"""Cross-row checks at ingest: duplicate rows and conflicting actions for one device, in SQL.

They run inside the ingest transaction, so a manifest that fails them leaves nothing behind, and
they need no per-row memory in Python: a million-row manifest is checked by the database's index.
"""

from __future__ import annotations

import sqlite3

from bulkops.actions import ACTIONS
from bulkops.errors import ManifestError

__all__ = ["check_cross_rows", "conflicting_pairs"]


def conflicting_pairs() -> list[tuple[str, str]]:
    """Every ordered pair of different actions that must not meet on one device."""
    pairs = []
    for a in ACTIONS.values():
        for b in ACTIONS.values():
            if a.name != b.name and (
                a.exclusive or b.exclusive or b.name in a.conflicts or a.name in b.conflicts
            ):
                pairs.append((a.name, b.name))
    return pairs


def _device(ref: str) -> str:
    kind, _, value = ref.partition(":")
    return f"serial number {value}" if kind == "sn" else f"device {value}"


def check_cross_rows(conn: sqlite3.Connection, run_id: str, path: str, total: int) -> None:
    """Raise ``ManifestError`` at the first duplicate or conflicting row (by line)."""
    if total == 0:
        raise ManifestError("the manifest has no rows", path=path, hint="add at least one device")
    dup = conn.execute(
        "SELECT b.line, a.line, a.params_digest = b.params_digest, a.device_ref, a.action"
        " FROM items a JOIN items b ON b.run_id = a.run_id AND b.device_ref = a.device_ref"
        " AND b.action = a.action AND b.line > a.line"
        " WHERE a.run_id = ? ORDER BY b.line LIMIT 1",
        (run_id,),
    ).fetchone()
    pairs = conflicting_pairs()
    values = ",".join("(?,?)" for _ in pairs)
    clash = conn.execute(
        f"WITH pairs(x, y) AS (VALUES {values})"
        " SELECT b.line, a.line, a.device_ref, a.action, b.action"
        " FROM items a JOIN items b ON b.run_id = a.run_id AND b.device_ref = a.device_ref"
        " AND b.line > a.line JOIN pairs p ON p.x = a.action AND p.y = b.action"
        " WHERE a.run_id = ? ORDER BY b.line LIMIT 1",
        (*[v for pair in pairs for v in pair], run_id),
    ).fetchone()
    if dup and (not clash or dup[0] <= clash[0]):
        line, first, same, ref, action = dup
        if same:
            raise ManifestError(
                f"duplicate of line {first}: same {_device(ref)} and action {action}",
                path=path,
                line=line,
                hint="delete one of the two rows",
            )
        raise ManifestError(
            f"conflicts with line {first}: {action} for {_device(ref)} with different parameters",
            path=path,
            line=line,
            hint="keep one row per device and action",
        )
    if clash:
        line, first, ref, a, b = clash
        excl = next((n for n in (a, b) if ACTIONS[n].exclusive), None)
        why = (
            f"{excl} must be the only action for a device"
            if excl
            else f"{a} and {b} undo each other"
        )
        raise ManifestError(
            f"conflicts with line {first}: {_device(ref)} has both {a} and {b}; {why}",
            path=path,
            line=line,
            hint="split them into two jobs or drop one row",
        )
