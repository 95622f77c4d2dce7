"""Engine throughput, budget use, restarts and idle cost, each against a baseline in the same run.

Every simulator runs in its own process (``bulkops sim``), so the figures measure the engine and
the budget, not a server sharing their CPU; the ledger it writes (JSON Lines) is the ground truth.

1. ``throughput``: cap lifted, the full engine (checkpoints, an intent fsynced before each send,
   reports) vs a raw aiohttp loop sending the same POSTs with as many requests in flight, rounds
   interleaved. Target: engine ≥ 0.75× the raw loop's requests/s. Also CPU per item.
2. ``budget``: time-compressed (the simulated hour lasts one real second), 5× the window's cap of
   items, our budget 90% of the cap: % of the configured rate achieved over the whole windows,
   the most requests in one window, 429s. Target: ≥ 99%, max ≤ budget, 0 × 429.
3. ``restarts``: the same run in a child process killed with SIGKILL at random moments five times
   and started again: max per window ≤ budget (no re-burst after a restart), every item done.
4. ``idle``: the real cap (10,000/h, 2.8 items/s) for ``--idle-items`` items: CPU per item and the
   share of one core used, against a raw aiohttp loop paced the same way.

    /work/venv/bin/python benchmarks/bench_engine.py [--only throughput,budget,restarts,idle]
        [--items 3000] [--concurrency 32] [--rounds 3] [--cap 500] [--idle-items 100]
        [--latency-ms 0] [--loop uvloop|asyncio]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import random
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bulkops.budget import Rate
from bulkops.client import Connection
from bulkops.engine import RunOptions
from bulkops.job import JobConfig, drive, start_run
from bulkops.sim import generate_fleet
from bulkops.sim.ledger import COUNTED_OUTCOMES
from bulkops.store import Store

SEED = 11
ACTION = "blankpush"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_s() -> float:
    """CPU seconds of this process, every thread."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def proc_cpu_s(pid: int) -> float:
    """CPU seconds of another process (Linux)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}"


class Sim:
    """``bulkops sim`` in a child process; ``ledger()`` reads what it received."""

    def __init__(self, tmp: Path, *, devices: int, **options: object) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ledger_path = tmp / f"ledger-{self.port}.jsonl"
        token_file = tmp / f"token-{self.port}"
        args = [
            sys.executable,
            "-m",
            "bulkops",
            "sim",
            "--port",
            str(self.port),
            "--devices",
            str(devices),
            "--seed",
            str(SEED),
            "--command-delay-s",
            "0",
            "--token-file",
            str(token_file),
            "--ledger",
            str(self.ledger_path),
        ]
        for key, value in options.items():
            args += [f"--{key.replace('_', '-')}", str(value)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while time.time() < deadline:
            if token_file.exists() and token_file.read_text().strip():
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                    self.token_file = token_file
                    self.token = token_file.read_text().strip()
                    return
                except OSError:
                    pass
            time.sleep(0.05)
        self.proc.kill()
        raise SystemExit("simulator did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()

    def ledger(self) -> list[dict[str, Any]]:
        with self.ledger_path.open("rb") as fh:
            return [orjson.loads(line) for line in fh]

    def cpu_s(self) -> float:
        return proc_cpu_s(self.proc.pid)


def device_ids(n: int) -> list[str]:
    return sorted(generate_fleet(devices=n, seed=SEED, ade_devices=10).devices)


def write_manifest(path: Path, ids: list[str]) -> Path:
    path.write_text("device_id,action\n" + "".join(f"{i},{ACTION}\n" for i in ids))
    return path


def job_config(
    sim: Sim, tmp: Path, tag: str, *, rate: Rate, per_second: int, concurrency: int
) -> JobConfig:
    return JobConfig(
        connection=Connection(base_url=sim.url, token=sim.token, max_connections=concurrency),
        tenant=f"127.0.0.1:{sim.port}",
        db_path=tmp / f"run-{tag}.db",
        out_dir=tmp / f"reports-{tag}",
        rate=rate,
        per_second=per_second,
        budget_db=tmp / f"budget-{sim.port}.db",
        options=RunOptions(concurrency=concurrency),
    )


def run_on(loop: str, main: Coroutine[Any, Any, None]) -> None:
    """Run the benchmark's coroutine on uvloop (what ``bulkops`` uses) or plain asyncio."""
    if loop == "uvloop":
        import uvloop

        uvloop.run(main)
    else:
        asyncio.run(main)


