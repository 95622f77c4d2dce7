"""Where the engine's CPU per item goes: the same drive with the budget or the store taken out.

Cap lifted, as ``bench_engine.py --only throughput``. Each round runs the raw aiohttp loop, then the
whole ``drive()`` four ways:

- ``full``: as shipped;
- ``no budget``: ``Budget.acquire`` hands out a permit at once (no lock, no send history);
- ``no store writes``: the store's group commit returns without touching SQLite (intents and
  completions are never written; resolution and reports still read the ingested rows);
- ``neither``: both.

Only a measurement: these engines are unsafe (they would resend and overcount). The difference
between ``full`` and a variant is what the part taken out costs per item; what ``neither`` still
costs above the raw loop is the rest of the engine (the sender, the client's wrapper, progress,
planning and reports) and asyncio around it.

    /work/venv/bin/python benchmarks/bench_ablation.py [--items 3000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import uvloop
from bench_engine import Sim, cpu_s, device_ids, job_config, machine, raw_loop, write_manifest

from bulkops.budget import Budget, Rate
from bulkops.job import drive, start_run
from bulkops.store import Store

VARIANTS = ("full", "no budget", "no store writes", "neither")


class _Permit:
    def rate_limited(self, retry_after_s: float | None) -> None:
        pass


@contextlib.asynccontextmanager
async def _free_permit(self: Budget) -> AsyncIterator[Any]:
    yield _Permit()


@contextlib.contextmanager
def taken_out(variant: str) -> Iterator[None]:
    """Patch the parts ``variant`` takes out; put them back on the way out."""
    saved = [
        (Budget, "acquire", Budget.acquire),
        (Budget, "stale", Budget.stale),
        (Store, "_apply", Store._apply),
    ]
    if variant in ("no budget", "neither"):
        Budget.acquire = _free_permit  # type: ignore[assignment]
        Budget.stale = lambda self, permit: False  # type: ignore[assignment,method-assign]
    if variant in ("no store writes", "neither"):
        Store._apply = lambda self, writes: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)


async def main(args: argparse.Namespace) -> None:
    n = args.items
    rows: dict[str, list[tuple[float, float]]] = {v: [] for v in ("raw", *VARIANTS)}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        sim = Sim(tmp, devices=n, hour_limit=10**9, second_limit=10**9)
        try:
            ids = device_ids(n)
            await raw_loop(sim.url, sim.token, ids[:200], 32)  # warm-up
            unlimited = Rate(10**9, 3600.0)
            for r in range(args.rounds):
                c0 = cpu_s()
                elapsed = await raw_loop(sim.url, sim.token, ids, 32)
                rows["raw"].append((n / elapsed, (cpu_s() - c0) / n * 1e3))
                for variant in VARIANTS:
                    tag = f"{r}-{VARIANTS.index(variant)}"
                    manifest = write_manifest(tmp / f"job-{tag}.csv", ids)
                    config = job_config(
                        sim, tmp, tag, rate=unlimited, per_second=10**9, concurrency=32
                    )
                    store = Store(config.db_path)
                    try:
                        run, _ = start_run(store, manifest, tenant=config.tenant)
                        with taken_out(variant):
                            c0, t0 = cpu_s(), time.perf_counter()
                            await drive(store, run, config)
                            elapsed, cpu = time.perf_counter() - t0, cpu_s() - c0
                    finally:
                        store.close()
                    rows[variant].append((n / elapsed, cpu / n * 1e3))
        finally:
            sim.stop()
    print(f"machine: {machine()}\n")
    print(f"Engine ablation, cap lifted: {n} POSTs, 32 in flight, median of {args.rounds}\n")
    print("| | req/s | × raw | CPU ms/item | CPU × raw |")
    print("|---|---|---|---|---|")
    raw_rps, raw_cpu = (statistics.median(x[i] for x in rows["raw"]) for i in range(2))
    for name, got in rows.items():
        rps, cpu = (statistics.median(x[i] for x in got) for i in range(2))
        label = "raw aiohttp loop" if name == "raw" else f"engine, {name}"
        print(f"| {label} | {rps:,.0f} | {rps / raw_rps:.2f}× | {cpu:.3f} | {cpu / raw_cpu:.2f}× |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    uvloop.run(main(parser.parse_args()))
