"""Engine throughput and budget use, each against a baseline in the same run.

1. Throughput, cap lifted: the full engine (checkpoints, intents fsynced before each send,
   reports) vs a raw aiohttp loop sending the same POSTs with the same concurrency, both against
   one simulator in its own process. Target: engine ≥ 0.75× the raw loop.
2. Budget use, time-compressed: a simulated tenant whose hour lasts one second, 5× the window's
   cap of items: % of the configured rate achieved, max requests in any window, 429s.
   Target: ≥ 99% of the configured rate, max per window ≤ budget, 0 429s.

    .venv/bin/python benchmarks/bench_engine.py [--items 3000] [--concurrency 32] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bulkops.budget import Rate
from bulkops.client import Connection
from bulkops.engine import RunOptions
from bulkops.job import JobConfig, drive, start_run
from bulkops.sim import SimConfig, Simulator, generate_fleet
from bulkops.store import Store

SEED = 11


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sim(devices: int, tmp: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    """A simulator in its own process with the rate limit lifted."""
    port = free_port()
    token_file = tmp / "token"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bulkops",
            "sim",
            "--port",
            str(port),
            "--devices",
            str(devices),
            "--seed",
            str(SEED),
            "--hour-limit",
            "100000000",
            "--second-limit",
            "100000000",
            "--command-delay-s",
            "0",
            "--token-file",
            str(token_file),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 20
    while time.time() < deadline:
        if token_file.exists() and token_file.read_text().strip():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return proc, f"http://127.0.0.1:{port}", token_file.read_text().strip()
            except OSError:
                pass
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("simulator did not start")


async def raw_loop(url: str, token: str, ids: list[str], concurrency: int) -> float:
    """The baseline: the same POSTs, a bare aiohttp session, no budget, no checkpoints."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for i in ids:
        queue.put_nowait(i)
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(base_url=url, headers=headers) as session:

        async def worker() -> None:
            while not queue.empty():
                device_id = queue.get_nowait()
                async with session.post(f"/api/v1/devices/{device_id}/action/blankpush") as r:
                    await r.read()
                    assert r.status == 200, r.status

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return len(ids) / (time.perf_counter() - start)


async def engine_run(url: str, token: str, ids: list[str], concurrency: int, tmp: Path) -> float:
    """The engine end to end: manifest, checkpoints, budget, client, reports."""
    manifest = tmp / f"job-{time.monotonic_ns()}.csv"
    manifest.write_text("device_id,action\n" + "".join(f"{i},blankpush\n" for i in ids))
    config = JobConfig(
        connection=Connection(base_url=url, token=token),
        tenant=url.split("://")[1],
        db_path=tmp / f"run-{time.monotonic_ns()}.db",
        out_dir=tmp / "reports",
        rate=Rate(100_000_000, 3600.0),
        per_second=1_000_000,
        budget_db=tmp / "budget.db",
        options=RunOptions(concurrency=concurrency),
    )
    store = Store(config.db_path)
    try:
        run, _ = start_run(store, manifest, tenant=config.tenant)
        start = time.perf_counter()
        result = await drive(store, run, config)
        elapsed = time.perf_counter() - start
    finally:
        store.close()
    assert result.summary.outcomes["succeeded"] == len(ids), result.summary
    return len(ids) / elapsed


async def budget_use(tmp: Path, *, cap: int, budget: int, windows: int) -> dict[str, float]:
    """A run of ``windows`` × cap items where the simulated hour lasts one real second."""
    items = budget * windows
    sim = Simulator(
        SimConfig(devices=items, seed=SEED, hour_limit=cap, second_limit=10**9, time_scale=3600.0)
    )
    token = sim.add_token()
    async with sim.running() as url:
        ids = sorted(sim.fleet.devices)
        manifest = tmp / "budget-job.csv"
        manifest.write_text("device_id,action\n" + "".join(f"{i},blankpush\n" for i in ids))
        config = JobConfig(
            connection=Connection(base_url=url, token=token),
            tenant=url.split("://")[1],
            db_path=tmp / "budget-run.db",
            out_dir=tmp / "budget-reports",
            rate=Rate(budget, 1.0),
            per_second=1_000_000,
            budget_db=tmp / "budget-ledger.db",
            options=RunOptions(concurrency=32),
        )
        store = Store(config.db_path)
        try:
            run, _ = start_run(store, manifest, tenant=config.tenant)
            await drive(store, run, config)
        finally:
            store.close()
    # Rate achieved over the full windows only (the first and last are partial).
    times = sorted(e.t_real for e in sim.ledger.entries if e.counted)
    first, last = int(times[0]) + 1, int(times[-1])
    inside = sum(1 for t in times if first <= t < last)
    achieved = inside / max(last - first, 1) / budget
    return {
        "items": items,
        "achieved_pct": 100.0 * achieved,
        "max_per_window": sim.ledger.max_per_window(3600.0),
        "budget": budget,
        "rate_limited": sim.ledger.outcomes().get("rate_limited", 0),
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cap", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        proc, url, token = start_sim(args.items, tmp)
        try:
            ids = sorted(generate_fleet(devices=args.items, seed=SEED, ade_devices=10).devices)
            raw, eng = [], []
            await raw_loop(url, token, ids[:200], args.concurrency)  # warm-up
            for _ in range(args.rounds):  # interleaved, so both see the same machine
                raw.append(await raw_loop(url, token, ids, args.concurrency))
                eng.append(await engine_run(url, token, ids, args.concurrency, tmp))
        finally:
            proc.terminate()
            proc.wait()
        b = await budget_use(tmp, cap=args.cap, budget=int(args.cap * 0.9), windows=5)
    r, e = statistics.median(raw), statistics.median(eng)
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print(
        f"| throughput, cap lifted ({args.items} POSTs, concurrency {args.concurrency}) | req/s |"
    )
    print("|---|---|")
    print(f"| raw aiohttp loop (median of {args.rounds}) | {r:,.0f} |")
    print(f"| engine, checkpoints + reports (median of {args.rounds}) | {e:,.0f} |")
    print(f"| ratio engine / raw | **{e / r:.2f}×** (target ≥ 0.75×) |")
    print()
    head = f"budget use: {b['items']:.0f} items, budget {b['budget']:.0f}/window, cap {args.cap}"
    print(f"| {head} | value |")
    print("|---|---|")
    print(f"| rate achieved over full windows | **{b['achieved_pct']:.1f}%** (target ≥ 99%) |")
    print(f"| max requests in any window | {b['max_per_window']:.0f} (budget {b['budget']:.0f}) |")
    print(f"| 429s | {b['rate_limited']:.0f} |")


if __name__ == "__main__":
    asyncio.run(main())
