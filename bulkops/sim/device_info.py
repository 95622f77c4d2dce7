"""Read-only device sub-resources: details, lost mode, commands, activity, unlock PIN."""

from __future__ import annotations

from typing import Any

from bulkops.sim.context import Ctx, limit_offset_page
from bulkops.sim.fleet import Record
from bulkops.sim.replies import NOT_FOUND, Reply, detail, json_reply
from bulkops.sim.router import Router

__all__ = ["register"]

BASE = "/api/v1/devices/{device_id}"


def _found(ctx: Ctx) -> tuple[str, Record | None]:
    device_id = ctx.params["device_id"]
    return device_id, ctx.world.fleet.devices.get(device_id)


def _lost_mode(dev: Record, traits: Record) -> Record:
    if dev["lost_mode_status"] != "ENABLED":
        return {}
    at = traits.get("lost_mode_enabled_at") or dev["last_check_in"]
    return {
        "lost_mode_status": "ENABLED",
        "enabled_by": "API",
        "enable_status_at": at,
        "lock_screen_message": traits.get("lost_mode_message", "This device has been lost."),
        "lock_screen_phone_number": traits.get("lost_mode_phone", ""),
        "lock_screen_footnote": traits.get("lost_mode_footnote", ""),
        "disable_status": "",
        "disabled_by": "",
        "disable_status_at": "",
        "last_location_status": "",
        "last_location_status_at": "",
        "last_location": {},
        "last_location_at": "",
        "sound_status": "",
        "sound_status_at": "",
    }


def _hardware(dev: Record, traits: Record) -> Record:
    """`hardware_overview`: a Mac lists its processor and memory, other devices their UDID."""
    if dev["platform"] != "Mac":
        return {
            "uuid": traits.get("udid", dev["device_id"]),
            "serial_number": dev["serial_number"],
            "model_identifier": traits.get("model_identifier", ""),
        }
    return {
        "model_name": dev["model"].split(" (")[0],
        "model_identifier": traits.get("model_identifier", ""),
        "processor_name": "Apple silicon",
        "processor_speed": "",
        "number_of_processors": "8",
        "total_number_of_cores": "8",
        "memory": "16 GB",
        "udid": traits.get("udid", dev["device_id"]),
        "serial_number": dev["serial_number"],
    }


def build_details(dev: Record, traits: Record) -> Record:
    """The nested `/details` object, built from the record and its hidden traits."""
    mac = dev["platform"] == "Mac"
    mobile = dev["platform"] in ("iPhone", "iPad")
    check_in = dev["last_check_in"]
    out: Record = {
        "general": {
            "device_id": dev["device_id"],
            "device_name": dev["device_name"],
            "last_enrollment": dev["last_enrollment"],
            "first_enrollment": dev["first_enrollment"],
            "model": dev["model"],
            "platform": dev["platform"],
            "os_version": dev["os_version"],
            "supplemental_build_version": dev["supplemental_build_version"],
            "supplemental_os_version_extra": dev["supplemental_os_version_extra"],
            "system_version": dev["os_version"] if mac else "",
            "boot_volume": "Macintosh HD" if mac else "",
            "time_since_boot": "",
            "last_user": "",
            "asset_tag": dev["asset_tag"],
            "assigned_user": dev["user"],
            "blueprint_name": dev["blueprint_name"],
            "blueprint_uuid": dev["blueprint_id"],
        },
        "mdm": {
            "mdm_enabled": str(dev["mdm_enabled"]),
            "supervised": str(traits.get("supervised", True)),
            "install_date": dev["last_enrollment"],
            "last_check_in": check_in.replace("T", " ").replace("Z", "+00:00"),
            "mdm_enabled_user": [],
        },
        "activation_lock": {
            "bypass_code_failed": False,
            "user_activation_lock_enabled": False,
            "device_activation_lock_enabled": False,
            "activation_lock_allowed_while_supervised": False,
            "activation_lock_supported": dev["platform"] != "AppleTV",
        },
        "filevault": {
            "filevault_enabled": traits.get("filevault_enabled"),
            "filevault_recoverykey_type": "personal" if traits.get("filevault_enabled") else "",
            "filevault_prk_escrowed": bool(traits.get("filevault_enabled")),
            "filevault_next_rotation": "",
            "filevault_regen_required": False,
        },
        "lost_mode": _lost_mode(dev, traits),
        "automated_device_enrollment": {"auto_enroll_eligible": True, "auto_enrolled": True},
        "kandji_agent": {
            "agent_installed": str(dev["agent_installed"]),
            "install_date": dev["first_enrollment"] if dev["agent_installed"] else "",
            "last_check_in": check_in,
            "agent_version": dev["agent_version"],
        },
        "hardware_overview": _hardware(dev, traits),
        "volumes": [],
        "network": {
            "local_hostname": "",
            "mac_address": traits.get("mac_address", ""),
            "ip_address": "",
            "public_ip": "",
        },
        "recovery_information": {
            "recovery_lock_enabled": False,
            "firmware_password_exist": False,
            "firmware_password_pending": False,
            "password_rotation_scheduled": None,
            "password_has_been_set": False,
        },
        "users": {"regular_users": [], "system_users": []},
        "installed_profiles": [],
        "apple_business_manager": {},
        "security_information": {"remote_desktop_enabled": traits.get("remote_desktop_enabled")},
        "tags": list(dev.get("tags", [])),
    }
    if dev["platform"] == "AppleTV":  # as Kandji's Apple TV example: no lost mode, no supervision
        del out["lost_mode"]
        del out["mdm"]["supervised"]
    if mac:
        out["cellular"] = {}
    if mobile:
        out["cellular"] = {
            "voice_roaming": False,
            "data_roaming": False,
            "cellular_technology": 0,
            "subscriptions": None,
        }
    return out