async def run_engine(manifest: Path, config: JobConfig) -> float:
    """Ingest, then drive (resolution, sends, reports); seconds the drive took."""
    store = Store(config.db_path)
    try:
        run, _ = start_run(store, manifest, tenant=config.tenant)
        start = time.perf_counter()
        result = await drive(store, run, config)
        elapsed = time.perf_counter() - start
    finally:
        store.close()
    assert result.summary is not None
    assert result.summary.outcomes.get("succeeded") == run.total, result.summary
    return elapsed


# ---- 1. throughput, cap lifted ----------------------------------------------------------------


async def raw_loop(
    url: str, token: str, ids: list[str], concurrency: int, *, pace_s: float = 0.0
) -> float:
    """The baseline: the same POSTs, a bare aiohttp session, no budget, no checkpoints."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for i in ids:
        queue.put_nowait(i)
    headers = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base_url=url, headers=headers, connector=connector) as s:
        next_at = time.monotonic()

        async def worker() -> None:
            nonlocal next_at
            while not queue.empty():
                device_id = queue.get_nowait()
                if pace_s:
                    next_at = max(next_at + pace_s, time.monotonic())
                    await asyncio.sleep(next_at - time.monotonic())
                async with s.post(f"/api/v1/devices/{device_id}/action/{ACTION}") as r:
                    await r.read()
                    assert r.status == 200, r.status

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start


async def throughput(args: argparse.Namespace, tmp: Path) -> None:
    n, conc = args.items, args.concurrency
    latency = {"latency_s": args.latency_ms / 1000} if args.latency_ms else {}
    sim = Sim(tmp, devices=n, hour_limit=10**9, second_limit=10**9, **latency)
    unlimited = Rate(10**9, 3600.0)
    try:
        ids = device_ids(n)
        await raw_loop(sim.url, sim.token, ids[:200], conc)  # warm-up: connections, caches
        rows: dict[str, list[tuple[float, float, float]]] = {"raw": [], "engine": []}
        for r in range(args.rounds):  # interleaved, so both see the same machine
            for name in ("raw", "engine") if r % 2 == 0 else ("engine", "raw"):
                manifest = write_manifest(tmp / f"job-{r}.csv", ids)
                config = job_config(
                    sim, tmp, f"tp-{r}", rate=unlimited, per_second=10**9, concurrency=conc
                )
                c0, s0 = cpu_s(), sim.cpu_s()
                if name == "raw":
                    elapsed = await raw_loop(sim.url, sim.token, ids, conc)
                else:
                    elapsed = await run_engine(manifest, config)
                c1, s1 = cpu_s(), sim.cpu_s()
                rows[name].append((n / elapsed, (c1 - c0) / n * 1e3, (s1 - s0) / n * 1e3))
    finally:
        sim.stop()
    med = {k: tuple(statistics.median(x[i] for x in v) for i in range(3)) for k, v in rows.items()}
    delay = f", {args.latency_ms:g} ms added per request" if args.latency_ms else ""
    print(f"Throughput, cap lifted: {n} POSTs, {conc} in flight{delay}, median of {args.rounds}\n")
    print("| | req/s | client CPU ms/item | simulator CPU ms/item |")
    print("|---|---|---|---|")
    for name, label in (("raw", "raw aiohttp loop"), ("engine", "engine, checkpoints + reports")):
        rps, cpu, scpu = med[name]
        print(f"| {label} | {rps:,.0f} | {cpu:.3f} | {scpu:.3f} |")
    ratios = sorted(e[0] / r[0] for e, r in zip(rows["engine"], rows["raw"], strict=True))
    print(
        f"| **engine / raw** | **{med['engine'][0] / med['raw'][0]:.2f}×** "
        f"(rounds: {', '.join(f'{x:.2f}' for x in ratios)}; target ≥ 0.75×) | "
        f"{med['engine'][1] / med['raw'][1]:.2f}× | |\n"
    )


# ---- 2. budget use, time-compressed -------------------------------------------------------------


def window_use(entries: list[dict[str, Any]], budget: int) -> dict[str, float]:
    """Share of the budget used over the whole windows, max per window, 429s (virtual hours)."""
    counted = [e["t_virtual"] for e in entries if e["outcome"] in COUNTED_OUTCOMES]
    per = Counter(math.floor(t / 3600.0) for t in counted)
    first, last = min(per), max(per)  # partial: the run starts and ends inside them
    whole = [per[k] for k in range(first + 1, last)]
    return {
        "achieved_pct": 100.0 * sum(whole) / (budget * len(whole)) if whole else float("nan"),
        "whole_windows": len(whole),
        "min_whole_pct": 100.0 * min(whole) / budget if whole else float("nan"),
        "max_per_window": max(per.values()),
        "rate_limited": sum(1 for e in entries if e["outcome"] == "rate_limited"),
        "requests": len(counted),
    }


async def budget_use(args: argparse.Namespace, tmp: Path) -> None:
    cap = args.cap
    budget, items = int(cap * 0.9), 5 * cap
    sim = Sim(tmp, devices=items, time_scale=3600, hour_limit=cap, second_limit=10**9)
    try:
        manifest = write_manifest(tmp / "budget.csv", device_ids(items))
        config = job_config(
            sim, tmp, "budget", rate=Rate(budget, 1.0), per_second=10**9, concurrency=32
        )
        await run_engine(manifest, config)
        await asyncio.sleep(0.2)  # the ledger is written as requests arrive; let it settle
        use = window_use(sim.ledger(), budget)
    finally:
        sim.stop()
    print(
        f"Budget use, time-compressed (1 s = 1 simulated hour): {items} items, cap {cap}/window, "
        f"budget {budget}/window\n"
    )
    print("| figure | value | target |")
    print("|---|---|---|")
    print(
        f"| rate achieved over the {use['whole_windows']:.0f} whole windows | "
        f"**{use['achieved_pct']:.1f}%** (lowest window {use['min_whole_pct']:.1f}%) | ≥ 99% |"
    )
    print(f"| max requests in any window | {use['max_per_window']:.0f} | ≤ {budget} |")
    print(f"| 429s | {use['rate_limited']:.0f} | 0 |\n")


# ---- 3. kill -9 / resume cycles -----------------------------------------------------------------


def child(argv: list[str]) -> None:
    """``--child URL TOKEN_FILE DB MANIFEST BUDGET BUDGET_DB``: one engine process to the end."""
    url, token_file, db, manifest, budget, budget_db = argv
    port = url.rsplit(":", 1)[1]
    config = JobConfig(
        connection=Connection(base_url=url, token=Path(token_file).read_text().strip()),
        tenant=f"127.0.0.1:{port}",
        db_path=Path(db),
        out_dir=Path(db).parent / "reports-restarts",
        rate=Rate(int(budget), 1.0),
        per_second=10**9,
        budget_db=Path(budget_db),
        options=RunOptions(concurrency=32),
    )

    async def go() -> None:
        store = Store(config.db_path)
        try:
            run, _ = start_run(store, Path(manifest), tenant=config.tenant)
            result = await drive(store, run, config)
        finally:
            store.close()
        sys.exit(result.exit_code)

    asyncio.run(go())


async def restarts(args: argparse.Namespace, tmp: Path) -> None:
    cap = args.cap
    budget, items, kills = int(cap * 0.9), 5 * cap, 5
    sim = Sim(tmp, devices=items, time_scale=3600, hour_limit=cap, second_limit=10**9)
    rng = random.Random(SEED)
    codes: list[int | None] = []
    try:
        manifest = write_manifest(tmp / "restarts.csv", device_ids(items))
        cmd = [
            sys.executable,
            __file__,
            "--child",
            sim.url,
            str(sim.token_file),
            str(tmp / "restarts.db"),
            str(manifest),
            str(budget),
            str(tmp / "restarts-budget.db"),
        ]
        for k in range(kills + 1):
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if k < kills:
                await asyncio.sleep(rng.uniform(0.8, 1.6))  # start-up, then mid-window
                proc.send_signal(signal.SIGKILL)
            _, stderr = await asyncio.to_thread(proc.communicate)
            codes.append(proc.returncode)
            if k == kills and proc.returncode != 0:
                raise SystemExit(f"last run failed: {stderr.decode()[-2000:]}")
        await asyncio.sleep(0.2)
        entries = sim.ledger()
    finally:
        sim.stop()
    use = window_use(entries, budget)
    applied = Counter(e["device_id"] for e in entries if e["outcome"] == "applied")
    print(
        f"Kill -9 and resume, time-compressed: {items} items, cap {cap}, budget {budget}/window, "
        f"{kills} kills (exit codes {codes})\n"
    )
    print("| figure | value | target |")
    print("|---|---|---|")
    print(f"| max requests in any window | **{use['max_per_window']:.0f}** | ≤ {budget} |")
    print(f"| 429s | {use['rate_limited']:.0f} | 0 |")
    print(f"| devices that got the command | {len(applied)} of {items} | all |")
    print(f"| requests (resends of safe items after a kill included) | {use['requests']:.0f} | |\n")


# ---- 4. idle cost at the real cap ---------------------------------------------------------------


async def idle(args: argparse.Namespace, tmp: Path) -> None:
    n = args.idle_items
    rate = Rate(10_000, 3600.0)
    sim = Sim(tmp, devices=n, hour_limit=10**9, second_limit=10**9)
    try:
        ids = device_ids(n)
        manifest = write_manifest(tmp / "idle.csv", ids)
        config = job_config(sim, tmp, "idle", rate=rate, per_second=45, concurrency=8)
        results = {}
        for name in ("raw", "engine"):
            c0, t0 = cpu_s(), time.perf_counter()
            if name == "raw":
                await raw_loop(sim.url, sim.token, ids, 8, pace_s=rate.period_s / rate.count)
            else:
                await run_engine(manifest, config)
            results[name] = (cpu_s() - c0, time.perf_counter() - t0)
    finally:
        sim.stop()
    print(f"At the real cap ({rate}, {rate.count / rate.period_s:.2f}/s): {n} items\n")
    print("| | wall s | items/s | CPU ms/item | share of one core |")
    print("|---|---|---|---|---|")
    for name, label in (("raw", "raw aiohttp loop, paced"), ("engine", "engine (whole drive)")):
        cpu, wall = results[name]
        print(
            f"| {label} | {wall:.1f} | {n / wall:.2f} | {cpu / n * 1e3:.2f} | "
            f"{100 * cpu / wall:.2f}% |"
        )
    print()


SECTIONS: dict[str, Callable[[argparse.Namespace, Path], Awaitable[None]]] = {
    "throughput": throughput,
    "budget": budget_use,
    "restarts": restarts,
    "idle": idle,
}


async def main(args: argparse.Namespace) -> None:
    print(f"machine: {machine()}, loop {args.loop}\n")
    with tempfile.TemporaryDirectory() as d:
        for name in args.only.split(","):
            await SECTIONS[name](args, Path(d))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        raise SystemExit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="throughput,budget,restarts,idle")
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cap", type=int, default=500)
    parser.add_argument("--idle-items", type=int, default=100)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="throughput: server delay")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    ns = parser.parse_args()
    run_on(ns.loop, main(ns))
