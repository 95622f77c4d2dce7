"""Seeded, deterministic generation of a Kandji tenant: devices, blueprints, users, tags, ADE."""

from __future__ import annotations

import os
import random
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from bulkops.sim.fleet_data import (
    BLUEPRINT_NAMES,
    FIRST_NAMES,
    LAST_NAMES,
    MODELS,
    PLATFORM_WEIGHTS,
    SERIAL_ALPHABET,
    TAG_NAMES,
)

__all__ = ["Fleet", "Record", "generate_fleet"]

Record = dict[str, Any]

_FORMAT = 1
_BASE = datetime(2025, 6, 2, 9, 0, 0, tzinfo=UTC)
_OS_NAME = {"Mac": "OSX", "iPhone": "iOS", "iPad": "iOS", "AppleTV": "tvOS"}
_COLORS = ("SILVER", "SPACE GRAY", "MIDNIGHT", "STARLIGHT", "GOLD", "BLUE")
_USER_SHARE = {"Mac": 0.85, "iPhone": 0.9, "iPad": 0.3, "AppleTV": 0.0}


@dataclass(eq=False)
class Fleet:
    """A tenant's records, each a dict keyed by id, in generation order (mutable at runtime)."""

    seed: int
    blueprints: dict[str, Record] = field(default_factory=dict)
    users: dict[str, Record] = field(default_factory=dict)
    tags: dict[str, Record] = field(default_factory=dict)
    devices: dict[str, Record] = field(default_factory=dict)
    traits: dict[str, Record] = field(default_factory=dict)
    ade_devices: dict[str, Record] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        """Serialise to stable, indented JSON (same fleet → same bytes)."""
        doc = {
            "format": _FORMAT,
            "seed": self.seed,
            "blueprints": list(self.blueprints.values()),
            "users": list(self.users.values()),
            "tags": list(self.tags.values()),
            "devices": list(self.devices.values()),
            "traits": self.traits,
            "ade_devices": list(self.ade_devices.values()),
        }
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"

    def to_json(self, path: str | os.PathLike[str]) -> None:
        """Write the fleet to `path` as JSON."""
        Path(path).write_bytes(self.to_bytes())

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> Fleet:
        """Load a fleet written by `to_json`."""
        doc = orjson.loads(Path(path).read_bytes())
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
            raise ValueError(f"{path}: not a bulkops simulator fleet (format {_FORMAT})")
        return cls(
            seed=int(doc["seed"]),
            blueprints={r["id"]: r for r in doc["blueprints"]},
            users={r["id"]: r for r in doc["users"]},
            tags={r["id"]: r for r in doc["tags"]},
            devices={r["device_id"]: r for r in doc["devices"]},
            traits=dict(doc["traits"]),
            ade_devices={r["id"]: r for r in doc["ade_devices"]},
        )

    def user_ref(self, user_id: str) -> Record:
        """The `{email, name, id, is_archived}` object embedded in device records."""
        u = self.users[user_id]
        return {"email": u["email"], "name": u["name"], "id": u["id"], "is_archived": u["archived"]}