async def details(ctx: Ctx) -> Reply:
    """GET /devices/{id}/details."""
    device_id, dev = _found(ctx)
    if dev is None:
        return detail(404, NOT_FOUND, device_id=device_id)
    traits = ctx.world.fleet.traits.get(device_id, {})
    return json_reply(200, build_details(dev, traits), device_id=device_id)


async def lost_mode(ctx: Ctx) -> Reply:
    """GET /devices/{id}/details/lostmode; 400 `["Device is not in lost mode."]` otherwise."""
    device_id, dev = _found(ctx)
    if dev is None:
        return detail(404, NOT_FOUND, device_id=device_id)
    info = _lost_mode(dev, ctx.world.fleet.traits.get(device_id, {}))
    if not info:
        return json_reply(
            400,
            ["Device is not in lost mode."],
            device_id=device_id,
            reason="Device is not in lost mode.",
        )
    return json_reply(200, {"device_id": device_id, "lost_mode": info}, device_id=device_id)


async def commands(ctx: Ctx) -> Reply:
    """GET /devices/{id}/commands: `{device_id, commands: {count, next, previous, results}}`."""
    device_id, dev = _found(ctx)
    if dev is None:
        return detail(404, NOT_FOUND, device_id=device_id)
    world = ctx.world
    st = world.states.get(device_id)
    cmds = [world.command_json(c, ctx.now_v) for c in (st.commands if st else [])]
    page = limit_offset_page(ctx, cmds)
    return json_reply(200, {"device_id": device_id, "commands": page}, device_id=device_id)


async def activity(ctx: Ctx) -> Reply:
    """GET /devices/{id}/activity: `{device_id, activity: {count, next, previous, results}}`."""
    device_id, dev = _found(ctx)
    if dev is None:
        return detail(404, NOT_FOUND, device_id=device_id)
    page = limit_offset_page(ctx, ctx.world.activity(device_id))
    return json_reply(200, {"device_id": device_id, "activity": page}, device_id=device_id)


async def unlock_pin(ctx: Ctx) -> Reply:
    """GET /devices/{id}/secrets/unlockpin: `{"pin": "123456"}` or `{"pin": null}`."""
    device_id, dev = _found(ctx)
    if dev is None:
        return detail(404, NOT_FOUND, device_id=device_id)
    st = ctx.world.states.get(device_id)
    pin: Any = st.unlock_pin if st else None
    return json_reply(200, {"pin": pin}, device_id=device_id)


def register(router: Router[Any]) -> None:
    """Add the device sub-resource routes."""
    router.add("GET", f"{BASE}/details", details)
    router.add("GET", f"{BASE}/details/lostmode", lost_mode)
    router.add("GET", f"{BASE}/commands", commands)
    router.add("GET", f"{BASE}/activity", activity)
    router.add("GET", f"{BASE}/secrets/unlockpin", unlock_pin)
