"""The tenant's inventory as one run sees it: devices, blueprints, users, ADE devices.

Reading the inventory is the cheapest way to resolve many rows: one paged sweep of
``GET /api/v1/devices`` (300 a page) answers every serial number, platform and current field
value, where a lookup per row would spend one request each.  ``Inventory.devices_for`` chooses:
it reads the first page, learns the tenant's size from ``X-Total-Count``, and finishes the sweep
only when that costs fewer requests than looking the remaining serials up one by one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from bulkops.client import KandjiClient

__all__ = ["PAGE", "AdeDevice", "Device", "Inventory"]

PAGE = 300  # the API's hard upper limit per page


@dataclass(frozen=True, slots=True)
class Device:
    """The fields of an enrolled device that resolution and diff-before-write need."""

    device_id: str
    serial_number: str
    platform: str
    name: str
    blueprint_id: str
    user_id: str | None
    asset_tag: str
    tags: tuple[str, ...]

    @classmethod
    def from_api(cls, d: Mapping[str, Any]) -> Device:
        """From a device object (``user`` is an object or ``""``; ``tags`` may be missing)."""
        user = d.get("user")
        return cls(
            device_id=str(d["device_id"]),
            serial_number=str(d.get("serial_number") or "").upper(),
            platform=str(d.get("platform") or ""),
            name=str(d.get("device_name") or ""),
            blueprint_id=str(d.get("blueprint_id") or ""),
            user_id=str(user["id"]) if isinstance(user, dict) and user.get("id") else None,
            asset_tag=str(d.get("asset_tag") or ""),
            tags=tuple(sorted(str(t) for t in d.get("tags") or [])),
        )


@dataclass(frozen=True, slots=True)
class AdeDevice:
    """A device known to Automated Device Enrollment but not enrolled yet."""

    ade_id: str
    serial_number: str
    blueprint_id: str
    user_id: str | None
    asset_tag: str


def _next_params(url: str | None) -> dict[str, str] | None:
    """The query of a ``next`` link as request parameters (we always call our own base URL)."""
    if not url:
        return None
    return dict(parse_qsl(urlsplit(url).query))


class Inventory:
    """What the run has read of the tenant; every read goes through the run's budget."""

    def __init__(self, client: KandjiClient) -> None:
        self._client = client
        self.requests = 0
        self.total_devices: int | None = None
        self.permissions: set[str] = set()  # the read permissions this run has used
        self._by_serial: dict[str, list[Device]] = {}
        self._by_id: dict[str, Device] = {}
        self._swept = False
        self._first_read = False
        self._blueprints: dict[str, str] | None = None  # name → id
        self._blueprint_ids: set[str] = set()
        self._users: dict[str, str] | None = None  # email (lower) → id
        self._ade: dict[str, list[AdeDevice]] | None = None

    async def _get(
        self, path: str, params: Mapping[str, str | int], *, route: str | None = None
    ) -> Any:
        self.requests += 1
        self.permissions.add(f"GET {route or path}")
        reply = await self._client.read(path, params=params)
        return reply

    @property
    def swept(self) -> bool:
        """Whether every enrolled device has been read."""
        return self._swept

    # ---- devices ------------------------------------------------------------------------

    def _index(self, devices: Iterable[Mapping[str, Any]]) -> None:
        for raw in devices:
            dev = Device.from_api(raw)
            if dev.device_id in self._by_id:
                continue
            self._by_id[dev.device_id] = dev
            self._by_serial.setdefault(dev.serial_number, []).append(dev)

    async def _page(self, offset: int) -> list[Any]:
        reply = await self._get(
            "/api/v1/devices", {"limit": PAGE, "offset": offset, "ordering": "device_id"}
        )
        total = reply.headers.get("X-Total-Count")
        if total is not None and total.isdigit() and offset == 0:
            self.total_devices = int(total)
        page = reply.data if isinstance(reply.data, list) else []
        self._index(page)
        return page

    async def sweep(self) -> None:
        """Read every enrolled device, 300 a page, until a short page."""
        if self._swept:
            return
        offset = PAGE if self._first_read else 0  # prepare() already has the first page
        while True:
            page = await self._page(offset)
            offset += PAGE
            # X-Total-Count saves reading an empty last page. Its meaning is not documented, so
            # it is trusted only above one page: a per-page count could never stop us early.
            total = self.total_devices
            if len(page) < PAGE or (total is not None and total > PAGE and offset >= total):
                break
        self._swept = True

    async def prepare(self, *, serials: int, device_ids: int) -> str:
        """Choose between a sweep and per-row lookups for this many rows; say which."""
        wanted = serials + device_ids
        if wanted == 0:
            return "no device lookups needed"
        first = await self._page(0)
        self._first_read = True
        if len(first) < PAGE:
            self._swept = True
            return "inventory read in 1 request"
        pages = math.ceil((self.total_devices or 10**9) / PAGE)
        if pages - 1 <= wanted:
            await self.sweep()
            asked = "1 request" if pages == 1 else f"{pages} requests"
            return f"inventory sweep: {asked} for {len(self._by_id)} devices"
        rows = "1 row" if wanted == 1 else f"{wanted} rows"
        return f"per-row lookups: {rows} on a tenant of {self.total_devices} devices"

    async def by_serial(self, serial: str) -> list[Device]:
        """Every enrolled device with exactly this serial number (exact, not partial)."""
        serial = serial.upper()
        if not self._swept and serial not in self._by_serial:
            reply = await self._get("/api/v1/devices", {"serial_number": serial, "limit": PAGE})
            self._index(reply.data if isinstance(reply.data, list) else [])
        return list(self._by_serial.get(serial, []))

    async def by_id(self, device_id: str) -> Device | None:
        """The enrolled device with this id, or ``None``."""
        if device_id in self._by_id or self._swept:
            return self._by_id.get(device_id)
        from bulkops.errors import NotFound

        try:
            reply = await self._get(
                f"/api/v1/devices/{device_id}", {}, route="/api/v1/devices/{device_id}"
            )
        except NotFound:
            return None
        if isinstance(reply.data, dict):
            self._index([reply.data])
        return self._by_id.get(device_id)

    # ---- blueprints, users, ADE -------------------------------------------------------------

    async def blueprint_id(self, name: str) -> list[str]:
        """Ids of blueprints with exactly this name (case-insensitive if none match exactly)."""
        if self._blueprints is None:
            self._blueprints = {}
            params: dict[str, str | int] | None = {"limit": PAGE, "offset": 0}
            while params is not None:
                page = (await self._get("/api/v1/blueprints", params)).data or {}
                for bp in page.get("results", []):
                    self._blueprints.setdefault(str(bp["name"]), str(bp["id"]))
                    self._blueprint_ids.add(str(bp["id"]))
                params = _next_params(page.get("next"))  # type: ignore[assignment]
        exact = [i for n, i in self._blueprints.items() if n == name]
        return exact or [i for n, i in self._blueprints.items() if n.casefold() == name.casefold()]

    def blueprint_names(self) -> list[str]:
        """The names ``blueprint_id`` has read (none before its first call)."""
        return list(self._blueprints or ())

    async def user_id(self, email: str) -> list[str]:
        """Ids of users with exactly this email (case-insensitive)."""
        key = email.lower()
        if self._users is None:
            self._users = {}
            params: dict[str, str | int] | None = {"limit": PAGE}
            while params is not None:
                page = (await self._get("/api/v1/users", params)).data or {}
                for u in page.get("results", []):
                    if u.get("email"):
                        self._users.setdefault(str(u["email"]).lower(), str(u["id"]))
                params = _next_params(page.get("next"))  # type: ignore[assignment]
        found = self._users.get(key)
        return [found] if found else []

    async def ade_by_serial(self, serial: str) -> list[AdeDevice]:
        """Devices awaiting Automated Device Enrollment with this serial number."""
        if self._ade is None:
            self._ade = {}
            params: dict[str, str | int] | None = {"page": 1}
            while params is not None:
                page = (
                    await self._get("/api/v1/integrations/apple/ade/devices", params)
                ).data or {}
                for d in page.get("results", []):
                    user = d.get("user_id") or d.get("user")
                    if isinstance(user, dict):
                        user = user.get("id")
                    dev = AdeDevice(
                        ade_id=str(d["id"]),
                        serial_number=str(d.get("serial_number") or "").upper(),
                        blueprint_id=str(d.get("blueprint_id") or d.get("blueprint") or ""),
                        user_id=str(user) if user else None,
                        asset_tag=str(d.get("asset_tag") or ""),
                    )
                    self._ade.setdefault(dev.serial_number, []).append(dev)
                params = _next_params(page.get("next"))  # type: ignore[assignment]
        return list(self._ade.get(serial.upper(), []))
