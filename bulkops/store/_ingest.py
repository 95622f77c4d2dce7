"""Ingest: a manifest's items into the ``items`` table, a few thousand rows per statement.

One INSERT statement carries a whole batch: run once per row, a statement costs about a
microsecond more than the row it inserts (measured in benchmarks/README.md, "1M-row plan";
inserting from a second thread while parsing was measured too, and gained nothing: the GIL).
The caller owns the transaction: on any error, from parsing or from SQLite, nothing is kept.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator
from itertools import chain
from typing import Any

import orjson

__all__ = ["Shape", "insert_items"]

Row = tuple[Any, ...]

# Rows per statement: 6 columns each, under SQLite's 32,766 bound variables.
_BATCH = 5000
_INSERT = "INSERT INTO items (run_id, line, device_id, serial_number, action, params) VALUES "


Shape = Counter[tuple[str, bool, bool]]  # rows per (action, by serial only, by id and serial)


def insert_items(conn: sqlite3.Connection, run_id: str, items: Iterable[Any], shape: Shape) -> int:
    """Insert every item inside the caller's open transaction; returns how many.

    ``shape`` counts the rows as resolution sees them, so a new run's plan needs no pass over
    the rows to learn it.
    """
    total = 0
    batch: list[Row] = []
    for row in _rows(run_id, items, shape):
        batch.append(row)
        if len(batch) == _BATCH:
            _insert(conn, batch)
            total += len(batch)
            batch = []
    _insert(conn, batch)
    return total + len(batch)


def _insert(conn: sqlite3.Connection, rows: list[Row]) -> None:
    if rows:
        values = ", ".join(["(?,?,?,?,?,?)"] * len(rows))
        conn.execute(_INSERT + values, tuple(chain.from_iterable(rows)))


def _rows(run_id: str, items: Iterable[Any], shape: Shape) -> Iterator[Row]:
    # Neither Item.device_ref nor Item.params_digest is stored: the cross-row checks derive
    # both in SQL (the device from device_id / serial_number, equal parameters from the
    # sorted-key JSON), which makes each row ~55 bytes shorter and spares a sha256 per row.
    dumps, sort = orjson.dumps, orjson.OPT_SORT_KEYS
    for it in items:
        device_id = it.device_id
        shape[
            it.action, device_id is None, device_id is not None and it.serial_number is not None
        ] += 1
        params = it.params
        yield (
            run_id,
            it.line,
            it.device_id,
            it.serial_number,
            it.action,
            dumps(params if type(params) is dict else dict(params), option=sort)
            if params
            else b"{}",
        )
