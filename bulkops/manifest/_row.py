"""Raw fields of one row to an :class:`Item`: ids, action, parameters and the action's own rules.

The CSV and JSON readers both end here, so a row means the same whatever its format.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NoReturn

from bulkops.actions import ACTIONS, Action, Param
from bulkops.errors import BadRows, ManifestError
from bulkops.manifest._columns import suggest
from bulkops.manifest._item import Item, new_item
from bulkops.manifest._limits import MAX_BAD_ROWS
from bulkops.manifest._quick import UNSURE, is_device_id, is_serial, quick_value
from bulkops.manifest._values import ABSENT, Invalid, quote, read_device_id, read_param, read_serial

__all__ = ["Field", "RowBuilder", "find_action"]

Field = tuple[str, str, object]
"""A parameter as given: its catalogue name, the column (or key) to name in errors, its value."""

_SQUASH = str.maketrans("", "", " _-\t")
_ACTION_LIST = ", ".join(sorted(ACTIONS))
_CACHE_SIZE = 4096


def find_action(raw: str) -> Action:
    """The action ``raw`` names, ignoring case, spaces, ``_`` and ``-``; else :class:`Invalid`."""
    name = raw.strip().lower().translate(_SQUASH)
    action = ACTIONS.get(name)
    if action is None:
        raise Invalid(
            f"unknown action {quote(raw.strip())}",
            suggest(name, ACTIONS) + "valid actions: " + _ACTION_LIST,
        )
    return action


class RowBuilder:
    """Builds items for one manifest file; raises :class:`ManifestError` naming file and line."""

    def __init__(self, label: str, *, default_action: Action | None) -> None:
        self.label = label
        self.default_action = default_action
        # Per parameter, a bounded cache of values already read: jobs repeat messages, tags, names.
        # The quick paths (:mod:`bulkops.manifest._quick`) share these caches.
        self.params: dict[str, dict[str, tuple[Param, dict[object, object]]]] = {
            a.name: {p.name: (p, {}) for p in a.params} for a in ACTIONS.values()
        }
        self.required: dict[str, tuple[str, ...]] = {
            a.name: tuple(p.name for p in a.params if p.required) for a in ACTIONS.values()
        }
        self.actions: dict[str, Action] = {}  # action names as written, filled by action()
        self._bad: list[ManifestError] = []  # the first bad rows' errors
        self._bad_count = 0

    def fail(
        self, message: str, *, line: int | None, column: str | None = None, hint: str = ""
    ) -> NoReturn:
        """Raise the :class:`ManifestError` for this file."""
        raise ManifestError(message, path=self.label, line=line, column=column, hint=hint)

    def bad_row(self, error: ManifestError) -> None:
        """Keep a bad row's error and read on, so that one pass names every bad row.

        Past :data:`MAX_BAD_ROWS` the reading stops: the errors found so far are raised.
        """
        self._bad_count += 1
        if len(self._bad) < BadRows.LISTED:
            self._bad.append(error)
        if self._bad_count >= MAX_BAD_ROWS:
            raise BadRows(self._bad, count=self._bad_count, stopped_at=error.line)

    def stop(self, error: ManifestError | None = None) -> None:
        """At the end of the file, or at an ``error`` that ends the reading: raise what was found.

        Raises the one error found alone, several as :class:`BadRows`; returns if there is none.
        """
        if isinstance(error, BadRows):  # bad_row() gave up reading
            raise error
        if error is not None:
            self._bad_count += 1
            self._bad.append(error)  # the reason the reading ended is always named
        if self._bad_count == 1:
            raise self._bad[0]
        if self._bad_count:
            raise BadRows(self._bad, count=self._bad_count)

    def action(self, raw: object, *, line: int, column: str) -> Action:
        """The row's action: its own value, else the default; an error when neither is given."""
        if isinstance(raw, str) and (known := self.actions.get(raw)) is not None:
            return known
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if self.default_action is None:
                self.fail(
                    "no action for this row",
                    line=line,
                    column=column,
                    hint="fill in the action, or give a default action with --action",
                )
            return self.default_action
        if not isinstance(raw, str):
            self.fail(
                f"expected an action name in quotes, got {quote(raw)}", line=line, column=column
            )
        action = self.actions.get(raw)
        if action is None:
            try:
                action = find_action(raw)
            except Invalid as exc:
                self.fail(exc.message, line=line, column=column, hint=exc.hint)
            if len(self.actions) >= _CACHE_SIZE:
                self.actions.clear()
            self.actions[raw] = action
        return action

    def build(
        self,
        *,
        line: int,
        device_id: object,
        serial_number: object,
        id_columns: tuple[str, str],
        action: Action,
        fields: Iterable[Field],
    ) -> Item:
        """Validate one row; the first problem raises."""
        try:
            uuid = read_device_id(device_id)
        except Invalid as exc:
            self.fail(exc.message, line=line, column=id_columns[0], hint=exc.hint)
        try:
            serial = read_serial(serial_number)
        except Invalid as exc:
            self.fail(exc.message, line=line, column=id_columns[1], hint=exc.hint)
        if uuid is None and serial is None:
            self.fail(
                "no device: the row gives neither a device_id nor a serial_number",
                line=line,
                hint="fill in one of them, or delete the row",
            )
        known = self.params[action.name]
        params: dict[str, Any] = {}
        for name, column, raw in fields:
            entry = known.get(name)
            if entry is None:
                if isinstance(raw, str) and not raw.strip():
                    continue
                takes = ", ".join(known) if known else "no parameters"
                self.fail(
                    f"{name} is not a parameter of {action.name}",
                    line=line,
                    column=column,
                    hint=f"{action.name} takes {takes}; leave {name} blank for this row",
                )
            param, cache = entry
            value = cache.get(raw, ABSENT) if isinstance(raw, str) else ABSENT
            if value is ABSENT:
                try:
                    value = read_param(param, raw)
                except Invalid as exc:
                    self.fail(exc.message, line=line, column=column, hint=exc.hint)
                if isinstance(raw, str) and value is not ABSENT:
                    if len(cache) >= _CACHE_SIZE:
                        cache.clear()
                    cache[raw] = value
            if value is not ABSENT:
                params[name] = value
        for name in self.required[action.name]:
            if name not in params:
                param = known[name][0]
                self.fail(
                    f"{action.name} needs {name} ({param.kind.value})",
                    line=line,
                    hint=f"fill in the {name} column" + (f": {param.help}" if param.help else ""),
                )
        if action.check is not None:
            problem = action.check(params)
            if problem is not None:
                self.fail(problem, line=line, hint=f"see `bulkops actions` for {action.name}")
        return Item(line, uuid, serial, action.name, params)

    def quick(
        self,
        line: int,
        device_id: object,
        serial_number: object,
        action: Action,
        fields: Iterable[tuple[str, object]],
    ) -> Item | None:
        """The item :meth:`build` returns for a plainly valid row; ``None``: call :meth:`build`.

        ``fields`` are ``(name, raw value)``, in the order :meth:`build` is given them.
        """
        if device_id is None or device_id == "":
            uuid = None
        elif type(device_id) is str and is_device_id(device_id):
            uuid = device_id
        else:
            return None
        if serial_number is None or serial_number == "":
            serial = None
        elif type(serial_number) is str and is_serial(serial_number):
            serial = serial_number
        else:
            return None
        if uuid is None and serial is None:
            return None
        params = self.quick_params(action, fields)
        return None if params is None else new_item(line, uuid, serial, action.name, params)

    def quick_params(
        self, action: Action, fields: Iterable[tuple[str, object]]
    ) -> dict[str, Any] | None:
        """The parameters :meth:`build` makes of plainly valid ``fields``, else ``None``."""
        known = self.params[action.name]
        params: dict[str, Any] = {}
        for name, raw in fields:
            entry = known.get(name)
            if entry is None:
                if isinstance(raw, str) and not raw.strip():
                    continue
                return None
            value = quick_value(entry[0], entry[1], raw)
            if value is UNSURE:
                return None
            if value is not ABSENT:
                params[name] = value
        return params if self.settled(action, params) else None

    def settled(self, action: Action, params: dict[str, Any]) -> bool:
        """Whether valid ``params`` hold what ``action`` requires and pass its own check."""
        for name in self.required[action.name]:
            if name not in params:
                return False
        return action.check is None or action.check(params) is None
