"""JSON and JSON Lines manifests: items as objects.

An item is ``{"device_id" | "serial_number": …, "action": …, "params": {…}}``; parameters may
also sit at the item's top level (the same one in both places is an error). Keys are exact. The
informational keys ``note``, ``comment``, ``name`` and ``platform`` are ignored.

In a JSON document, ``defaults`` (an object with ``action`` and parameters, flat or under
``params``) is merged under every item: the item's own value wins, and a default parameter must
be one the item's action takes. The action comes from the item, else ``defaults``, else the
caller's default action.

An item's ``line`` (its key in the run and its row in the reports) is the line it starts on; in
a minified document, where items share a line, each is numbered on from the one before (one line
of three items: 1, 2, 3), so every item keeps a line of its own. Errors cite the real line.

JSON Lines hold one item per line; blank lines are skipped; ``#`` comment lines are errors.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from bulkops.actions import Action
from bulkops.errors import ManifestError
from bulkops.manifest._columns import ACTION, ID_COLUMNS, INFO_COLUMNS, PARAM_NAMES, suggest
from bulkops.manifest._item import Item
from bulkops.manifest._jsonscan import JsonScan
from bulkops.manifest._limits import MAX_LINE_CHARS
from bulkops.manifest._lines import LineTooLong, iter_lines
from bulkops.manifest._row import Field, RowBuilder
from bulkops.manifest._text import DecodeProblem, iter_text

__all__ = ["iter_json", "iter_jsonl"]

_EXAMPLE = 'an item looks like {"serial_number": "C02XK1JHJG5J", "action": "lock"}'
_PARAM_KEYS = tuple(sorted(PARAM_NAMES))
_ITEM_KEYS = (*ID_COLUMNS, ACTION, "params", *_PARAM_KEYS)


@dataclass(frozen=True, slots=True)
class _Defaults:
    action: Action | None = None
    params: Mapping[str, tuple[str, object]] = field(default_factory=dict)


_NO_DEFAULTS = _Defaults()
_BLANK = object()
_SKIP, _PARAM, _NESTED = object(), object(), object()
_ROLES = {
    **{key: _PARAM for key in PARAM_NAMES},
    "params": _NESTED,
    **{key: _SKIP for key in (*ID_COLUMNS, ACTION, *INFO_COLUMNS)},  # as _params: these first
}
"""What each key of a plainly valid item is; any other key is left to the precise path."""


def iter_json(path: Path, label: str, *, default_action: Action | None) -> Iterator[Item]:
    """The items of a JSON document, streamed from its ``items`` list."""
    builder = RowBuilder(label, default_action=default_action)
    scan = JsonScan(path, label)
    defaults: _Defaults | None = None
    last = 0
    try:
        for line, value in scan:
            if defaults is None:
                if scan.defaults is not None:  # one action for every row: never the last of two
                    at, given = scan.defaults
                    _no_key_twice(scan.defaults_text, given, at, builder, where='"defaults"')
                defaults = _read_defaults(scan.defaults, builder)
            try:
                _no_key_twice(scan.last_text, value, line, builder)
                item = _quick_item(value, line, defaults, builder) or _item(
                    value, line, defaults, builder
                )
            except ManifestError as exc:
                builder.bad_row(exc)
                last = max(last, line)
                continue
            if item.line <= last:  # items sharing a line (minified JSON): numbered on from there
                item = replace(item, line=last + 1)
            last = item.line
            yield item
    except ManifestError as exc:  # the document cannot be read on
        builder.stop(exc)
    builder.stop()
    if defaults is None:
        builder.fail("no items", line=None, hint="the items list is empty")


def iter_jsonl(path: Path, label: str, *, default_action: Action | None) -> Iterator[Item]:
    """The items of a JSON Lines file."""
    builder = RowBuilder(label, default_action=default_action)
    lines = iter_lines(iter_text(path, label))
    number = 0
    count = 0
    loads, bad_json = orjson.loads, orjson.JSONDecodeError
    try:
        for line in lines:
            number += 1
            try:
                try:
                    obj = loads(line)  # JSON white space only: the value of the trimmed line
                except bad_json:
                    obj = _odd_line(line, number, builder)
                    if obj is _BLANK:
                        continue
                _no_key_twice(line, obj, number, builder)
                item = _quick_item(obj, number, _NO_DEFAULTS, builder)
                if item is None:
                    item = _item(obj, number, _NO_DEFAULTS, builder)
            except ManifestError as exc:
                builder.bad_row(exc)
                continue
            yield item
            count += 1
    except LineTooLong:
        mib = MAX_LINE_CHARS // (1024 * 1024)
        error = ManifestError(f"line is longer than {mib} MiB", path=label, line=number + 1)
        builder.stop(error)
    except DecodeProblem as problem:
        error = ManifestError(problem.message, path=label, line=number + 1, hint=problem.hint)
        builder.stop(error)
    except ManifestError as exc:  # too many bad lines
        builder.stop(exc)
    builder.stop()
    if count == 0:
        builder.fail("empty manifest", line=None, hint="the file holds no items")


def _no_key_twice(
    text: str, obj: Any, line: int, builder: RowBuilder, *, where: str = "this item"
) -> None:
    """Refuse an item that gives one key twice: JSON readers keep the last one, silently, so
    ``{"serial_number": A, …, "serial_number": B}`` would send to B (review).

    Each key needs a colon after it: with no more colons in the text than keys in the item
    (with its ``params``), no key can be there twice, and the usual row costs two counts.
    """
    if type(obj) is not dict:
        return
    params = obj.get("params")
    if text.count(":") <= len(obj) + (len(params) if type(params) is dict else 0):
        return
    twice: list[str] = []

    def pairs(found: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in found:
            if key in seen:
                twice.append(key)
            seen.add(key)
        return dict(found)

    with contextlib.suppress(ValueError):
        json.loads(text, object_pairs_hook=pairs)
    if twice:
        builder.fail(
            f"the key {twice[0]!r} appears twice in {where}",
            line=line,
            hint="keep one of them: a JSON reader would silently keep only the last",
        )


def _odd_line(line: str, number: int, builder: RowBuilder) -> Any:
    """A line orjson refused as it is: blank (:data:`_BLANK`), a comment, or its trimmed JSON."""
    text = line.strip()
    if not text:
        return _BLANK
    if text[0] == "#":
        builder.fail(
            "comment lines are not allowed in JSON Lines",
            line=number,
            hint='delete the line, or keep the remark in a "note" key of an item',
        )
    return _parse(text, number, builder, raw=line)


def _parse(text: str, line: int, builder: RowBuilder, *, raw: str | None = None) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        indent = len(raw) - len(raw.lstrip()) if raw is not None else 0  # count from its start
        builder.fail(
            f"invalid JSON at character {exc.colno + indent}: {exc.msg}",
            line=line + exc.lineno - 1,
            hint="check that line's quotes, commas and braces; each line holds one JSON object",
        )


def _read_defaults(found: tuple[int, Any] | None, builder: RowBuilder) -> _Defaults:
    if found is None:
        return _NO_DEFAULTS
    line, obj = found
    if not isinstance(obj, dict):
        builder.fail('"defaults" must be an object', line=line, hint='like {"action": "lock"}')
    for key in ID_COLUMNS:
        if key in obj:
            builder.fail(f"defaults cannot name a device ({key})", line=line, column=key)
    action = obj.get(ACTION)
    if action is not None:
        action = builder.action(action, line=line, column="defaults.action")
    params = {
        name: (f"{column} (from defaults)", raw)
        for name, (column, raw) in _params(obj, line, builder).items()
    }
    return _Defaults(action, params)


def _item(obj: Any, line: int, defaults: _Defaults, builder: RowBuilder) -> Item:
    if not isinstance(obj, dict):
        builder.fail("an item must be a JSON object", line=line, hint=_EXAMPLE)
    params = _params(obj, line, builder)
    raw_action = obj.get(ACTION)
    blank = raw_action is None or (isinstance(raw_action, str) and not raw_action.strip())
    if blank and defaults.action is not None:
        action = defaults.action
    else:
        action = builder.action(raw_action, line=line, column=ACTION)
    fields: list[Field] = [(name, column, raw) for name, (column, raw) in params.items()]
    fields.extend(
        (name, column, raw) for name, (column, raw) in defaults.params.items() if name not in params
    )
    return builder.build(
        line=line,
        device_id=obj.get(ID_COLUMNS[0]),
        serial_number=obj.get(ID_COLUMNS[1]),
        id_columns=ID_COLUMNS,
        action=action,
        fields=fields,
    )


def _quick_item(obj: Any, line: int, defaults: _Defaults, builder: RowBuilder) -> Item | None:
    """The item of a plainly valid object, else ``None``: then :func:`_item` words the error."""
    if type(obj) is not dict:
        return None
    found: dict[str, object] = {}
    for key, value in obj.items():
        role = _ROLES.get(key)
        if role is _PARAM:
            if key in found:
                return None
            found[key] = value
        elif role is _NESTED:
            if type(value) is not dict:
                return None
            for name, raw in value.items():
                if name in found or name not in PARAM_NAMES:
                    return None
                found[name] = raw
        elif role is None:
            return None
    raw_action = obj.get(ACTION)
    action = builder.actions.get(raw_action) if type(raw_action) is str else None
    if action is None:
        if raw_action is not None and (type(raw_action) is not str or raw_action.strip()):
            return None
        action = defaults.action if defaults.action is not None else builder.default_action
        if action is None:
            return None
    fields: Iterable[tuple[str, object]] = found.items()
    if defaults.params:
        fields = [*fields, *((n, raw) for n, (_, raw) in defaults.params.items() if n not in found)]
    return builder.quick(line, obj.get(ID_COLUMNS[0]), obj.get(ID_COLUMNS[1]), action, fields)


def _params(obj: dict[str, Any], line: int, builder: RowBuilder) -> dict[str, tuple[str, object]]:
    """The parameters of an item or of ``defaults``, by name: ``(key path, raw value)``."""
    found: dict[str, tuple[str, object]] = {}
    for key, value in obj.items():
        if key in ID_COLUMNS or key == ACTION or key in INFO_COLUMNS:
            continue
        if key == "params":
            if not isinstance(value, dict):
                builder.fail('"params" must be an object', line=line, column="params")
            for name, raw in value.items():
                if name not in PARAM_NAMES:
                    _unknown(f"params.{name}", name, _PARAM_KEYS, line, builder)
                _add(found, name, f"params.{name}", raw, line, builder)
        elif key in PARAM_NAMES:
            _add(found, key, key, value, line, builder)
        else:
            _unknown(key, key, _ITEM_KEYS, line, builder)
    return found


def _add(
    found: dict[str, tuple[str, object]],
    name: str,
    column: str,
    raw: object,
    line: int,
    builder: RowBuilder,
) -> None:
    if name in found:
        builder.fail(
            f"{name} is given twice",
            line=line,
            column=column,
            hint="give it either in params or at the item's top level",
        )
    found[name] = (column, raw)


def _unknown(column: str, key: str, valid: tuple[str, ...], line: int, builder: RowBuilder) -> None:
    builder.fail(
        f"unknown key {key!r}",
        line=line,
        column=column,
        hint=suggest(key, valid) + "valid keys: " + ", ".join(valid),
    )
