"""What Excel, Numbers and people do to a CSV is accepted, and read to exactly the same items."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from bulkops.manifest import Item

from .util import SERIAL, SERIAL2, UUID1, error, item, read, write

ROWS = [
    item(2, "lock", message="Call IT, room 4"),
    item(3, "update", SERIAL2, asset_tag="00123", tags=("Finance", "London")),
]
PLAIN = (
    "serial_number,action,message,asset_tag,tags\r\n"
    f'{SERIAL},lock,"Call IT, room 4",,\r\n'
    f"{SERIAL2},update,,00123,Finance;London\r\n"
)


def _tabbed(text: str) -> str:
    return (
        text.replace(',"Call IT, room 4"', "|").replace(",", "\t").replace("|", "\tCall IT, room 4")
    )


VARIANTS: dict[str, tuple[bytes, list[Item]]] = {
    "plain": (PLAIN.encode(), ROWS),
    "utf8_bom": (codecs.BOM_UTF8 + PLAIN.encode(), ROWS),
    "utf16le_bom_tabs": (codecs.BOM_UTF16_LE + _tabbed(PLAIN).encode("utf-16-le"), ROWS),
    "utf16be_bom": (codecs.BOM_UTF16_BE + PLAIN.encode("utf-16-be"), ROWS),
    "utf16le_no_bom": (PLAIN.encode("utf-16-le"), ROWS),
    "lf_only": (PLAIN.replace("\r\n", "\n").encode(), ROWS),
    "cr_only": (PLAIN.replace("\r\n", "\r").encode(), ROWS),
    "no_final_newline": (PLAIN.rstrip().encode(), ROWS),
    "semicolons": (
        (
            "serial_number;action;message;asset_tag;tags\r\n"
            f"{SERIAL};lock;Call IT, room 4;;\r\n"
            f'{SERIAL2};update;;00123;"Finance;London"\r\n'
        ).encode(),
        ROWS,
    ),
    "tabs": (_tabbed(PLAIN).encode(), ROWS),
    "excel_sep_line": (
        (f"sep=;\r\nserial_number;action;message\r\n{SERIAL};lock;Call IT, room 4\r\n").encode(),
        [item(3, "lock", message="Call IT, room 4")],
    ),
    "odd_headers": (
        PLAIN.replace(
            "serial_number,action,message,asset_tag,tags",
            " SERIAL_NUMBER ,Action,MESSAGE,asset-tag,Tags ",
        ).encode(),
        ROWS,
    ),
    "aliases": (
        PLAIN.replace(
            "serial_number,action,message,asset_tag,tags", "Serial,ACTION,Message,Asset Tag,Tag"
        ).encode(),
        ROWS,
    ),
    "spaces_everywhere": (
        (
            "serial number , action , message , asset tag , tags\r\n"
            f'  {SERIAL.lower()} , LOCK ,  "Call IT, room 4" , , \r\n'
            f"{SERIAL2}\t, Update ,, 00123 , Finance ; London ;\r\n"
        ).encode(),
        ROWS,
    ),
    "blank_lines_and_empty_rows": (
        (
            "\r\nserial_number,action,message,asset_tag,tags\r\n\r\n"
            f'{SERIAL},lock,"Call IT, room 4",,\r\n,,,,\r\n   \r\n'
            f"{SERIAL2},update,,00123,Finance;London\r\n,,,,\r\n"
        ).encode(),
        [
            item(4, "lock", message="Call IT, room 4"),
            item(7, "update", SERIAL2, asset_tag="00123", tags=("Finance", "London")),
        ],
    ),
    "trailing_blank_columns": (
        (
            "serial_number,action,message,asset_tag,tags,,\r\n"
            f'{SERIAL},lock,"Call IT, room 4",,,,\r\n'
            f"{SERIAL2},update,,00123,Finance;London,,\r\n"
        ).encode(),
        ROWS,
    ),
    "short_rows": (
        (
            "serial_number,action,asset_tag,tags,message\r\n"
            f"{SERIAL2},update,00123,Finance;London\r\n"
            f"{SERIAL},blankpush\r\n"
        ).encode(),
        [
            item(2, "update", SERIAL2, asset_tag="00123", tags=("Finance", "London")),
            item(3, "blankpush"),
        ],
    ),
    "quoted_newlines_and_quotes": (
        (
            "serial_number,action,note,message\r\n"
            f'{SERIAL},lock,"a note\r\non two lines, with ""quotes""",Call IT\r\n'
            f'{SERIAL2},lock,,"He said ""call IT"""\r\n'
        ).encode(),
        [item(2, "lock", message="Call IT"), item(4, "lock", SERIAL2, message='He said "call IT"')],
    ),
    "informational_columns": (
        (
            "Name,serial_number,Platform,action,Notes,#Model,Comment\r\n"
            f"Jane's Mac,{SERIAL},Mac,blankpush,anything,MacBookPro18,3\r\n"
        ).encode(),
        [item(2, "blankpush")],
    ),
    "text_after_closing_quote": (
        (f'serial_number,action,message\r\n{SERIAL},lock,"Call" IT\r\n').encode(),
        [item(2, "lock", message="Call IT")],
    ),
    "leading_zeros": (
        (b"serial_number,action,asset_tag\r\n0012345678,update,000000\r\n"),
        [item(2, "update", "0012345678", asset_tag="000000")],
    ),
    "device_ids_any_case": (
        (f"Device ID,action\r\n{UUID1.upper()},blankpush\r\n{{{UUID1}}},blankpush\r\n").encode(),
        None,  # the braced form is checked below: it is not a UUID
    ),
}


