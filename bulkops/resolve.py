"""Resolution: turn a manifest row into the exact request to send, or a reason to send nothing.

Serial numbers become device ids (matched exactly: the API's filter is partial), blueprint names
and user emails become ids, a serial that is not enrolled yet is looked for among devices
awaiting Automated Device Enrollment, and a row is skipped before anything is written when its
device is not found, ambiguous (one serial on two records after a logic-board swap), not
eligible for the action, or already in the target state (diff-before-write: 0 requests).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bulkops.actions import Action, ParamKind, Request
from bulkops.inventory import Device, Inventory
from bulkops.manifest._columns import suggest

__all__ = [
    "ADE_ROUTE",
    "Decision",
    "Request",
    "Resolver",
    "UnknownName",
    "lacks_a_platform_param",
    "needs_lookup",
]

ADE_ROUTE = "/api/v1/integrations/apple/ade/devices/{device_id}"
_FIELDS = ("blueprint_id", "user", "asset_tag", "tags")


@dataclass(frozen=True, slots=True)
class Decision:
    """Send ``request``, or skip with ``reason``; ``preview`` says field by field what changes."""

    request: Request | None = None
    reason: str | None = None
    device_id: str | None = None
    preview: dict[str, str] = field(default_factory=dict)


class UnknownName(Exception):
    """A cell the tenant shows to be wrong: a name it does not have (a typo), or a value the
    device's platform needs and the row lacks. Not a row to skip: the plan stops, sends none."""

    def __init__(self, column: str, message: str, hint: str) -> None:
        self.column, self.message, self.hint = column, message, hint
        super().__init__(message)


def needs_lookup(action: Action, *, by_serial: bool) -> bool:
    """Whether a row gains from the inventory: it must (serial) or it may be skipped (diff)."""
    return (
        by_serial
        or action.method == "PATCH"
        or action.name == "setname"
        or (len(action.platforms) < 4)
    )


