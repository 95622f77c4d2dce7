"""CSV manifests, read one record at a time.

The separator (``,``, ``;`` or tab) is sniffed from the header line, unless an Excel ``sep=;``
line comes first. Every cell is text and is trimmed; ``00123`` stays ``00123``. Blank lines and
rows whose cells are all blank (Excel's ``,,,,``) are skipped. Quoted cells may hold separators,
quotes written twice and line breaks; text after a closing quote is kept (``"Call" IT`` reads
``Call IT``), but a quote still open at the end of the file is an error naming the line where it
opened. A row may have fewer cells than the header (the rest are blank) but not more, unless the
extra cells are blank. Line numbers are physical lines: the line where a record starts, the
header being line 1 in most files.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

from bulkops.actions import Action
from bulkops.errors import ManifestError
from bulkops.manifest._columns import (
    ACTION,
    DEVICE_ID,
    ID_COLUMNS,
    INFO_COLUMNS,
    PARAM_NAMES,
    SERIAL_NUMBER,
    canonical_column,
    display,
    suggest,
)
from bulkops.manifest._csvfeed import Feed
from bulkops.manifest._csvquick import quick_rows
from bulkops.manifest._item import Item
from bulkops.manifest._limits import MAX_CELL_CHARS
from bulkops.manifest._lines import iter_lines
from bulkops.manifest._row import RowBuilder
from bulkops.manifest._text import iter_text
from bulkops.manifest._values import Invalid, read_device_id, read_serial

__all__ = ["iter_csv"]

_QUOTED = re.compile(r'"[^"]*"')
_SEPARATORS = (",", ";", "\t")
_VALID_COLUMNS = ", ".join((*ID_COLUMNS, ACTION, *sorted(PARAM_NAMES)))
_NOTES = ", ".join(sorted(c for c in INFO_COLUMNS if not c.endswith("s")))


def iter_csv(
    path: Path, label: str, *, default_action: Action | None, tab: bool = False
) -> Iterator[Item]:
    """The items of a CSV manifest; at the end, :class:`ManifestError` for the bad rows."""
    builder = RowBuilder(label, default_action=default_action)
    feed = Feed(iter_lines(iter_text(path, label)), label)
    first, separator = _find_header(feed, label, "\t" if tab else ",")
    feed.separator = separator
    reader = csv.reader(
        chain((first,), feed),
        delimiter=separator,
        quotechar='"',
        doublequote=True,
        skipinitialspace=True,
        strict=False,
    )
    header = feed.next_record(reader) or []
    header_line = feed.line
    layout = _layout(header, header_line, builder)
    quick = quick_rows(
        builder,
        width=layout.width,
        device_id=layout.device_id,
        serial_number=layout.serial_number,
        action=layout.action,
        params=tuple((index, name) for index, name, _ in layout.params),
        unlabeled=tuple(layout.unlabeled),
    )
    rows = 0
    try:
        while (cells := feed.next_record(reader)) is not None:
            try:
                item = quick(cells, feed.line) if feed.size <= MAX_CELL_CHARS else None
                if item is None:  # a quick item names a device: the row is not blank
                    joined = "".join(cells)
                    if not joined or joined.isspace():
                        continue
                    item = _item(cells, feed.line, feed.size, layout, builder)
            except ManifestError as exc:
                builder.bad_row(exc)
                continue
            yield item
            rows += 1
    except ManifestError as exc:  # the file cannot be read on
        builder.stop(exc)
    builder.stop()
    if rows == 0:
        builder.fail("no rows after the header", line=header_line, hint="add one row per device")


@dataclass(slots=True)
class _Layout:
    """Where each column of the header sits."""

    width: int
    device_id: int | None = None
    serial_number: int | None = None
    action: int | None = None
    labels: dict[str, str] = field(default_factory=dict)
    params: list[tuple[int, str, str]] = field(default_factory=list)
    unlabeled: list[int] = field(default_factory=list)
    all_labels: list[str] = field(default_factory=list)
    id_columns: tuple[str, str] = (DEVICE_ID, SERIAL_NUMBER)
    action_column: str = ACTION


def _item(cells: list[str], line: int, chars: int, lay: _Layout, builder: RowBuilder) -> Item:
    """The row's item, or the error for its first problem; ``chars`` is the record's length."""
    count = len(cells)
    if count < lay.width:
        cells.extend([""] * (lay.width - count))
    elif count > lay.width and "".join(cells[lay.width :]).strip():
        builder.fail(
            f"the row has {count} cells but the header has {lay.width}",
            line=line,
            hint="a value holding the separator must be in double quotes",
        )
    if chars > MAX_CELL_CHARS:
        for index, cell in enumerate(cells):
            if len(cell) > MAX_CELL_CHARS:
                column = lay.all_labels[index] if index < lay.width else None
                limit = f"{MAX_CELL_CHARS // 1024} KiB"
                builder.fail(f"cell is longer than {limit}", line=line, column=column)
    for index in lay.unlabeled:
        if cells[index].strip():
            builder.fail(
                f"a value in column {index + 1}, which has no header",
                line=line,
                hint="name the column in the header, or empty it",
            )
    action = builder.action(
        None if lay.action is None else cells[lay.action], line=line, column=lay.action_column
    )
    return builder.build(
        line=line,
        device_id=None if lay.device_id is None else cells[lay.device_id],
        serial_number=None if lay.serial_number is None else cells[lay.serial_number],
        id_columns=lay.id_columns,
        action=action,
        fields=[(name, label, cells[i]) for i, name, label in lay.params if cells[i]],
    )


def _find_header(feed: Feed, label: str, preferred: str) -> tuple[str, str]:
    """The header's first physical line and the separator, after blank lines and ``sep=``."""
    separator = ""
    for line in feed:
        text = line.strip()
        if not text:
            feed.reset()
            continue
        if len(text) == 5 and text.lower().startswith("sep="):
            separator = text[4]
            feed.reset()
            continue
        return line, separator or _sniff(line, preferred)
    raise ManifestError("empty manifest", path=label, hint="the file holds no text")


