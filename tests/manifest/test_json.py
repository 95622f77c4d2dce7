"""JSON and JSON Lines: item shapes, defaults, line numbers, and the streaming scanner's corners."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bulkops.manifest import Item

from .util import SERIAL, SERIAL2, UUID1, error, item, read, write


def test_params_nested_or_at_top_level(tmp_path: Path) -> None:
    text = json.dumps(
        {
            "items": [
                {"serial_number": SERIAL, "action": "lock", "params": {"message": "a"}},
                {"serial_number": SERIAL2, "action": "lock", "message": "b", "note": "ignored"},
                {"device_id": UUID1.upper(), "action": "erase", "pin": 123456},
            ]
        },
        indent=2,
    )
    assert read(write(tmp_path, "m.json", text)) == [
        item(3, "lock", message="a"),
        item(10, "lock", SERIAL2, message="b"),
        Item(16, UUID1, None, "erase", {"pin": "123456"}),
    ]


DEFAULTS = {"action": "update", "tags": ["Fleet"], "params": {"asset_tag": "none"}}
ITEMS = [
    {"serial_number": SERIAL},
    {"serial_number": SERIAL2, "asset_tag": "A-1", "tags": None},
    {"serial_number": SERIAL, "action": "setname", "device_name": "Lab 1"},
]


def _expected(first_line: int) -> list[Item]:
    return [
        item(first_line, "update", tags=("Fleet",), asset_tag="none"),
        item(first_line + 1, "update", SERIAL2, asset_tag="A-1", tags=None),
    ]


def _document(defaults_first: bool) -> str:
    items = ",\n".join(json.dumps(i) for i in ITEMS[:2])
    parts = [f'"defaults": {json.dumps(DEFAULTS)}', f'"items": [\n{items}\n]']
    if not defaults_first:
        parts.reverse()
    return "{" + ",\n".join(parts) + "}\n"


@pytest.mark.parametrize("defaults_first", [True, False])
def test_defaults_merge_under_items_wherever_they_are(tmp_path: Path, defaults_first: bool) -> None:
    path = write(tmp_path, "m.json", _document(defaults_first))
    first = 3 if defaults_first else 2
    assert read(path) == _expected(first)


def test_a_default_parameter_must_suit_the_items_action(tmp_path: Path) -> None:
    text = json.dumps({"defaults": DEFAULTS, "items": ITEMS})
    exc = error(write(tmp_path, "m.json", text))
    assert exc.line == 1
    assert exc.column == "tags (from defaults)"
    assert "tags is not a parameter of setname" in exc.message


def test_action_precedence_item_then_defaults_then_caller(tmp_path: Path) -> None:
    text = json.dumps({"defaults": {"action": "restart"}, "items": [{"serial_number": SERIAL}]})
    assert read(write(tmp_path, "a.json", text), default_action="blankpush")[0].action == "restart"
    text = json.dumps([{"serial_number": SERIAL}, {"serial_number": SERIAL, "action": "lock"}])
    actions = [
        it.action for it in read(write(tmp_path, "b.json", text), default_action="blankpush")
    ]
    assert actions == ["blankpush", "lock"]
    exc = error(write(tmp_path, "c.json", text))
    assert "no action for this row" in exc.message
    text = json.dumps(
        {"defaults": {"action": "lock"}, "items": [{"serial_number": SERIAL, "action": " "}]}
    )
    assert read(write(tmp_path, "d.json", text), default_action="blankpush")[0].action == "lock"


def test_defaults_cannot_name_a_device_or_an_unknown_action(tmp_path: Path) -> None:
    text = json.dumps({"defaults": {"serial_number": SERIAL}, "items": [{"serial_number": SERIAL}]})
    assert "defaults cannot name a device" in error(write(tmp_path, "a.json", text)).message
    text = json.dumps({"defaults": {"action": "lokc"}, "items": [{"serial_number": SERIAL}]})
    exc = error(write(tmp_path, "b.json", text))
    assert exc.column == "defaults.action" and "did you mean 'lock'?" in exc.hint


def test_the_word_defaults_inside_a_value_is_not_defaults(tmp_path: Path) -> None:
    text = json.dumps(
        {"items": [{"serial_number": SERIAL, "action": "lock", "message": '"defaults"'}]}
    )
    assert read(write(tmp_path, "m.json", text)) == [item(1, "lock", message='"defaults"')]


def test_an_escaped_defaults_key_after_items_is_refused(tmp_path: Path) -> None:
    item_text = json.dumps({"serial_number": SERIAL, "action": "lock"})
    text = '{"items": [' + item_text + '],\n "def\\u0061ults": {}}'
    exc = error(write(tmp_path, "m.json", text))
    assert exc.line == 2 and '"defaults" must come before "items"' in exc.message


def test_bare_list_minified_on_one_line(tmp_path: Path) -> None:
    text = json.dumps([{"serial_number": s, "action": "blankpush"} for s in (SERIAL, SERIAL2)])
    assert read(write(tmp_path, "m.json", text)) == [
        item(1, "blankpush"),
        item(2, "blankpush", SERIAL2),  # a line of its own: the run's key and report row
    ]


def test_items_sharing_lines_are_numbered_on_and_keep_their_order(tmp_path: Path) -> None:
    a, b, c = (
        {"serial_number": s, "action": "blankpush"} for s in (SERIAL, SERIAL2, "C02ZZ0000003")
    )
    text = "[\n" + json.dumps(a) + ", " + json.dumps(b) + ",\n" + json.dumps(c) + "\n]\n"
    got = [i.line for i in read(write(tmp_path, "m.json", text))]
    assert got == [2, 3, 4]  # a and b start on line 2; c on line 3, after b's 3


def test_strings_with_brackets_quotes_and_escapes(tmp_path: Path) -> None:
    messages = ["a } b", 'x"}]{[', "back\\slash\\", "\u00e9t\u00e9 \U0001f4bb", "}" * 10]
    items = [
        {"serial_number": SERIAL, "action": "lock", "params": {"message": m}} for m in messages
    ]
    text = "[\n" + ",\n".join(json.dumps(i) for i in items) + "\n]"
    assert read(write(tmp_path, "m.json", text)) == [
        item(2 + n, "lock", message=m) for n, m in enumerate(messages)
    ]


def test_ignored_top_level_keys_and_duplicates(tmp_path: Path) -> None:
    item_text = json.dumps({"serial_number": SERIAL, "action": "blankpush"})
    text = '{"$schema": "x", "comment": ["any", {"thing": 1}],\n"items": [' + item_text + "]}"
    assert read(write(tmp_path, "a.json", text)) == [item(2, "blankpush")]
    text = '{"items": [],\n "items": []}'
    exc = error(write(tmp_path, "b.json", text))
    assert exc.line == 2 and "appears twice" in exc.message


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        (
            '{"items": [{"serial_number": "C02XK1JHJG5J", "action": "lock"}',
            1,
            "ends inside the list",
        ),
        (
            '{"items": [\n{"serial_number": "C02XK1JHJG5J", "action": "lock"}\n',
            3,
            "the file ends inside the list opened on line 1",
        ),
        (
            '{"items": [\n{"serial_number": "C02XK1JHJG5J", "action": "lock"} {}]}',
            2,
            "expected ',' or ']'",
        ),
        ('{"items" [] }', 1, "expected ':'"),
        ("{items: []}", 1, "expected a key in double quotes"),
        ("nope", 1, "does not start with { or ["),
        ('{"items": {}}', 1, '"items" must be a list'),
        ('{"items": [\n\n  3\n]}', 3, "an item must be a JSON object"),
        (
            '[\n{"serial_number": "C02XK1JHJG5J", "action": "lock",\n\n "message": "a\x01b"}]',
            4,
            "invalid JSON",
        ),
        (
            '[{"serial_number": "C02XK1JHJG5J", "action": "lock", "params": []}]',
            1,
            '"params" must be an object',
        ),
        (
            '[{"serial_number": "C02XK1JHJG5J", "action": "lock", "params": {"x": 1}}]',
            1,
            "unknown key 'x'",
        ),
        (
            '[{"serial_number": "C02XK1JHJG5J", "action": 7}]',
            1,
            "expected an action name in quotes",
        ),
        ("[]", None, "no items"),
        ("  \n ", None, "empty manifest"),
    ],
)
def test_json_errors(tmp_path: Path, text: str, line: int | None, fragment: str) -> None:
    exc = error(write(tmp_path, "m.json", text))
    assert exc.line == line, exc.one_line()
    assert fragment in exc.one_line()


def test_a_syntax_error_deep_in_an_item_names_its_own_line(tmp_path: Path) -> None:
    text = '[\n {"serial_number": "C02XK1JHJG5J",\n  "action": "lock",\n  "message": nope}\n]'
    exc = error(write(tmp_path, "m.json", text))
    assert exc.line == 4 and "invalid JSON" in exc.message


def test_jsonl_lines_blank_lines_bom_and_crlf(tmp_path: Path) -> None:
    text = (
        "\ufeff"
        + json.dumps({"serial_number": SERIAL, "action": "lock", "message": "a"})
        + "\r\n\r\n   \r\n"
        + json.dumps({"device_id": UUID1, "action": "blankpush", "comment": "x"})
        + "\r\n"
    )
    assert read(write(tmp_path, "m.jsonl", text)) == [
        item(1, "lock", message="a"),
        Item(4, UUID1, None, "blankpush", {}),
    ]


def test_jsonl_has_no_defaults_and_takes_the_callers_action(tmp_path: Path) -> None:
    path = write(tmp_path, "m.ndjson", json.dumps({"serial_number": SERIAL}) + "\n")
    assert read(path, default_action="blankpush") == [item(1, "blankpush")]
    text = json.dumps({"defaults": {"action": "lock"}, "items": []}) + "\n"
    exc = error(write(tmp_path, "n.jsonl", text))
    assert exc.line == 1 and "unknown key 'defaults'" in exc.message


def test_jsonl_bad_line_after_good_ones(tmp_path: Path) -> None:
    good = json.dumps({"serial_number": SERIAL, "action": "blankpush"})
    path = write(tmp_path, "m.jsonl", f"{good}\n{good}\n\n{good[:-1]}\n")
    exc = error(path)
    assert exc.line == 4 and "invalid JSON" in exc.message


def test_a_broken_json_lines_row_names_its_line_and_character(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text(
        '{"device_id": "0a1b2c3d-0000-4000-8000-00112233aabb", "action": "lock"}\n'
        '{"device_id": "0a1b2c3d-0000-4000-8000-00112233aabb" "action": "lock"}\n'
    )
    exc = error(path)
    assert exc.line == 2
    assert "invalid JSON at character 54" in exc.message
    assert "\n" not in str(exc) and "quotes, commas and braces" in str(exc)


def test_the_character_counts_from_the_start_of_an_indented_line(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('   {"a": x}\n')
    assert "invalid JSON at character 10" in error(path).message


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_a_key_given_twice_in_an_item_is_refused_with_its_line(tmp_path: Path, fmt: str) -> None:
    """Review: {"serial_number": A, "action": "blankpush", "serial_number": B} went to B, and a
    second "action" turned a blank push into an erase, silently. Refused, naming the key; a
    colon inside a value (a message) is no such thing."""
    rows = [
        f'{{"serial_number": "{SERIAL}", "action": "lock", "message": "IT: call 555"}}',
        f'{{"serial_number": "{SERIAL}", "action": "blankpush", "serial_number": "{SERIAL2}"}}',
        f'{{"serial_number": "{SERIAL2}", "action": "lock", '
        '"params": {"message": "a", "message": "b"}}',
    ]
    if fmt == "jsonl":
        path = write(tmp_path, "m.jsonl", "\n".join(rows) + "\n")
        lines = (2, 3)
    else:
        path = write(tmp_path, "m.json", '{"items": [\n' + ",\n".join(rows) + "\n]}\n")
        lines = (3, 4)
    caught = error(path)
    text = str(caught)
    said = text.splitlines()
    assert said[0].endswith(
        f"{fmt}:{lines[0]}: the key 'serial_number' appears twice in this item"
        " (keep one of them: a JSON reader would silently keep only the last)"
    )
    assert f"{fmt}:{lines[1]}: the key 'message' appears twice" in said[1], said
    assert said[2].endswith(": 2 bad rows; fix them and run again"), said


@pytest.mark.parametrize("defaults_first", [True, False])
def test_a_key_given_twice_in_the_defaults_is_refused(tmp_path: Path, defaults_first: bool) -> None:
    """Diff review: {"defaults": {"action": "blankpush", "action": "erase"}, …} erased every
    row's device, the last of the two winning, though the same inside an item was refused."""
    defaults = '"defaults": {"action": "blankpush", "action": "erase"}'
    items = f'"items": [{{"serial_number": "{SERIAL}", "pin": "123456"}}]'
    parts = [defaults, items] if defaults_first else [items, defaults]
    path = write(tmp_path, "m.json", "{\n" + ",\n".join(parts) + "\n}\n")
    text = str(error(path))
    assert """the key 'action' appears twice in "defaults\"""" in text, text
    assert f"m.json:{2 if defaults_first else 3}:" in text, text
