"""Bytes to text to lines, with chunk boundaries everywhere: encodings, junk, line endings."""

from __future__ import annotations

import codecs
import functools
import json
from pathlib import Path

import pytest

from bulkops.manifest import _csv, _json, _jsonscan
from bulkops.manifest._lines import LineTooLong, iter_lines
from bulkops.manifest._text import DecodeProblem, iter_text

from .test_excel import VARIANTS
from .util import SERIAL, read, write

TEXT = "serial_number,message\r\nC02XK1JHJG5J,Zoë – café 💻 ß\r\nC02XK1JHJG5K,plain\r\n"


def _decode(path: Path, chunk: int) -> tuple[str, DecodeProblem | None]:
    parts: list[str] = []
    try:
        for part in iter_text(path, str(path), chunk_bytes=chunk):
            assert part
            parts.append(part)
    except DecodeProblem as problem:
        return "".join(parts), problem
    return "".join(parts), None


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 64])
@pytest.mark.parametrize(
    "encoded",
    [
        TEXT.encode(),
        codecs.BOM_UTF8 + TEXT.encode(),
        codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"),
        codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"),
        TEXT.encode("utf-16-le"),
        TEXT.encode("utf-16-be"),
    ],
    ids=["utf8", "utf8_bom", "utf16le_bom", "utf16be_bom", "utf16le", "utf16be"],
)
def test_every_encoding_survives_any_chunk_size(tmp_path: Path, encoded: bytes, chunk: int) -> None:
    path = write(tmp_path, "t.csv", encoded)
    assert _decode(path, chunk) == (TEXT, None)


@pytest.mark.parametrize("chunk", [1, 4, 29, 30, 31, 4096])
def test_cp1252_fallback_at_any_boundary(tmp_path: Path, chunk: int) -> None:
    text = "serial_number,message\r\nC02XK1JHJG5J,Café Straße “quoted” €5\r\n"
    assert _decode(write(tmp_path, "t.csv", text, encoding="cp1252"), chunk) == (text, None)


@pytest.mark.parametrize("chunk", [2, 5, 4096])
def test_once_cp1252_always_cp1252(tmp_path: Path, chunk: int) -> None:
    # "Ã©" in Windows-1252 is C3 A9, which is also valid UTF-8 (for "é"): it must stay "Ã©".
    text = "a,café\n" + "x" * 20 + "\nb,Ã©\n"
    assert _decode(write(tmp_path, "t.csv", text, encoding="cp1252"), chunk) == (text, None)


@pytest.mark.parametrize("chunk", [1, 3, 4096])
def test_mixed_encodings_stop_at_the_bad_byte(tmp_path: Path, chunk: int) -> None:
    good = "a,Zoë\n"
    path = write(tmp_path, "t.csv", good.encode() + b"b,Zo\xeb\n")
    text, problem = _decode(path, chunk)
    assert problem is not None and "mixes encodings" in problem.message
    assert problem.offset == len(good.encode()) + 4
    assert text == good + "b,Zo"


def test_nul_byte_offset_and_the_text_before_it(tmp_path: Path) -> None:
    path = write(tmp_path, "t.csv", b"abc\ndef\x00ghi")
    text, problem = _decode(path, 3)
    assert text == "abc\ndef"
    assert (
        problem is not None
        and problem.offset == 7
        and "NUL byte at byte offset 7" in problem.message
    )


def test_nul_in_utf16(tmp_path: Path) -> None:
    path = write(tmp_path, "t.csv", codecs.BOM_UTF16_LE + "ab\x00c".encode("utf-16-le"))
    text, problem = _decode(path, 5)
    assert text == "ab"
    assert problem is not None and "NUL character" in problem.message


