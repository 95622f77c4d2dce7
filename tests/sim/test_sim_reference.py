"""The simulator's answers against the saved example responses in Kandji's Postman collection.

For every saved example of an endpoint the simulator serves: same status code, and the same
keys with the same JSON value types. Documented leeway: `null` matches any type (nullable
fields), `user`/`assigned_user` may be an object or `""`, empty containers match any
container of that kind, newer device fields may appear on older examples, and `/devices`
always answers an array (the "specific serial number" example shows a bare object).
Skips when `../shared/reference` is absent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Serve
from simkit import Api, Resp

COLLECTION = (
    Path(__file__).resolve().parents[2] / "../shared/reference/kandji_postman_collection.json"
).resolve()

pytestmark = pytest.mark.skipif(not COLLECTION.exists(), reason=f"{COLLECTION} not present")

# Fields newer than some saved examples: allowed as extra keys.
NEWER_FIELDS = {"lost_mode_status", "supplemental_build_version", "supplemental_os_version_extra"}
USER_FIELDS = ("user", "assigned_user")
# Sub-objects whose content depends on the hardware; only their container type is compared.
OPAQUE = {"$.volumes", "$.users", "$.installed_profiles", "$.recovery_information"}

Case = Callable[[Api], Awaitable[Resp]]


def _clean(text: str) -> str:
    """Drop the `...` elisions the examples contain, and the trailing commas they leave."""
    lines = [ln for ln in text.splitlines() if ln.strip() not in ("...", "...,", "{...}", "{...},")]
    return re.sub(r",(\s*[\]}])", r"\1", "\n".join(lines))


def _examples() -> dict[tuple[str, str], tuple[int, str]]:
    doc = json.loads(COLLECTION.read_text(encoding="utf-8"))
    out: dict[tuple[str, str], tuple[int, str]] = {}

    def walk(items: list[dict[str, Any]]) -> None:
        for it in items:
            if "item" in it:
                walk(it["item"])
                continue
            for resp in it.get("response", []):
                body = resp.get("body") or ""
                if body.strip() == "No body returned for response":
                    body = ""
                out[(it["name"], resp["name"])] = (resp.get("code") or 200, body)

    walk(doc["item"])
    return out


def shape_diff(example: Any, actual: Any, path: str = "$") -> list[str]:
    """Differences in keys and JSON value types between an example and an actual body."""
    if example is None or actual is None or path in OPAQUE:
        return []
    leaf = path.rsplit(".", 1)[-1]
    if (
        leaf in USER_FIELDS
        and "" in (example, actual)
        and {type(example), type(actual)}
        <= {
            dict,
            str,
        }
    ):
        return []  # no user assigned: `""` stands where the object would be
    if isinstance(example, dict):
        if not isinstance(actual, dict):
            return [f"{path}: object vs {type(actual).__name__}"]
        if not example or not actual:
            return []
        diffs = []
        missing = set(example) - set(actual)
        extra = set(actual) - set(example) - NEWER_FIELDS
        if missing:
            diffs.append(f"{path}: missing {sorted(missing)}")
        if extra:
            diffs.append(f"{path}: extra {sorted(extra)}")
        for key in example:
            if key in actual:
                diffs += shape_diff(example[key], actual[key], f"{path}.{key}")
        return diffs
    if isinstance(example, list):
        if not isinstance(actual, list):
            return [f"{path}: array vs {type(actual).__name__}"]
        if example and actual:
            return shape_diff(example[0], actual[0], f"{path}[]")
        return []
    numeric = (int, float)
    if isinstance(example, bool) or isinstance(actual, bool):
        same = isinstance(example, bool) and isinstance(actual, bool)
    elif isinstance(example, numeric):
        same = isinstance(actual, numeric)
    else:
        same = type(example) is type(actual)
    return [] if same else [f"{path}: {type(example).__name__} vs {type(actual).__name__}"]


# -- how to reproduce each saved example on the simulator -------------------------------------


def _first(api: Api, pred: Callable[[dict[str, Any]], bool]) -> str:
    return next(d for d, r in api.sim.fleet.devices.items() if pred(r))


def _mac(api: Api) -> str:
    return _first(api, lambda r: r["platform"] == "Mac" and isinstance(r["user"], dict))


def _platform(name: str) -> Callable[[Api], str]:
    return lambda api: _first(api, lambda r: r["platform"] == name)


def _lost(api: Api) -> str:
    return _first(api, lambda r: r["lost_mode_status"] == "ENABLED")


def _get(path: str, pick: Callable[[Api], str] | None = None) -> Case:
    async def run(api: Api) -> Resp:
        return await api.get(path.format(id=pick(api)) if pick else path)

    return run


def _action(name: str, body: Any = None, pick: Callable[[Api], str] = _mac, times: int = 1) -> Case:
    async def run(api: Api) -> Resp:
        device_id = pick(api)
        resp = None
        for _ in range(times):
            resp = await api.post(f"/api/v1/devices/{device_id}/action/{name}", json=body)
        assert resp is not None
        return resp

    return run


def _patch_device(body: dict[str, Any]) -> Case:
    async def run(api: Api) -> Resp:
        fleet = api.sim.fleet
        real = dict(body)
        if "blueprint_id" in real:
            real["blueprint_id"] = list(fleet.blueprints)[1]
        if real.get("user"):
            real["user"] = next(iter(fleet.users))
        return await api.patch(f"/api/v1/devices/{_mac(api)}", json=real)

    return run


def _patch_ade(body: dict[str, Any]) -> Case:
    async def run(api: Api) -> Resp:
        fleet = api.sim.fleet
        real = {
            k: (
                list(fleet.blueprints)[1]
                if k == "blueprint"
                else next(iter(fleet.users))
                if k == "user_id"
                else v
            )
            for k, v in body.items()
        }
        return await api.patch(f"{ADE}/{next(iter(fleet.ade_devices))}", json=real)

    return run


async def _unlock_pin(api: Api) -> Resp:
    mac = _mac(api)
    await api.post(f"/api/v1/devices/{mac}/action/lock")
    return await api.get(f"/api/v1/devices/{mac}/secrets/unlockpin")


async def _commands(api: Api) -> Resp:
    mac = _mac(api)
    await api.post(f"/api/v1/devices/{mac}/action/restart")
    return await api.get(f"/api/v1/devices/{mac}/commands?limit=300")


async def _delete(api: Api) -> Resp:
    return await api.call("DELETE", f"/api/v1/devices/{_mac(api)}")


async def _library_404(api: Api) -> Resp:
    return await api.call("DELETE", "/api/v1/library/custom-apps/00000000-0000-4000-8000-0")


def _rd_on(api: Api) -> str:
    traits = api.sim.fleet.traits
    return _first(api, lambda r: bool(traits[r["device_id"]]["remote_desktop_enabled"]))


ADE = "/api/v1/integrations/apple/ade/devices"
D = "/api/v1/devices/{id}"
ERASE = {"PIN": "123456", "PreserveDataPlan": True, "DisallowProximitySetup": False}
CASES: dict[tuple[str, str], Case] = {
    ("List Devices", "List Devices"): _get("/api/v1/devices?limit=300"),
    ("List Devices", "Query for specific serial number"): _get(
        "/api/v1/devices?serial_number={id}",
        lambda api: api.sim.fleet.devices[_mac(api)]["serial_number"],
    ),
    ("List Devices", "List Mac only"): _get("/api/v1/devices?platform=Mac&limit=300&offset=0"),
    ("List Devices", "List iPhone only"): _get("/api/v1/devices?platform=iPhone&limit=300"),
    ("List Devices", "List iPad only"): _get("/api/v1/devices?platform=iPad&limit=300"),
    ("Get Device", "Get Mac"): _get(D, _mac),
    ("Get Device", "Get iPad"): _get(D, _platform("iPad")),
    ("Get Device Details", "Get Mac details"): _get(D + "/details", _mac),
    ("Get Device Details", "Get iPad details"): _get(D + "/details", _platform("iPad")),
    ("Get Device Details", "Get AppleTV details"): _get(D + "/details", _platform("AppleTV")),
    ("Get Device Details", "iPhone or iPad in Lost mode"): _get(D + "/details", _lost),
    ("Get Device Lost Mode details", "Get Device Lost Mode details"): _get(
        D + "/details/lostmode", _lost
    ),
    ("Get Device Lost Mode details", "Device not in lost mode"): _get(
        D + "/details/lostmode", _mac
    ),
    ("Get Device Activity", "Get Device Activity"): _get(D + "/activity?limit=300", _mac),
    ("Get Device Commands", "Get Device Commands"): _commands,
    ("Get Unlock Pin", "success"): _unlock_pin,
    ("Delete Device", "Delete Device"): _delete,
    ("Update Device", "Update all device attributes"): _patch_device(
        {"user": "u", "asset_tag": "1040", "blueprint_id": "b", "tags": ["tag1", "tag2"]}
    ),
    ("Update Device", "Update asset tag and assigned user"): _patch_device(
        {"asset_tag": "accuhive01", "user": "u"}
    ),
    ("Update Device", "Update blueprint only"): _patch_device({"blueprint_id": "b"}),
    ("Update Device", "Update tags only"): _patch_device({"tags": ["tag1", "tag2"]}),
    ("Update Device", "Clear asset tag"): _patch_device({"asset_tag": None}),
    ("Update Device", "Clear assigned user"): _patch_device({"user": None}),
    ("Update Device", "Clear all tags"): _patch_device({"tags": []}),
    ("Lock Device", "success"): _action("lock", {"Message": "m"}),
    ("Lock Device", "Device already locked"): _action("lock", times=2),
    ("Send Blankpush", "Send Blankpush"): _action("blankpush"),
    ("Update Inventory", "Update Inventory"): _action("updateinventory"),
    ("Restart Device", "Restart Device"): _action(
        "restart", {"RebuildKernelCache": False, "NotifyUser": False}
    ),
    ("Shutdown", "Shutdown"): _action("shutdown"),
    ("Renew MDM Profile", "Renew MDM Profile"): _action("renewmdmprofile"),
    ("Reinstall Agent", "Reinstall Agent"): _action("reinstallagent"),
    ("Clear Passcode", "Clear Passcode"): _action("clearpasscode", pick=_platform("iPhone")),
    ("Delete User", "Delete User"): _action(
        "deleteuser", {"DeleteAllUsers": False, "ForceDeletion": False, "UserName": "testuser"}
    ),
    ("Unlock Account", "Unlock Account"): _action("unlockaccount", {"UserName": "testuser"}),
    ("Set Name", "Set Name"): _action("setname", {"DeviceName": "Test Mac Mini"}),
    ("Remote Desktop", "Turn on Remote Desktop"): _action(
        "remotedesktop", {"EnableRemoteDesktop": True}
    ),
    ("Remote Desktop", "Turn off Remote Desktop"): _action(
        "remotedesktop", {"EnableRemoteDesktop": False}, pick=_rd_on
    ),
    ("Enable Lost Mode", "Enable Lost Mode"): _action(
        "enablelostmode",
        {"Message": "m"},
        pick=lambda api: _first(
            api, lambda r: r["platform"] == "iPad" and r["lost_mode_status"] == ""
        ),
    ),
    ("Disable Lost Mode", "Disable Lost Mode"): _action("disablelostmode", pick=_lost),
    ("Play Lost Mode Sound", "Play Lost Mode Sound"): _action("playlostmodesound", pick=_lost),
    ("Update Location", "Update Location"): _action("updatelocation", pick=_lost),
    ("Erase Device", "macOS"): _action(
        "erase", {**ERASE, "ReturnToService": {"Enabled": False, "ProfileId": ""}}
    ),
    ("Erase Device", "Return to service"): _action(
        "erase",
        {
            **ERASE,
            "ReturnToService": {
                "Enabled": True,
                "ProfileId": "c0148e35-c734-4402-b2fb-1c61aab72550",
            },
        },
    ),
    # The simulator knows no Wi-Fi profiles: an id that is not a UUID is "not in scope".
    ("Erase Device", "RTS - Profile not in scope"): _action(
        "erase",
        {**ERASE, "ReturnToService": {"Enabled": True, "ProfileId": "unknown"}},
        pick=_platform("iPad"),
    ),
    ("List Blueprints", "success"): _get("/api/v1/blueprints"),
    ("Get Tags", "success"): _get("/api/v1/tags?search=wave"),
    ("List Users", "success"): _get("/api/v1/users"),
    ("List ADE devices", "success"): _get(ADE),
    ("List ADE devices", "Invalid UUID"): _get(ADE + "?dep_account=nope"),
    ("Get ADE device", "success"): _get(
        ADE + "/{id}", lambda api: next(iter(api.sim.fleet.ade_devices))
    ),
    ("Update ADE device", "Update blueprint"): _patch_ade({"blueprint": "b"}),
    ("Update ADE device", "Update asset tag"): _patch_ade({"asset_tag": "accuhive_asset_tag_01"}),
    ("Update ADE device", "Update user assignment"): _patch_ade({"user_id": "u"}),
    ("Delete Custom App", "requested library item not found"): _library_404,
}

SERVED = {item for item, _ in CASES} - {"Delete Custom App"}
# Same request name, other endpoint (DELETE /users/{id}), which the simulator does not serve.
NOT_SERVED = {("Delete User", "success"), ("Delete User", "user assigned to device")}


def test_every_saved_example_of_a_served_endpoint_has_a_case() -> None:
    saved = {key for key in _examples() if key[0] in SERVED} - NOT_SERVED
    assert saved == {key for key in CASES if key[0] in SERVED}


def test_shape_diff_catches_what_it_should() -> None:
    example = {"a": 1, "user": {"id": "x"}, "items": [{"k": "v"}], "flag": True, "n": None}
    assert shape_diff(example, {"a": 2, "user": "", "items": [], "flag": False, "n": "s"}) == []
    assert shape_diff(
        example, {"a": "1", "user": {"id": "y"}, "items": [{"k": 1}], "flag": 1, "n": 0}
    ) == [
        "$.a: int vs str",
        "$.items[].k: str vs int",
        "$.flag: bool vs int",
    ]
    assert shape_diff({"a": 1, "b": 2}, {"a": 1, "c": 3}) == [
        "$: missing ['b']",
        "$: extra ['c']",
    ]
    assert shape_diff({"user": {"id": "x"}}, {"user": {"name": "y"}}) == [
        "$.user: missing ['id']",
        "$.user: extra ['name']",
    ]
    assert shape_diff([{"a": 1}], {"a": 1}) == ["$: array vs dict"]


@pytest.mark.parametrize("key", sorted(CASES), ids=lambda k: f"{k[0]}/{k[1]}")
async def test_matches_saved_example(serve: Serve, key: tuple[str, str]) -> None:
    status, text = _examples()[key]
    async with serve(devices=300, ade_devices=5) as api:
        resp = await CASES[key](api)
    assert resp.status == status, resp.body
    if not text.strip():
        assert resp.body == b""
        return
    if text.lstrip().startswith("<"):
        assert resp.headers["Content-Type"].startswith("text/html")
        assert b"Not Found" in resp.body
        return
    example = json.loads(_clean(text))
    actual = resp.json()
    if key == ("List Devices", "Query for specific serial number"):
        assert isinstance(actual, list) and len(actual) == 1  # always an array here
        actual = actual[0]
    assert shape_diff(example, actual) == []
