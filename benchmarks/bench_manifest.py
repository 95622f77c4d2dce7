"""Manifest parsing speed and memory: bulkops.manifest against plain csv / orjson baselines.

    /work/venv/bin/python benchmarks/bench_manifest.py            # 1,000,000 rows
    /work/venv/bin/python benchmarks/bench_manifest.py --rows 100000

Generates a CSV, a JSON Lines and a JSON manifest of the same rows (a mix of blankpush, lock with a
message, and update with an asset tag and tags; serial numbers and device ids) in a temporary
directory. Each measurement runs in its own child process, so peak RSS is that parser's alone.
Baselines do no validation: ``csv.reader`` over the file, ``orjson.loads`` per line, and
``orjson.loads`` of the whole JSON file. "× time" is seconds relative to the baseline of the same
format: the price of decoding checks, validation and typed items on top of bare parsing.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path


def generate(folder: Path, count: int) -> dict[str, Path]:
    """Write the three manifests; their paths by format."""
    csv_path, jsonl_path, json_path = folder / "m.csv", folder / "m.jsonl", folder / "m.json"
    with (
        csv_path.open("w", encoding="utf-8", newline="") as c,
        jsonl_path.open("w", encoding="utf-8") as jl,
        json_path.open("w", encoding="utf-8") as js,
    ):
        c.write("device_id,serial_number,action,message,asset_tag,tags\r\n")
        js.write('{"defaults": {"action": "blankpush"},\n "items": [\n')
        for i in range(count):
            kind = i % 3
            device = str(uuid.UUID(int=i + 1, version=4)) if i % 2 else ""
            serial = f"C02{i:09d}"
            item: dict[str, object] = {"device_id": device} if device else {"serial_number": serial}
            if kind == 0:
                c.write(f"{device},{serial},blankpush,,,\r\n")
                item["action"] = "blankpush"
            elif kind == 1:
                c.write(f'{device},{serial},lock,"Call IT, ext {i % 1000}",,\r\n')
                item.update(action="lock", params={"message": f"Call IT, ext {i % 1000}"})
            else:
                c.write(f"{device},{serial},update,,{i:06d},Finance;London\r\n")
                item.update(action="update", asset_tag=f"{i:06d}", tags=["Finance", "London"])
            line = json.dumps(item)
            jl.write(line + "\n")
            js.write(("  " if i == 0 else ",\n  ") + line)
        js.write("\n]}\n")
    return {"csv": csv_path, "jsonl": jsonl_path, "json": json_path}


def child(parser: str, path: Path) -> None:
    """Parse ``path`` with ``parser``; print rows, seconds and peak RSS as JSON."""
    start = time.perf_counter()
    rows = 0
    if parser.startswith("bulkops"):
        from bulkops.manifest import open_manifest

        for _ in open_manifest(path):
            rows += 1
    elif parser == "csv.reader":
        import csv

        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            next(reader)
            for _ in reader:
                rows += 1
    elif parser == "orjson per line":
        import orjson

        with path.open("rb") as handle:
            for line in handle:
                orjson.loads(line)
                rows += 1
    elif parser == "orjson whole file":
        import orjson

        rows = len(orjson.loads(path.read_bytes())["items"])
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    print(json.dumps({"rows": rows, "seconds": seconds, "rss_mib": peak * scale / 2**20}))


PLAN = (
    ("csv", "csv.reader", "bulkops"),
    ("jsonl", "orjson per line", "bulkops"),
    ("json", "orjson whole file", "bulkops"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--child", nargs=2, metavar=("PARSER", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    with tempfile.TemporaryDirectory(prefix="bench-manifest-") as tmp:
        started = time.perf_counter()
        paths = generate(Path(tmp), args.rows)
        size = {f: p.stat().st_size / 2**20 for f, p in paths.items()}
        print(f"generated {args.rows:,} rows in {time.perf_counter() - started:.1f}s", end=" ")
        print("(" + ", ".join(f"{f} {mib:.0f} MiB" for f, mib in size.items()) + ")\n")
        head = f"{'format':<6} {'parser':<18} {'rows/s':>10} {'seconds':>8} {'peak RSS':>9}"
        head += f" {'× time':>7}"
        print(head)
        print("-" * len(head))
        for fmt, baseline, ours in PLAN:
            results = {}
            for name in (baseline, ours):
                out = subprocess.run(
                    [sys.executable, __file__, "--child", name, str(paths[fmt])],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                results[name] = json.loads(out)
                assert results[name]["rows"] == args.rows, (name, results[name])
            base = results[baseline]["seconds"]
            for name in (baseline, ours):
                r = results[name]
                label = "bulkops.manifest" if name == ours else name
                print(
                    f"{fmt:<6} {label:<18} {r['rows'] / r['seconds']:>10,.0f} "
                    f"{r['seconds']:>8.2f} {r['rss_mib']:>6.0f} MiB {r['seconds'] / base:>6.1f}×"
                )


if __name__ == "__main__":
    main()
