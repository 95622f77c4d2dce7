"""Command start to first request, against the floor of Python + aiohttp sending one request.

Each round starts, in turn:

- ``floor``: ``python -c`` importing asyncio and aiohttp and sending one POST (what no Python
  client can beat);
- ``help``: ``python -m bulkops --help`` to its exit;
- ``run``: ``python -m bulkops run job.csv --yes --quiet`` on a 10-row manifest, against a
  simulator in its own process; the figure is the time from starting the process to the first
  request in the simulator's ledger (a new database each round: manifest ingest included);
- ``run, plan printed``: the same without ``--quiet`` (stdout a pipe): rich loads to print the
  plan before the first request;
- ``run, no bytecode``: the same with ``PYTHONDONTWRITEBYTECODE=1`` and no cached bytecode for
  bulkops, as in an editable install on a machine that sets it: every module is compiled at start.

Every other process finds compiled bytecode for everything it imports, as after ``pip install``
of a wheel: the children get ``PYTHONPYCACHEPREFIX`` (a folder of this run, filled by a warm-up
round) and no ``PYTHONDONTWRITEBYTECODE``.

With ``--baseline DIR`` (a checkout of another commit, e.g. ``git worktree add /tmp/base
<commit>``), each round also starts the same quiet run from that checkout (``PYTHONPATH``, cwd
outside both), and the report adds its median and the per-round ratio against it.

Target: run ≤ 0.5 s. Also prints ``-X importtime`` of ``bulkops run``'s imports, top 12 by
cumulative time.

    /work/venv/bin/python benchmarks/bench_startup.py [--rounds 7] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
from bench_engine import Sim, device_ids, machine, write_manifest

FLOOR = """
import asyncio, sys, aiohttp
async def main():
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer " + sys.argv[2]}) as s:
        async with s.post(sys.argv[1]) as r:
            await r.read()
asyncio.run(main())
"""


def first_request_after(ledger: Path, seen: int, started: float) -> float:
    """Seconds from ``started`` to the first ledger entry after the ``seen`` first ones."""
    deadline = time.time() + 30
    while time.time() < deadline:
        lines = ledger.read_bytes().splitlines() if ledger.exists() else []
        if len(lines) > seen:
            return float(orjson.loads(lines[seen])["t_real"]) - started
        time.sleep(0.01)
    raise SystemExit("no request reached the simulator")


def ledger_size(ledger: Path) -> int:
    return len(ledger.read_bytes().splitlines()) if ledger.exists() else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--baseline", type=Path, help="a checkout of the commit to compare with")
    args = parser.parse_args()
    py = sys.executable
    package = Path(__file__).resolve().parent.parent / "bulkops"
    for stale in package.rglob("__pycache__"):  # "no bytecode" must mean none: drop old caches
        shutil.rmtree(stale)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        sim = Sim(tmp, devices=50, hour_limit=10**9, second_limit=10**9)
        try:
            ids = device_ids(50)
            manifest = write_manifest(tmp / "job.csv", ids[:10])
            source = dict(os.environ, IRU_API_TOKEN=sim.token, BULKOPS_STATE_DIR=str(tmp / "state"))
            source["PYTHONDONTWRITEBYTECODE"] = "1"
            source.pop("PYTHONPYCACHEPREFIX", None)
            cached = dict(source, PYTHONPYCACHEPREFIX=str(tmp / "pyc"))
            del cached["PYTHONDONTWRITEBYTECODE"]
            baseline = None
            if args.baseline:
                baseline = dict(cached, PYTHONPATH=str(args.baseline.resolve()))
            ours = dict(cached, PYTHONPATH=str(package.parent))
            keys = ("floor", "help", "run", "loud", "source", "baseline")
            times: dict[str, list[float]] = {k: [] for k in keys}

            def run_once(tag: str, env: dict[str, str], *, quiet: bool = True) -> float:
                seen = ledger_size(sim.ledger_path)
                start = time.time()
                cmd = [py, "-m", "bulkops", "run", str(manifest), "--yes"]
                cmd += ["--quiet"] if quiet else []
                cmd += ["--base-url", sim.url, "--db", str(tmp / f"run-{tag}.db")]
                cmd += ["--out", str(tmp / f"reports-{tag}")]
                # a state folder each: the runs index refuses the same manifest in another --db
                env = dict(env, BULKOPS_STATE_DIR=str(tmp / f"state-{tag}"))
                proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, cwd=tmp)
                took = first_request_after(sim.ledger_path, seen, start)
                proc.wait()
                return took

            url = f"{sim.url}/api/v1/devices/{ids[0]}/action/blankpush"
            subprocess.run([py, "-c", FLOOR, url, sim.token], check=True, env=cached)  # warm-up
            run_once("warm-up", cached)
            if baseline is not None:
                run_once("warm-up-baseline", baseline)
            for r in range(args.rounds):
                seen = ledger_size(sim.ledger_path)
                start = time.time()
                subprocess.run([py, "-c", FLOOR, url, sim.token], check=True, env=cached)
                times["floor"].append(first_request_after(sim.ledger_path, seen, start))

                start = time.perf_counter()
                help_cmd = [py, "-m", "bulkops", "--help"]
                subprocess.run(help_cmd, check=True, capture_output=True, env=cached)
                times["help"].append(time.perf_counter() - start)

                times["run"].append(run_once(str(r), ours))
                if baseline is not None:
                    times["baseline"].append(run_once(f"{r}-baseline", baseline))
                times["loud"].append(run_once(f"{r}-loud", cached, quiet=False))
                times["source"].append(run_once(f"{r}-source", source))
            imports = subprocess.run(
                [py, "-X", "importtime", "-c", "import bulkops.cli, bulkops.job"],
                capture_output=True,
                text=True,
                check=True,
                env=cached,
            ).stderr
        finally:
            sim.stop()
    print(f"machine: {machine()}\n")
    print(f"Start-up, median of {args.rounds} rounds (interleaved)\n")
    print("| | seconds | × floor |")
    print("|---|---|---|")
    floor = statistics.median(times["floor"])
    labels = {
        "floor": "floor: python + aiohttp, one POST (start → request at the server)",
        "help": "`bulkops --help` (start → exit)",
        "run": "`bulkops run --quiet` 10 rows (start → first request at the server)",
        "loud": "same without `--quiet`: the plan printed first (rich loaded)",
        "source": "same, no bytecode cache (every bulkops module compiled at start)",
    }
    if args.baseline:
        labels["baseline"] = f"`bulkops run --quiet` from {args.baseline}"
    for key, label in labels.items():
        med = statistics.median(times[key])
        print(f"| {label} | **{med:.3f}** | {med / floor:.1f}× |")
    if args.baseline:
        pairs = zip(times["run"], times["baseline"], strict=True)
        ratio = statistics.median(ours_s / base_s for ours_s, base_s in pairs)
        print(f"\nrun --quiet, this checkout / baseline, median per round: **{ratio:.2f}×**")
    rows = []
    for line in imports.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[0].strip().isdigit():
            rows.append((int(parts[1]), int(parts[0]), parts[2].strip()))
    print("\n`-X importtime` of bulkops.cli + bulkops.job, top 12 by cumulative ms:\n")
    print("| module | cumulative ms | self ms |")
    print("|---|---|---|")
    for cum, own, name in sorted(rows, reverse=True)[:12]:
        print(f"| {name} | {cum / 1000:.1f} | {own / 1000:.1f} |")


if __name__ == "__main__":
    main()