class _Gen:
    """Holds the RNG and uniqueness sets while one fleet is generated."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.serials: set[str] = set()
        self.asset_tags: set[str] = set()

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def when(self, *, days_back: float) -> datetime:
        return _BASE - timedelta(seconds=self.rng.uniform(0, days_back * 86400))

    def serial(self, platform: str) -> str:
        rng = self.rng
        while True:
            if platform == "Mac" and rng.random() < 0.5:
                body = "C02" + "".join(rng.choices(SERIAL_ALPHABET, k=9))  # older 12-char form
            else:
                length = 10 if rng.random() < 0.5 else 12  # randomised serials since 2021
                body = rng.choice("CDFGHKLMNPQRTVWXYZ") + "".join(
                    rng.choices(SERIAL_ALPHABET, k=length - 1)
                )
            if body not in self.serials:
                self.serials.add(body)
                return body

    def asset_tag(self) -> str:
        while True:
            tag = f"A{self.rng.randrange(10000, 99999)}"
            if tag not in self.asset_tags:
                self.asset_tags.add(tag)
                return tag


def _iso_z(dt: datetime) -> str:
    return dt.isoformat(timespec="microseconds")[:-6] + "Z"


def _iso_space(dt: datetime) -> str:
    return dt.isoformat(sep=" ", timespec="microseconds")


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def _blueprints(g: _Gen) -> dict[str, Record]:
    count = g.rng.randint(5, 8)
    names = [BLUEPRINT_NAMES[0], *g.rng.sample(BLUEPRINT_NAMES[1:], count - 1)]
    out: dict[str, Record] = {}
    for raw in names:
        name, _, _hint = raw.partition("|")
        bid = g.uuid()
        out[bid] = {
            "id": bid,
            "name": name,
            "icon": g.rng.choice(("ss-laptop", "ss-ipad", "ss-iphone", "ss-tv", "ss-files")),
            "color": g.rng.choice(("aqua-500", "blue-400", "green-600", "red-300", "grey-500")),
            "description": "",
            "params": {},
            "computers_count": 0,
            "enrollment_code": {"code": f"{g.rng.randrange(1_000_000):06d}", "is_active": True},
            "type": "classic",
        }
    return out


def _platform_hint(name: str) -> str | None:
    for raw in BLUEPRINT_NAMES:
        base, _, hint = raw.partition("|")
        if base == name:
            return hint or None
    return None


def _users(g: _Gen, count: int) -> dict[str, Record]:
    out: dict[str, Record] = {}
    emails: set[str] = set()
    integration = {"id": 634, "name": "directory", "uuid": g.uuid(), "type": "office365"}
    for i in range(count):
        first, last = g.rng.choice(FIRST_NAMES), g.rng.choice(LAST_NAMES)
        local = f"{_ascii(first)}.{_ascii(last)}"
        email, n = f"{local}@example.com", 2
        while email in emails:
            email, n = f"{local}{n}@example.com", n + 1
        emails.add(email)
        created = g.when(days_back=700)
        uid = g.uuid()
        out[uid] = {
            "active": True,
            "archived": g.rng.random() < 0.05,
            "created_at": _iso_z(created),
            "department": None,
            "deprecated_user_id": str(29000 + i),
            "email": email,
            "id": uid,
            "integration": integration,
            "job_title": None,
            "name": f"{first} {last}",
            "device_count": 0,
            "updated_at": _iso_z(created + timedelta(days=g.rng.randint(0, 30))),
        }
    return out


def _tags(g: _Gen) -> dict[str, Record]:
    names = g.rng.sample(TAG_NAMES, g.rng.randint(6, len(TAG_NAMES)))
    out: dict[str, Record] = {}
    for name in names:
        tid = g.uuid()
        out[tid] = {"id": tid, "name": name}
    return out


def _device_name(platform: str, model: str, owner: str | None, index: int) -> str:
    family = model.split(" (")[0]
    if owner is not None:
        return f"{owner.split()[0]}’s {family}"
    return {
        "Mac": f"MAC-{index:05d}",
        "iPhone": "iPhone",
        "iPad": f"Kiosk-iPad-{index:03d}",
        "AppleTV": f"Lab-ATV-{index:02d}",
    }[platform]


def _device(
    g: _Gen,
    fleet: Fleet,
    index: int,
    *,
    bp_for: dict[str, list[str]],
    user_ids: list[str],
    tag_names: list[str],
) -> None:
    rng = g.rng
    platform = rng.choices([p for p, _ in PLATFORM_WEIGHTS], [w for _, w in PLATFORM_WEIGHTS])[0]
    model, ident, versions, abm = rng.choice(MODELS[platform])
    device_id = g.uuid()
    user: Record | str = ""
    owner = None
    if user_ids and rng.random() < _USER_SHARE[platform]:
        ref = fleet.user_ref(rng.choice(user_ids))
        user, owner = ref, ref["name"]
    bp_id = rng.choice(bp_for[platform])
    first = g.when(days_back=900)
    last_enroll = first + timedelta(seconds=rng.uniform(0, (_BASE - first).total_seconds()))
    chosen = sorted(rng.sample(tag_names, rng.choice((0, 0, 0, 1, 1, 2))))
    lost = platform in ("iPhone", "iPad") and rng.random() < 0.04
    fleet.devices[device_id] = {
        "device_id": device_id,
        "device_name": _device_name(platform, model, owner, index),
        "model": model,
        "serial_number": g.serial(platform),
        "platform": platform,
        "os_version": rng.choice(versions),
        "supplemental_build_version": "",
        "supplemental_os_version_extra": "",
        "last_check_in": _iso_z(g.when(days_back=3)),
        "user": user,
        "asset_tag": g.asset_tag() if rng.random() < 0.7 else "",
        "blueprint_id": bp_id,
        "blueprint_name": fleet.blueprints[bp_id]["name"],
        "mdm_enabled": True,
        "agent_installed": platform == "Mac",
        "is_missing": rng.random() < 0.03,
        "is_removed": False,
        "agent_version": f"4.{rng.randint(5, 9)}.{rng.randint(0, 12)} (5{rng.randrange(1000):03d})"
        if platform == "Mac"
        else "",
        "first_enrollment": _iso_space(first),
        "last_enrollment": _iso_space(last_enroll),
        "lost_mode_status": "ENABLED" if lost else "",
        "tags": chosen,
    }
    fleet.traits[device_id] = {
        "model_identifier": ident,
        "abm_description": abm,
        "color": rng.choice(_COLORS),
        "mac_address": ":".join(f"{rng.randrange(256):02x}" for _ in range(6)),
        "supervised": platform != "Mac" or rng.random() < 0.9,
        "filevault_enabled": (rng.random() < 0.85) if platform == "Mac" else None,
        "remote_desktop_enabled": (rng.random() < 0.2) if platform == "Mac" else None,
        "lost_mode_enabled_at": _iso_z(g.when(days_back=20)) if lost else None,
    }


def _duplicate_serials(g: _Gen, fleet: Fleet, count: int) -> None:
    """Re-enrol `count` earlier devices under new records (a logic-board swap leaves both)."""
    ids = list(fleet.devices)
    sources = g.rng.sample(ids[: len(ids) - count], count)
    for source_id, new_id in zip(sources, ids[len(ids) - count :], strict=True):
        old, new = fleet.devices[source_id], fleet.devices[new_id]
        g.serials.discard(new["serial_number"])
        for key in ("serial_number", "platform", "model", "device_name", "user", "os_version"):
            new[key] = old[key]
        new["agent_installed"] = old["agent_installed"]
        new["agent_version"] = old["agent_version"]
        new["lost_mode_status"] = ""
        new["is_missing"] = False
        old["is_missing"] = True
        fleet.traits[new_id] = dict(fleet.traits[source_id], lost_mode_enabled_at=None)
        if fleet.blueprints[new["blueprint_id"]]["name"] != "Default":
            new["blueprint_id"] = old["blueprint_id"]
            new["blueprint_name"] = old["blueprint_name"]


def _ade_device(
    g: _Gen, fleet: Fleet, dep_account: Record, *, bp_for: dict[str, list[str]], user_ids: list[str]
) -> None:
    rng = g.rng
    platform = rng.choices([p for p, _ in PLATFORM_WEIGHTS], [w for _, w in PLATFORM_WEIGHTS])[0]
    model, _ident, _versions, abm = rng.choice(MODELS[platform])
    bp_id = rng.choice(bp_for[platform])
    user_id = rng.choice(user_ids) if user_ids and rng.random() < 0.5 else None
    assigned = g.when(days_back=60)
    ade_id = g.uuid()
    color = rng.choice(_COLORS)
    fleet.ade_devices[ade_id] = {
        "blueprint_id": bp_id,
        "mdm_device": None,
        "user_id": user_id,
        "dep_account": dep_account,
        "asset_tag": g.asset_tag() if rng.random() < 0.5 else "",
        "color": color,
        "description": f"{abm} {color}-USA",
        "device_assigned_by": "it-purchasing@example.com",
        "device_assigned_date": assigned.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "device_family": platform,
        "model": model.split(" (")[0],
        "os": _OS_NAME[platform],
        "profile_assign_time": (assigned + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "profile_push_time": (assigned + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "profile_status": "assigned",
        "serial_number": g.serial(platform),
        "id": ade_id,
        "last_assignment_status": "SUCCESS",
        "failed_assignment_attempts": 0,
        "assignment_status_received_at": _iso_z(assigned + timedelta(hours=1)),
        "blueprint": bp_id,
        "user": user_id,
    }


def generate_fleet(
    *, devices: int, seed: int, ade_devices: int = 10, duplicate_serials: int = 0
) -> Fleet:
    """Generate a tenant deterministically: the same arguments give a byte-identical fleet."""
    if devices < 0 or ade_devices < 0 or duplicate_serials < 0:
        raise ValueError("devices, ade_devices and duplicate_serials must be >= 0")
    if duplicate_serials and devices < 2 * duplicate_serials:
        raise ValueError("duplicate_serials needs at least twice as many devices")
    g = _Gen(seed)
    fleet = Fleet(seed=seed)
    fleet.blueprints = _blueprints(g)
    fleet.users = _users(g, max(3, devices * 3 // 4))
    fleet.tags = _tags(g)
    bp_for: dict[str, list[str]] = {p: [] for p in MODELS}
    for bid, bp in fleet.blueprints.items():
        hint = _platform_hint(bp["name"])
        for platform in MODELS:
            if hint is None or hint == platform:
                bp_for[platform].append(bid)
    user_ids = list(fleet.users)
    tag_names = [t["name"] for t in fleet.tags.values()]
    for i in range(devices):
        _device(g, fleet, i + 1, bp_for=bp_for, user_ids=user_ids, tag_names=tag_names)
    if duplicate_serials:
        _duplicate_serials(g, fleet, duplicate_serials)
    dep_account = {"id": g.uuid(), "server_name": "example-abm"}
    for _ in range(ade_devices):
        _ade_device(g, fleet, dep_account, bp_for=bp_for, user_ids=user_ids)
    return fleet
