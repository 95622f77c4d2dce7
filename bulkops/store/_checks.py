"""Cross-row checks at ingest: repeated rows and conflicting actions for one device, in SQL.

They run inside the ingest transaction, so a manifest that fails them leaves nothing behind, and
they need no per-row memory in Python: one grouping finds whether any (device, action) repeats, and
only devices named with more than one action are looked at for conflicts.
"""

from __future__ import annotations

import sqlite3

from bulkops.actions import ACTIONS
from bulkops.errors import BadRows, ManifestError

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


def _repeats(conn: sqlite3.Connection, run_id: str) -> list[tuple[int, int, bool, str, str]]:
    """Rows repeating an earlier (device, action) pair, by line: (line, first line, the same
    row (parameters and serial number), device, action)."""
    any_dup = conn.execute(
        "SELECT 1 FROM items WHERE run_id = ?"
        " GROUP BY device_id, iif(device_id IS NULL, serial_number, NULL), action"
        " HAVING count(*) > 1 LIMIT 1",
        (run_id,),
    ).fetchone()
    if any_dup is None:
        return []  # the common case: one cheap grouping, no sort of every row by line
    rows = conn.execute(
        "SELECT line, first_line, params = first_params AND serial_number IS first_serial,"
        " ref, action FROM ("
        f" SELECT line, params, serial_number, {_REF} AS ref, action,"
        "  first_value(line) OVER w AS first_line,"
        "  first_value(params) OVER w AS first_params,"
        "  first_value(serial_number) OVER w AS first_serial,"
        "  row_number() OVER w AS n"
        " FROM items WHERE run_id = ?"
        f" WINDOW w AS (PARTITION BY {_REF}, action ORDER BY line))"
        " WHERE n > 1 ORDER BY line",
        (run_id,),
    )
    return [(line, first, bool(same), ref, action) for line, first, same, ref, action in rows]


def _conflicts(conn: sqlite3.Connection, run_id: str) -> list[tuple[int, int, str, str, str, str]]:
    """Rows whose action conflicts with an earlier action for the same device, by line:
    (line, the earlier row's line, device, its action, this action, why)."""
    found: list[tuple[int, int, str, str, str, str]] = []
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
                if why:
                    found.append((line, first, ref, earlier, action, why))
                    break
    return sorted(found)


def check_cross_rows(
    conn: sqlite3.Connection, run_id: str, path: str, total: int, actions: set[str]
) -> int:
    """Skip rows that repeat an earlier row exactly; raise ``ManifestError`` for a row that
    repeats a device's action with other parameters or conflicts with another action for it
    (:class:`BadRows` for several, by line). Returns the rows skipped.

    ``actions`` is the set of actions in the manifest: when no two of them conflict, the
    per-device conflict query is skipped (most bulk jobs have one action).
    """
    if total == 0:
        raise ManifestError("the manifest has no rows", path=path, hint="add at least one device")
    repeats = _repeats(conn, run_id)
    may_clash = any(conflict_reason(a, b) for a in actions for b in actions)
    errors = [
        ManifestError(
            f"conflicts with line {first}: {action} for {_device(ref)} with other parameters "
            "or another serial number",
            path=path,
            line=line,
            hint="keep one row per device and action",
        )
        for line, first, same, ref, action in repeats
        if not same
    ]
    errors += [
        ManifestError(
            f"conflicts with line {first}: {_device(ref)} has both {a} and {b}; {why}",
            path=path,
            line=line,
            hint="split them into two jobs or drop one row",
        )
        for line, first, ref, a, b, why in (_conflicts(conn, run_id) if may_clash else ())
    ]
    if errors:
        errors.sort(key=lambda e: e.line or 0)
        if len(errors) == 1:
            raise errors[0]
        raise BadRows(errors[: BadRows.LISTED], count=len(errors))
    # The same row twice (a serial pasted twice): sent once, the copy skipped as a duplicate.
    conn.executemany(
        "UPDATE items SET state = 'skipped', error = ? WHERE run_id = ? AND line = ?",
        [
            (f"duplicate: line {first} has the same {action} for {_device(ref)}", run_id, line)
            for line, first, _, ref, action in repeats
        ],
    )
    return len(repeats)
