"""Fault injection: 5xx, resets before and after applying, slow and odd responses, latency."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import orjson
import pytest
from conftest import Serve

from bulkops.sim import Faults

LOCK = ("POST", "/api/v1/devices/{device_id}/action/lock")
ONLY_LOCK = frozenset({LOCK})


async def test_5xx_is_returned_before_anything_is_applied(serve: Serve) -> None:
    async with serve(faults=Faults(error_5xx_rate=1.0, routes=ONLY_LOCK)) as api:
        macs = [d for d, r in api.sim.fleet.devices.items() if r["platform"] == "Mac"][:12]
        statuses = set()
        for mac in macs:
            r = await api.post(f"/api/v1/devices/{mac}/action/lock")
            statuses.add(r.status)
            assert set(r.json()) == {"message"}
            assert (await api.get(f"/api/v1/devices/{mac}/secrets/unlockpin")).json() == {
                "pin": None
            }
        assert statuses <= {500, 502, 503} and len(statuses) > 1
        faulted = api.sim.ledger.select(action="lock")
        assert [e.outcome for e in faulted] == ["fault_5xx"] * 12
        assert not any(e.applied for e in faulted)
        assert all(e.fault and e.fault.startswith("5xx:") for e in faulted)


async def test_reset_before_handling_applies_nothing(serve: Serve) -> None:
    async with serve(faults=Faults(reset_before_rate=1.0, routes=ONLY_LOCK)) as api:
        mac = api.device_of("Mac")
        with pytest.raises(aiohttp.ClientError):
            await api.post(f"/api/v1/devices/{mac}/action/lock")
        entry = api.sim.ledger.select(action="lock")[-1]
        assert (entry.outcome, entry.applied, entry.status) == ("reset_before", False, None)
        cmds = (await api.get(f"/api/v1/devices/{mac}/commands")).json()["commands"]
        assert cmds["count"] == 0


async def test_reset_after_applies_then_drops_the_response(serve: Serve) -> None:
    async with serve(faults=Faults(reset_after_rate=1.0, routes=ONLY_LOCK)) as api:
        mac = api.device_of("Mac")
        with pytest.raises(aiohttp.ClientError):
            await api.post(f"/api/v1/devices/{mac}/action/lock")
        entry = api.sim.ledger.select(action="lock")[-1]
        assert (entry.outcome, entry.applied, entry.status) == ("reset_after", True, None)
        assert entry.pin is not None, "the PIN was issued although the client never saw it"
        pin = (await api.get(f"/api/v1/devices/{mac}/secrets/unlockpin")).json()["pin"]
        assert pin == entry.pin
        cmds = (await api.get(f"/api/v1/devices/{mac}/commands")).json()["commands"]
        assert [c["request_type"] for c in cmds["results"]] == ["DeviceLock"]
        with pytest.raises(aiohttp.ClientError):  # a blind resend is refused — after applying
            await api.post(f"/api/v1/devices/{mac}/action/lock")
        assert api.sim.ledger.applied_count(mac, "lock") == 1


async def test_slow_response_applies_first_then_answers_late(serve: Serve) -> None:
    faults = Faults(slow_rate=1.0, slow_s=0.4, routes=frozenset({("POST", LOCK[1])}))
    async with serve(faults=faults) as api:
        macs = [d for d, r in api.sim.fleet.devices.items() if r["platform"] == "Mac"]
        with pytest.raises(asyncio.TimeoutError):
            async with asyncio.timeout(0.15):
                await api.post(f"/api/v1/devices/{macs[0]}/action/lock")
        first = api.sim.ledger.select(action="lock")[-1]
        assert (first.applied, first.fault, first.status) == (True, "slow", 200)
        start = time.perf_counter()
        r = await api.post(f"/api/v1/devices/{macs[1]}/action/lock")
        assert r.status == 200 and "PIN" in r.json()
        assert time.perf_counter() - start >= 0.4


async def test_latency_delays_every_request(serve: Serve) -> None:
    async with serve(faults=Faults(latency_s=0.15, latency_jitter_s=0.05)) as api:
        start = time.perf_counter()
        for _ in range(3):
            assert (await api.get("/api/v1/tags")).status == 200
        elapsed = time.perf_counter() - start
        assert 0.45 <= elapsed < 2.0


@pytest.mark.parametrize("kind", ["text", "html404", "empty", "truncated"])
async def test_odd_responses(serve: Serve, kind: str) -> None:
    faults = Faults(
        odd_responses_rate=1.0,
        odd_kinds=(kind,),  # type: ignore[arg-type]
        routes=frozenset({("GET", "/api/v1/devices/{device_id}")}),
    )
    async with serve(faults=faults) as api:
        mac = api.device_of("Mac")
        r = await api.get(f"/api/v1/devices/{mac}")
        entry = api.sim.ledger.entries[-1]
        assert (entry.outcome, entry.fault) == ("odd", f"odd:{kind}")
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(r.body)
        if kind == "text":
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
        elif kind == "html404":
            assert r.status == 404 and b"<h1>Not Found</h1>" in r.body
        elif kind == "empty":
            assert r.status == 200 and r.body == b""
            assert r.headers["Content-Type"] == "application/json"
        else:
            full = orjson.dumps(api.sim.fleet.devices[mac])
            assert r.status == 200 and full.startswith(r.body) and len(r.body) < len(full)


async def test_odd_html404_on_an_action_does_not_apply(serve: Serve) -> None:
    faults = Faults(odd_responses_rate=1.0, odd_kinds=("html404",), routes=ONLY_LOCK)
    async with serve(faults=faults) as api:
        mac = api.device_of("Mac")
        r = await api.post(f"/api/v1/devices/{mac}/action/lock")
        assert r.status == 404
        assert api.sim.ledger.applied_count(mac, "lock") == 0


async def test_fault_sequence_is_deterministic_per_seed(serve: Serve) -> None:
    async def run(seed: int) -> list[str | None]:
        faults = Faults(error_5xx_rate=0.3, odd_responses_rate=0.2, seed=seed)
        async with serve(faults=faults) as api:
            for _ in range(40):
                await api.get("/api/v1/tags")
            return [e.fault for e in api.sim.ledger.entries]

    a, b, c = await run(1), await run(1), await run(2)
    assert a == b and a != c
    assert any(f and f.startswith("5xx") for f in a) and any(f is None for f in a)


def test_fault_rates_are_validated() -> None:
    with pytest.raises(ValueError, match="error_5xx_rate"):
        Faults(error_5xx_rate=1.5)
    with pytest.raises(ValueError, match="odd_kinds"):
        Faults(odd_kinds=("weird",))  # type: ignore[arg-type]
    assert not Faults().any_per_request