def _shown(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ";".join(map(str, value)) or "(none)"
    return str(value)


class Resolver:
    """Decides every row of one run against what the run has read of the tenant."""

    def __init__(self, inventory: Inventory, *, use_inventory: bool) -> None:
        self._inv = inventory
        self._use = use_inventory

    async def decide(
        self,
        *,
        action: Action,
        device_id: str | None,
        serial: str | None,
        params: Mapping[str, Any],
    ) -> Decision:
        """The decision for one row."""
        device: Device | None = None
        if device_id is None:
            assert serial is not None
            found = await self._inv.by_serial(serial)
            if not found:
                return await self._not_enrolled(action, serial, params)
            if len(found) > 1:
                ids = ", ".join(d.device_id for d in found)
                return Decision(
                    reason=f"ambiguous: serial number {serial} is on {len(found)} device records "
                    f"({ids}); name the one to use by device_id"
                )
            device = found[0]
            device_id = device.device_id
        elif self._use or serial is not None or lacks_a_platform_param(action, params):
            device = await self._inv.by_id(device_id)
            if device is None:
                return Decision(reason=f"not found: no enrolled device has the id {device_id}")
            if serial is not None and device.serial_number != serial.upper():
                return Decision(
                    reason=f"mismatch: device {device_id} has serial number "
                    f"{device.serial_number}, not {serial}; fix one of the two cells",
                    device_id=device_id,
                )
        if device is not None and device.platform and device.platform not in action.platforms:
            return Decision(
                reason=f"ineligible: {action.name} is not available on {device.platform}",
                device_id=device_id,
            )
        for p in action.params:
            if p.required_on and p.name not in params and device is not None:
                platform = device.platform or "device of unknown platform"
                if not device.platform or device.platform in p.required_on:
                    raise UnknownName(
                        p.name,
                        f"{action.name} of a {platform} needs {p.name} ({p.kind.value})",
                        f"fill in the {p.name} column: {p.help}",
                    )
        try:
            resolved = await self._resolve_params(action, params)
        except LookupError as exc:
            return Decision(reason=str(exc), device_id=device_id)
        if action.method == "PATCH":
            return self._diff_update(action, device_id, device, resolved)
        if action.name == "setname" and device is not None:
            if device.name == resolved.get("device_name"):
                return Decision(
                    reason="already in target state",
                    device_id=device_id,
                    preview={"device_name": "unchanged"},
                )
            shown = f"change: {device.name} -> " if device.name else "new: "
            preview = {"device_name": f"{shown}{resolved.get('device_name')}"}
            request = Request(action.method, action.route, device_id, action.body(resolved))
            return Decision(request=request, device_id=device_id, preview=preview)
        return Decision(
            request=Request(action.method, action.route, device_id, action.body(resolved)),
            device_id=device_id,
        )

    async def _resolve_params(self, action: Action, params: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(params)
        for p in action.params:
            value = out.get(p.name)
            if value is None:
                continue
            if p.kind is ParamKind.BLUEPRINT_NAME:
                ids = await self._inv.blueprint_id(value)
                if not ids:
                    close = suggest(value, self._inv.blueprint_names())
                    raise UnknownName(
                        p.name,
                        f"no blueprint in the tenant is named {value!r}",
                        f"{close}check the name in the Kandji console, or give blueprint_id",
                    )
                if len(ids) != 1:
                    raise LookupError(
                        f"ambiguous: {len(ids)} blueprints are named {value!r}; use blueprint_id"
                    )
                del out[p.name]
                out["blueprint_id"] = ids[0]
            elif p.kind is ParamKind.USER_REF and "@" in value:
                users = await self._inv.user_id(value)
                if not users:
                    raise LookupError(f"user not found: no user has the email {value}")
                out[p.name] = users[0]
        return out

    def _diff_update(
        self, action: Action, device_id: str, device: Device | None, want: dict[str, Any]
    ) -> Decision:
        if device is None:  # nothing read: send every given field as it is
            body = action.body(want)
            shown = {
                f: ("clear" if want[f] in (None, []) else f"new: {_shown(want[f])}")
                for f in _FIELDS
                if f in want
            }
            return Decision(Request("PATCH", action.route, device_id, body), None, device_id, shown)
        current: dict[str, Any] = {
            "blueprint_id": device.blueprint_id,
            "user": device.user_id,
            "asset_tag": device.asset_tag or None,
            "tags": list(device.tags) or None,
        }
        changed: dict[str, Any] = {}
        preview: dict[str, str] = {}
        for f in _FIELDS:
            if f not in want:
                continue
            target = want[f]
            if f == "tags" and target is not None:
                target = sorted(set(target)) or None
            was = current[f]
            if target == was:
                preview[f] = "unchanged"
                continue
            changed[f] = want[f]
            if target is None:
                preview[f] = f"clear (was {_shown(was)})"
            elif was is None:
                preview[f] = f"new: {_shown(target)}"
            else:  # what the device holds now is overwritten: show it, as the MUT's grid does
                preview[f] = f"change: {_shown(was)} -> {_shown(target)}"
        if not changed:
            return Decision(reason="already in target state", device_id=device_id, preview=preview)
        return Decision(
            Request("PATCH", action.route, device_id, action.body(changed)),
            None,
            device_id,
            preview,
        )

    async def _not_enrolled(
        self, action: Action, serial: str, params: Mapping[str, Any]
    ) -> Decision:
        """A serial with no enrolled device: an update can still go to its ADE record, compared
        with what that record holds like an enrolled device's."""
        if action.method != "PATCH":
            return Decision(
                reason=f"not found: serial number {serial} is not enrolled in this tenant"
            )
        ade = await self._inv.ade_by_serial(serial)
        if len(ade) != 1:
            return Decision(
                reason=f"not found: serial number {serial} is not enrolled in this tenant "
                "(nor awaiting Automated Device Enrollment)"
            )
        if other := sorted(set(params) - set(_ADE_FIELDS)):
            return Decision(
                reason=f"not enrolled: serial number {serial} is awaiting Automated Device "
                f"Enrollment, whose record takes blueprint, user and asset_tag only, not "
                f"{', '.join(other)}; set those once it has enrolled"
            )
        try:
            want = await self._resolve_params(action, params)
        except LookupError as exc:
            return Decision(reason=str(exc))
        record = ade[0]
        holds = {"blueprint_id": record.blueprint_id, "user_id": record.user_id}
        holds["asset_tag"] = record.asset_tag or None
        body: dict[str, Any] = {}
        preview: dict[str, str] = {}
        for name, key in _ADE_FIELDS.items():
            if name not in want:
                continue
            target, was = want[name], holds[key]
            if target == was:
                preview[key] = "unchanged (ADE)"
                continue
            body[key] = target
            if was is None:
                preview[key] = f"new (ADE): {_shown(target)}"
            elif target is None:
                preview[key] = f"clear (ADE, was {_shown(was)})"
            else:
                preview[key] = f"change (ADE): {_shown(was)} -> {_shown(target)}"
        if not body:
            return Decision(reason="already in target state", preview=preview)
        return Decision(Request("PATCH", ADE_ROUTE, record.ade_id, body), None, None, preview)


# What an ADE record takes: the manifest's field (resolved) and the record's key.
_ADE_FIELDS = {
    "blueprint_id": "blueprint_id",
    "blueprint": "blueprint_id",
    "user": "user_id",
    "asset_tag": "asset_tag",
}


def lacks_a_platform_param(action: Action, params: Mapping[str, Any]) -> bool:
    """Whether the row leaves out a parameter some platforms need: its device must be read."""
    return any(p.required_on and p.name not in params for p in action.params)
