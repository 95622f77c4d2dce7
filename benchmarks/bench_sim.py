"""Simulator throughput on loopback versus a bare aiohttp handler, same client, same run.

Each server runs in its own subprocess (uvloop), the client in this process, so client and
server do not share a core on a multi-core machine. Usage:

    python benchmarks/bench_sim.py [--requests 20000] [--concurrency 64] [--devices 1000]
                                   [--rounds 3] [--client raw|aiohttp]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import orjson


def serve_bare(port: int) -> None:
    """A bare aiohttp app returning a tiny JSON body (the ceiling to compare with)."""
    import uvloop
    from aiohttp import web

    body = orjson.dumps({"ok": True})

    async def ping(_request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/ping", ping)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        print(f"listening on http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
        await asyncio.Event().wait()

    uvloop.run(main())


def start_server(args: list[str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, *args], stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if "listening on " in line:
            return proc, line.rsplit(" ", 1)[1].strip()
    raise RuntimeError(f"server did not start: {args}")


async def drive_aiohttp(
    base_url: str,
    make: Callable[[int], tuple[str, str]],
    *,
    requests: int,
    concurrency: int,
    headers: dict[str, str],
) -> tuple[float, list[float], dict[int, int]]:
    """Send `requests` requests with `concurrency` aiohttp workers."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counter = iter(range(requests))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base_url, headers=headers, connector=connector) as session:

        async def worker() -> None:
            for i in counter:
                method, path = make(i)
                t0 = time.perf_counter()
                async with session.request(method, path) as resp:
                    await resp.read()
                latencies.append(time.perf_counter() - t0)
                statuses[resp.status] = statuses.get(resp.status, 0) + 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start, latencies, statuses


async def drive_raw(
    base_url: str,
    make: Callable[[int], tuple[str, str]],
    *,
    requests: int,
    concurrency: int,
    headers: dict[str, str],
) -> tuple[float, list[float], dict[int, int]]:
    """Same load over raw keep-alive HTTP/1.1 sockets: a client far cheaper than the servers."""
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counter = iter(range(requests))

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for i in counter:
                method, path = make(i)
                t0 = time.perf_counter()
                writer.write(
                    f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}"
                    "Content-Length: 0\r\n\r\n".encode()
                )
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                if length:
                    await reader.readexactly(length)
                latencies.append(time.perf_counter() - t0)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start, latencies, statuses


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def fetch_ids(base_url: str, headers: dict[str, str]) -> list[str]:
    async with aiohttp.ClientSession(base_url, headers=headers) as session:
        ids: list[str] = []
        offset = 0
        while True:
            async with session.get(f"/api/v1/devices?limit=300&offset={offset}") as resp:
                page = await resp.json()
            if not page:
                return ids
            ids += [d["device_id"] for d in page]
            offset += 300


def row(name: str, n: int, runs: list[tuple[float, list[float], dict[int, int], float]]) -> str:
    """One table row: the median round by wall time."""
    wall, lat, statuses, _cpu = sorted(runs, key=lambda r: r[0])[len(runs) // 2]
    lat_ms = sorted(x * 1000 for x in lat)
    p50 = statistics.median(lat_ms)
    p99 = lat_ms[int(len(lat_ms) * 0.99) - 1]
    codes = ",".join(f"{k}:{v}" for k, v in sorted(statuses.items()))
    cpu_us = statistics.median(r[3] for r in runs) / n * 1e6
    return (
        f"| {name} | {n} | {wall:.2f} | {n / wall:,.0f} | {p50:.2f} | {p99:.2f} "
        f"| {cpu_us:.0f} | {1e6 / cpu_us:,.0f} | {codes} |"
    )


async def run(ns: argparse.Namespace) -> None:
    import uvloop  # noqa: F401  (the client loop is installed by main())

    here = Path(__file__).resolve()
    rows = []
    results: dict[str, float] = {}
    cpu_per: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        token_file = Path(tmp) / "token"
        sim, sim_url = start_server(
            [
                "-m",
                "bulkops.sim",
                "--port",
                "0",
                "--devices",
                str(ns.devices),
                "--hour-limit",
                "1000000000",
                "--second-limit",
                "1000000000",
                "--command-delay-s",
                "0",
                "--token-file",
                str(token_file),
            ]
        )
        bare, bare_url = start_server([str(here), "--serve-bare"])
        try:
            headers = {"Authorization": f"Bearer {token_file.read_text().strip()}"}
            ids = await fetch_ids(sim_url, headers)
            scenarios: list[tuple[str, str, int, Callable[[int], tuple[str, str]]]] = [
                ("bare aiohttp GET /ping", bare_url, bare.pid, lambda i: ("GET", "/ping")),
                (
                    "sim GET /api/v1/devices/{id}",
                    sim_url,
                    sim.pid,
                    lambda i: ("GET", f"/api/v1/devices/{ids[i % len(ids)]}"),
                ),
                (
                    "sim POST .../action/blankpush",
                    sim_url,
                    sim.pid,
                    lambda i: ("POST", f"/api/v1/devices/{ids[i % len(ids)]}/action/blankpush"),
                ),
                (
                    "sim POST .../action/updateinventory",
                    sim_url,
                    sim.pid,
                    lambda i: (
                        "POST",
                        f"/api/v1/devices/{ids[i % len(ids)]}/action/updateinventory",
                    ),
                ),
            ]
            drive = drive_raw if ns.client == "raw" else drive_aiohttp
            runs: dict[str, list[tuple[float, list[float], dict[int, int], float]]] = {}
            for _round in range(ns.rounds):  # interleaved, so background noise hits all alike
                for name, url, pid, make in scenarios:
                    await drive(
                        url, make, requests=ns.warmup, concurrency=ns.concurrency, headers=headers
                    )
                    cpu0 = cpu_seconds(pid)
                    wall, lat, statuses = await drive(
                        url,
                        make,
                        requests=ns.requests,
                        concurrency=ns.concurrency,
                        headers=headers,
                    )
                    runs.setdefault(name, []).append((wall, lat, statuses, cpu_seconds(pid) - cpu0))
            for name, rounds in runs.items():
                walls = sorted(r[0] for r in rounds)
                results[name] = ns.requests / walls[len(walls) // 2]
                cpu_per[name] = statistics.median(r[3] for r in rounds) / ns.requests
                rows.append(row(name, ns.requests, rounds))
        finally:
            for proc in (sim, bare):
                proc.terminate()
                proc.wait(timeout=10)
    print(
        f"client: {ns.client}, concurrency {ns.concurrency}, {ns.requests} requests per "
        f"scenario and round, median of {ns.rounds} rounds"
    )
    print(
        "| scenario | requests | seconds | req/s | p50 ms | p99 ms "
        "| server CPU µs/req | CPU-bound req/s | statuses |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    print("\n".join(rows))
    bare = "bare aiohttp GET /ping"
    for name in results:
        if name.startswith("sim"):
            print(
                f"{name}: {results[name] / results[bare]:.2f} x bare req/s, "
                f"{cpu_per[name] / cpu_per[bare]:.2f} x bare server CPU per request"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--warmup", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--devices", type=int, default=1_000)
    parser.add_argument("--client", choices=("raw", "aiohttp"), default="raw")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve-bare", action="store_true", help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.serve_bare:
        serve_bare(0)
        return
    import uvloop

    uvloop.run(run(ns))


if __name__ == "__main__":
    main()
