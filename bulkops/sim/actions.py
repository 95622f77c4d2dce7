"""Device actions: `POST /devices/{id}/action/<name>`, validated, queued as MDM commands."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bulkops.sim.context import Ctx
from bulkops.sim.replies import (
    NOT_FOUND,
    Reply,
    bare_error,
    detail,
    empty,
    field_errors,
    json_reply,
)
from bulkops.sim.router import Router
from bulkops.sim.validation import FieldSpec, check_fields, is_uuid, not_a_dict

__all__ = ["ACTION_SPECS", "ActionSpec", "action_route", "register"]

APPLE = frozenset({"Mac", "iPhone", "iPad", "AppleTV"})
MOBILE = frozenset({"iPhone", "iPad"})
MAC = frozenset({"Mac"})

NOT_ALLOWED = "Command is not allowed for current device"
RUNNING = "Command already running"
ALREADY_LOCKED = "This device is already locked."
DISABLE_PENDING = "Disable lost mode is already pending for this device."
RTS_SCOPE = "The specified profile is not in scope for the device"


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """One action: its MDM request type, eligible platforms and body fields."""

    name: str
    request_type: str | None  # None: no MDM command is queued (blankpush)
    platforms: frozenset[str]
    fields: FieldSpec = field(default_factory=dict)
    command_type: str | None = None


_SPECS = (
    ActionSpec("blankpush", None, APPLE),
    ActionSpec("updateinventory", "DeviceInformation", APPLE),
    ActionSpec("dailycheckin", "DeviceInformation", APPLE),
    ActionSpec(
        "restart",
        "RestartDevice",
        APPLE,
        {"RebuildKernelCache": ("bool", False), "NotifyUser": ("bool", False)},
    ),
    ActionSpec("shutdown", "ShutDownDevice", frozenset({"Mac", "iPhone", "iPad"})),
    ActionSpec("renewmdmprofile", "InstallProfile", APPLE, command_type="RenewMDMProfile"),
    ActionSpec(
        "reinstallagent", "InstallEnterpriseApplication", MAC, command_type="InstallKandjiAgent"
    ),
    ActionSpec("clearpasscode", "ClearPasscode", MOBILE),
    ActionSpec(
        "deleteuser",
        "DeleteUser",
        frozenset({"Mac", "iPad"}),
        {
            "UserName": ("str", False),
            "DeleteAllUsers": ("bool", False),
            "ForceDeletion": ("bool", False),
        },
    ),
    ActionSpec("unlockaccount", "UnlockUserAccount", MAC, {"UserName": ("str", True)}),
    ActionSpec(
        "enablelostmode",
        "EnableLostMode",
        MOBILE,
        {"Message": ("str", False), "PhoneNumber": ("str", False), "Footnote": ("str", False)},
    ),
    ActionSpec("disablelostmode", "DisableLostMode", MOBILE),
    ActionSpec("playlostmodesound", "PlayLostModeSound", MOBILE),
    ActionSpec("updatelocation", "DeviceLocation", MOBILE),
    ActionSpec(
        "remotedesktop", "EnableRemoteDesktop", MAC, {"EnableRemoteDesktop": ("bool", True)}
    ),
    ActionSpec(
        "setname", "Settings", APPLE, {"DeviceName": ("str", True)}, command_type="SetDeviceName"
    ),
    ActionSpec(
        "lock", "DeviceLock", APPLE, {"Message": ("str", False), "PhoneNumber": ("str", False)}
    ),
    ActionSpec(
        "erase",
        "EraseDevice",
        APPLE,
        {
            "PIN": ("str", False),
            "PreserveDataPlan": ("bool", False),
            "DisallowProximitySetup": ("bool", False),
            "ReturnToService": ("object", False),
        },
    ),
)
ACTION_SPECS: dict[str, ActionSpec] = {s.name: s for s in _SPECS}


def action_route(name: str) -> str:
    """The route template (and permission path) of an action."""
    return f"/api/v1/devices/{{device_id}}/action/{name}"


def _extra_errors(spec: ActionSpec, body: dict[str, Any], platform: str) -> dict[str, list[str]]:
    """Checks beyond field types: required-unless, nested objects, the Mac-only PIN."""
    if spec.name == "deleteuser" and not body.get("DeleteAllUsers") and not body.get("UserName"):
        return {"UserName": ["This field is required."]}
    if spec.name == "setname" and not body["DeviceName"].strip():
        return {"DeviceName": ["This field may not be blank."]}
    if spec.name == "erase" and platform == "Mac" and "PIN" in body:
        errs = check_fields(body, {"PIN": ("pin6", False)})
        if errs:
            return errs
    if spec.name == "erase" and isinstance(body.get("ReturnToService"), dict):
        rts = body["ReturnToService"]
        errs = check_fields(rts, {"Enabled": ("bool", True), "ProfileId": ("str", False)})
        if errs:
            return {"ReturnToService": [f"{k}: {v[0]}" for k, v in errs.items()]}
    return {}


def _state_refusal(ctx: Ctx, spec: ActionSpec, device_id: str, body: dict[str, Any]) -> str | None:
    """A reason the device's current state forbids the action (after the pending check)."""
    dev = ctx.world.fleet.devices[device_id]
    traits = ctx.world.fleet.traits.setdefault(device_id, {})
    lost = dev["lost_mode_status"] == "ENABLED"
    name = spec.name
    if name == "enablelostmode" and lost:
        return NOT_ALLOWED
    if name in ("disablelostmode", "playlostmodesound", "updatelocation") and not lost:
        return NOT_ALLOWED
    if (
        name == "remotedesktop"
        and not body["EnableRemoteDesktop"]
        and not traits.get("remote_desktop_enabled")
    ):
        return NOT_ALLOWED  # Kandji: turning off an already-off Remote Management is refused
    if name == "erase" and dev["platform"] != "Mac":
        rts = body.get("ReturnToService") or {}
        if rts.get("Enabled") and not is_uuid(rts.get("ProfileId")):
            return RTS_SCOPE
    return None


