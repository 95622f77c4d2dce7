"""The token permissions a job needs, named as the Access page names them (method + path).

Least privilege: an admin creates a token for one job with exactly these permissions ticked.
:func:`after_send` is what a run needs beyond the writes and the resolution reads (settling an
unknown outcome, reading back a lock PIN, ``--verify``); the plan uses it with the requests it
decided, and :func:`manifest_permissions` with every row of a manifest before anything is read.

The plan's list is what *this* run needs given the tenant as it was just read (rows already in
the target state need no write); :func:`manifest_permissions` is what *any* run of the manifest
may need, whatever the tenant's state: a token holding it never meets a 403.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from bulkops.actions import ACTIONS, DEVICE_PATH, ParamKind
from bulkops.manifest import Item
from bulkops.resolve import ADE_ROUTE, lacks_a_platform_param, needs_lookup

__all__ = [
    "after_send",
    "manifest_permissions",
    "markdown_table",
    "permission_for",
    "sorted_permissions",
]

DEVICES = "GET /api/v1/devices"
DEVICE = f"GET {DEVICE_PATH}"
BLUEPRINTS = "GET /api/v1/blueprints"
USERS = "GET /api/v1/users"
ADE_LIST = "GET /api/v1/integrations/apple/ade/devices"
ADE_UPDATE = f"PATCH {ADE_ROUTE}"
COMMANDS = "GET /api/v1/devices/{device_id}/commands"
_DEVICE_ID = re.compile(r"/devices/[^/?]+")  # every path segment after devices/ is an id
_ADE_FIELDS = frozenset({"blueprint", "blueprint_id", "user", "asset_tag"})


def after_send(actions: Iterable[str], *, verify: bool = False) -> dict[str, str]:
    """Reads a run of these actions may make after sending: permission → why."""
    need: dict[str, str] = {}
    for name in sorted(set(actions)):
        action = ACTIONS[name]
        if not action.safe_to_repeat and action.mdm_command:
            need.setdefault(COMMANDS, f"settle an unknown outcome of {name} (never resent blindly)")
        if action.secret_path:
            need.setdefault(f"GET {action.secret_path}", f"read back the PIN of a {name}")
        if verify and action.method == "PATCH":
            need.setdefault(DEVICE, f"--verify: read each {name} back")
    return need


def manifest_permissions(items: Iterable[Item], *, verify: bool = False) -> dict[str, str]:
    """Every permission a run of these rows may need (reads, writes, reconciliation): → why."""
    writes: dict[str, int] = {}
    reads: dict[str, str] = {}
    for item in items:
        action = ACTIONS[item.action]
        writes[item.action] = writes.get(item.action, 0) + 1
        by_serial = item.device_id is None
        if by_serial:
            reads.setdefault(DEVICES, "find devices by serial number")
        else:
            if item.serial_number is not None:  # one sweep, or one read a row on a big tenant
                reads.setdefault(DEVICE, "check the serial number of each device named by id")
                reads.setdefault(DEVICES, "read the inventory: the serial numbers of the devices")
            if lacks_a_platform_param(action, item.params):
                reads.setdefault(DEVICE, "read the platform of each device a row leaves a PIN out")
                reads.setdefault(DEVICES, "read the inventory: the platforms of the devices")
            if needs_lookup(action, by_serial=False):
                reads.setdefault(DEVICES, "read the inventory: platforms, current values")
        if by_serial and action.method == "PATCH" and set(item.params) <= _ADE_FIELDS:
            reads.setdefault(ADE_LIST, "find serials still awaiting Automated Device Enrollment")
            reads.setdefault(ADE_UPDATE, "update a device awaiting Automated Device Enrollment")
        for p in action.params:
            value = item.params.get(p.name)
            if value is None:
                continue
            if p.kind is ParamKind.BLUEPRINT_NAME:
                reads.setdefault(BLUEPRINTS, "find blueprints by name")
            elif p.kind is ParamKind.USER_REF and "@" in str(value):
                reads.setdefault(USERS, "find users by email")
    need = {
        ACTIONS[a].permission: f"{a} ({n} row{'s' if n != 1 else ''})"
        for a, n in sorted(writes.items())
    }
    for perm, why in (reads | after_send(writes, verify=verify)).items():
        need.setdefault(perm, why)
    return need


def permission_for(method: str, path: str) -> str:
    """The permission a request to a concrete ``path`` needs: its device id as ``{device_id}``."""
    return f"{method} {_DEVICE_ID.sub('/devices/{device_id}', path)}"


def _route_key(permission: str) -> tuple[str, str]:
    method, path = permission.split(" ", 1)
    return path, method


def sorted_permissions(permissions: Iterable[str] | Mapping[str, str]) -> list[str]:
    """Permissions by path, then method: the order of the Access page's grid."""
    return sorted(permissions, key=_route_key)


def markdown_table() -> str:
    """The README's table: every action, the permission it needs, and the reads it may add."""
    lines = [
        "| action | permission | also needed (reconciliation, PIN read-back) |",
        "|---|---|---|",
    ]
    for action in ACTIONS.values():
        plain = after_send([action.name])
        extra = [f"`{p}`" for p in sorted_permissions(plain)]
        extra += [
            f"with `--verify`: `{p}`"
            for p in sorted_permissions(after_send([action.name], verify=True))
            if p not in plain
        ]
        extra_text = ", ".join(extra)
        lines.append(f"| `{action.name}` | `{action.permission}` | {extra_text} |")
    return "\n".join(lines)
