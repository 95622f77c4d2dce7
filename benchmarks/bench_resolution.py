"""Requests per unit of work: resolution and diff-before-write against the naive way, same run.

A serial-number manifest of N update rows on a tenant of T devices, a share of them already in
the target state. bulkops: one inventory sweep (⌈T/300⌉ requests) + one PATCH per row that
changes something. The naive way, what most scripts do: per row, look the serial up, then PATCH.
Target: bulkops ≤ N_writes + ⌈T/300⌉ + a few; rows already in target cost 0 writes.

    .venv/bin/python benchmarks/bench_resolution.py [--devices 3000] [--rows 1000] [--in-target 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import tempfile
from pathlib import Path

import aiohttp

from bulkops.budget import Rate
from bulkops.client import Connection
from bulkops.engine import RunOptions
from bulkops.job import JobConfig, drive, start_run
from bulkops.sim import SimConfig, Simulator
from bulkops.store import Store


def make_sim(devices: int) -> Simulator:
    return Simulator(SimConfig(devices=devices, seed=5, hour_limit=10**9, second_limit=10**9))


def rows_for(sim: Simulator, n: int, in_target: float) -> list[tuple[str, str]]:
    """(serial, asset tag) pairs; the first ``in_target`` share keep the tag they have."""
    seen: dict[str, int] = {}
    for d in sim.fleet.devices.values():
        seen[d["serial_number"]] = seen.get(d["serial_number"], 0) + 1
    devs = [
        d for d in sim.fleet.devices.values() if seen[d["serial_number"]] == 1 and d["asset_tag"]
    ]
    devs = sorted(devs, key=lambda d: d["device_id"])[:n]
    keep = int(len(devs) * in_target)
    return [
        (d["serial_number"], d["asset_tag"] if i < keep else f"NEW-{i:05d}")
        for i, d in enumerate(devs)
    ]


async def bulkops_way(devices: int, rows: int, in_target: float, tmp: Path) -> dict[str, int]:
    sim = make_sim(devices)
    token = sim.add_token()
    pairs = rows_for(sim, rows, in_target)
    manifest = tmp / "tags.csv"
    manifest.write_text(
        "serial_number,action,asset_tag\n" + "".join(f"{s},update,{t}\n" for s, t in pairs)
    )
    async with sim.running() as url:
        config = JobConfig(
            connection=Connection(base_url=url, token=token),
            tenant=url.split("://")[1],
            db_path=tmp / "run.db",
            out_dir=tmp / "reports",
            rate=Rate(10**8, 3600.0),
            per_second=10**6,
            budget_db=tmp / "budget.db",
            options=RunOptions(concurrency=16),
        )
        store = Store(config.db_path)
        try:
            run, _ = start_run(store, manifest, tenant=config.tenant)
            result = await drive(store, run, config)
        finally:
            store.close()
    assert result.summary is not None and result.summary.outcomes["failed"] == 0
    entries = sim.ledger.entries
    return {
        "rows": len(pairs),
        "reads": sum(1 for e in entries if e.method == "GET"),
        "writes": sum(1 for e in entries if e.method != "GET"),
        "needed_writes": sum(1 for s, t in pairs if t.startswith("NEW-")),
    }


async def naive_way(devices: int, rows: int, in_target: float) -> dict[str, int]:
    sim = make_sim(devices)
    token = sim.add_token()
    pairs = rows_for(sim, rows, in_target)
    async with (
        sim.running() as url,
        aiohttp.ClientSession(base_url=url, headers={"Authorization": f"Bearer {token}"}) as s,
    ):
        sem = asyncio.Semaphore(16)

        async def one(serial: str, tag: str) -> None:
            async with sem:
                async with s.get("/api/v1/devices", params={"serial_number": serial}) as r:
                    found = [d for d in await r.json() if d["serial_number"] == serial]
                async with s.patch(
                    f"/api/v1/devices/{found[0]['device_id']}", json={"asset_tag": tag}
                ) as r:
                    assert r.status == 200

        await asyncio.gather(*(one(sn, tag) for sn, tag in pairs))
    entries = sim.ledger.entries
    return {
        "reads": sum(1 for e in entries if e.method == "GET"),
        "writes": sum(1 for e in entries if e.method != "GET"),
    }


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=3000)
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--in-target", type=float, default=0.2)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        ours = await bulkops_way(a.devices, a.rows, a.in_target, Path(d))
    naive = await naive_way(a.devices, a.rows, a.in_target)
    sweep = math.ceil(a.devices / 300)
    total, naive_total = ours["reads"] + ours["writes"], naive["reads"] + naive["writes"]
    print(
        f"| {ours['rows']} serial rows, T = {a.devices} devices, "
        f"{a.in_target:.0%} already in target | reads | writes | total |"
    )
    print("|---|---|---|---|")
    print(
        f"| naive: lookup + PATCH per row | {naive['reads']} | {naive['writes']} | {naive_total} |"
    )
    print(f"| bulkops: sweep + diff-before-write | {ours['reads']} | {ours['writes']} | {total} |")
    print(
        f"| bound N_writes + ⌈T/300⌉ | {sweep} | {ours['needed_writes']} "
        f"| {ours['needed_writes'] + sweep} |"
    )
    print(
        f"\nbulkops spends {total / naive_total:.2f}× the naive requests "
        f"({naive_total / total:.1f}× fewer)"
    )


if __name__ == "__main__":
    asyncio.run(main())