def _apply(ctx: Ctx, spec: ActionSpec, device_id: str, body: dict[str, Any]) -> Reply:
    """Change state, queue the command and build the success reply."""
    world = ctx.world
    dev = world.fleet.devices[device_id]
    traits = world.fleet.traits.setdefault(device_id, {})
    if spec.request_type is None:
        return empty(200, device_id=device_id, action=spec.name)
    request_type = spec.request_type
    on_complete: Callable[[], None] | None = None
    metadata: dict[str, Any] = {}
    name = spec.name
    if name == "remotedesktop":
        enable = bool(body["EnableRemoteDesktop"])
        request_type = "EnableRemoteDesktop" if enable else "DisableRemoteDesktop"
        traits["remote_desktop_enabled"] = enable
    elif name == "setname":
        new_name = body["DeviceName"]
        metadata = {"Items": ["DeviceName"]}

        def rename() -> None:
            if device_id in world.fleet.devices:
                world.fleet.devices[device_id]["device_name"] = new_name

        on_complete = rename
    elif name == "enablelostmode":
        dev["lost_mode_status"] = "ENABLED"
        traits["lost_mode_enabled_at"] = world.clock.iso(ctx.now_v)
        traits["lost_mode_message"] = body.get("Message", "")
        traits["lost_mode_phone"] = body.get("PhoneNumber", "")
        traits["lost_mode_footnote"] = body.get("Footnote", "")
    elif name == "disablelostmode":
        dev["lost_mode_status"] = ""
    world.queue_command(
        device_id,
        request_type=request_type,
        command_type=spec.command_type or request_type,
        now_v=ctx.now_v,
        metadata=metadata,
        on_complete=on_complete,
    )
    if name == "lock":
        st = world.state(device_id)
        if dev["platform"] == "Mac":
            st.locked = True
            st.unlock_pin = world.new_pin()
            return json_reply(
                200,
                {"PIN": st.unlock_pin},
                applied=True,
                device_id=device_id,
                action=name,
                pin=st.unlock_pin,
            )
    return empty(200, device_id=device_id, action=name)


def make_handler(spec: ActionSpec) -> Callable[[Ctx], Any]:
    """The request handler for one action."""

    async def handle(ctx: Ctx) -> Reply:
        device_id = ctx.params["device_id"]
        dev = ctx.world.fleet.devices.get(device_id)

        def refuse(message: str) -> Reply:
            return bare_error(message, device_id=device_id, action=spec.name)

        def invalid(errors: dict[str, list[str]]) -> Reply:
            return field_errors(errors, device_id=device_id, action=spec.name)

        if dev is None:
            return detail(404, NOT_FOUND, device_id=device_id, action=spec.name)
        body, err = await ctx.json_body()
        if err is not None:
            err.device_id, err.action = device_id, spec.name
            return err
        shape = not_a_dict(body)
        if shape is not None:
            return invalid(shape)
        errors = check_fields(body, spec.fields) or _extra_errors(spec, body, dev["platform"])
        if errors:
            return invalid(errors)
        if dev["platform"] not in spec.platforms:
            return refuse(NOT_ALLOWED)
        if spec.name == "lock" and dev["platform"] == "Mac" and ctx.world.state(device_id).locked:
            return refuse(ALREADY_LOCKED)
        if spec.request_type is not None:
            request_type = spec.request_type
            if spec.name == "remotedesktop":
                on = body["EnableRemoteDesktop"]
                request_type = "EnableRemoteDesktop" if on else "DisableRemoteDesktop"
            if ctx.world.pending_command(device_id, request_type, ctx.now_v):
                return refuse(DISABLE_PENDING if spec.name == "disablelostmode" else RUNNING)
        refusal = _state_refusal(ctx, spec, device_id, body)
        if refusal is not None:
            return refuse(refusal)
        return _apply(ctx, spec, device_id, body)

    return handle


def register(router: Router[Any]) -> None:
    """Add one route per action, so permissions name the exact action path."""
    for spec in _SPECS:
        router.add("POST", action_route(spec.name), make_handler(spec))
