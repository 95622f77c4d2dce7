"""The quick paths accept only what the precise path accepts, and give the same items and errors.

Each quick check is compared with the precise rule on tricky values; then whole manifests of
random rows, good and bad, are read twice: as usual, and with the quick paths switched off.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bulkops.actions import ACTIONS, Param
from bulkops.errors import ManifestError
from bulkops.manifest import _csv, _json, open_manifest
from bulkops.manifest._quick import UNSURE, is_device_id, is_serial, quick_value
from bulkops.manifest._values import Invalid, read_device_id, read_param, read_serial

from .util import SERIAL, UUID1, write

PARAMS = [p for action in ACTIONS.values() for p in action.params]
PIECES = [
    "a", "Z", "0", "7", " ", "\t", "\u00a0", "\u2028", "\x0c", "\x85", "\x1f", "\x7f", "é", "'",
    "=", "@", "+", "-", "(", "|", ";", ".", ",", "null", "CLEAR!", "true", "No", "012345",
    UUID1, UUID1.upper(), SERIAL, SERIAL.lower(), "user@example.com",
]  # fmt: skip


def _texts(count: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    texts = ["", "x" * 255, "x" * 256, "x" * 1024, "x" * 1025, " x", "x ", "'=1", "'a", "-1", "- a"]
    for _ in range(count):
        texts.append("".join(rnd.choice(PIECES) for _ in range(rnd.randint(1, 4))))
    return texts


def _precise(read: Callable[[], object]) -> object:
    try:
        return read()
    except Invalid:
        return UNSURE


@pytest.mark.parametrize("param", PARAMS, ids=lambda p: f"{p.name}-{p.kind.name}")
def test_quick_values_are_the_precise_values(param: Param) -> None:
    cache: dict[object, object] = {}
    for raw in _texts(1500, seed=len(param.name)):
        expected = _precise(lambda: read_param(param, raw))  # noqa: B023 - called at once
        assert quick_value(param, {}, raw) == expected, raw
        assert quick_value(param, cache, raw) == expected, raw
        assert quick_value(param, cache, raw) == expected, raw  # now from the cache


@pytest.mark.parametrize(
    "raw",
    [
        ["Finance", "London"],
        ["Finance", " London ", "Finance"],
        [],
        [True],
        [1],
        ["a", 1],
        ["a", None],
        ["a", ["b"]],
        ["a", {"b": 1}],
        ["=a"],
        [" "],
        True,
        1,
        None,
        123456,
        {"a": 1},
    ],
)
def test_json_values_are_the_precise_values_whatever_came_before(raw: object) -> None:
    for param in PARAMS:
        cache: dict[object, object] = {}
        for earlier in (["1"], ["True"], ("a", 1), "1", "true", "123456"):
            quick_value(param, cache, earlier)
        expected = _precise(lambda: read_param(param, raw))  # noqa: B023 - called at once
        assert quick_value(param, cache, raw) == expected
        assert quick_value(param, cache, raw) == expected


def test_quick_ids_are_ids_the_precise_readers_return_unchanged() -> None:
    for raw in [*_texts(3000, seed=1), "C02XK1JH", "C02XK1JHJG5JABC", "C02XK1J"]:
        assert bool(is_device_id(raw)) == (_precise(lambda: read_device_id(raw)) == raw != ""), raw  # noqa: B023
        assert bool(is_serial(raw)) == (_precise(lambda: read_serial(raw)) == raw != ""), raw  # noqa: B023


def _outcome(path: Path, **options: Any) -> tuple[list[Any], str | None]:
    items: list[Any] = []
    try:
        for it in open_manifest(path, **options):
            items.append(it)
    except ManifestError as exc:
        return items, exc.one_line()
    return items, None


def _both_ways(path: Path, monkeypatch: pytest.MonkeyPatch, **options: Any) -> None:
    quick = _outcome(path, **options)
    with monkeypatch.context() as patched:
        patched.setattr(_csv, "quick_rows", lambda *a, **k: lambda cells, line: None)
        patched.setattr(_json, "_quick_item", lambda *a: None)
        precise = _outcome(path, **options)
    assert quick == precise
    for fast, slow in zip(quick[0], precise[0], strict=True):
        assert list(fast.params.items()) == list(slow.params.items())  # same order too


GOOD: dict[str, list[str]] = {  # valid cells, some only after trimming or changing case
    "device_id": ["", UUID1, UUID1.upper(), f" {UUID1} "],
    "serial_number": [SERIAL, SERIAL.lower(), f" {SERIAL}"],
    "message": ["Call IT", "+1 555 0100", "- back by Monday", "'+1 555 0100", " padded ", ""],
    "asset_tag": ["000123", "A-1", "null", "CLEAR!", "x" * 255],
    "tags": ["Finance;London", "a; b ;a", "null", "t"],
    "pin": ["012345"],
    "note": ["", "anything", "=1"],
}
BAD = [  # cells that break some rule, or not
    "", " ", "x", "=1+1", "@x", "null", "CLEAR!", "a\x7fb", "\u2028", "x" * 256, "1.23E+11",
    "12345", "lokc", "LOCK", "set name", "a;;b", ";", UUID1, SERIAL, SERIAL.lower(), "C02",
]  # fmt: skip
TAKES = {"lock": ["message"], "update": ["asset_tag", "tags"], "erase": ["pin"], "blankpush": []}


def _csv_row(rnd: random.Random, columns: list[str]) -> list[str]:
    action = rnd.choice([*TAKES, *TAKES, ""])
    row = []
    for column in columns:
        if column == "action":
            row.append(action)
        elif column == " ":
            row.append(" " if rnd.random() < 0.9 else "x")
        elif column in ("device_id", "serial_number", "note") or column in TAKES.get(action, []):
            row.append(rnd.choice(GOOD[column]))
        else:
            row.append("")
    if rnd.random() < 0.08:
        row[rnd.randrange(len(row))] = rnd.choice(BAD)
    if rnd.random() < 0.03:
        row.append(rnd.choice(["", "x", " "]))
    if rnd.random() < 0.03:
        row = row[:-1]
    return row


@pytest.mark.parametrize("seed", range(60))
def test_random_csv_reads_the_same_with_and_without_quick_paths(
    seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rnd = random.Random(seed)
    columns = [c for c in GOOD if c == "serial_number" or rnd.random() < 0.8]
    columns.insert(rnd.randint(0, len(columns)), "action")
    if rnd.random() < 0.3:
        columns.insert(rnd.randint(0, len(columns)), " ")  # a column without a header
    rows = [",".join(columns)]
    for _ in range(rnd.randint(1, 40)):
        cells = _csv_row(rnd, columns)
        rows.append(",".join(f'"{c}"' if "," in c else c for c in cells))
    path = write(tmp_path, "m.csv", "\r\n".join(rows) + "\r\n")
    _both_ways(path, monkeypatch)
    _both_ways(path, monkeypatch, default_action="blankpush")


ODD: list[Any] = ["", " ", None, 7, True, [], ["a", 1], [["a"]], {"a": 1}, "=x", "12345", "LOCK"]


def _json_item(rnd: random.Random) -> dict[str, Any]:
    action = rnd.choice([*TAKES, *TAKES, "", None])
    item: dict[str, Any] = {"note": "x"} if rnd.random() < 0.1 else {}
    if rnd.random() < 0.5:
        item["device_id"] = rnd.choice(GOOD["device_id"])
    if rnd.random() < 0.7 or "device_id" not in item:
        item["serial_number"] = rnd.choice(GOOD["serial_number"])
    if action is not None:
        item["action"] = action
    for name in TAKES.get(action or "", []):
        value: Any = rnd.choice(GOOD[name])
        if name == "tags" and rnd.random() < 0.5:
            value = rnd.choice([["Finance", "London"], ["a", " b", "a"], []])
        item[name] = value
    if rnd.random() < 0.3 and any(k in item for k in GOOD):
        nested = {k: item.pop(k) for k in ("message", "asset_tag", "tags", "pin") if k in item}
        item["params"] = nested
        if nested and rnd.random() < 0.1:
            item.update(nested)  # the same parameter twice
    if rnd.random() < 0.1:
        key = rnd.choice(
            ["device_id", "serial_number", "action", "message", "tags", "pin", "bogus"]
        )
        item[key] = rnd.choice(ODD)
    return item


@pytest.mark.parametrize("seed", range(60))
def test_random_json_reads_the_same_with_and_without_quick_paths(
    seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rnd = random.Random(seed)
    items = [_json_item(rnd) for _ in range(rnd.randint(1, 40))]
    lines = [json.dumps(it) for it in items]
    if rnd.random() < 0.2:
        lines.insert(rnd.randint(0, len(lines)), rnd.choice(["", "  ", "\x0c{}", "[1]", "{"]))
    jsonl = write(tmp_path, "m.jsonl", "\n".join(lines) + "\n")
    _both_ways(jsonl, monkeypatch)
    _both_ways(jsonl, monkeypatch, default_action="blankpush")
    defaults = rnd.choice([{}, {}, {"action": "update"}, {"tags": ["x"]}, {"params": {"pin": "1"}}])
    document = write(tmp_path, "m.json", json.dumps({"defaults": defaults, "items": items}))
    _both_ways(document, monkeypatch)


@pytest.mark.parametrize(
    "second",
    [
        {"params": {"message": "a"}, "message": "a"},
        {"message": "a", "params": {"message": "a"}},
        {"params": {"message": "a"}, "note": "x", "bogus": 1},
        {"params": {"message": " "}, "phone_number": "=1"},
    ],
)
def test_a_bad_json_item_after_a_good_one_is_refused(
    second: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = {"serial_number": SERIAL, "action": "lock", "message": "a"}
    lines = [json.dumps(good), json.dumps({"serial_number": SERIAL, "action": "lock", **second})]
    path = write(tmp_path, "m.jsonl", "\n".join(lines) + "\n")
    items, problem = _outcome(path)
    assert len(items) == 1 and problem is not None and f"{path}:2:" in problem
    _both_ways(path, monkeypatch)


@pytest.mark.parametrize("cell", ["x", " x ", "0"])
def test_a_value_under_no_header_after_a_good_row_is_refused(
    cell: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = f"serial_number,,action\r\n{SERIAL},,lock\r\n{SERIAL}, ,lock\r\n{SERIAL},{cell},lock\r\n"
    path = write(tmp_path, "m.csv", text)
    items, problem = _outcome(path)
    assert len(items) == 2 and problem is not None and f"{path}:4: a value in column 2" in problem
    _both_ways(path, monkeypatch)


def test_new_item_sets_every_field_the_dataclass_has() -> None:
    import dataclasses

    from bulkops.manifest._item import Item, new_item

    values = {"line": 7, "device_id": UUID1, "serial_number": SERIAL, "action": "lock"}
    values["params"] = {"message": "Call IT"}
    assert [f.name for f in dataclasses.fields(Item)] == list(values)  # a new field: set it too
    assert new_item(**values) == Item(**values)
