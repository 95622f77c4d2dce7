"""plan.csv: every row of a run and what the run will do with it, for review before it sends."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import orjson

from bulkops.report import neutralise, neutralised_sql
from bulkops.store import Store

__all__ = ["PLAN_COLUMNS", "refresh_plan_csv", "write_plan_csv"]

PLAN_COLUMNS = ("line", "device_id", "serial_number", "action", "decision", "reason", "changes")


def refresh_plan_csv(store: Store, run_id: str, path: Path, *, keep: bool) -> None:
    """Write plan.csv, unless a resume that decided nothing new finds the one it wrote intact.

    Rewriting a million rows would cost seconds before the first request (results.csv has the
    outcomes). The file is kept only if it is exactly the one this run wrote (path, size and
    modification time noted in the database): not another run's sharing ``--out``, not one
    replaced by hand.
    """
    key = f"plan_csv:{run_id}"
    stamp = _stamp(path)
    if keep and stamp is not None and store.meta(key) == stamp:
        return
    write_plan_csv(store, run_id, path)
    store.set_meta(key, _stamp(path) or "")


def _stamp(path: Path) -> str | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def write_plan_csv(store: Store, run_id: str, path: Path) -> None:
    """Every row and what the run will do with it, in manifest order, for review (0600).

    A million rows must not cost seconds before the first request: SQLite builds each cell (the
    decision, spreadsheet-safe text), and a row that needs no CSV quoting, the usual case, is
    joined with commas; the csv module writes only the others.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    part = path.with_name(path.name + ".part")  # renamed over plan.csv once whole
    cursor = store._conn.execute(
        "SELECT line, coalesce(device_id, ''), "  # noqa: S608 (constants only)
        + neutralised_sql("serial_number")
        + ", action, CASE WHEN state IN ('pending', 'sending') THEN 'send'"
        " WHEN state = 'skipped' THEN 'skip' ELSE 'done: ' || state END,"
        " CASE WHEN state = 'skipped' THEN "
        + neutralised_sql("error")
        + " ELSE '' END, preview FROM items WHERE run_id = ? ORDER BY line",
        (run_id,),
    )
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)  # its line ends are \r\n, as below
        writer.writerow(PLAN_COLUMNS)
        plain: list[str] = []

        def flush() -> None:
            if plain:
                fh.write("\r\n".join(plain) + "\r\n")
                plain.clear()

        for line, device_id, serial, action, decision, reason, preview in cursor:
            changes = ""
            if preview:  # what an update changes: "field: before → after; …"
                changes = neutralise(
                    "; ".join(f"{k}: {v}" for k, v in orjson.loads(preview).items())
                )
            text = f"{line},{device_id},{serial},{action},{decision},{reason},{changes}"
            if text.count(",") == 6 and '"' not in text and "\n" not in text and "\r" not in text:
                plain.append(text)
                if len(plain) == 10_000:
                    flush()
            else:  # a comma, quote or line break inside a cell: csv quotes it
                flush()
                writer.writerow((line, device_id, serial, action, decision, reason, changes))
        flush()
    os.replace(part, path)
