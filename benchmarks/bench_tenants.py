"""Several tenants in one process: N runs (``drive()``) on one event loop, each at its own cap.

Every tenant has its own simulator (all of them served by one separate process, each on its own
port) and its own budget (the machine-wide ledger is one SQLite file, one key per tenant), its own
checkpoint database and its own ``KandjiClient``. The engine process runs the N ``drive()`` calls
with ``asyncio.gather``.

- ``real``: the real cap, 9,000/h each (2.5 requests/s): aggregate requests/s against the sum
  of the configured rates, the lowest tenant's share of its own rate, CPU used.
- ``compressed``: the simulated hour lasts one second (cap ``--cap`` per window, budget 90% of
  it), so N tenants ask for N × budget requests/s: where one process saturates.

Per tenant, the simulator's ledger gives the most requests in one window and the 429s.

    /work/venv/bin/python benchmarks/bench_tenants.py [--tenants 50] [--mode real|compressed]
        [--items 100] [--cap 100]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from bench_engine import machine, proc_cpu_s, run_engine, run_on

from bulkops.budget import Rate
from bulkops.client import Connection
from bulkops.engine import RunOptions
from bulkops.job import JobConfig
from bulkops.sim import SimConfig, Simulator
from bulkops.sim.ledger import COUNTED_OUTCOMES

SEED = 5


async def host(n: int, devices: int, time_scale: float, cap: int, out: Path) -> None:
    """``--host``: serve N simulators until SIGTERM, then write their ledgers' figures."""
    sims = [
        Simulator(
            SimConfig(
                devices=devices,
                seed=SEED + i,
                time_scale=time_scale,
                hour_limit=cap,
                second_limit=10**9 if time_scale != 1.0 else 50,
                command_delay_s=0,
            )
        )
        for i in range(n)
    ]
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    urls = []
    async with contextlib.AsyncExitStack() as stack:
        for sim in sims:
            url = await stack.enter_async_context(sim.running())
            urls.append({"url": url, "token": sim.add_token(), "ids": sorted(sim.fleet.devices)})
        (out / "tenants.json").write_bytes(orjson.dumps(urls))
        await stop.wait()
    figures = []
    for sim in sims:
        times = [e.t_virtual for e in sim.ledger.entries if e.outcome in COUNTED_OUTCOMES]
        per = Counter(math.floor(t / 3600.0) for t in times)
        figures.append(
            {
                "requests": len(times),
                "max_per_window": max(per.values(), default=0),
                "rate_limited": sum(1 for e in sim.ledger.entries if e.outcome == "rate_limited"),
            }
        )
    (out / "ledgers.json").write_bytes(orjson.dumps(figures))


async def one_tenant(
    tmp: Path, k: int, tenant: dict[str, Any], items: int, rate: Rate
) -> dict[str, float]:
    url = tenant["url"]
    manifest = tmp / f"t{k}.csv"
    ids = tenant["ids"][:items]
    manifest.write_text("device_id,action\n" + "".join(f"{i},blankpush\n" for i in ids))
    config = JobConfig(
        connection=Connection(base_url=url, token=tenant["token"]),
        tenant=url.split("://")[1],
        db_path=tmp / f"t{k}.db",
        out_dir=tmp / f"reports-{k}",
        rate=rate,
        per_second=45 if rate.period_s != 1.0 else 10**9,
        budget_db=tmp / "budget.db",  # one machine-wide ledger, a key per tenant
        options=RunOptions(concurrency=8),
    )
    elapsed = await run_engine(manifest, config)  # asserts every item succeeded
    return {"seconds": elapsed, "items": len(ids)}


async def main(args: argparse.Namespace) -> None:
    compressed = args.mode == "compressed"
    budget = int(args.cap * 0.9) if compressed else 9000
    rate = Rate(budget, 1.0) if compressed else Rate(9000, 3600.0)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        cmd = [sys.executable, __file__, "--host", str(args.tenants), str(args.items)]
        cmd += ["3600" if compressed else "1", str(args.cap if compressed else 10_000), str(tmp)]
        proc = subprocess.Popen(cmd)
        deadline = time.time() + 60
        while not (tmp / "tenants.json").exists():
            if time.time() > deadline or proc.poll() is not None:
                raise SystemExit("simulators did not start")
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.2)
        tenants = orjson.loads((tmp / "tenants.json").read_bytes())
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        s0, start = proc_cpu_s(proc.pid), time.perf_counter()
        results = await asyncio.gather(
            *(one_tenant(tmp, k, t, args.items, rate) for k, t in enumerate(tenants))
        )
        wall = time.perf_counter() - start
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        sim_cpu = proc_cpu_s(proc.pid) - s0
        proc.send_signal(signal.SIGTERM)
        proc.wait()
        ledgers = orjson.loads((tmp / "ledgers.json").read_bytes())
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    total = sum(r["items"] for r in results)
    burst = max(1, min(10, budget // 100))  # BudgetConfig.effective_burst
    pace_s = rate.period_s / (budget - burst + 1)
    shares = [((r["items"] - burst) * pace_s) / r["seconds"] for r in results]
    print(f"machine: {machine()}, loop {args.loop}\n")
    what = f"{budget}/s each (1 s = 1 simulated hour)" if compressed else "9,000/h each"
    print(f"{args.tenants} tenants × {args.items} items in one process, {what}\n")
    print("| figure | value |")
    print("|---|---|")
    print(
        f"| aggregate requests/s | **{total / wall:,.1f}** "
        f"(sum of the configured rates: {args.tenants * budget / rate.period_s:,.1f}) |"
    )
    print(f"| wall seconds (all tenants done) | {wall:.1f} |")
    print(
        f"| each tenant's share of its own rate, after its burst | lowest {min(shares):.1%}, "
        f"median {statistics.median(shares):.1%} |"
    )
    print(
        f"| engine process CPU | {cpu:.1f} s = {100 * cpu / wall:.1f}% of one core, "
        f"{cpu / total * 1e3:.2f} ms per item |"
    )
    print(f"| simulators' process CPU | {sim_cpu:.1f} s |")
    print(f"| peak RSS of the engine process | {r1.ru_maxrss // 1024} MB |")
    worst = max(ledger["max_per_window"] for ledger in ledgers)
    print(f"| most requests in one window, any tenant | {worst} (budget {budget}) |")
    print(f"| 429s, all tenants | {sum(ledger['rate_limited'] for ledger in ledgers)} |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--host":
        n, devices, scale, cap, out = sys.argv[2:7]
        asyncio.run(host(int(n), int(devices), float(scale), int(cap), Path(out)))
        raise SystemExit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--mode", choices=("real", "compressed"), default="real")
    parser.add_argument("--cap", type=int, default=100)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    ns = parser.parse_args()
    run_on(ns.loop, main(ns))
