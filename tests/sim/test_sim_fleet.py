"""Fleet generation: determinism, realistic mix, serials, duplicates, ADE, JSON round trip."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from bulkops.sim import Fleet, generate_fleet

DEVICE_KEYS = [
    "device_id",
    "device_name",
    "model",
    "serial_number",
    "platform",
    "os_version",
    "supplemental_build_version",
    "supplemental_os_version_extra",
    "last_check_in",
    "user",
    "asset_tag",
    "blueprint_id",
    "blueprint_name",
    "mdm_enabled",
    "agent_installed",
    "is_missing",
    "is_removed",
    "agent_version",
    "first_enrollment",
    "last_enrollment",
    "lost_mode_status",
    "tags",
]
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def test_same_seed_gives_byte_identical_fleet() -> None:
    a = generate_fleet(devices=300, seed=11, ade_devices=5, duplicate_serials=2)
    b = generate_fleet(devices=300, seed=11, ade_devices=5, duplicate_serials=2)
    assert a.to_bytes() == b.to_bytes()


def test_different_seed_gives_a_different_fleet() -> None:
    a = generate_fleet(devices=50, seed=1)
    b = generate_fleet(devices=50, seed=2)
    assert set(a.devices).isdisjoint(b.devices)
    assert a.to_bytes() != b.to_bytes()


def test_platform_mix_is_realistic() -> None:
    fleet = generate_fleet(devices=4000, seed=3)
    mix = Counter(d["platform"] for d in fleet.devices.values())
    share = {p: n / 4000 for p, n in mix.items()}
    assert share["Mac"] == pytest.approx(0.60, abs=0.04)
    assert share["iPhone"] == pytest.approx(0.20, abs=0.03)
    assert share["iPad"] == pytest.approx(0.15, abs=0.03)
    assert share["AppleTV"] == pytest.approx(0.05, abs=0.02)


def test_device_records_have_the_api_keys_and_types() -> None:
    fleet = generate_fleet(devices=400, seed=5)
    users = {u["id"] for u in fleet.users.values()}
    tag_names = {t["name"] for t in fleet.tags.values()}
    for dev in fleet.devices.values():
        assert list(dev) == DEVICE_KEYS
        assert UUID.fullmatch(dev["device_id"])
        assert fleet.blueprints[dev["blueprint_id"]]["name"] == dev["blueprint_name"]
        assert set(dev["tags"]) <= tag_names
        user = dev["user"]
        if user != "":
            assert set(user) == {"email", "name", "id", "is_archived"}
            assert user["id"] in users
    kinds = Counter(isinstance(d["user"], dict) for d in fleet.devices.values())
    assert kinds[True] > 0 and kinds[False] > 0, "both user shapes must occur"
    assert any(d["asset_tag"] == "" for d in fleet.devices.values())
    assert any(d["asset_tag"] != "" for d in fleet.devices.values())
    assert any(d["lost_mode_status"] == "ENABLED" for d in fleet.devices.values())


def test_serials_are_unique_apple_like() -> None:
    fleet = generate_fleet(devices=3000, seed=9, ade_devices=50)
    serials = [d["serial_number"] for d in fleet.devices.values()]
    serials += [a["serial_number"] for a in fleet.ade_devices.values()]
    assert len(set(serials)) == len(serials)
    for s in serials:
        assert re.fullmatch(r"[0-9A-Z]{10,12}", s), s
        assert "O" not in s and "I" not in s


def test_duplicate_serials_after_a_logic_board_swap() -> None:
    fleet = generate_fleet(devices=200, seed=4, duplicate_serials=2)
    by_serial = Counter(d["serial_number"] for d in fleet.devices.values())
    dups = [s for s, n in by_serial.items() if n > 1]
    assert len(fleet.devices) == 200
    assert len(dups) == 2 and all(by_serial[s] == 2 for s in dups)
    for serial in dups:
        pair = [d for d in fleet.devices.values() if d["serial_number"] == serial]
        assert pair[0]["device_id"] != pair[1]["device_id"]
        assert pair[0]["platform"] == pair[1]["platform"]
        assert sorted(d["is_missing"] for d in pair) == [False, True]


def test_duplicates_need_enough_devices() -> None:
    with pytest.raises(ValueError, match="twice"):
        generate_fleet(devices=3, seed=1, duplicate_serials=2)


def test_blueprints_users_tags() -> None:
    fleet = generate_fleet(devices=100, seed=8)
    names = [b["name"] for b in fleet.blueprints.values()]
    assert 5 <= len(names) <= 8 and names[0] == "Default" and len(set(names)) == len(names)
    assert all(
        b["type"] == "classic" and UUID.fullmatch(b["id"]) for b in fleet.blueprints.values()
    )
    emails = [u["email"] for u in fleet.users.values()]
    assert len(set(emails)) == len(emails)
    assert all(e.isascii() and "@" in e for e in emails)
    assert all(UUID.fullmatch(t["id"]) for t in fleet.tags.values())
    # Platform-specific blueprints only hold their platform.
    for dev in fleet.devices.values():
        bp = dev["blueprint_name"]
        if "iPads" in bp:
            assert dev["platform"] == "iPad"
        if "Macs" in bp:
            assert dev["platform"] == "Mac"


def test_ade_devices_are_not_enrolled() -> None:
    fleet = generate_fleet(devices=50, seed=2, ade_devices=12)
    assert len(fleet.ade_devices) == 12
    enrolled = {d["serial_number"] for d in fleet.devices.values()}
    for rec in fleet.ade_devices.values():
        assert rec["mdm_device"] is None
        assert rec["serial_number"] not in enrolled
        assert rec["id"] not in fleet.devices
        assert rec["blueprint"] == rec["blueprint_id"] and rec["user"] == rec["user_id"]


def test_json_round_trip(tmp_path: Path) -> None:
    fleet = generate_fleet(devices=80, seed=6, ade_devices=4, duplicate_serials=1)
    path = tmp_path / "fleet.json"
    fleet.to_json(path)
    loaded = Fleet.from_json(path)
    assert loaded.to_bytes() == fleet.to_bytes()
    assert list(loaded.devices) == list(fleet.devices)
    assert loaded.seed == 6


def test_from_json_rejects_other_files(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"devices": []}')
    with pytest.raises(ValueError, match="not a bulkops simulator fleet"):
        Fleet.from_json(path)
