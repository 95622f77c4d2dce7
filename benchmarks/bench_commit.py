"""The intent's group commit: what one costs, and what it does to the engine's rate.

Three measurements, cap lifted as in ``bench_engine.py --only throughput``:

- ``gil``: a 30-row intent commit on a thread, the rest of the process idle and then with
  another thread running Python: ``executemany`` (one SQLite step, and one GIL hand-back, per
  row) against one ``UPDATE … FROM (VALUES …)``. The real schema and the store's statements.
- ``ab``: the whole ``drive()`` with commits as one statement and as ``executemany``, rounds
  interleaved in one process: items/s, CPU per item (all threads, and the event loop's thread
  alone, read from /proc on Linux), and per commit its rows, the time the committer waits for
  it and the time it takes inside the store's thread.
- ``workers``: 32 workers on 32 connections (as shipped) against 64 workers on 32 connections
  (at most 32 requests in flight while other items' intents commit), the experiment behind the
  "measured and not built" note in README.md. The 64-worker engine is only a measurement.

    /work/venv/bin/python benchmarks/bench_commit.py [--only gil,ab,workers] [--items 5000]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvloop
from bench_engine import Sim, device_ids, job_config, machine, raw_loop, write_manifest

from bulkops.budget import Rate
from bulkops.job import drive, start_run
from bulkops.store import Store, _store, _writer
from bulkops.store._db import connect

ROWS = 30  # intents in one commit, about what the engine groups at 32 workers


def gil(tmp: Path) -> None:
    store = Store(tmp / "gil.db")  # the schema; the commits below use their own connection
    store.close()
    conn = connect(tmp / "gil.db")
    conn.executemany(
        "INSERT INTO items (run_id, line, action, params) VALUES ('r', ?, 'blankpush', '{}')",
        [(n,) for n in range(100 * ROWS)],
    )

    def commit(base: int, update_from: bool) -> None:
        now = time.time()
        writes = [(_writer._INTENT, (now, now, None, "r", base + n)) for n in range(ROWS)]
        conn.execute("BEGIN IMMEDIATE")
        for sql, rows in _writer.statements(writes, update_from=update_from):
            conn.executemany(sql, rows)
        conn.execute("COMMIT")

    def median_ms(update_from: bool) -> float:
        took: list[float] = []

        def work() -> None:
            for k in range(20):
                start = time.perf_counter()
                commit(k * ROWS, update_from)
                took.append(time.perf_counter() - start)

        worker = threading.Thread(target=work)
        worker.start()
        worker.join()
        return statistics.median(took) * 1e3

    print(f"One {ROWS}-row intent commit on a thread, median of 20 (ms)\n")
    print("| the rest of the process | executemany | one statement |")
    print("|---|---|---|")
    stop = threading.Event()

    def spin() -> None:  # keeps the GIL busy, as the event loop's thread does
        while not stop.is_set():
            pass

    for busy in (False, True):
        spinner = threading.Thread(target=spin)
        if busy:
            spinner.start()
        many, one = median_ms(False), median_ms(True)
        print(f"| {'running Python' if busy else 'idle'} | {many:.2f} | **{one:.2f}** |")
        if busy:
            stop.set()
            spinner.join()
    conn.close()
    print()


def loop_thread_cpu_s() -> float:
    """CPU seconds of this process's main thread (the event loop's), from /proc; 0 elsewhere."""
    try:
        stat = Path(f"/proc/self/task/{os.getpid()}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Timings:
    """Each commit's rows, its wait in the committer and its time on the store's thread."""

    def __init__(self) -> None:
        self.rows: list[int] = []
        self.waited: list[float] = []
        self.inside: list[float] = []
        commit, apply = _store.Store._commit, _store.Store._apply

        async def timed_commit(store: Store, writes: list[Any]) -> None:
            start = time.perf_counter()
            await commit(store, writes)
            self.waited.append(time.perf_counter() - start)
            self.rows.append(len(writes))

        def timed_apply(store: Store, writes: list[Any]) -> None:
            start = time.perf_counter()
            apply(store, writes)
            self.inside.append(time.perf_counter() - start)

        _store.Store._commit = timed_commit  # type: ignore[method-assign]
        _store.Store._apply = timed_apply  # type: ignore[method-assign]

    def clear(self) -> None:
        self.rows.clear()
        self.waited.clear()
        self.inside.clear()


async def drives(
    args: argparse.Namespace, tmp: Path, variants: dict[str, Callable[[Any], Any]]
) -> None:
    """Interleaved rounds of ``drive()``, one per variant (a function of the job config)."""
    n = args.items
    tmp.mkdir()
    timings = Timings()
    sim = Sim(tmp, devices=n, hour_limit=10**9, second_limit=10**9)
    got: dict[str, list[tuple[float, ...]]] = {name: [] for name in variants}
    try:
        ids = device_ids(n)
        await raw_loop(sim.url, sim.token, ids[:200], 32)  # warm-up
        names = list(variants)
        for r in range(args.rounds):
            for name in names if r % 2 == 0 else names[::-1]:
                tag = f"{names.index(name)}-{r}"
                lifted = Rate(10**9, 3600.0)
                config = job_config(sim, tmp, tag, rate=lifted, per_second=10**9, concurrency=32)
                config = variants[name](config)
                store = Store(config.db_path)
                manifest = write_manifest(tmp / f"{tag}.csv", ids)
                run, _ = start_run(store, manifest, tenant=config.tenant)
                timings.clear()
                start, cpu, loop_cpu = time.perf_counter(), time.process_time(), loop_thread_cpu_s()
                await drive(store, run, config)
                elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
                loop_cpu = loop_thread_cpu_s() - loop_cpu
                store.close()
                got[name].append(
                    (
                        n / elapsed,
                        cpu / n * 1e3,
                        loop_cpu / n * 1e3,
                        statistics.mean(timings.rows),
                        statistics.median(timings.waited) * 1e3,
                        statistics.median(timings.inside) * 1e3,
                    )
                )
    finally:
        sim.stop()
    print(f"{n:,} items, 32 connections, cap lifted; medians of {args.rounds} interleaved rounds\n")
    print(
        "| | items/s (each round) | CPU ms/item | of it, the loop's thread | writes/commit"
        " | commit waited ms | inside ms |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, rounds in got.items():
        med = [statistics.median(x[i] for x in rounds) for i in range(6)]
        each = ", ".join(f"{x[0]:,.0f}" for x in rounds)
        print(
            f"| {name} | **{med[0]:,.0f}** ({each}) | {med[1]:.3f} | {med[2]:.3f} | "
            f"{med[3]:.1f} | {med[4]:.2f} | {med[5]:.2f} |"
        )
    print()


def one_statement(update_from: bool) -> Callable[[Any], Any]:
    def use(config: Any) -> Any:
        _writer.statements.__kwdefaults__ = {"update_from": update_from}
        return config

    return use


def workers(count: int) -> Callable[[Any], Any]:
    def use(config: Any) -> Any:
        _writer.statements.__kwdefaults__ = {"update_from": _writer.UPDATE_FROM}
        return dataclasses.replace(
            config, options=dataclasses.replace(config.options, concurrency=count)
        )

    return use


def main(args: argparse.Namespace) -> None:
    only = set(args.only.split(","))
    print(f"machine: {machine()}; SQLite {sqlite3.sqlite_version}\n")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if "gil" in only:
            gil(tmp)
        if "ab" in only:
            variants = {
                "one statement": one_statement(True),
                "executemany": one_statement(False),
            }
            uvloop.run(drives(args, tmp / "ab", variants))
        if "workers" in only:
            variants = {"32 workers": workers(32), "64 workers": workers(64)}
            uvloop.run(drives(args, tmp / "workers", variants))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="gil,ab,workers")
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=4)
    main(parser.parse_args())
