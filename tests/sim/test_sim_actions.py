"""Device actions: bodies, platform eligibility, MDM commands, lock PINs, state rules."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Serve
from simkit import Api, FakeClock

from bulkops.sim.actions import ACTION_SPECS

# action -> (a valid body, the MDM request type it queues or None)
VALID: dict[str, tuple[dict[str, Any] | None, str | None]] = {
    "blankpush": (None, None),
    "updateinventory": (None, "DeviceInformation"),
    "dailycheckin": (None, "DeviceInformation"),
    "restart": ({"RebuildKernelCache": False, "NotifyUser": True}, "RestartDevice"),
    "shutdown": (None, "ShutDownDevice"),
    "renewmdmprofile": (None, "InstallProfile"),
    "reinstallagent": (None, "InstallEnterpriseApplication"),
    "clearpasscode": (None, "ClearPasscode"),
    "deleteuser": (
        {"UserName": "alice", "DeleteAllUsers": False, "ForceDeletion": True},
        "DeleteUser",
    ),
    "unlockaccount": ({"UserName": "alice"}, "UnlockUserAccount"),
    "enablelostmode": (
        {"Message": "Lost", "PhoneNumber": "555", "Footnote": "f"},
        "EnableLostMode",
    ),
    "disablelostmode": (None, "DisableLostMode"),
    "playlostmodesound": (None, "PlayLostModeSound"),
    "updatelocation": (None, "DeviceLocation"),
    "remotedesktop": ({"EnableRemoteDesktop": True}, "EnableRemoteDesktop"),
    "setname": ({"DeviceName": "Renamed"}, "Settings"),
    "lock": ({"Message": "Call IT", "PhoneNumber": "555"}, "DeviceLock"),
    "erase": (
        {
            "PIN": "123456",
            "PreserveDataPlan": True,
            "DisallowProximitySetup": False,
            "ReturnToService": {"Enabled": False},
        },
        "EraseDevice",
    ),
}

NOT_ALLOWED = "Command is not allowed for current device"


def _eligible_device(api: Api, action: str) -> str:
    spec = ACTION_SPECS[action]
    for device_id, dev in api.sim.fleet.devices.items():
        if dev["platform"] not in spec.platforms:
            continue
        lost = dev["lost_mode_status"] == "ENABLED"
        if action in ("disablelostmode", "playlostmodesound", "updatelocation") and not lost:
            continue
        if action == "enablelostmode" and lost:
            continue
        return device_id
    raise AssertionError(f"no eligible device for {action}")


def test_every_action_in_the_brief_is_served() -> None:
    assert set(ACTION_SPECS) == set(VALID)


@pytest.mark.parametrize("action", sorted(VALID))
async def test_action_succeeds_with_empty_body_and_queues_its_command(
    serve: Serve, action: str
) -> None:
    async with serve(devices=300) as api:
        device_id = _eligible_device(api, action)
        body, request_type = VALID[action]
        r = await api.post(f"/api/v1/devices/{device_id}/action/{action}", json=body)
        assert r.status == 200, r.body
        is_mac_lock = action == "lock" and api.sim.fleet.devices[device_id]["platform"] == "Mac"
        if not is_mac_lock:
            assert r.body == b"" and r.headers["Content-Length"] == "0"
        cmds = (await api.get(f"/api/v1/devices/{device_id}/commands")).json()["commands"]
        if request_type is None:
            assert cmds["count"] == 0
        else:
            assert [c["request_type"] for c in cmds["results"]] == [request_type]
            assert cmds["results"][0]["status"] == 1
            assert cmds["results"][0]["date_completed"] is None
        entry = api.sim.ledger.select(action=action)[-1]
        assert (entry.outcome, entry.applied, entry.device_id) == ("applied", True, device_id)
        assert entry.route == f"/api/v1/devices/{{device_id}}/action/{action}"


async def test_lock_on_a_mac_returns_a_six_digit_pin_and_then_already_locked(api: Api) -> None:
    mac = api.device_of("Mac")
    r = await api.post(f"/api/v1/devices/{mac}/action/lock", json={"Message": "hi"})
    assert r.status == 200 and r.headers["Content-Type"] == "application/json"
    pin = r.json()["PIN"]
    assert len(pin) == 6 and pin.isdigit()
    assert api.sim.ledger.entries[-1].pin == pin
    assert api.sim.ledger.pins(mac) == [pin]
    again = await api.post(f"/api/v1/devices/{mac}/action/lock")
    assert again.status == 400 and again.json() == "This device is already locked."
    assert api.sim.ledger.applied_count(mac, "lock") == 1


async def test_lock_pins_are_deterministic_per_seed(serve: Serve) -> None:
    pins = []
    for _ in range(2):
        async with serve(seed=21) as api:
            macs = [d for d, r in api.sim.fleet.devices.items() if r["platform"] == "Mac"][:3]
            pins.append(
                [(await api.post(f"/api/v1/devices/{m}/action/lock")).json()["PIN"] for m in macs]
            )
    assert pins[0] == pins[1] and len(set(pins[0])) == 3


async def test_platform_eligibility_is_a_bare_string_400(api: Api) -> None:
    mac, phone, tv = api.device_of("Mac"), api.device_of("iPhone"), api.device_of("AppleTV")
    cases = [
        (mac, "clearpasscode", None),
        (mac, "enablelostmode", None),
        (phone, "reinstallagent", None),
        (phone, "remotedesktop", {"EnableRemoteDesktop": True}),
        (tv, "shutdown", None),
        (tv, "unlockaccount", {"UserName": "x"}),
    ]
    for device_id, action, body in cases:
        r = await api.post(f"/api/v1/devices/{device_id}/action/{action}", json=body)
        assert r.status == 400 and r.json() == NOT_ALLOWED, (action, r.body)
        assert r.headers["Content-Type"] == "application/json"
    assert api.sim.ledger.applied_count() == 0
    assert all(not st.commands for st in api.sim.world.states.values())


async def test_same_command_while_pending_is_already_running_until_it_completes(
    serve: Serve,
) -> None:
    clock = FakeClock()
    async with serve(clock=clock, command_delay_s=60.0) as api:
        mac = api.device_of("Mac")
        path = f"/api/v1/devices/{mac}/action/updateinventory"
        assert (await api.post(path)).status == 200
        clock.advance(30)
        r = await api.post(path)
        assert r.status == 400 and r.json() == "Command already running"
        assert (await api.post(f"/api/v1/devices/{mac}/action/dailycheckin")).json() == (
            "Command already running"
        ), "dailycheckin queues the same DeviceInformation command"
        assert (await api.post(f"/api/v1/devices/{mac}/action/restart")).status == 200
        clock.advance(30)
        cmds = (await api.get(f"/api/v1/devices/{mac}/commands")).json()["commands"]["results"]
        assert [c["status"] for c in cmds] == [3, 1]
        assert cmds[0]["date_completed"] is not None and cmds[0]["attempts"] == 1
        assert (await api.post(path)).status == 200
        assert api.sim.ledger.applied_count(mac, "updateinventory") == 2


async def test_setname_renames_when_the_command_completes(serve: Serve) -> None:
    clock = FakeClock()
    async with serve(clock=clock, command_delay_s=10.0) as api:
        mac = api.device_of("Mac")
        old = api.sim.fleet.devices[mac]["device_name"]
        r = await api.post(f"/api/v1/devices/{mac}/action/setname", json={"DeviceName": "NEW"})
        assert r.status == 200
        assert (await api.get(f"/api/v1/devices/{mac}")).json()["device_name"] == old
        clock.advance(10)
        assert (await api.get(f"/api/v1/devices/{mac}")).json()["device_name"] == "NEW"


@pytest.mark.parametrize(
    ("action", "body", "errors"),
    [
        ("setname", {}, {"DeviceName": ["This field is required."]}),
        ("setname", {"DeviceName": 5}, {"DeviceName": ["Not a valid string."]}),
        ("setname", {"DeviceName": "  "}, {"DeviceName": ["This field may not be blank."]}),
        ("remotedesktop", {}, {"EnableRemoteDesktop": ["This field is required."]}),
        (
            "remotedesktop",
            {"EnableRemoteDesktop": "yes"},
            {"EnableRemoteDesktop": ["Must be a valid boolean."]},
        ),
        ("restart", {"NotifyUser": 1}, {"NotifyUser": ["Must be a valid boolean."]}),
        ("deleteuser", {"ForceDeletion": True}, {"UserName": ["This field is required."]}),
        ("unlockaccount", {"UserName": None}, {"UserName": ["This field may not be null."]}),
        ("erase", {"PIN": "12ab"}, {"PIN": ["Ensure this field is a 6-digit PIN."]}),
        (
            "erase",
            {"ReturnToService": {"ProfileId": "x"}},
            {"ReturnToService": ["Enabled: This field is required."]},
        ),
        ("lock", {"Message": ["x"]}, {"Message": ["Not a valid string."]}),
    ],
)
async def test_body_validation_errors(api: Api, action: str, body: object, errors: object) -> None:
    mac = api.device_of("Mac")
    r = await api.post(f"/api/v1/devices/{mac}/action/{action}", json=body)
    assert r.status == 400 and r.json() == errors
    assert not api.sim.ledger.entries[-1].applied


async def test_malformed_json_on_an_action(api: Api) -> None:
    mac = api.device_of("Mac")
    r = await api.post(
        f"/api/v1/devices/{mac}/action/setname",
        data=b'{"DeviceName": "x",}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status == 400
    assert r.json()["detail"].startswith("JSON parse error - Expecting property name")


async def test_unknown_device_on_an_action_is_404(api: Api) -> None:
    r = await api.post("/api/v1/devices/00000000-0000-4000-8000-000000000000/action/restart")
    assert r.status == 404 and r.json() == {"detail": "Not found."}
    assert api.sim.ledger.entries[-1].outcome == "not_found"


async def test_remote_desktop_off_when_already_off_is_refused(api: Api) -> None:
    traits = api.sim.fleet.traits
    mac = next(
        d
        for d, r in api.sim.fleet.devices.items()
        if r["platform"] == "Mac" and not traits[d]["remote_desktop_enabled"]
    )
    path = f"/api/v1/devices/{mac}/action/remotedesktop"
    r = await api.post(path, json={"EnableRemoteDesktop": False})
    assert r.status == 400 and r.json() == NOT_ALLOWED
    assert (await api.post(path, json={"EnableRemoteDesktop": True})).status == 200
    cmds = (await api.get(f"/api/v1/devices/{mac}/commands")).json()["commands"]["results"]
    assert [c["request_type"] for c in cmds] == ["EnableRemoteDesktop"]
    assert (await api.post(path, json={"EnableRemoteDesktop": False})).status == 200


async def test_lost_mode_cycle(serve: Serve) -> None:
    clock = FakeClock()
    async with serve(clock=clock) as api:
        phone = next(
            d
            for d, r in api.sim.fleet.devices.items()
            if r["platform"] == "iPhone" and r["lost_mode_status"] == ""
        )
        base = f"/api/v1/devices/{phone}/action"
        assert (await api.post(f"{base}/playlostmodesound")).json() == NOT_ALLOWED
        assert (await api.post(f"{base}/enablelostmode", json={"Message": "m"})).status == 200
        assert api.sim.fleet.devices[phone]["lost_mode_status"] == "ENABLED"
        assert (await api.post(f"{base}/playlostmodesound")).status == 200
        assert (await api.post(f"{base}/updatelocation")).status == 200
        assert (await api.post(f"{base}/disablelostmode")).status == 200
        r = await api.post(f"{base}/disablelostmode")
        assert r.status == 400
        assert r.json() == "Disable lost mode is already pending for this device."
        clock.advance(120)
        assert (await api.post(f"{base}/disablelostmode")).json() == NOT_ALLOWED


async def test_erase_return_to_service_profile_not_in_scope(api: Api) -> None:
    ipad = api.device_of("iPad")
    r = await api.post(
        f"/api/v1/devices/{ipad}/action/erase",
        json={"ReturnToService": {"Enabled": True, "ProfileId": "not-a-profile"}},
    )
    assert r.status == 400 and r.json() == "The specified profile is not in scope for the device"


async def test_lock_on_ios_answers_empty_and_can_repeat_after_completion(serve: Serve) -> None:
    clock = FakeClock()
    async with serve(clock=clock) as api:
        phone = api.device_of("iPhone")
        path = f"/api/v1/devices/{phone}/action/lock"
        r = await api.post(path)
        assert (r.status, r.body) == (200, b"")
        assert (await api.post(path)).json() == "Command already running"
        clock.advance(61)
        assert (await api.post(path)).status == 200
        assert api.sim.ledger.pins() == []