@pytest.mark.parametrize("name", [n for n, (_, rows) in VARIANTS.items() if rows is not None])
def test_variant_reads_to_exact_items(tmp_path: Path, name: str) -> None:
    data, expected = VARIANTS[name]
    assert read(write(tmp_path, "m.csv", data)) == expected


def test_cp1252_export_with_accents(tmp_path: Path) -> None:
    text = f"serial_number,action,message\r\n{SERIAL},lock,Café Straße – merci\r\n"
    path = write(tmp_path, "m.csv", text, encoding="cp1252")
    assert path.read_bytes().count(b"\xe9") == 1
    assert read(path) == [item(2, "lock", message="Café Straße – merci")]


def test_cp1252_switch_happens_late_in_a_big_file(tmp_path: Path) -> None:
    rows = "".join(f"{SERIAL},lock,row {i}\r\n" for i in range(30_000))
    text = f"serial_number,action,message\r\n{rows}{SERIAL2},lock,Grüße\r\n"
    items = read(write(tmp_path, "m.csv", text, encoding="cp1252"))
    assert len(items) == 30_001
    assert items[-1] == item(30_002, "lock", SERIAL2, message="Grüße")


def test_utf8_accents_and_emoji(tmp_path: Path) -> None:
    text = f"serial_number,action,device_name\r\n{SERIAL},setname,Zoë's Mac 💻\r\n"
    assert read(write(tmp_path, "m.csv", text)) == [item(2, "setname", device_name="Zoë's Mac 💻")]


def test_device_id_is_canonicalised_and_braces_are_not_a_uuid(tmp_path: Path) -> None:
    data, _ = VARIANTS["device_ids_any_case"]
    path = write(tmp_path, "m.csv", data)
    exc = error(path)
    assert exc.line == 3 and exc.column == "Device ID" and "is not a UUID" in exc.message
    first = read(write(tmp_path, "one.csv", data.split(b"\r\n{")[0] + b"\r\n"))
    assert first == [Item(2, UUID1, None, "blankpush", {})]


def test_both_id_columns_keep_both(tmp_path: Path) -> None:
    text = (
        f"device_id,serial_number,action\r\n{UUID1},{SERIAL},blankpush\r\n,{SERIAL2},blankpush\r\n"
    )
    first, second = read(write(tmp_path, "m.csv", text))
    assert first == Item(2, UUID1, SERIAL, "blankpush", {})
    assert first.device_ref == f"id:{UUID1}"
    assert second.device_ref == f"sn:{SERIAL2}"
