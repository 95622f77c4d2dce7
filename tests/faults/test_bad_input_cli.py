"""Bad input end to end: the real ``bulkops run`` on every manifest of the corpus.

For each bad manifest: exit 2, one line on stderr per bad row naming the file and the line (and
a last line with the count when there are several), no traceback, and not one request on the
simulator's ledger. The spreadsheet-friendly variants of
the same rows (BOMs, UTF-16, semicolons, tabs, ``sep=``, odd headers…) are accepted and run.

Each case is a separate process (a cold start each); they run a few at a time.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from bulkops.sim import Simulator
from tests.conftest import make_sim
from tests.manifest.test_corpus import CORPUS, EXPECTED
from tests.manifest.test_excel import VARIANTS

from .kit import BULKOPS, by_item, cli_env, devices, figures

PARALLEL = max(2, (os.cpu_count() or 2) + 1)
# The cross-row cases parse row by row; the store refuses them at ingest, before any request.
CROSS_ROW = {
    "same_device_other_params.csv": (3, "conflicts with line 2: lock for serial number"),
    "conflicting_actions.csv": (3, "conflicts with line 2"),
}
# Files with more than one bad row: one line each, then the count.
SEVERAL = {"conflicting_actions.csv": 2}


async def bulkops(
    args: list[str], *, token: str, cwd: Path, gate: asyncio.Semaphore
) -> tuple[int, str, str]:
    """Run the console script in its own folder (checkpoint db, state dir); exit code, out, err."""
    cwd.mkdir(parents=True, exist_ok=True)
    env = cli_env(token, state_dir=cwd / "state")
    async with gate:
        proc = await asyncio.create_subprocess_exec(
            BULKOPS,
            *args,
            cwd=cwd,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def expected_line(name: str) -> tuple[int | None, str]:
    """The line the error must name, and a fragment of its message."""
    if name in CROSS_ROW:
        return CROSS_ROW[name]
    line, fragment, scope = EXPECTED[name]
    assert scope == "row", name
    return line, fragment


@pytest.mark.usefixtures("warm_cli")
async def test_every_bad_manifest_exits_2_with_one_line_per_bad_row_and_sends_nothing(
    tmp_path: Path,
) -> None:
    names = sorted(p.name for p in CORPUS.iterdir() if p.name != "EXPECTED.tsv")
    assert set(names) == set(EXPECTED) and len(names) >= 60
    sim = make_sim(devices=20)
    token = sim.add_token()
    gate = asyncio.Semaphore(PARALLEL)
    started = time.monotonic()
    async with sim.running() as url:
        runs = await asyncio.gather(
            *(
                bulkops(
                    ["run", str(CORPUS / name), "--base-url", url, "--yes"],
                    token=token,
                    cwd=tmp_path / f"case{i}",
                    gate=gate,
                )
                for i, name in enumerate(names)
            )
        )
    elapsed = time.monotonic() - started

    problems = []
    for name, (code, out, err) in zip(names, runs, strict=True):
        line, fragment = expected_line(name)
        path = CORPUS / name
        where = f"{path}:{line}: " if line is not None else f"{path}: "
        lines = err.splitlines()
        ok = (
            code == 2
            and len(lines) == (SEVERAL[name] + 1 if name in SEVERAL else 1)
            and lines[0].startswith("error: " + where)
            and fragment in lines[0]
            and "Traceback" not in out + err
        )
        if not ok:
            problems.append((name, code, lines[:3], out[:200]))
    assert problems == [], problems
    assert len(sim.ledger) == 0, sim.ledger.outcomes()
    figures(
        "bad manifests through the CLI",
        files=len(names),
        exit_2=sum(1 for code, _, _ in runs if code == 2),
        one_line_per_bad_row=len(names) - len(problems),
        requests_on_ledger=len(sim.ledger),
        parallel=PARALLEL,
        wall_s=f"{elapsed:.1f}",
        per_process_s=f"{elapsed * PARALLEL / len(names):.2f}",
    )


def _with_serials(data: bytes, swap: dict[str, str]) -> bytes:
    """The variant with its serials replaced by enrolled ones, in whatever encoding it uses."""
    for old, new in swap.items():
        for enc in ("utf-8", "utf-16-le", "utf-16-be"):
            for a, b in ((old, new), (old.lower(), new.lower())):
                data = data.replace(a.encode(enc), b.encode(enc))
    return data


def _variants(sim: Simulator) -> dict[str, tuple[bytes, list[tuple[str, str]]]]:
    """Each runnable variant, its serials swapped for enrolled ones, and the (device, action)s."""
    pool = iter(devices(sim))
    out = {}
    for name, (data, items) in sorted(VARIANTS.items()):
        if items is None:  # a variant that is not about serial numbers
            continue
        serials = sorted({it.serial_number for it in items if it.serial_number})
        fleet = {s: next(pool) for s in serials}
        swap = {s: d["serial_number"] for s, d in fleet.items()}
        expect = sorted((fleet[it.serial_number]["device_id"], it.action) for it in items)  # type: ignore[index]
        out[name] = (_with_serials(data, swap), expect)
    return out


@pytest.mark.usefixtures("warm_cli")
async def test_spreadsheet_variants_are_accepted_by_the_cli_and_run(tmp_path: Path) -> None:
    sim = make_sim(devices=120)
    token = sim.add_token()
    variants = _variants(sim)
    assert len(variants) >= 20
    gate = asyncio.Semaphore(PARALLEL)
    async with sim.running() as url:
        names = sorted(variants)
        paths = []
        for name in names:
            path = tmp_path / f"{name}.csv"
            path.write_bytes(variants[name][0])
            paths.append(path)
        runs = await asyncio.gather(
            *(
                bulkops(
                    ["run", str(path), "--base-url", url, "--yes", "--quiet"],
                    token=token,
                    cwd=tmp_path / name,
                    gate=gate,
                )
                for name, path in zip(names, paths, strict=True)
            )
        )
    applied = {k for k, reqs in by_item(sim.ledger.entries).items() if any(e.applied for e in reqs)}
    problems = []
    for name, (code, out, err) in zip(names, runs, strict=True):
        want = set(variants[name][1])
        if code != 0 or "Traceback" in out + err or not want <= applied:
            problems.append((name, code, err.splitlines()[:3], sorted(want - applied)))
    assert problems == [], problems
    assert sum(len(v[1]) for v in variants.values()) == len(applied)
    figures(
        "spreadsheet variants through the CLI",
        variants=len(names),
        exit_0=sum(1 for code, _, _ in runs if code == 0),
        items_applied=len(applied),
    )


@pytest.mark.usefixtures("warm_cli")
async def test_several_bad_rows_are_one_line_each_then_the_count(tmp_path: Path) -> None:
    sim = make_sim(devices=20)
    token = sim.add_token()
    serials = [d["serial_number"] for d in devices(sim)[:4]]
    path = tmp_path / "job.csv"
    path.write_text(
        "serial_number,action,message\n"
        f"{serials[0]},lock,Call IT\n"
        f"{serials[1]},lokc,Call IT\n"
        f"{serials[2]},blankpush,Call IT\n"
        f"{serials[3]},lock,=HYPERLINK(1)\n"
    )
    async with sim.running() as url:
        code, out, err = await bulkops(
            ["run", str(path), "--base-url", url, "--yes"],
            token=token,
            cwd=tmp_path / "run",
            gate=asyncio.Semaphore(1),
        )
    lines = err.splitlines()
    assert code == 2 and "Traceback" not in out + err
    assert [line.split(": ", 2)[1] for line in lines] == [f"{path}:{n}" for n in (3, 4, 5)] + [
        str(path)
    ]
    assert all(line.startswith("error: ") for line in lines)
    assert lines[-1] == f"error: {path}: 3 bad rows; fix them and run again"
    assert len(sim.ledger) == 0, sim.ledger.outcomes()
