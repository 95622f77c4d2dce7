"""Scale: a 1,000,000-row plan and resume, and many items through the engine, in time and memory.

``plan``: ``bulkops plan`` on a 1M-row manifest (CSV, then JSON Lines), each in its own process:
wall seconds, peak RSS (``wait4``), and the same manifest read with the bare parser (``csv.reader``
/ ``orjson.loads`` per line, no validation) as the floor. Then ``resume``: ``bulkops run`` on the
CSV against a simulator, killed after its first requests, and started again: seconds from the
second start to its first request, the database's size, peak RSS.

``items``: N blankpush items through ``drive()`` on a simulator in its own process, cap lifted,
for N = 10,000 and 100,000, each in its own child process: peak RSS and seconds. Flat RSS from
10k to 100k means memory does not grow with the item count.

The manifests hold device ids only (blankpush, lock with a message, restart with notify_user), so
that planning needs no lookups (its one read, which proves the token, goes to a small simulator):
with serial numbers a plan must read the tenant's inventory, which the budget paces (see
bench_resolution.py).

    /work/venv/bin/python benchmarks/bench_scale.py [--rows 1000000] [--only plan,resume,items]
"""

from __future__ import annotations

import argparse
import csv
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson
from bench_engine import Sim, device_ids, machine, write_manifest

FLOOR_CSV = "import csv,sys\nfor _ in csv.reader(open(sys.argv[1], newline='')): pass"
FLOOR_JSONL = "import orjson,sys\nfor line in open(sys.argv[1],'rb'): orjson.loads(line)"