def _sniff(line: str, preferred: str) -> str:
    bare = _QUOTED.sub("", line)
    counts = {sep: bare.count(sep) for sep in _SEPARATORS}
    best = max(counts.values())
    if best == 0 or counts[preferred] == best:
        return preferred
    return next(sep for sep in _SEPARATORS if counts[sep] == best)


def _layout(header: list[str], line: int, builder: RowBuilder) -> _Layout:
    lay = _Layout(width=len(header))
    seen: dict[str, str] = {}
    for index, raw in enumerate(header):
        label = display(raw)
        lay.all_labels.append(label)
        if not raw.strip():
            lay.unlabeled.append(index)
            continue
        name = canonical_column(raw)
        if name is None:
            _unknown_column(raw, label, line, builder)
        if not name:
            continue
        if name in seen:
            builder.fail(
                f"columns {seen[name]!r} and {label!r} both mean {name}",
                line=line,
                column=label,
                hint="keep one of them",
            )
        seen[name] = label
        lay.labels[name] = label
        if name == DEVICE_ID:
            lay.device_id = index
        elif name == SERIAL_NUMBER:
            lay.serial_number = index
        elif name == ACTION:
            lay.action = index
        else:
            lay.params.append((index, name, label))
    if lay.device_id is None and lay.serial_number is None:
        found = ", ".join(repr(c) for c in lay.all_labels)
        builder.fail(
            f"no device_id or serial_number column; the columns are {found}",
            line=line,
            hint="name the column of serial numbers serial_number, or of device UUIDs device_id",
        )
    lay.id_columns = (
        lay.labels.get(DEVICE_ID, DEVICE_ID),
        lay.labels.get(SERIAL_NUMBER, SERIAL_NUMBER),
    )
    lay.action_column = lay.labels.get(ACTION, ACTION)
    if lay.action is None and builder.default_action is None:
        builder.fail(
            "no action column",
            line=line,
            hint="add an action column, or give one action for every row with --action",
        )
    return lay


def _unknown_column(raw: str, label: str, line: int, builder: RowBuilder) -> None:
    hint = suggest(raw, (*ID_COLUMNS, ACTION, *PARAM_NAMES))
    for reader in (read_serial, read_device_id):
        try:
            if reader(raw) is not None:
                hint = "the first line must name the columns, like serial_number,action; "
        except Invalid:
            pass
    builder.fail(
        f"unknown column {label!r}",
        line=line,
        column=label,
        hint=hint + f"valid columns: {_VALID_COLUMNS}; columns named {_NOTES} "
        "or starting with # are ignored",
    )
