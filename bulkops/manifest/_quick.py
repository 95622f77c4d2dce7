"""Fast paths for the common row: ids already in canonical form, parameter values already read.

A quick check only ever *accepts*: when a value is not plainly valid it answers :data:`UNSURE`
(or ``None``), and the reader hands the whole row to the precise path, which either accepts it too
or words the error. So every error message still comes from one place, and a row read quickly is
the same item the precise path would have built.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from bulkops.actions import Param, ParamKind
from bulkops.manifest._values import _SERIAL, _UUID, ABSENT, CLEAR_MARKERS, Invalid, read_param

__all__ = ["UNSURE", "is_device_id", "is_serial", "quick_value"]

UNSURE: Final = object()
"""The value needs the precise path: it is invalid, or too unusual to judge here."""

_Match = Callable[[str], "re.Match[str] | None"]

is_device_id: Final[_Match] = _UUID.fullmatch
"""A UUID as :func:`read_device_id` returns it (trimmed, lower case), so it is returned as is."""

is_serial: Final[_Match] = _SERIAL.fullmatch
"""A serial number as :func:`read_serial` returns it (trimmed, upper case)."""

_TEXT, _BLUEPRINT_NAME = ParamKind.STR, ParamKind.BLUEPRINT_NAME
_NOT_FIRST = " '=@+-"  # white space, the mark that text is not a formula, a formula
_CACHE_SIZE = 4096


def quick_value(param: Param, cache: dict[object, object], raw: object) -> object:
    """``read_param(param, raw)``, remembered per text or list of texts; :data:`UNSURE` if invalid.

    Text is the cache key as is. A JSON list (tags) is keyed by its tuple: only lists of text are
    ever valid, and a tuple of texts equals no tuple holding anything else, so a list that would
    be refused never meets a cached value. Other JSON values (numbers, booleans) are not cached:
    ``True == 1`` would let one stand for the other.
    """
    key: object = None
    if isinstance(raw, str):
        key = raw
    elif isinstance(raw, list):
        key = tuple(raw)
    if key is not None:
        try:
            value = cache.get(key, ABSENT)
        except TypeError:  # a list holding a list or an object: not hashable
            key = None
        else:
            if value is not ABSENT:
                return value
    value = _read(param, raw)
    if value is UNSURE:
        return UNSURE
    if key is not None and value is not ABSENT:
        if len(cache) >= _CACHE_SIZE:
            cache.clear()
        cache[key] = value
    return value


def _read(param: Param, raw: object) -> object:
    """``read_param(param, raw)``, plain text at once; :data:`UNSURE` when it is invalid."""
    if (
        type(raw) is str
        and (param.kind is _TEXT or param.kind is _BLUEPRINT_NAME)
        and raw
        and len(raw) <= param.max_len
        and raw.isprintable()  # no control character; of the white space, only " "
        and raw[0] not in _NOT_FIRST
        and raw[-1] != " "
        and raw.lower() not in CLEAR_MARKERS
    ):
        return raw  # trimmed, not a formula, no "'" to drop: what read_param returns for it
    try:
        return read_param(param, raw)
    except Invalid:
        return UNSURE
