"""The value rules, one kind at a time, as tables of what is accepted and what is refused."""

from __future__ import annotations

import pytest

from bulkops.actions import ACTIONS, Param
from bulkops.manifest._values import (
    ABSENT,
    Invalid,
    formula_problem,
    read_device_id,
    read_param,
    read_serial,
)

from .util import UUID1


def _param(action: str, name: str) -> Param:
    param = ACTIONS[action].param(name)
    assert param is not None
    return param


MESSAGE = _param("lock", "message")
PIN = _param("erase", "pin")
ENABLE = _param("remotedesktop", "enable")
TAGS = _param("update", "tags")
USER = _param("update", "user")
BLUEPRINT = _param("update", "blueprint")
BLUEPRINT_ID = _param("update", "blueprint_id")
ASSET_TAG = _param("update", "asset_tag")
DEVICE_NAME = _param("setname", "device_name")


def _refused(param: Param, raw: object) -> str:
    with pytest.raises(Invalid) as caught:
        read_param(param, raw)
    return caught.value.message + " | " + caught.value.hint


@pytest.mark.parametrize("raw", ["", "   ", "\t"])
def test_blank_leaves_alone(raw: str) -> None:
    assert read_param(ASSET_TAG, raw) is ABSENT
    assert read_param(MESSAGE, raw) is ABSENT


@pytest.mark.parametrize("raw", ["null", "NULL", " Null ", "CLEAR!", "clear!", None])
def test_clear_markers_clear_clearable_params(raw: str | None) -> None:
    assert read_param(ASSET_TAG, raw) is None
    assert read_param(USER, raw) is None
    assert read_param(TAGS, raw) is None


@pytest.mark.parametrize("param", [MESSAGE, PIN, ENABLE, BLUEPRINT, DEVICE_NAME])
@pytest.mark.parametrize("raw", ["null", "CLEAR!", None])
def test_clear_markers_are_refused_elsewhere(param: Param, raw: str | None) -> None:
    # Review: "leave it blank to keep the current value" was a device field's wording, shown
    # for an action's parameter too (a restart's notify_user: null).
    said = _refused(param, raw)
    assert f"{param.name} cannot be cleared (null, CLEAR!) | leave it blank or out" in said


def test_empty_json_list_clears_tags() -> None:
    assert read_param(TAGS, []) is None


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("true", True),
        ("TRUE", True),
        ("Yes", True),
        ("y", True),
        ("1", True),
        (True, True),
        ("false", False),
        ("FALSE", False),
        ("no", False),
        ("N", False),
        ("0", False),
        (False, False),
    ],
)
def test_bool_accepts(raw: object, value: bool) -> None:
    assert read_param(ENABLE, raw) is value


@pytest.mark.parametrize("raw", ["maybe", "on", "2", "truee", 1, 0, "t"])
def test_bool_refuses(raw: object) -> None:
    assert "true or false" in _refused(ENABLE, raw)


@pytest.mark.parametrize(
    ("raw", "value"), [("123456", "123456"), ("012345", "012345"), (987654, "987654")]
)
def test_pin_accepts_six_digits(raw: object, value: str) -> None:
    assert read_param(PIN, raw) == value


@pytest.mark.parametrize("raw", ["123456.0", "1.23E+05", "1,23457E+05", "123456,00"])
def test_pin_changed_by_excel(raw: str) -> None:
    assert "looks like Excel changed it" in _refused(PIN, raw)


def test_pin_that_lost_its_leading_zero() -> None:
    message = _refused(PIN, "12345")
    assert "has 5 digits" in message and "Excel dropped the zero" in message


@pytest.mark.parametrize("raw", ["1234567", "12345a", "12 3456", "١٢٣٤٥٦"])
def test_pin_refuses_other_text(raw: str) -> None:
    assert "6 digits" in _refused(PIN, raw)


@pytest.mark.parametrize("raw", [12345, 1234567, 123456.0, True, [1]])
def test_pin_refuses_json_numbers_that_are_not_six_digits(raw: object) -> None:
    assert "6 digits" in _refused(PIN, raw)


def test_uuid_is_lowered() -> None:
    assert read_param(BLUEPRINT_ID, UUID1.upper()) == UUID1


@pytest.mark.parametrize(
    "raw", ["0a1b2c3d00004000800000112233aabb", "{" + UUID1 + "}", UUID1[:-1], 7]
)
def test_uuid_refuses(raw: object) -> None:
    with pytest.raises(Invalid):
        read_param(BLUEPRINT_ID, raw)


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("Finance", ("Finance",)),
        ("Finance;London", ("Finance", "London")),
        (" Finance ; London ; ", ("Finance", "London")),
        ("a;b;a", ("a", "b")),
        ("a|b", ("a|b",)),
        (["Finance", " London "], ("Finance", "London")),
        (["a,b"], ("a,b",)),  # a JSON list says what a tag is: a comma there is meant
        ("Finance;London", ("Finance", "London")),
    ],
)
def test_tags_split_on_semicolon(raw: object, value: tuple[str, ...]) -> None:
    assert read_param(TAGS, raw) == value


