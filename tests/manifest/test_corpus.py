"""The corpus of bad manifests: each fails with its own line and message, in one line."""

from __future__ import annotations

import tracemalloc
from collections import Counter
from pathlib import Path

import pytest

from .util import SERIAL, error, read, write

CORPUS = Path(__file__).parent / "corpus"


def _expected() -> dict[str, tuple[int | None, str, str]]:
    table: dict[str, tuple[int | None, str, str]] = {}
    for row in (CORPUS / "EXPECTED.tsv").read_text(encoding="utf-8").splitlines():
        if not row or row.startswith("#"):
            continue
        name, line, fragment, scope = row.split("\t")
        table[name] = (None if line == "-" else int(line), fragment, scope)
    return table


EXPECTED = _expected()
ROW_CASES = sorted(name for name, (_, _, scope) in EXPECTED.items() if scope == "row")


def test_the_table_and_the_folder_agree() -> None:
    files = {p.name for p in CORPUS.iterdir() if p.name != "EXPECTED.tsv"}
    assert files == set(EXPECTED)
    assert len(ROW_CASES) >= 30
    assert {scope for _, _, scope in EXPECTED.values()} == {"row", "cross-row"}


@pytest.mark.parametrize("name", ROW_CASES)
def test_bad_manifest_names_file_line_and_problem(name: str) -> None:
    line, fragment, _ = EXPECTED[name]
    path = CORPUS / name
    exc = error(path)
    text = exc.one_line()
    assert "\n" not in text and "\r" not in text
    assert exc.path == str(path)
    assert exc.line == line
    where = f"{path}:{line}: " if line is not None else f"{path}: "
    assert text.startswith(where), text
    assert fragment in text, text
    assert str(exc) == text


def test_a_row_repeated_in_another_case_and_spacing_has_its_identity_and_digest(
    tmp_path: Path,
) -> None:
    text = f"serial_number,action,message\n{SERIAL},lock,Call IT\n{SERIAL.lower()},lock, Call IT \n"
    first, second = read(write(tmp_path, "twice.csv", text))
    assert (first.line, second.line) == (2, 3)
    assert first.device_ref == second.device_ref == f"sn:{SERIAL}"
    assert first.action == second.action == "lock"
    assert first.params_digest == second.params_digest  # the store skips the second as a copy


def test_a_device_action_with_other_parameters_parses_with_another_digest() -> None:
    assert EXPECTED["same_device_other_params.csv"][2] == "cross-row"
    first, second = read(CORPUS / "same_device_other_params.csv")
    assert first.device_ref == second.device_ref == f"sn:{SERIAL}"
    assert first.action == second.action == "lock"
    assert first.params_digest != second.params_digest  # the store refuses the file


def test_conflicting_actions_parse_and_differ_in_action_or_digest() -> None:
    assert EXPECTED["conflicting_actions.csv"][2] == "cross-row"
    items = read(CORPUS / "conflicting_actions.csv")
    by_ref = Counter(it.device_ref for it in items)
    assert sorted(by_ref.values()) == [2, 2]
    lock, erase, erase_a, erase_b = items
    assert lock.device_ref == erase.device_ref and lock.action != erase.action
    assert erase_a.device_ref == erase_b.device_ref and erase_a.action == erase_b.action
    assert erase_a.params_digest != erase_b.params_digest


def test_huge_field_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    cell = "x" * (100 * 1024)
    path = write(tmp_path, "huge_field.csv", f"serial_number,action,note\n{SERIAL},lock,{cell}\n")
    exc = error(path)
    assert exc.line == 2
    assert exc.column == "note"
    assert "cell is longer than 64 KiB" in exc.one_line()


def test_huge_quoted_field_beyond_the_csv_module_limit(tmp_path: Path) -> None:
    cell = "y" * (200 * 1024)
    text = f'serial_number,action,note\n{SERIAL},lock,x\n{SERIAL},lock,"{cell}"\n'
    exc = error(write(tmp_path, "huge_quoted.csv", text))
    assert exc.line == 3
    assert "cell is longer than 64 KiB" in exc.message


def test_huge_line_is_refused_with_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "huge_line.csv"
    with path.open("w", encoding="ascii") as handle:
        handle.write(f"serial_number,action,note\n{SERIAL},blankpush,ok\n{SERIAL},blankpush,")
        for _ in range(40):
            handle.write("z," * (512 * 1024))
        handle.write("\n")
    tracemalloc.start()
    try:
        exc = error(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert exc.line == 3
    assert "line is longer than 1 MiB" in exc.message
    assert path.stat().st_size > 40 * 2**20
    assert peak < 12 * 2**20, peak


def test_unterminated_quote_in_a_big_file_names_the_opening_line(tmp_path: Path) -> None:
    rows = "".join(f"{SERIAL},lock,row {i}\n" for i in range(60_000))
    text = f'serial_number,action,message\n{SERIAL},lock,"opens here\n{rows}'
    exc = error(write(tmp_path, "open_quote.csv", text))
    assert exc.line == 2
    assert "quote opened on this line is not closed" in exc.message
