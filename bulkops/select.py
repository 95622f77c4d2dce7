"""Selecting devices from the tenant: "every Mac in blueprint X" as a manifest you can review.

The API filters by blueprint, platform and tag on its side, so a selection reads only the pages
it needs; ``--where field=value`` filters further on ours (exact, case-insensitive).
"""

from __future__ import annotations

import csv
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bulkops.actions import ACTIONS
from bulkops.client import KandjiClient
from bulkops.errors import ConfigError
from bulkops.inventory import PAGE, Inventory
from bulkops.manifest._columns import suggest

__all__ = ["Selection", "select_devices", "to_fill", "write_selection"]

WHERE_FIELDS = ("device_name", "model", "os_version", "asset_tag", "serial_number", "user_email")


@dataclass(frozen=True, slots=True)
class Selection:
    """Which devices to pick."""

    blueprint: str | None = None
    platform: str | None = None
    tag: str | None = None
    where: Mapping[str, str] | None = None

    @staticmethod
    def parse_where(items: list[str]) -> dict[str, str]:
        """``["model=MacBook Air", …]`` → a dict; one-line errors for bad forms or fields."""
        out: dict[str, str] = {}
        for text in items:
            key, sep, value = text.partition("=")
            key = key.strip().lower()
            if not sep or not key:
                raise ConfigError(
                    f"--where {text!r}: write it as field=value, e.g. model=MacBook Air"
                )
            if key not in WHERE_FIELDS:
                raise ConfigError(f"--where {key!r}: use one of {', '.join(WHERE_FIELDS)}")
            out[key] = value.strip()
        return out


def _matches(device: Mapping[str, Any], where: Mapping[str, str]) -> bool:
    for key, want in where.items():
        if key == "user_email":
            user = device.get("user")
            have = user.get("email", "") if isinstance(user, dict) else ""
        else:
            have = device.get(key) or ""
        if str(have).casefold() != want.casefold():
            return False
    return True


async def select_devices(
    client: KandjiClient, selection: Selection
) -> AsyncIterator[dict[str, Any]]:
    """Every enrolled device matching the selection, page by page."""
    params: dict[str, str | int] = {"limit": PAGE, "ordering": "device_id"}
    if selection.blueprint:
        inventory = Inventory(client)
        ids = await inventory.blueprint_id(selection.blueprint)
        if not ids:
            close = suggest(selection.blueprint, inventory.blueprint_names())
            raise ConfigError(
                f"--blueprint {selection.blueprint!r}: no blueprint in the tenant has that name; "
                f"{close}check the name in the Kandji console"
            )
        if len(ids) != 1:
            raise ConfigError(
                f"--blueprint {selection.blueprint!r}: {len(ids)} blueprints have that name in "
                "other cases; write it exactly as the console shows it"
            )
        params["blueprint_id"] = ids[0]
    if selection.platform:
        params["platform"] = selection.platform
    if selection.tag:
        params["tag_name"] = selection.tag
    offset = 0
    while True:
        reply = await client.read("/api/v1/devices", params={**params, "offset": offset})
        page = reply.data if isinstance(reply.data, list) else []
        for device in page:
            # the API's blueprint filter is "containing": keep exact matches only
            if "blueprint_id" in params and device.get("blueprint_id") != params["blueprint_id"]:
                continue
            if _matches(device, selection.where or {}):
                yield device
        if len(page) < PAGE:
            return
        offset += PAGE


def to_fill(action: str) -> list[str]:
    """The parameter columns of ``action`` a selection leaves blank and a run needs filled."""
    act = ACTIONS[action]
    required = [p.name for p in act.params if p.required]
    return required or ([p.name for p in act.params] if act.check is not None else [])


async def write_selection(
    client: KandjiClient, selection: Selection, *, action: str, out: Path
) -> int:
    """Write the selected devices as a manifest for ``action``; returns how many.

    The action's parameters are blank columns (:func:`to_fill` says which a run needs); the
    device's name and platform are in ``note``. Nothing is written when no device matches
    (``out`` keeps what it held).
    """
    if action not in ACTIONS:
        raise ConfigError(
            f"--action {action!r}: not an action; {suggest(action, ACTIONS)}"
            "`bulkops actions` lists them"
        )
    params = [p.name for p in ACTIONS[action].params]  # blank columns, to fill in by hand
    from bulkops.report import neutralise

    tmp = out.with_name(out.name + ".partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    count = 0
    try:
        # rows are written as pages arrive: a small local write per page, not worth a thread
        with open(fd, "w", encoding="utf-8-sig", newline="") as fh:  # noqa: ASYNC230 (Excel BOM)
            writer = csv.writer(fh)
            writer.writerow(["device_id", "serial_number", "action", *params, "note"])
            blanks = [""] * len(params)
            async for device in select_devices(client, selection):
                name = f"{device.get('device_name', '')} ({device.get('platform', '')})"
                serial = device.get("serial_number", "")
                writer.writerow([device["device_id"], serial, action, *blanks, neutralise(name)])
                count += 1
        if count:
            tmp.replace(out)  # a half-written manifest never appears under the final name
    finally:
        tmp.unlink(missing_ok=True)
    return count
