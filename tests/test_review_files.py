"""The files a reviewer reads: plan.csv cell by cell, and the rate summary.json reports."""

from __future__ import annotations

import csv
import stat
from pathlib import Path

import orjson

from bulkops._plan_csv import PLAN_COLUMNS, write_plan_csv
from bulkops.report import neutralise
from bulkops.store import Store

ROWS = [  # line, device_id, serial_number, action, state, error, preview
    (2, "id-2", None, "blankpush", "pending", None, None),
    (3, None, "=C02", "lock", "skipped", 'not found: "C02", check the serial', None),
    (4, "id-4", None, "update_device", "pending", None, {"asset_tag": "new: A,B"}),
    (5, "id-5", "C05", "restart", "succeeded", "not shown for a done row", None),
    (6, None, "+1", "erase", "skipped", "two\nlines", None),
    (7, "id-7", None, "update_device", "sending", None, {"note": "@x", "tag": 'change: "a" → b'}),
    (8, "id-8", "-C08", "lock", "skipped", "-starts with a minus", None),
    (9, "id-9", "C09", "blankpush", "failed", "HTTP 500", None),
    (10, "id-10", None, "lock", "skipped", '"quoted" first', None),
]


def expected(row: tuple[object, ...]) -> list[str]:
    """The row as the reviewer reads it: the rules of plan.csv, written plainly."""
    line, device_id, serial, action, state, error, preview = row
    decision = {"pending": "send", "sending": "send", "skipped": "skip"}.get(
        str(state), f"done: {state}"
    )
    changes = "; ".join(f"{k}: {v}" for k, v in preview.items()) if preview else ""  # type: ignore[attr-defined]
    return [
        str(line),
        str(device_id or ""),
        neutralise(serial),
        str(action),
        decision,
        neutralise(error) if state == "skipped" else "",
        neutralise(changes),
    ]


def test_every_row_reads_back_as_written_with_quoting_and_formula_guards(tmp_path: Path) -> None:
    store = Store(tmp_path / "bulkops.db")
    try:
        conn = store._conn
        conn.execute(
            "INSERT INTO runs (run_id, created_at, manifest_path, manifest_sha256,"
            " manifest_format, tenant, options, status) VALUES ('r', 0, 'm', 'x', 'csv', 't',"
            " '{}', 'ready')"
        )
        conn.executemany(
            "INSERT INTO items (run_id, line, device_id, serial_number, action, params, state,"
            " error, preview) VALUES ('r', ?, ?, ?, ?, '{}', ?, ?, ?)",
            [(*r[:6], orjson.dumps(r[6]).decode() if r[6] else None) for r in ROWS],
        )
        path = tmp_path / "out" / "plan.csv"
        write_plan_csv(store, "r", path)
    finally:
        store.close()
    with path.open(encoding="utf-8-sig", newline="") as fh:
        assert list(csv.reader(fh)) == [list(PLAN_COLUMNS)] + [expected(r) for r in ROWS]
    raw = path.read_bytes()
    assert raw.count(b"\r\n") == len(ROWS) + 1  # every row ends as csv ends it; none breaks
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_summary_reports_an_hourly_rate_only_for_runs_long_enough_to_mean_one() -> None:
    from bulkops.summary import MIN_RATE_SPAN_S, Summary

    def summary(requests: int, seconds: float) -> dict[str, object]:
        return Summary(
            "r", "t", "m", requests, {}, {}, requests, 0, 1000.0, 1000.0 + seconds
        ).as_dict()

    assert summary(450, 10.0)["rate_achieved_per_hour"] is None  # 45/s for 10 s is not 162,000/h
    assert summary(3000, 1200.0)["rate_achieved_per_hour"] == 9000.0
    assert summary(1, MIN_RATE_SPAN_S)["rate_achieved_per_hour"] == 6.0
