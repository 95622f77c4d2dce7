"""Several bad rows: one pass of the file names each of them, one line per row, then the count.

A bad row does not stop the reading (the file is read to its end, the good rows yielded as
before), so a sheet with twelve mistakes is fixed in one round, not twelve. An error that ends
the reading (a quote never closed, JSON that cannot be parsed on) still ends it, and the bad
rows before it are named with it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bulkops.errors import BadRows, ManifestError
from bulkops.manifest import open_manifest
from bulkops.manifest._limits import MAX_BAD_ROWS

from .util import SERIAL, SERIAL2, error, write

GOOD = "C02XK1JHJG5M"


def lines_of(exc: ManifestError) -> list[int | None]:
    assert isinstance(exc, BadRows)
    return [e.line for e in exc.errors]


def test_every_bad_csv_row_is_named_and_the_good_ones_are_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "job.csv",
        "serial_number,action,message\n"
        f"{SERIAL},lock,Call IT\n"
        f"{SERIAL2},lokc,Call IT\n"  # 3: unknown action
        "1.23457E+11,lock,Call IT\n"  # 4: Excel's scientific notation
        f"{GOOD},blankpush,Call IT\n"  # 5: blankpush takes no message
        f"{GOOD},lock,Call IT\n",
    )
    seen: list[int] = []
    with pytest.raises(BadRows) as caught:
        for it in open_manifest(path):
            seen.append(it.line)
    exc = caught.value
    assert seen == [2, 6]  # read on past the bad rows
    assert lines_of(exc) == [3, 4, 5] and exc.count == 3 and exc.stopped_at is None
    assert (exc.line, exc.column) == (3, "action")  # its own fields: the first bad row's
    shown = str(exc).splitlines()
    assert shown[:3] == [e.one_line() for e in exc.errors]
    assert shown[3:] == [f"{path}: 3 bad rows; fix them and run again"]
    assert "unknown action 'lokc'" in shown[0]
    assert "scientific notation" in shown[1]
    assert "message is not a parameter of blankpush" in shown[2]


def test_one_bad_row_is_the_plain_error_it_always_was(tmp_path: Path) -> None:
    path = write(tmp_path, "job.csv", f"serial_number,action\n{SERIAL},lokc\n{SERIAL2},lock\n")
    exc = error(path)
    assert type(exc) is ManifestError
    assert exc.line == 2 and str(exc) == exc.one_line()


def test_an_error_that_ends_the_reading_is_named_after_the_bad_rows_before_it(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        "job.csv",
        f'serial_number,action\n{SERIAL},lokc\n{SERIAL2},lock\n"{GOOD},lock\n{GOOD},lock\n',
    )
    exc = error(path)
    assert lines_of(exc) == [2, 4]
    assert "a quote opened on this line is never closed" in exc.errors[1].message


def test_json_lines_name_each_bad_line(tmp_path: Path) -> None:
    good = f'{{"serial_number": "{SERIAL}", "action": "lock"}}'
    path = write(
        tmp_path,
        "job.jsonl",
        "\n".join(
            [
                good,
                '{"serial_number": "C02XK1JHJG5K",',  # 2: cut short
                "# a remark",  # 3: comments are not JSON Lines
                good.replace('"lock"', '"lock", "pin": "123456"'),  # 4: lock takes no pin
                good,
            ]
        )
        + "\n",
    )
    exc = error(path)
    assert lines_of(exc) == [2, 3, 4] and exc.count == 3
    assert [e.column for e in exc.errors] == [None, None, "pin"]


def test_a_json_document_names_each_bad_item(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "job.json",
        '{"items": [\n'
        f'  {{"serial_number": "{SERIAL}", "action": "lock"}},\n'
        f'  {{"serial_number": "{SERIAL2}", "action": "lokc"}},\n'
        '  "C02XK1JHJG5M",\n'
        f'  {{"serial_number": "{GOOD}", "action": "lock", "colour": "red"}}\n'
        "]}\n",
    )
    exc = error(path)
    assert lines_of(exc) == [3, 4, 5]
    assert "did you mean 'lock'" in exc.errors[0].one_line()
    assert "an item must be a JSON object" in exc.errors[1].message
    assert "unknown key 'colour'" in exc.errors[2].message


def test_many_bad_rows_are_counted_and_the_first_ones_listed(tmp_path: Path) -> None:
    bad = 50
    rows = "".join(f"{SERIAL},lokc\n" for _ in range(bad))
    path = write(tmp_path, "job.csv", f"serial_number,action\n{rows}{SERIAL2},lock\n")
    exc = error(path)
    assert exc.count == bad and len(exc.errors) == BadRows.LISTED
    assert lines_of(exc) == list(range(2, 2 + BadRows.LISTED))
    assert str(exc).splitlines()[-1] == (
        f"{path}: {bad} bad rows; {BadRows.LISTED} of them are above; fix them and run again"
    )


def test_reading_stops_at_the_limit_of_bad_rows(tmp_path: Path) -> None:
    rows = "".join(f"{SERIAL},lokc\n" for _ in range(MAX_BAD_ROWS + 500))
    path = write(tmp_path, "job.csv", f"serial_number,action\n{rows}")
    exc = error(path)
    assert isinstance(exc, BadRows)
    assert exc.count == MAX_BAD_ROWS and exc.stopped_at == MAX_BAD_ROWS + 1
    assert f"reading stopped at line {MAX_BAD_ROWS + 1}" in str(exc).splitlines()[-1]