@pytest.mark.parametrize(
    "raw", [";", " ; ; ", ["", " "], ["a", 3], "ok;=cmd|x", {"a": 1}, "vip,finance", "a;b,c"]
)
def test_tags_refuse(raw: object) -> None:
    with pytest.raises(Invalid):
        read_param(TAGS, raw)


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (UUID1.upper(), UUID1),
        ("jane.doe@example.com", "jane.doe@example.com"),
        ("J@ex.co.uk", "J@ex.co.uk"),
    ],
)
def test_user_is_a_uuid_or_an_email(raw: str, value: str) -> None:
    assert read_param(USER, raw) == value


@pytest.mark.parametrize(
    "raw", ["jane", "jane@", "@example.com", "jane@example", "a b@c.d", "a@b@c.d"]
)
def test_user_refuses(raw: str) -> None:
    assert "neither a user UUID nor an email" in _refused(USER, raw)


def test_text_length_and_control_characters() -> None:
    assert read_param(DEVICE_NAME, "x" * 255) == "x" * 255
    assert "256 characters long; at most 255" in _refused(DEVICE_NAME, "x" * 256)
    assert read_param(MESSAGE, "a\tb") == "a\tb"
    for control in ("\n", "\r", "\x00", "\x1b", "\x7f", "\x85", "\u2028"):
        assert "holds the character" in _refused(MESSAGE, f"a{control}b")


def test_text_in_json_must_be_a_string() -> None:
    assert "expected text, got a number" in _refused(ASSET_TAG, 123)
    assert "expected text, got a list" in _refused(MESSAGE, ["a"])
    assert "expected text, got a boolean" in _refused(BLUEPRINT, True)


@pytest.mark.parametrize(
    "text",
    [
        "+1 555 0100",
        "+1 (555) 010-0199",
        "+44 20 7946 0958",
        "-5",
        "-",
        "+",
        "- back by Monday",
        "+ and one more thing",
        "Call IT = now",
        "me@example.com",
        "a-b",
    ],
)
def test_plain_data_is_not_a_formula(text: str) -> None:
    assert formula_problem(text) is None
    assert read_param(MESSAGE, text) == text


@pytest.mark.parametrize(
    "text",
    [
        "=1+1",
        '=HYPERLINK("http://x","y")',
        "@SUM(A1)",
        "@",
        "+cmd|' /C calc'!A0",
        "-cmd|' /C calc'!A0",
        "-2+3+cmd|' /C calc'!A0",
        '+HYPERLINK("http://x")',
        "-(1)",
        '+ HYPERLINK("http://x")',
        "- a | b",
        "+1 555 0100 ext 12",
    ],
)
def test_formulas_are_refused(text: str) -> None:
    assert formula_problem(text) is not None
    for param in (MESSAGE, DEVICE_NAME, ASSET_TAG, BLUEPRINT):
        assert "a spreadsheet would run it as a formula" in _refused(param, text)


@pytest.mark.parametrize("text", ["'=1+1", "'+1 555 0100", "'-5", "'@home"])
def test_an_apostrophe_before_a_formula_sign_is_dropped(text: str) -> None:
    stripped = text[1:]
    if formula_problem(stripped) is None:
        assert read_param(MESSAGE, text) == stripped
    else:
        assert "formula" in _refused(MESSAGE, text)
    assert read_param(MESSAGE, "'quoted'") == "'quoted'"


@pytest.mark.parametrize(
    ("raw", "value"),
    [(UUID1, UUID1), (UUID1.upper(), UUID1), (f"  {UUID1} ", UUID1), ("", None), (None, None)],
)
def test_device_id(raw: str | None, value: str | None) -> None:
    assert read_device_id(raw) == value


def test_device_id_that_is_a_serial_says_so() -> None:
    with pytest.raises(Invalid) as caught:
        read_device_id("C02XK1JHJG5J")
    assert "is not a UUID" in caught.value.message
    assert "serial_number column" in caught.value.hint


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("c02xk1jhjg5j", "C02XK1JHJG5J"),
        (" C02XK1JHJG5J ", "C02XK1JHJG5J"),
        ("12345678", "12345678"),
        ("ABCDEFGHIJKLMN", "ABCDEFGHIJKLMN"),
        ("", None),
        (None, None),
    ],
)
def test_serial(raw: str | None, value: str | None) -> None:
    assert read_serial(raw) == value


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("1.23457E+11", "scientific notation: Excel turned the serial into a number"),
        ("4.5E+10", "scientific notation"),
        ("1,23457E+11", "scientific notation"),
        ("4.5e10", "scientific notation"),
        ("123456789012.0", "decimal number: Excel turned the serial into a number"),
        ("1234567", "has 7 characters"),
        ("ABCDEFGHIJKLMNO", "has 15 characters"),
        ("C02-XK1JHJG5J", "U+002D '-'"),
        ("C02XK1JH\u200bJG5J", "U+200B"),
    ],
)
def test_serial_refused(raw: str, fragment: str) -> None:
    with pytest.raises(Invalid) as caught:
        read_serial(raw)
    text = caught.value.message + " | " + caught.value.hint
    assert fragment in text
    if "Excel" in fragment:
        assert "format the column as Text" in caught.value.hint
