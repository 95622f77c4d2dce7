"""The action catalogue: every operation bulkops can run on a device, as data.

The engine asks this table how to send an action, whether it may be repeated after an unknown
outcome, whether it is destructive, which platforms accept it and which token permission it needs.
Nothing else in bulkops branches on an action's name.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ACTIONS",
    "ALL_PLATFORMS",
    "Action",
    "Param",
    "ParamKind",
    "Request",
    "get_action",
]

ALL_PLATFORMS = frozenset({"Mac", "iPhone", "iPad", "AppleTV"})
IOS = frozenset({"iPhone", "iPad"})
MAC = frozenset({"Mac"})

DEVICE_PATH = "/api/v1/devices/{device_id}"
ACTION_PATH = DEVICE_PATH + "/action/{name}"

# The note on an item applied whose secret (a lock's PIN) could not be read back: the reports
# count these apart, since the device is locked and nobody here has its PIN.
SECRET_NOT_READ = "PIN not read"  # noqa: S105 - a note, not a password


class ParamKind(enum.Enum):
    """How a manifest cell is read for a parameter."""

    STR = "text"
    BOOL = "true/false"
    PIN6 = "6 digits"
    UUID = "UUID"
    TAGS = "list of tag names"
    BLUEPRINT_NAME = "blueprint name"
    USER_REF = "user UUID or email"


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter as users write it (``message``) and as the API names it (``Message``)."""

    name: str
    api_name: str
    kind: ParamKind = ParamKind.STR
    required: bool = False
    clearable: bool = False
    max_len: int = 1024
    help: str = ""
    secret: bool = False  # never echoed into reports other than the re-runnable failed.csv
    required_on: frozenset[str] = frozenset()  # platforms that need it: checked once resolved


def _generic_body(action: Action, params: Mapping[str, Any]) -> dict[str, Any] | None:
    """Map user parameter names to API names; ``None`` (no body) when nothing is given."""
    body = {p.api_name: params[p.name] for p in action.params if p.name in params}
    return body or None


def _erase_body(action: Action, params: Mapping[str, Any]) -> dict[str, Any] | None:
    body: dict[str, Any] = {}
    for p in action.params:
        if p.name in params and p.api_name:
            body[p.api_name] = params[p.name]
    if "return_to_service" in params:
        rts: dict[str, Any] = {"Enabled": params["return_to_service"]}
        if "rts_profile_id" in params:
            rts["ProfileId"] = params["rts_profile_id"]
        body["ReturnToService"] = rts
    return body


def _update_body(action: Action, params: Mapping[str, Any]) -> dict[str, Any] | None:
    # ``blueprint`` and an email ``user`` are resolved to ids before the body is built.
    body = {p.api_name: params[p.name] for p in action.params if p.api_name and p.name in params}
    if "tags" in body and body["tags"] is None:
        body["tags"] = []
    return body


def _check_deleteuser(params: Mapping[str, Any]) -> str | None:
    if not params.get("user_name") and not params.get("delete_all_users"):
        return "deleteuser needs user_name, or delete_all_users=true"
    return None


def _check_lostmode(params: Mapping[str, Any]) -> str | None:
    if not params.get("message") and not params.get("phone_number"):
        return "enablelostmode needs a message or a phone_number to show on the device"
    return None


def _check_update(params: Mapping[str, Any]) -> str | None:
    fields = ("blueprint_id", "blueprint", "user", "asset_tag", "tags")
    if not any(f in params for f in fields):
        return (
            "update needs at least one of " + ", ".join(fields) + " filled in: a blank value "
            "leaves a field alone (CLEAR! or null clears it)"
        )
    if "blueprint_id" in params and "blueprint" in params:
        return "give blueprint_id or blueprint (a name), not both"
    if ("blueprint_id" in params and params["blueprint_id"] is None) or (
        "blueprint" in params and params["blueprint"] is None
    ):
        return "a device's blueprint cannot be cleared; name the blueprint to move it to"
    return None


