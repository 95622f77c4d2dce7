"""Cell and JSON values to typed values, one rule per :class:`~bulkops.actions.ParamKind`.

A value is a CSV cell (always text) or a JSON value. Text is trimmed first. Then:

- blank text means *leave alone*: the parameter is not given (:data:`ABSENT`);
- ``null`` or ``CLEAR!`` (any case), JSON ``null``, or an empty JSON list for tags, means *clear*:
  the parameter is given as ``None``; only parameters marked ``clearable`` accept it;
- otherwise the kind's rule applies:

  ============== ===========================================================================
  text           at most ``max_len`` characters; no control characters but tab; no formulas
  true/false     ``true/false/yes/no/y/n/1/0`` in any case, or a JSON boolean
  6 digits       exactly six digits, kept as text; a JSON integer of six digits is accepted
  UUID           8-4-4-4-12 hex digits in any case, returned in lower case
  tags           several tags in one cell separated by ``;`` (``Finance; London``), or a
                 JSON list of strings; each tag is text; duplicates are dropped; a comma in a
                 cell (``vip,finance``) is refused: it meant two tags
  blueprint name non-empty text
  user           a UUID (returned in lower case) or an email address
  ============== ===========================================================================

**Apostrophes.** A leading ``'`` before ``=``, ``+``, ``-`` or ``@`` is dropped: it is how
spreadsheets, and bulkops' own reports (``failed.csv``), mark such text as not a formula.

**Formulas.** Text that a spreadsheet would run as a formula is refused, so that a value sent to
the API cannot come back as an attack when someone opens an export in Excel. Text may not start
with ``=`` or ``@``. It may start with ``+`` or ``-`` only when a digit follows and the rest is
digits, spaces and ``( ) . - /`` (numbers and phone numbers: ``+1 (555) 010-0199``, ``-5``), or
when a space follows and the text holds no ``(`` and no ``|`` (``- back by Monday``). So
``-2+3+cmd|' /C calc'!A0``, ``+HYPERLINK(…)`` and ``-(1)`` are refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

from bulkops.actions import Param, ParamKind

__all__ = [
    "ABSENT",
    "CLEAR_MARKERS",
    "TAG_SEPARATOR",
    "Invalid",
    "formula_problem",
    "quote",
    "read_device_id",
    "read_param",
    "read_serial",
]

CLEAR_MARKERS: Final = frozenset({"null", "clear!"})
TAG_SEPARATOR: Final = ";"
ABSENT: Final = object()
"""Returned for a blank value: the parameter is left alone."""

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_SERIAL = re.compile(r"[A-Z0-9]{8,14}")
_SCIENTIFIC = re.compile(r"[0-9]+(?:[.,][0-9]+)?E[+-]?[0-9]+", re.IGNORECASE)
_DECIMAL = re.compile(r"[0-9]+[.,][0-9]*|[.,][0-9]+")
_SIX_DIGITS = re.compile(r"[0-9]{6}")
_DIGITS = re.compile(r"[0-9]+")
_EMAIL = re.compile(r"[^@\s,;<>\"]+@[^@\s,;<>\".]+(?:\.[^@\s,;<>\".]+)+")
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
_NUMBERISH = re.compile(r"[+-] ?[0-9][0-9 ().\-/]*")
_BOOLS = {
    "true": True,
    "yes": True,
    "y": True,
    "1": True,
    "false": False,
    "no": False,
    "n": False,
    "0": False,
}
_ESCAPED = frozenset("=+-@")
_EXCEL_TEXT = "format the column as Text in Excel, type the values again and re-export the CSV"


class Invalid(Exception):
    """A value breaks its rule; the reader adds file, line and column."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def quote(value: object, limit: int = 40) -> str:
    """``repr`` of a value, shortened: safe inside a one-line message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "…" + text[-3:]


def read_device_id(raw: object) -> str | None:
    """A device id in canonical form, ``None`` when blank."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise Invalid(f"expected a UUID in quotes, got {_json_type(raw)}")
    text = raw.strip()
    if not text:
        return None
    low = text.lower()
    if _UUID.fullmatch(low):
        return low
    hint = "device_id is the Kandji device UUID, like 0a1b2c3d-0000-4000-8000-00112233aabb"
    if _SERIAL.fullmatch(text.upper()):
        hint = "this looks like a serial number: put it in a serial_number column"
    raise Invalid(f"{quote(text)} is not a UUID", hint)