@pytest.mark.parametrize(
    ("head", "what"),
    [
        (b"PK\x03\x04rest", "Excel workbook (.xlsx)"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1", "old Excel workbook (.xls)"),
        (b"%PDF-1.7", "PDF"),
        (b"\x1f\x8b\x08", "gzip"),
        (b"bplist00", "binary property list"),
    ],
)
def test_known_binary_formats_are_named(tmp_path: Path, head: bytes, what: str) -> None:
    _, problem = _decode(write(tmp_path, "t.csv", head), 4096)
    assert problem is not None and what in problem.message and problem.offset == 0


@pytest.mark.parametrize(
    ("chunks", "lines"),
    [
        (["a\r", "\nb"], ["a\r\n", "b"]),
        (["a\rb\rc"], ["a\r", "b\r", "c"]),
        (["a\n\nb\n"], ["a\n", "\n", "b\n"]),
        (["a\u2028b\x0cc\x85d\n"], ["a\u2028b\x0cc\x85d\n"]),
        (["a\u2028b\r", "\r\n"], ["a\u2028b\r", "\r\n"]),
        (["a\x0c"], ["a\x0c"]),
        (["a\x0c", "b\n"], ["a\x0cb\n"]),
        (["a\n\x0b", "\x0bb"], ["a\n", "\x0b\x0bb"]),
        (["a\r\n\x1e\r\n", "b"], ["a\r\n", "\x1e\r\n", "b"]),
        (["\u2029\n\u2029"], ["\u2029\n", "\u2029"]),
        (["", "ab", "", "c\n", ""], ["abc\n"]),
        ([], []),
    ],
)
def test_lines_keep_their_endings_and_only_cr_lf_break(chunks: list[str], lines: list[str]) -> None:
    assert list(iter_lines(chunks)) == lines


def test_a_long_line_is_refused_before_it_is_held_whole() -> None:
    lines = iter_lines(["ok\n", "x" * 6, "x" * 6, "x" * 6, "\n"], max_chars=10)
    assert next(lines) == "ok\n"
    with pytest.raises(LineTooLong):
        next(lines)
    assert list(iter_lines(["x" * 10 + "\n"], max_chars=11)) == ["x" * 10 + "\n"]
    with pytest.raises(LineTooLong):
        list(iter_lines(["y\n" + "x" * 12 + "\nz"], max_chars=11))


@pytest.fixture
def tiny_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every reader decodes the file 3 bytes at a time."""
    small = functools.partial(iter_text, chunk_bytes=3)
    for module in (_csv, _json, _jsonscan):
        monkeypatch.setattr(module, "iter_text", small)


@pytest.mark.usefixtures("tiny_chunks")
@pytest.mark.parametrize("name", [n for n, (_, rows) in VARIANTS.items() if rows is not None])
def test_csv_variants_read_the_same_in_tiny_chunks(tmp_path: Path, name: str) -> None:
    data, expected = VARIANTS[name]
    assert read(write(tmp_path, "m.csv", data)) == expected


@pytest.mark.usefixtures("tiny_chunks")
def test_json_reads_the_same_in_tiny_chunks(tmp_path: Path) -> None:
    messages = ["a } b", 'q"}]{[', "back\\slash", "Zoë 💻", "plain"]
    items = [
        {"serial_number": SERIAL, "action": "lock", "params": {"message": m}, "note": [{}, []]}
        for m in messages
    ]
    body = ",\n".join(json.dumps(i, ensure_ascii=False) for i in items)
    text = '{"comment": "x", "items": [\n' + body + '\n], "defaults": {"action": "lock"}}'
    got = read(write(tmp_path, "m.json", text))
    assert [(it.line, it.params["message"]) for it in got] == list(enumerate(messages, 2))
    jsonl = write(tmp_path, "m.jsonl", "\n".join(json.dumps(i, ensure_ascii=False) for i in items))
    assert [it.params["message"] for it in read(jsonl)] == messages


def test_mac_roman_read_as_windows_1252_is_named_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Review: an older Excel for Mac export (Mac Roman) was read as Windows-1252 without a
    word, and "Zoë’s MacBook" would have been sent as "Zo‘Õs MacBook"."""
    mac = "serial_number,device_name\r\nC02XK1JHJG5J,Zoë’s MacBook\r\nC02XK1JHJG5K,René’s\r\n"
    windows = "serial_number,device_name\r\nC02XK1JHJG5J,Zoe’s Café – Dušek “1” €5 Muñoz\r\n"
    with caplog.at_level("WARNING", logger="bulkops"):
        for name, text, encoding in (("mac.csv", mac, "mac_roman"), ("win.csv", windows, "cp1252")):
            path = write(tmp_path, name, text, encoding=encoding)
            for _ in range(2):  # read twice, as a run does: said once
                assert _decode(path, 4096)[1] is None
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1, said
    assert "mac.csv is not UTF-8 and was read as Windows-1252" in said[0]
    assert "'Zo‘Õs' may be 'Zoë’s' in Mac Roman" in said[0]
    assert "export the file as CSV UTF-8" in said[0]