def _check_rts(params: Mapping[str, Any]) -> str | None:
    if "rts_profile_id" in params and not params.get("return_to_service"):
        return "rts_profile_id is only used with return_to_service=true"
    return None


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request the run will send for one item."""

    method: str
    route: str
    device_id: str
    body: dict[str, Any] | None

    @property
    def path(self) -> str:
        """The route with the device id filled in."""
        return self.route.format(device_id=self.device_id)

    @property
    def permission(self) -> str:
        """The token permission this request needs."""
        return f"{self.method} {self.route}"


BodyBuilder = Callable[["Action", Mapping[str, Any]], "dict[str, Any] | None"]
Check = Callable[[Mapping[str, Any]], "str | None"]


@dataclass(frozen=True, slots=True)
class Action:
    """One operation: how to send it and what it is safe to do with it."""

    name: str
    summary: str
    method: str = "POST"
    path: str = ""
    params: tuple[Param, ...] = ()
    safe_to_repeat: bool = False
    destructive: bool = False
    exclusive: bool = False
    platforms: frozenset[str] = ALL_PLATFORMS
    mdm_command: str | None = None
    secret_key: str | None = None
    secret_path: str | None = None
    build: BodyBuilder = _generic_body
    check: Check | None = None
    conflicts: frozenset[str] = field(default_factory=frozenset)

    @property
    def route(self) -> str:
        """The path template with ``{device_id}`` left in."""
        return self.path or ACTION_PATH.replace("{name}", self.name)

    @property
    def permission(self) -> str:
        """The token permission this action needs, as the Access page names it."""
        return f"{self.method} {self.route}"

    def param(self, name: str) -> Param | None:
        """The parameter called ``name``, or ``None``."""
        for p in self.params:
            if p.name == name:
                return p
        return None

    def body(self, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """The JSON body for these (validated, resolved) parameters."""
        return self.build(self, params)

    def request(self, device_id: str, params: Mapping[str, Any]) -> Request:
        """The request that runs this action on one device."""
        return Request(self.method, self.route, device_id, self.body(params))


_MESSAGE = Param("message", "Message", help="text shown on the device")
_PHONE = Param("phone_number", "PhoneNumber", help="phone number shown on the device")
_USER_NAME = Param("user_name", "UserName", help="short name of the local account")

_CATALOGUE = (
    Action("blankpush", "Send an empty push so the device checks in", safe_to_repeat=True),
    Action(
        "updateinventory",
        "Ask the device for fresh inventory",
        safe_to_repeat=True,
        mdm_command="DeviceInformation",
    ),
    Action(
        "dailycheckin",
        "Run the daily check-in (replaces updateinventory)",
        safe_to_repeat=True,
        mdm_command="DeviceInformation",
    ),
    Action(
        "restart",
        "Restart the device",
        params=(
            Param("rebuild_kernel_cache", "RebuildKernelCache", ParamKind.BOOL),
            Param("notify_user", "NotifyUser", ParamKind.BOOL),
        ),
        destructive=True,  # every open document on the fleet at once: confirm the count, cap it
        mdm_command="RestartDevice",
    ),
    Action(
        "shutdown",
        "Shut the device down (it cannot be turned on again over MDM)",
        destructive=True,  # someone must press its power button: confirm the count, cap it
        platforms=MAC | IOS,
        mdm_command="ShutDownDevice",
    ),
    Action(
        "renewmdmprofile",
        "Reinstall the MDM enrollment profile",
        safe_to_repeat=True,
        mdm_command="InstallProfile",
    ),
    Action(
        "reinstallagent",
        "Reinstall the Kandji agent",
        platforms=MAC,
        mdm_command="InstallEnterpriseApplication",
    ),
    Action(
        "clearpasscode",
        "Remove the device passcode",
        destructive=True,  # the devices are open to whoever holds them
        platforms=IOS,
        mdm_command="ClearPasscode",
    ),
    Action(
        "deleteuser",
        "Delete a local user account",
        params=(
            _USER_NAME,
            Param("delete_all_users", "DeleteAllUsers", ParamKind.BOOL),
            Param("force_deletion", "ForceDeletion", ParamKind.BOOL),
        ),
        destructive=True,
        platforms=MAC | {"iPad"},
        mdm_command="DeleteUser",
        check=_check_deleteuser,
    ),
    Action(
        "unlockaccount",
        "Unlock a local account locked by failed logins",
        params=(Param("user_name", "UserName", required=True, help=_USER_NAME.help),),
        safe_to_repeat=True,
        platforms=MAC,
        mdm_command="UnlockUserAccount",
    ),
    Action(
        "enablelostmode",
        "Put the device in Lost Mode",
        params=(_MESSAGE, _PHONE, Param("footnote", "Footnote")),
        destructive=True,  # the device is locked to its user until it is taken out again
        platforms=IOS,
        mdm_command="EnableLostMode",
        check=_check_lostmode,
        conflicts=frozenset({"disablelostmode"}),
    ),
    Action(
        "disablelostmode",
        "Take the device out of Lost Mode",
        platforms=IOS,
        mdm_command="DisableLostMode",
        conflicts=frozenset({"enablelostmode"}),
    ),
    Action(
        "playlostmodesound",
        "Play a sound on a device in Lost Mode",
        platforms=IOS,
        mdm_command="PlayLostModeSound",
    ),
    Action(
        "updatelocation",
        "Ask a device in Lost Mode for its location",
        safe_to_repeat=True,
        platforms=IOS,
        mdm_command="DeviceLocation",
    ),
    Action(
        "remotedesktop",
        "Turn Remote Management on or off",
        params=(Param("enable", "EnableRemoteDesktop", ParamKind.BOOL, required=True),),
        safe_to_repeat=True,
        platforms=MAC,
    ),
    Action(
        "setname",
        "Set the device name",
        params=(Param("device_name", "DeviceName", required=True, max_len=255),),
        safe_to_repeat=True,
        mdm_command="Settings",
    ),
    Action(
        "lock",
        "Lock the device (Macs return a 6-digit unlock PIN)",
        params=(_MESSAGE, _PHONE),
        destructive=True,
        mdm_command="DeviceLock",
        secret_key="PIN",  # noqa: S106 - the response key, not a password
        secret_path=DEVICE_PATH + "/secrets/unlockpin",
        conflicts=frozenset({"erase"}),
    ),
    Action(
        "erase",
        "Erase the device",
        params=(
            Param(
                "pin",
                "PIN",
                ParamKind.PIN6,
                help="the Find My PIN; Macs only (iPhones, iPads and Apple TVs need none)",
                secret=True,
                required_on=MAC,
            ),
            Param("preserve_data_plan", "PreserveDataPlan", ParamKind.BOOL),
            Param("disallow_proximity_setup", "DisallowProximitySetup", ParamKind.BOOL),
            Param("return_to_service", "", ParamKind.BOOL),
            Param("rts_profile_id", "", help="Wi-Fi profile id for Return to Service"),
        ),
        destructive=True,
        exclusive=True,
        mdm_command="EraseDevice",
        build=_erase_body,
        check=_check_rts,
    ),
    Action(
        "update",
        "Update the device record: blueprint, user, asset tag, tags",
        method="PATCH",
        path=DEVICE_PATH,
        params=(
            Param("blueprint_id", "blueprint_id", ParamKind.UUID),
            Param("blueprint", "", ParamKind.BLUEPRINT_NAME, help="blueprint name"),
            Param("user", "user", ParamKind.USER_REF, clearable=True),
            Param("asset_tag", "asset_tag", clearable=True, max_len=255),
            Param("tags", "tags", ParamKind.TAGS, clearable=True),
        ),
        safe_to_repeat=True,
        build=_update_body,
        check=_check_update,
    ),
    Action(
        "delete",
        "Delete the device record and remove management",
        method="DELETE",
        path=DEVICE_PATH,
        safe_to_repeat=True,
        destructive=True,
        exclusive=True,
    ),
)

ACTIONS: Mapping[str, Action] = {a.name: a for a in _CATALOGUE}


def get_action(name: str) -> Action | None:
    """The action called ``name`` (case-insensitive), or ``None``."""
    return ACTIONS.get(name.strip().lower())
