"""Fixtures for the simulator's own tests: a served simulator on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import aiohttp
import pytest
from simkit import Api

from bulkops.sim import SimConfig, Simulator

Serve = Callable[..., AbstractAsyncContextManager[Api]]


def sim_config(**overrides: Any) -> SimConfig:
    """Defaults for these tests: a small fleet and a lifted rate limit."""
    base: dict[str, Any] = {
        "devices": 60,
        "seed": 7,
        "hour_limit": 1_000_000,
        "second_limit": 1_000_000,
    }
    base.update(overrides)
    return SimConfig(**base)


@pytest.fixture
def serve() -> Serve:
    """Factory: `async with serve(devices=..., ...) as api:` runs a simulator on loopback."""

    @asynccontextmanager
    async def run(**overrides: Any) -> AsyncIterator[Api]:
        sim = Simulator(sim_config(**overrides))
        token = sim.add_token()
        try:
            async with (
                sim.running(host="127.0.0.1", port=0) as url,
                aiohttp.ClientSession() as session,
            ):
                yield Api(sim, url, token, session)
        finally:
            sim.close()

    return run


@pytest.fixture
async def api(serve: Serve) -> AsyncIterator[Api]:
    """A 60-device simulator with a lifted rate limit."""
    async with serve() as running:
        yield running
