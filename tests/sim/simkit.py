"""Helpers for the simulator tests: a fake clock, a session wrapper, fully read responses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from bulkops.sim import Simulator

HOUR_ALIGNED = 1_800_000_000.0  # a whole UTC hour (1_800_000_000 / 3600 = 500_000)


class FakeClock:
    """A settable stand-in for `time.time`."""

    def __init__(self, start: float = HOUR_ALIGNED) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@dataclass
class Resp:
    """A fully read response."""

    status: int
    headers: Any
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Api:
    """A running simulator plus a session that speaks to it with a valid token."""

    sim: Simulator
    url: str
    token: str
    session: aiohttp.ClientSession

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        auth: bool = True,
        json: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> Resp:
        hdrs = dict(headers or {})
        if auth:
            hdrs["Authorization"] = f"Bearer {token or self.token}"
        if json is not None:
            data = orjson.dumps(json)
            hdrs.setdefault("Content-Type", "application/json")
        async with self.session.request(
            method, self.url + path, data=data, headers=hdrs, params=params
        ) as r:
            return Resp(r.status, r.headers, await r.read())

    async def get(self, path: str, **kw: Any) -> Resp:
        return await self.call("GET", path, **kw)

    async def post(self, path: str, **kw: Any) -> Resp:
        return await self.call("POST", path, **kw)

    async def patch(self, path: str, **kw: Any) -> Resp:
        return await self.call("PATCH", path, **kw)

    def device_of(self, platform: str, *, index: int = 0) -> str:
        """The id of the `index`-th device of `platform` in the fleet."""
        ids = [d for d, r in self.sim.fleet.devices.items() if r["platform"] == platform]
        return ids[index]
