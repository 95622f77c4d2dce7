"""Cross-row checks at ingest: duplicate rows and conflicting actions for one device, in SQL.

They run inside the ingest transaction, so a manifest that fails them leaves nothing behind, and
they need no per-row memory in Python: one grouping finds whether any (device, action) repeats, and
only devices named with more than one action are looked at for conflicts.
"""

from __future__ import annotations

import sqlite3

from bulkops.actions import ACTIONS
from bulkops.errors import ManifestError

__all__ = ["check_cross_rows", "conflict_reason"]

# The device a row names, as Item.device_ref spells it: its id when given, else its serial.
_REF = "CASE WHEN device_id IS NOT NULL THEN 'id:' || device_id ELSE 'sn:' || serial_number END"


def conflict_reason(a: str, b: str) -> str | None:
    """Why actions ``a`` and ``b`` must not meet on one device, or ``None`` when they may."""
    if a == b:
        return None
    for name in (a, b):
        if ACTIONS[name].exclusive:
            return f"{name} must be the only action for a device"
    if b in ACTIONS[a].conflicts or a in ACTIONS[b].conflicts:
        return f"{a} and {b} undo each other"
    return None


def _device(ref: str) -> str:
    kind, _, value = ref.partition(":")
    return f"serial number {value}" if kind == "sn" else f"device {value}"


def _first_duplicate(
    conn: sqlite3.Connection, run_id: str
) -> tuple[int, int, bool, str, str] | None:
    """The earliest row repeating a (device, action) pair: (line, first line, same params…)."""
    any_dup = conn.execute(
        "SELECT 1 FROM items WHERE run_id = ?"
        " GROUP BY device_id, iif(device_id IS NULL, serial_number, NULL), action"
        " HAVING count(*) > 1 LIMIT 1",
        (run_id,),
    ).fetchone()
    if any_dup is None:
        return None  # the common case: one cheap grouping, no sort of every row by line
    row = conn.execute(
        "SELECT line, first_line, params = first_params, ref, action FROM ("
        f" SELECT line, params, {_REF} AS ref, action,"
        "  first_value(line) OVER w AS first_line,"
        "  first_value(params) OVER w AS first_params,"
        "  row_number() OVER w AS n"
        " FROM items WHERE run_id = ?"
        f" WINDOW w AS (PARTITION BY {_REF}, action ORDER BY line))"
        " WHERE n > 1 ORDER BY line LIMIT 1",
        (run_id,),
    ).fetchone()
    return None if row is None else (row[0], row[1], bool(row[2]), row[3], row[4])


def _first_conflict(
    conn: sqlite3.Connection, run_id: str
) -> tuple[int, int, str, str, str, str] | None:
    """The earliest row whose action conflicts with an earlier action for the same device."""
    best: tuple[int, int, str, str, str, str] | None = None
    rows = conn.execute(
        f"SELECT {_REF} AS ref, group_concat(action || ' ' || line, ',') FROM items"
        " WHERE run_id = ? GROUP BY ref HAVING count(DISTINCT action) > 1",
        (run_id,),
    )
    for ref, packed in rows:
        seen = sorted(
            (int(line), action) for action, line in (p.split(" ") for p in packed.split(","))
        )
        for i, (line, action) in enumerate(seen):
            for first, earlier in seen[:i]:
                why = conflict_reason(earlier, action)
                if why and (best is None or line < best[0]):
                    best = (line, first, ref, earlier, action, why)
    return best


def check_cross_rows(
    conn: sqlite3.Connection, run_id: str, path: str, total: int, actions: set[str]
) -> None:
    """Raise ``ManifestError`` at the first duplicate or conflicting row (by line).

    ``actions`` is the set of actions in the manifest: when no two of them conflict, the
    per-device conflict query is skipped (most bulk jobs have one action).
    """
    if total == 0:
        raise ManifestError("the manifest has no rows", path=path, hint="add at least one device")
    dup = _first_duplicate(conn, run_id)
    may_clash = any(conflict_reason(a, b) for a in actions for b in actions)
    clash = _first_conflict(conn, run_id) if may_clash else None
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
        line, first, ref, a, b, why = clash
        raise ManifestError(
            f"conflicts with line {first}: {_device(ref)} has both {a} and {b}; {why}",
            path=path,
            line=line,
            hint="split them into two jobs or drop one row",
        )
