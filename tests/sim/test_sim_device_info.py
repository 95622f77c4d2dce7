"""Device sub-resources: details, lost mode details, commands, activity, unlock PIN."""

from __future__ import annotations

from simkit import Api

DETAIL_KEYS = {
    "general",
    "mdm",
    "activation_lock",
    "filevault",
    "lost_mode",
    "automated_device_enrollment",
    "kandji_agent",
    "hardware_overview",
    "volumes",
    "network",
    "recovery_information",
    "users",
    "installed_profiles",
    "apple_business_manager",
    "security_information",
    "tags",
}


async def test_details_of_a_mac_and_an_iphone(api: Api) -> None:
    mac = api.device_of("Mac")
    body = (await api.get(f"/api/v1/devices/{mac}/details")).json()
    assert set(body) == DETAIL_KEYS | {"cellular"}
    assert body["cellular"] == {} and "processor_name" in body["hardware_overview"]
    dev = api.sim.fleet.devices[mac]
    assert body["general"]["device_id"] == mac
    assert body["general"]["assigned_user"] == dev["user"]
    assert body["general"]["blueprint_uuid"] == dev["blueprint_id"]
    assert body["hardware_overview"]["serial_number"] == dev["serial_number"]
    assert body["mdm"]["mdm_enabled"] == "True"  # booleans as strings, as Kandji sends them
    assert isinstance(body["security_information"]["remote_desktop_enabled"], bool)
    phone = api.device_of("iPhone")
    body = (await api.get(f"/api/v1/devices/{phone}/details")).json()
    assert set(body) == DETAIL_KEYS | {"cellular"}
    assert body["security_information"]["remote_desktop_enabled"] is None
    assert set(body["cellular"]) == {
        "voice_roaming",
        "data_roaming",
        "cellular_technology",
        "subscriptions",
    }
    tv = api.device_of("AppleTV")
    body = (await api.get(f"/api/v1/devices/{tv}/details")).json()
    assert set(body) == DETAIL_KEYS - {"lost_mode"}
    assert "supervised" not in body["mdm"]


async def test_lost_mode_details(api: Api) -> None:
    lost = next(d for d, r in api.sim.fleet.devices.items() if r["lost_mode_status"] == "ENABLED")
    r = await api.get(f"/api/v1/devices/{lost}/details/lostmode")
    assert r.status == 200
    assert r.json()["device_id"] == lost
    assert r.json()["lost_mode"]["lost_mode_status"] == "ENABLED"
    mac = api.device_of("Mac")
    r = await api.get(f"/api/v1/devices/{mac}/details/lostmode")
    assert r.status == 400 and r.json() == ["Device is not in lost mode."]


async def test_commands_are_paged_with_device_id_envelope(api: Api) -> None:
    mac = api.device_of("Mac")
    r = await api.get(f"/api/v1/devices/{mac}/commands")
    assert r.json() == {
        "device_id": mac,
        "commands": {"count": 0, "next": None, "previous": None, "results": []},
    }
    for action in ("restart", "updateinventory", "shutdown"):
        assert (await api.post(f"/api/v1/devices/{mac}/action/{action}")).status == 200
    page1 = (await api.get(f"/api/v1/devices/{mac}/commands", params={"limit": "2"})).json()
    cmds = page1["commands"]
    assert cmds["count"] == 3 and len(cmds["results"]) == 2 and cmds["previous"] is None
    assert "offset=2" in cmds["next"] and "limit=2" in cmds["next"]
    assert [c["request_type"] for c in cmds["results"]] == ["RestartDevice", "DeviceInformation"]
    rest = (await api.get(cmds["next"].removeprefix(api.url))).json()["commands"]
    assert [c["request_type"] for c in rest["results"]] == ["ShutDownDevice"]
    assert rest["next"] is None and rest["previous"] is not None


async def test_activity_starts_with_enrollment_and_records_changes(api: Api) -> None:
    mac = api.device_of("Mac")
    r = (await api.get(f"/api/v1/devices/{mac}/activity")).json()
    assert r["device_id"] == mac
    first = r["activity"]["results"][0]
    assert first["action_type"] == "enrollment"
    assert set(first) == {
        "id",
        "created_at",
        "action_type",
        "details",
        "computer",
        "blueprint",
        "user",
    }
    await api.patch(f"/api/v1/devices/{mac}", json={"asset_tag": "NEW-1"})
    r = (await api.get(f"/api/v1/devices/{mac}/activity")).json()
    assert r["activity"]["count"] == 2
    assert r["activity"]["results"][-1]["action_type"] == "asset_tag_changed"
    assert r["activity"]["results"][-1]["details"]["to"] == "NEW-1"


async def test_unlock_pin_is_null_until_a_mac_is_locked(api: Api) -> None:
    mac = api.device_of("Mac")
    r = await api.get(f"/api/v1/devices/{mac}/secrets/unlockpin")
    assert r.status == 200 and r.json() == {"pin": None}
    pin = (await api.post(f"/api/v1/devices/{mac}/action/lock")).json()["PIN"]
    assert (await api.get(f"/api/v1/devices/{mac}/secrets/unlockpin")).json() == {"pin": pin}


async def test_sub_resources_of_unknown_device_are_404(api: Api) -> None:
    ghost = "00000000-0000-4000-8000-000000000000"
    for sub in ("details", "commands", "activity", "secrets/unlockpin", "details/lostmode"):
        r = await api.get(f"/api/v1/devices/{ghost}/{sub}")
        assert (r.status, r.json()) == (404, {"detail": "Not found."}), sub
