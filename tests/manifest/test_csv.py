"""CSV semantics: default actions, columns, row rules, line numbers, reading our own reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from bulkops.manifest import Item

from .util import SERIAL, SERIAL2, UUID1, error, item, read, write


def test_default_action_fills_a_missing_column(tmp_path: Path) -> None:
    path = write(tmp_path, "m.csv", f"serial_number\n{SERIAL}\n{SERIAL2}\n")
    assert read(path, default_action="BlankPush") == [
        item(2, "blankpush"),
        item(3, "blankpush", SERIAL2),
    ]


def test_default_action_fills_blank_cells_only(tmp_path: Path) -> None:
    path = write(tmp_path, "m.csv", f"serial_number,action\n{SERIAL},\n{SERIAL2},updateinventory\n")
    assert read(path, default_action="blankpush") == [
        item(2, "blankpush"),
        item(3, "updateinventory", SERIAL2),
    ]


def test_blank_action_without_default(tmp_path: Path) -> None:
    exc = error(
        write(tmp_path, "m.csv", f"serial_number,action\n{SERIAL},blankpush\n{SERIAL2}, \n")
    )
    assert (exc.line, exc.column) == (3, "action")
    assert "no action for this row" in exc.message and "--action" in exc.hint


def test_action_names_are_forgiving(tmp_path: Path) -> None:
    rows = ("Blank Push", "update-inventory", "DAILY_CHECKIN")
    text = "serial_number,action\n" + "".join(f"{SERIAL},{action}\n" for action in rows)
    assert [it.action for it in read(write(tmp_path, "m.csv", text))] == [
        "blankpush",
        "updateinventory",
        "dailycheckin",
    ]


def test_a_column_of_another_action_is_fine_when_blank(tmp_path: Path) -> None:
    text = f"serial_number,action,pin,message\n{SERIAL},erase,123456,\n{SERIAL2},lock,,Call IT\n"
    assert read(write(tmp_path, "m.csv", text)) == [
        item(2, "erase", pin="123456"),
        item(3, "lock", SERIAL2, message="Call IT"),
    ]


def test_errors_name_the_column_as_the_header_wrote_it(tmp_path: Path) -> None:
    text = f"Serial  Number,Action,Asset Tag\n{SERIAL},update,=1+1\n"
    exc = error(write(tmp_path, "m.csv", text))
    assert (exc.line, exc.column) == (2, "Asset Tag")
    assert exc.one_line().startswith(f"{tmp_path / 'm.csv'}:2: Asset Tag: '=1+1' starts with '='")
    exc = error(write(tmp_path, "n.csv", "Serial  Number,Action\n1.2E+11,lock\n"))
    assert exc.column == "Serial Number"


def test_unknown_column_suggests_the_closest(tmp_path: Path) -> None:
    exc = error(write(tmp_path, "m.csv", f"serial_number,action,Asset Tags\n{SERIAL},blankpush,\n"))
    assert (exc.line, exc.column) == (1, "Asset Tags")
    assert "did you mean 'asset_tag'?" in exc.hint
    assert "starting with # are ignored" in exc.hint


def test_required_parameter_and_check(tmp_path: Path) -> None:
    exc = error(write(tmp_path, "m.csv", f"serial_number,action\n{SERIAL},unlockaccount\n"))
    assert exc.line == 2 and "unlockaccount needs user_name" in exc.message
    text = f"serial_number,action,blueprint,blueprint_id\n{SERIAL},update,Finance,{UUID1}\n"
    exc = error(write(tmp_path, "n.csv", text))
    assert exc.line == 2 and "give blueprint_id or blueprint" in exc.message


def test_the_same_text_is_judged_per_parameter(tmp_path: Path) -> None:
    text = (
        "serial_number,action,asset_tag,device_name\n"
        f"{SERIAL},update,CLEAR!,\n"
        f"{SERIAL2},setname,,CLEAR!\n"
    )
    exc = error(write(tmp_path, "m.csv", text))
    assert (exc.line, exc.column) == (3, "device_name")
    assert "device_name cannot be cleared" in exc.message


def test_repeated_values_are_read_once_and_stay_correct(tmp_path: Path) -> None:
    rows = "".join(f"{SERIAL},update,Finance;London,{i:05d}\n" for i in range(5000))
    items = read(write(tmp_path, "m.csv", f"serial_number,action,tags,asset_tag\n{rows}"))
    assert {it.params["tags"] for it in items} == {("Finance", "London")}
    assert [it.params["asset_tag"] for it in items] == [f"{i:05d}" for i in range(5000)]
    assert [it.line for it in items] == list(range(2, 5002))


def test_line_numbers_count_physical_lines(tmp_path: Path) -> None:
    text = (
        "serial_number,action,note\r\n"  # 1
        f'{SERIAL},blankpush,"one\r\ntwo\r\nthree"\r\n'  # 2-4
        "\r\n"  # 5
        f"{SERIAL2},blankpush,\r\n"  # 6
        f'{SERIAL},blankpush,"a\rb"\r\n'  # 7-8 (a lone CR inside quotes is a line break too)
        f"{SERIAL2},lokc,\r\n"  # 9
    )
    exc = error(write(tmp_path, "m.csv", text))
    assert exc.line == 9


def test_tsv_extension_prefers_tabs_for_a_single_column(tmp_path: Path) -> None:
    path = write(tmp_path, "m.tsv", f"serial_number\n{SERIAL}\n")
    assert read(path, default_action="blankpush") == [item(2, "blankpush")]
    path = write(tmp_path, "n.tsv", f"serial_number\taction\n{SERIAL}\tblankpush\n")
    assert read(path) == [item(2, "blankpush")]
    path = write(tmp_path, "o.txt", f"serial_number\n{SERIAL},1\n")
    assert "is not a serial number" in error(path, format="tsv", default_action="lock").message
    assert "the row has 2 cells" in error(path, default_action="lock").message


def test_separator_sniffing_ignores_quoted_text(tmp_path: Path) -> None:
    text = f'serial_number;action;"a, b, c, d"\n{SERIAL};blankpush;\n'
    exc = error(write(tmp_path, "m.csv", text))
    assert exc.column == "a, b, c, d" and "unknown column" in exc.message


def test_reads_back_a_failed_csv_as_bulkops_reports_write_it(tmp_path: Path) -> None:
    # bulkops.report writes: UTF-8 BOM, CRLF, "'" before a cell starting with = + - @,
    # CLEAR! for a cleared value, tags joined with ";", true/false, the error in "note".
    text = (
        "\ufeffdevice_id,serial_number,action,phone_number,message,tags,asset_tag,note\r\n"
        f"{UUID1},,lock,'+1 555 0100,'- back soon,,,'-: HTTP 500\r\n"
        f",{SERIAL},update,,,Finance;London,CLEAR!,timeout\r\n"
    )
    assert read(write(tmp_path, "failed.csv", text)) == [
        Item(2, UUID1, None, "lock", {"phone_number": "+1 555 0100", "message": "- back soon"}),
        item(3, "update", tags=("Finance", "London"), asset_tag=None),
    ]


@pytest.mark.parametrize(
    ("cell", "value"),
    [("yes", True), ("0", False), ("TRUE", True)],
)
def test_bool_cells(tmp_path: Path, cell: str, value: bool) -> None:
    path = write(tmp_path, "m.csv", f"serial_number,action,enable\n{SERIAL},remotedesktop,{cell}\n")
    assert read(path) == [item(2, "remotedesktop", enable=value)]


def test_an_open_quote_is_found_on_its_own_line_inside_a_long_record(tmp_path: Path) -> None:
    text = (
        "serial_number,action,note,message\n"
        f'{SERIAL},lock,"two\nlines",ok\n'
        f'{SERIAL2},lock,"a\nb","opens on line 5\nand\nnever closes\n'
    )
    exc = error(write(tmp_path, "m.csv", text))
    assert exc.line == 5 and "never closed" in exc.message


def test_a_rename_sheet_reads_old_name_as_a_note_and_new_name_as_the_device_name(
    tmp_path: Path,
) -> None:
    """Review: an old-name/new-name sheet met "unknown column 'New Name' (did you mean
    'user_name'?)". "New Name" is the device_name; "Old Name" is kept for the reader's eyes."""
    text = f"Serial Number,Old Name,New Name\n{SERIAL},Zoë’s MacBook,NYC-0001\n"
    path = write(tmp_path, "rename.csv", text)
    assert read(path, default_action="setname") == [item(2, "setname", device_name="NYC-0001")]