def read_serial(raw: object) -> str | None:
    """A serial number in canonical (upper) case, ``None`` when blank."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise Invalid(f"expected the serial number in quotes, got {_json_type(raw)}")
    text = raw.strip().upper()
    if not text:
        return None
    if _SERIAL.fullmatch(text):
        return text
    if _SCIENTIFIC.fullmatch(text):
        message = f"{quote(text)} is in scientific notation: Excel turned the serial into a number"
        raise Invalid(message, _EXCEL_TEXT)
    if _DECIMAL.fullmatch(text) and _DIGITS.fullmatch(text.replace(".", "").replace(",", "")):
        message = f"{quote(text)} is a decimal number: Excel turned the serial into a number"
        raise Invalid(message, _EXCEL_TEXT)
    bad = next((c for c in text if not ("A" <= c <= "Z" or "0" <= c <= "9")), None)
    detail = f"it holds {_describe(bad)}" if bad else f"it has {len(text)} characters"
    raise Invalid(
        f"{quote(text)} is not a serial number ({detail})",
        "a serial number is 8 to 14 letters and digits, like C02XK1JHJG5J",
    )


def read_param(param: Param, raw: object) -> object:
    """The typed value of ``raw`` for ``param``: a value, ``None`` (clear) or :data:`ABSENT`."""
    if raw is None:
        return _clear(param)
    if isinstance(raw, str):
        text = raw.strip()
        if not text:
            return ABSENT
        if text.lower() in CLEAR_MARKERS:
            return _clear(param)
        if text[0] == "'" and text[1:2] in _ESCAPED:
            text = text[1:]
        return _TEXT_RULES[param.kind](param, text)
    return _JSON_RULES[param.kind](param, raw)


def formula_problem(text: str) -> str | None:
    """Why a spreadsheet would run ``text`` as a formula, or ``None`` when it is plainly data."""
    first = text[0]
    if first in "=@":
        return f"starts with {first!r}"
    if first in "+-" and len(text) > 1 and not _NUMBERISH.fullmatch(text):
        if not text[1].isspace():
            return f"starts with {first!r} followed by {text[1]!r}"
        if "(" in text or "|" in text:
            return f"starts with {first!r} and holds '(' or '|'"
    return None


def _clear(param: Param) -> object:
    """``None``, the value that clears ``param``, if it may be cleared."""
    if not param.clearable:
        raise Invalid(
            f"{param.name} cannot be cleared (null, CLEAR!)",
            "leave it blank or out: it is then not sent",
        )
    return None


def _text(param: Param, text: str) -> str:
    if len(text) > param.max_len:
        raise Invalid(f"{len(text)} characters long; at most {param.max_len} are allowed")
    control = _CONTROL.search(text)
    if control is not None:
        raise Invalid(
            f"holds {_describe(control.group())}",
            "put the text on one line, without control characters",
        )
    formula = formula_problem(text)
    if formula is not None:
        raise Invalid(
            f"{quote(text)} {formula}: a spreadsheet would run it as a formula",
            "remove the leading character, or rephrase the text",
        )
    return text


def _bool(param: Param, text: str) -> bool:
    value = _BOOLS.get(text.lower())
    if value is None:
        raise Invalid(f"{quote(text)} is not true or false", "write true or false, yes or no")
    return value


def _pin(param: Param, text: str) -> str:
    if _SIX_DIGITS.fullmatch(text):
        return text
    if _SCIENTIFIC.fullmatch(text) or _DECIMAL.fullmatch(text):
        raise Invalid(f"{quote(text)} is not 6 digits: it looks like Excel changed it", _EXCEL_TEXT)
    if _DIGITS.fullmatch(text) and len(text) < 6:
        raise Invalid(
            f"{quote(text)} has {len(text)} digits; a PIN has exactly 6",
            "if the PIN starts with 0, Excel dropped the zero: " + _EXCEL_TEXT,
        )
    raise Invalid(f"{quote(text)} is not a PIN of exactly 6 digits")


def _uuid(param: Param, text: str) -> str:
    low = text.lower()
    if not _UUID.fullmatch(low):
        raise Invalid(f"{quote(text)} is not a UUID")
    return low


def _tags(param: Param, text: str) -> tuple[str, ...]:
    if "," in text:  # "vip,finance" quoted in a CSV cell: meant as two tags, not one
        fixed = TAG_SEPARATOR.join(t.strip() for t in text.split(","))
        raise Invalid(
            f"{quote(text)} holds a comma",
            f"tags in one cell are separated by ';': write {quote(fixed)}; a tag name with a "
            "comma is refused as a likely mistake",
        )
    return _tag_list(param, text.split(TAG_SEPARATOR))


def _tag_list(param: Param, pieces: list[Any]) -> tuple[str, ...]:
    tags: dict[str, None] = {}
    for piece in pieces:
        if not isinstance(piece, str):
            raise Invalid(f"a tag must be text, got {_json_type(piece)}")
        tag = piece.strip()
        if tag:
            tags[_text(param, tag)] = None
    if not tags:
        raise Invalid(
            "holds no tag names", "separate tags with ';'; to remove all tags write CLEAR!"
        )
    return tuple(tags)


def _user(param: Param, text: str) -> str:
    low = text.lower()
    if _UUID.fullmatch(low):
        return low
    if len(text) <= 254 and _EMAIL.fullmatch(text):
        return text
    raise Invalid(f"{quote(text)} is neither a user UUID nor an email address")


def _json_not_text(param: Param, raw: object) -> object:
    raise Invalid(f"expected text, got {_json_type(raw)}", "put the value in double quotes")


def _json_bool(param: Param, raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    raise Invalid(f"expected true or false, got {_json_type(raw)}")


def _json_pin(param: Param, raw: object) -> str:
    if isinstance(raw, int) and not isinstance(raw, bool) and 100_000 <= raw <= 999_999:
        return str(raw)
    raise Invalid(
        f"expected 6 digits in quotes, got {_json_type(raw)} {quote(raw)}",
        'write the PIN as a string, like "012345"',
    )


def _json_tags(param: Param, raw: object) -> object:
    if isinstance(raw, list):
        return _clear(param) if not raw else _tag_list(param, raw)
    raise Invalid(f"expected a list of tag names, got {_json_type(raw)}")


def _json_type(raw: object) -> str:
    names = {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        list: "a list",
        dict: "an object",
    }
    return names.get(type(raw), type(raw).__name__)


def _describe(char: str) -> str:
    return f"the character U+{ord(char):04X}" + (f" {char!r}" if char.isprintable() else "")


Rule = Callable[[Param, Any], object]

_TEXT_RULES: dict[ParamKind, Rule] = {
    ParamKind.STR: _text,
    ParamKind.BOOL: _bool,
    ParamKind.PIN6: _pin,
    ParamKind.UUID: _uuid,
    ParamKind.TAGS: _tags,
    ParamKind.BLUEPRINT_NAME: _text,
    ParamKind.USER_REF: _user,
}
_JSON_RULES: dict[ParamKind, Rule] = {
    ParamKind.STR: _json_not_text,
    ParamKind.BOOL: _json_bool,
    ParamKind.PIN6: _json_pin,
    ParamKind.UUID: _json_not_text,
    ParamKind.TAGS: _json_tags,
    ParamKind.BLUEPRINT_NAME: _json_not_text,
    ParamKind.USER_REF: _json_not_text,
}
