"""The quick path of the CSV reader: plainly valid rows, read with as little work as possible.

Rows that repeat an action and its parameters (most jobs: one action, one message) are read once:
the action and parameter cells are the key to the validated action and parameters, and only the
ids are checked on every row. Anything unusual gives ``None``, and the reader's precise path reads
the row again and words its error (see :mod:`bulkops.manifest._quick`).
"""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter

from bulkops.actions import Action, Param
from bulkops.manifest._item import Item, new_item
from bulkops.manifest._quick import UNSURE, is_device_id, is_serial, quick_value
from bulkops.manifest._row import RowBuilder
from bulkops.manifest._values import ABSENT

__all__ = ["quick_rows"]

_MEMO_SIZE = 1024  # rows of unique values churn it; more costs memory (~0.6 KiB each)

ColumnPlan = tuple[tuple[int, str, "Param | None", dict[object, object]], ...]
"""Per parameter column: its index, its name, and the action's parameter and value cache."""


def quick_rows(
    builder: RowBuilder,
    *,
    width: int,
    device_id: int | None,
    serial_number: int | None,
    action: int | None,
    params: tuple[tuple[int, str], ...],
    unlabeled: tuple[int, ...],
) -> Callable[[list[str], int], Item | None]:
    """A reader of plainly valid rows: their item, else ``None``.

    The columns are given by index; ``params`` are ``(index, name)`` of the parameter columns.
    The caller has checked that no cell is longer than the limit.
    """
    keyed = (() if action is None else (action,)) + tuple(index for index, _ in params)
    key_of: Callable[[list[str]], object] = itemgetter(*keyed) if keyed else _no_key
    memo: dict[object, tuple[str, dict[str, object]]] = {}
    plans: dict[str, ColumnPlan] = {}
    actions = builder.actions
    default = builder.default_action

    def plan_of(chosen: Action) -> ColumnPlan:
        known = builder.params[chosen.name]
        plan = tuple((index, name, *known.get(name, (None, {}))) for index, name in params)
        plans[chosen.name] = plan
        return plan

    def action_and_params(cells: list[str]) -> tuple[str, dict[str, object]] | None:
        chosen = default
        if action is not None and (raw := cells[action]):
            chosen = actions.get(raw)
        if chosen is None:
            return None
        values: dict[str, object] = {}
        for index, name, param, cache in plans.get(chosen.name) or plan_of(chosen):
            raw = cells[index]
            if not raw:
                continue
            if param is None:  # not a parameter of this action: only blank is fine
                if raw.strip():
                    return None
                continue
            value = cache.get(raw, ABSENT)
            if value is ABSENT:
                value = quick_value(param, cache, raw)
                if value is UNSURE:
                    return None
                if value is ABSENT:
                    continue
            values[name] = value
        return (chosen.name, values) if builder.settled(chosen, values) else None

    def row(cells: list[str], line: int) -> Item | None:
        count = len(cells)
        if count != width:
            if count > width:
                return None
            cells.extend([""] * (width - count))
        for index in unlabeled:
            if cells[index].strip():
                return None
        key = key_of(cells)
        found = memo.get(key)
        if found is None:
            found = action_and_params(cells)
            if found is None:
                return None
            if len(memo) >= _MEMO_SIZE:
                memo.clear()
            memo[key] = found
        device = "" if device_id is None else cells[device_id]
        serial = "" if serial_number is None else cells[serial_number]
        if device:
            if not is_device_id(device) or (serial and not is_serial(serial)):
                return None
        elif not serial or not is_serial(serial):
            return None
        return new_item(line, device or None, serial or None, found[0], found[1].copy())

    return row


def _no_key(cells: list[str]) -> object:
    return ()
