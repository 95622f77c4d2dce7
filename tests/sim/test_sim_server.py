"""Serving modes, time scale, determinism of a whole session, and the public names."""

from __future__ import annotations

import socket
import threading
import urllib.request
from pathlib import Path

import orjson
import pytest
from conftest import Serve
from simkit import FakeClock

import bulkops.sim as sim_pkg
from bulkops.sim import Faults, SimConfig, Simulator


def test_public_names() -> None:
    for name in ("Simulator", "SimConfig", "Faults"):
        assert name in sim_pkg.__all__
    cfg = SimConfig(
        devices=5,
        seed=7,
        time_scale=1.0,
        hour_limit=10_000,
        second_limit=50,
        window="fixed",
        rate_limit_headers=True,
        faults=Faults(),
        ledger_path=None,
        fleet_path=None,
        ade_devices=10,
        duplicate_serials=0,
    )
    sim = Simulator(cfg)
    assert len(sim.fleet.devices) == 5 and len(sim.fleet.ade_devices) == 10
    assert sim.fleet.blueprints and sim.fleet.users


def _get(url: str, token: str) -> tuple[int, object]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return resp.status, orjson.loads(resp.read())


def test_in_thread_serves_sync_callers_and_the_ledger_is_readable() -> None:
    sim = Simulator(SimConfig(devices=10, seed=3))
    token = sim.add_token()
    with sim.in_thread(host="127.0.0.1", port=0) as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        status, body = _get(f"{base_url}/api/v1/devices", token)
        assert status == 200 and isinstance(body, list) and len(body) == 10
        assert threading.current_thread() is threading.main_thread()
        assert [e.status for e in sim.ledger.entries] == [200]
    names = [t.name for t in threading.enumerate()]
    assert "bulkops-sim" not in names, "the server thread stops on exit"


def test_fleet_path_is_loaded_if_present_else_written(tmp_path: Path) -> None:
    path = tmp_path / "fleet.json"
    first = Simulator(SimConfig(devices=15, seed=4, fleet_path=path))
    assert path.exists()
    first.fleet.devices[next(iter(first.fleet.devices))]["asset_tag"] = "EDITED"
    first.fleet.to_json(path)
    second = Simulator(SimConfig(devices=999, seed=1, fleet_path=path))  # loaded, not generated
    assert len(second.fleet.devices) == 15
    assert next(iter(second.fleet.devices.values()))["asset_tag"] == "EDITED"


async def test_time_scale_completes_commands_faster(serve: Serve) -> None:
    clock = FakeClock(1_000_000.0)
    async with serve(clock=clock, time_scale=3600.0, command_delay_s=60.0) as api:
        mac = api.device_of("Mac")
        assert (await api.post(f"/api/v1/devices/{mac}/action/restart")).status == 200
        clock.advance(0.01)  # 36 virtual seconds
        path = f"/api/v1/devices/{mac}/commands"
        assert (await api.get(path)).json()["commands"]["results"][0]["status"] == 1
        clock.advance(0.007)  # 61.2 virtual seconds in all
        cmd = (await api.get(path)).json()["commands"]["results"][0]
        assert cmd["status"] == 3
        assert cmd["date_requested"] < cmd["date_completed"]
        assert cmd["date_requested"].startswith("1970-01-12T")  # shown at real start time


async def test_same_seed_and_requests_give_the_same_answers(serve: Serve) -> None:
    async def session(seed: int) -> list[bytes]:
        bodies = []
        async with serve(seed=seed) as api:
            macs = [d for d, r in api.sim.fleet.devices.items() if r["platform"] == "Mac"][:3]
            for mac in macs:
                bodies.append((await api.post(f"/api/v1/devices/{mac}/action/lock")).body)
                await api.post(f"/api/v1/devices/{mac}/action/restart")
                cmds = (await api.get(f"/api/v1/devices/{mac}/commands")).json()
                bodies.append(orjson.dumps([c["uuid"] for c in cmds["commands"]["results"]]))
            bodies.append((await api.get("/api/v1/devices")).body)
        return bodies

    assert await session(5) == await session(5)
    assert await session(5) != await session(6)


def test_in_thread_reports_a_bind_failure() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        sim = Simulator(SimConfig(devices=2))
        with pytest.raises(RuntimeError, match="failed to start"), sim.in_thread(port=port):
            pass
