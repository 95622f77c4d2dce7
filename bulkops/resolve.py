"""Resolution: serial numbers, blueprint names and user emails to the ids the API wants.

Lookups are cached for the run and shared by every worker: one request per distinct serial,
blueprint or email, and concurrent askers of the same name wait for the one request in flight.
Serials are matched exactly on our side because the API's ``serial_number`` filter is partial.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any

from bulkops.actions import Action, ParamKind
from bulkops.client import KandjiClient

__all__ = ["Resolver", "Unresolved"]

_UUID_LEN = 36


class Unresolved(Exception):
    """A name in a row matches nothing (or more than one thing) in the tenant."""


class Resolver:
    """Caches name → id answers for one run."""

    def __init__(self, client: KandjiClient) -> None:
        self._client = client
        self._cache: dict[tuple[str, str], asyncio.Future[str]] = {}
        self.requests = 0

    async def device_id(self, serial: str) -> str:
        """The id of the one enrolled device with exactly this serial number."""
        return await self._once(("serial", serial), lambda: self._lookup_serial(serial))

    async def params(self, action: Action, params: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters with blueprint names and user emails replaced by ids."""
        out = dict(params)
        for p in action.params:
            value = out.get(p.name)
            if value is None:
                continue
            if p.kind is ParamKind.BLUEPRINT_NAME:
                del out[p.name]
                out["blueprint_id"] = await self._once(
                    ("blueprint", value), partial(self._lookup_blueprint, value)
                )
            elif p.kind is ParamKind.USER_REF and "@" in value:
                out[p.name] = await self._once(
                    ("user", value.lower()), partial(self._lookup_user, value)
                )
        return out

    async def _once(self, key: tuple[str, str], fetch: Callable[[], Awaitable[str]]) -> str:
        fut = self._cache.get(key)
        if fut is None:
            fut = asyncio.get_running_loop().create_future()
            self._cache[key] = fut
            try:
                fut.set_result(await fetch())
            except BaseException as exc:
                fut.set_exception(exc)
                if not isinstance(exc, Unresolved):
                    del self._cache[key]  # transport trouble: let a later row ask again
                fut.exception()  # mark retrieved
                raise
        return await asyncio.shield(fut)

    async def _get(self, path: str, params: Mapping[str, str | int]) -> Any:
        self.requests += 1
        return (await self._client.request("GET", path, params=params)).data

    async def _lookup_serial(self, serial: str) -> str:
        found = await self._get("/api/v1/devices", {"serial_number": serial, "limit": 300})
        exact = [d for d in found or [] if str(d.get("serial_number", "")).upper() == serial]
        if not exact:
            raise Unresolved(f"serial number {serial} is not enrolled in this tenant")
        if len(exact) > 1:
            ids = ", ".join(str(d.get("device_id")) for d in exact)
            raise Unresolved(
                f"serial number {serial} matches {len(exact)} devices ({ids}); use device_id"
            )
        return str(exact[0]["device_id"])

    async def _lookup_blueprint(self, name: str) -> str:
        page = await self._get("/api/v1/blueprints", {"name": name, "limit": 300})
        exact = [b for b in (page or {}).get("results", []) if b.get("name") == name]
        if not exact:
            folded = [
                b
                for b in (page or {}).get("results", [])
                if str(b.get("name", "")).casefold() == name.casefold()
            ]
            exact = folded
        if not exact:
            raise Unresolved(f"no blueprint is named {name!r}")
        if len(exact) > 1:
            raise Unresolved(f"{len(exact)} blueprints are named {name!r}; use blueprint_id")
        return str(exact[0]["id"])

    async def _lookup_user(self, email: str) -> str:
        page = await self._get("/api/v1/users", {"email": email})
        exact = [
            u
            for u in (page or {}).get("results", [])
            if str(u.get("email", "")).lower() == email.lower()
        ]
        if len(exact) != 1:
            raise Unresolved(
                f"no user has the email {email}"
                if not exact
                else f"{len(exact)} users have the email {email}"
            )
        return str(exact[0]["id"])


def looks_like_uuid(value: str) -> bool:
    """True for a 36-character hyphenated id."""
    return len(value) == _UUID_LEN and value.count("-") == 4