def generate(folder: Path, rows: int) -> dict[str, Path]:
    """The same rows as CSV and JSON Lines: device ids, three actions, one in three with params."""
    csv_path, jsonl_path = folder / "m.csv", folder / "m.jsonl"
    with (
        csv_path.open("w", encoding="utf-8", newline="") as c,
        jsonl_path.open("wb") as j,
    ):
        writer = csv.writer(c, lineterminator="\n")
        writer.writerow(["device_id", "action", "message", "notify_user"])
        for i in range(rows):
            device = str(uuid.UUID(int=i + 1, version=4))
            kind = i % 3
            if kind == 0:
                writer.writerow([device, "blankpush", "", ""])
                item: dict[str, object] = {"device_id": device, "action": "blankpush"}
            elif kind == 1:
                message = f"Call IT, ext {i % 1000}"
                writer.writerow([device, "lock", message, ""])
                item = {"device_id": device, "action": "lock", "params": {"message": message}}
            else:
                writer.writerow([device, "restart", "", "true"])
                item = {"device_id": device, "action": "restart", "params": {"notify_user": True}}
            j.write(orjson.dumps(item) + b"\n")
    return {"csv": csv_path, "jsonl": jsonl_path}


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int, int]:
    """Seconds, peak RSS (MB) and exit code of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{cmd[:4]} failed ({proc.returncode}): {stderr[-2000:]}")
    return elapsed, usage.ru_maxrss // 1024, proc.returncode


def plan(args: argparse.Namespace, tmp: Path, files: dict[str, Path]) -> None:
    # A plan that needs no lookups still reads one device to prove the token and host.
    sim = Sim(tmp, devices=100, hour_limit=10**9, second_limit=10**9)
    try:
        plan_on(args, tmp, files, sim)
    finally:
        sim.stop()


def plan_on(args: argparse.Namespace, tmp: Path, files: dict[str, Path], sim: Sim) -> None:
    env = dict(os.environ, IRU_API_TOKEN=sim.token, BULKOPS_STATE_DIR=str(tmp / "state"))
    py = sys.executable
    print(f"`bulkops plan`, {args.rows:,} rows (device ids, no reads needed)\n")
    print(
        "| format | file MB | floor: bare parse s | plan s | × floor | peak RSS MB"
        " | --db MB after |"
    )
    print("|---|---|---|---|---|---|---|")
    for fmt, path in files.items():
        floor, _, _ = timed([py, "-c", FLOOR_CSV if fmt == "csv" else FLOOR_JSONL, str(path)])
        db = tmp / f"plan-{fmt}.db"
        cmd = [py, "-m", "bulkops", "plan", str(path), "--base-url", sim.url]
        cmd += ["--db", str(db), "--out", str(tmp / f"plan-{fmt}")]
        seconds, rss, _ = timed(cmd, env)
        size = f"{db.stat().st_size / 2**20:.2f}" if db.exists() else "none"  # a plan makes none
        print(
            f"| {fmt} | {path.stat().st_size / 2**20:.0f} | {floor:.1f} | **{seconds:.1f}** | "
            f"{seconds / floor:.1f}× | **{rss}** | {size} |"
        )
    print()


def first_request(ledger: Path, seen: int, started: float, proc: subprocess.Popen[bytes]) -> float:
    deadline = time.time() + 120
    while time.time() < deadline:
        lines = ledger.read_bytes().splitlines() if ledger.exists() else []
        if len(lines) > seen:
            return float(orjson.loads(lines[seen])["t_real"]) - started
        if proc.poll() is not None:
            raise SystemExit(f"bulkops run ended ({proc.returncode}) before any request")
        time.sleep(0.02)
    raise SystemExit("no request within 120 s")


def resume(args: argparse.Namespace, tmp: Path, files: dict[str, Path]) -> None:
    sim = Sim(tmp, devices=100, hour_limit=10**9, second_limit=10**9)
    try:
        env = dict(os.environ, IRU_API_TOKEN=sim.token, BULKOPS_STATE_DIR=str(tmp / "state"))
        db = tmp / "resume.db"
        cmd = [sys.executable, "-m", "bulkops", "run", str(files["csv"]), "--yes", "--quiet"]
        cmd += ["--max-destructive", str(args.rows)]  # a third of the rows lock
        cmd += ["--base-url", sim.url, "--db", str(db), "--out", str(tmp / "resume")]
        rows = []
        for label in ("first start (ingest + plan)", "resume after kill -9"):
            seen = len(sim.ledger_path.read_bytes().splitlines()) if sim.ledger_path.exists() else 0
            started = time.time()
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
            to_first = first_request(sim.ledger_path, seen, started, proc)
            time.sleep(0.5)
            proc.send_signal(signal.SIGKILL)
            _, _, usage = os.wait4(proc.pid, 0)
            rows.append((label, to_first, usage.ru_maxrss // 1024))
        size = sum(p.stat().st_size for p in tmp.glob("resume.db*")) / 2**20
    finally:
        sim.stop()
    print(f"`bulkops run` on the {args.rows:,}-row CSV: start to first request at the server\n")
    print("| | seconds to first request | peak RSS MB |")
    print("|---|---|---|")
    for label, seconds, rss in rows:
        print(f"| {label} | **{seconds:.1f}** | {rss} |")
    print(f"\nDatabase with the run: {size:.0f} MB (with -wal and -shm)\n")


CHILD = r"""
import asyncio, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import bench_engine as be
from bulkops.budget import Rate
import uvloop
url, token_file, port, n, tmp = sys.argv[2:7]
n = int(n)
class S: pass
sim = S(); sim.url = url; sim.port = int(port); sim.token = Path(token_file).read_text().strip()
async def main():
    tmpd = Path(tmp)
    manifest = tmpd / f"items-{n}.csv"  # written by the parent: the fleet is not ours to hold
    config = be.job_config(sim, tmpd, f"items-{n}", rate=Rate(10**9, 3600.0),
                           per_second=10**9, concurrency=32)
    elapsed = await be.run_engine(manifest, config)
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec, so it would report the
    # parent's peak (the fleet it generated) when that is higher than ours.
    status = Path("/proc/self/status").read_text()
    hwm_kb = int(next(ln for ln in status.splitlines() if ln.startswith("VmHWM")).split()[1])
    print(elapsed, hwm_kb // 1024)
uvloop.run(main())
"""


def items(args: argparse.Namespace, tmp: Path) -> None:
    sizes = (10_000, 100_000)
    rows = []
    here = str(Path(__file__).parent)
    for n in sizes:  # a simulator per size: the manifest names its fleet's devices
        sim = Sim(tmp, devices=n, hour_limit=10**9, second_limit=10**9)
        write_manifest(tmp / f"items-{n}.csv", device_ids(n))
        try:
            where = [sim.url, str(sim.token_file), str(sim.port)]
            out = subprocess.run(
                [sys.executable, "-c", CHILD, here, *where, str(n), str(tmp)],
                capture_output=True,
                text=True,
            )
        finally:
            sim.stop()
        if out.returncode != 0:
            raise SystemExit(f"{n:,} items: the child failed:\n{out.stderr[-3000:]}")
        seconds, rss = out.stdout.split()
        rows.append((n, float(seconds), int(rss)))
    print("Items through the engine (drive: plan, sends, checkpoints, reports), cap lifted\n")
    print("| items | seconds | items/s | peak RSS MB |")
    print("|---|---|---|---|")
    for n, seconds, rss in rows:
        print(f"| {n:,} | {seconds:.1f} | {n / seconds:,.0f} | **{rss}** |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--only", default="plan,resume,items")
    args = parser.parse_args()
    print(f"machine: {machine()}\n")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        only = args.only.split(",")
        files = generate(tmp, args.rows) if {"plan", "resume"} & set(only) else {}
        if "plan" in only:
            plan(args, tmp, files)
        if "resume" in only:
            resume(args, tmp, files)
        if "items" in only:
            items(args, tmp)


if __name__ == "__main__":
    main()
