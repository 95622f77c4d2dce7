"""``bulkops demo``: the whole job on the embedded simulator, in seconds.

The example manifests in ``jobs/`` are made from the simulator's default tenant (200 devices,
seed 7), so they also work against ``bulkops sim`` as they are; ``example_jobs`` is how they were
made, and a test keeps the committed files equal to it.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import orjson

from bulkops.cli._common import out, run_async

DEMO_DEVICES = 200
DEMO_SEED = 7
TIME_SCALE = 60.0  # one simulated hour lasts a minute


def _csv(header: list[str], rows: list[list[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def example_jobs(fleet: Any) -> dict[str, str]:
    """The example manifests for a fleet: file name → content."""
    devs = sorted(fleet.devices.values(), key=lambda d: d["serial_number"])
    macs = [d for d in devs if d["platform"] == "Mac"]
    eng = [d for d in macs if d["blueprint_name"] == "Engineering Macs"]
    contractors = [d for d in macs if d["blueprint_name"] == "Contractors"]
    jobs = {
        "blankpush-blueprint.csv": _csv(
            ["device_id", "action", "note"],
            [[d["device_id"], "blankpush", d["device_name"]] for d in eng],
        ),
        "reassign-blueprint-by-serial.csv": _csv(
            ["Serial Number", "Action", "Blueprint"],
            [[d["serial_number"], "update", "Engineering Macs"] for d in contractors[:20]],
        ),
        "set-asset-tags.csv": _csv(
            ["serial_number", "asset_tag", "user"],
            [[d["serial_number"], f"ACME-{1000 + i}", ""] for i, d in enumerate(macs[:25])],
        ),
        "lock-lost-macs.json": orjson.dumps(
            {
                "defaults": {
                    "action": "lock",
                    "params": {"message": "This Mac is lost. Call IT on +1 555 0100."},
                },
                "items": [{"serial_number": d["serial_number"]} for d in macs[-3:]],
            },
            option=orjson.OPT_INDENT_2,
        ).decode()
        + "\n",
        "inventory-everything.jsonl": "".join(
            orjson.dumps({"device_id": d["device_id"], "action": "updateinventory"}).decode() + "\n"
            for d in devs
        ),
    }
    return jobs


def jobs_folder(folder: Path, fleet: Any) -> Path:
    """The repository's ``jobs/`` when it is there (a source checkout), else a fresh copy."""
    repo_jobs = Path(__file__).resolve().parents[2] / "jobs"
    expected = example_jobs(fleet)
    if repo_jobs.is_dir() and all((repo_jobs / name).is_file() for name in expected):
        return repo_jobs
    target = folder / "jobs"
    target.mkdir(parents=True, exist_ok=True)
    for name, text in expected.items():
        (target / name).write_text(text, encoding="utf-8")
    return target


def run_demo(*, devices: int, folder: Path) -> int:
    """Start the simulator, run two example jobs, show where the reports are."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return run_async(_demo(devices=devices, folder=folder))


async def _demo(*, devices: int, folder: Path) -> int:
    from bulkops.budget import Rate
    from bulkops.cli._render import print_result
    from bulkops.cli._run import Approval, drive_with_signals
    from bulkops.client import Connection
    from bulkops.engine import RunOptions
    from bulkops.job import JobConfig, start_run
    from bulkops.sim import SimConfig, Simulator
    from bulkops.store import Store

    sim = Simulator(SimConfig(devices=devices, seed=DEMO_SEED, time_scale=TIME_SCALE))
    token = sim.add_token()
    jobs = jobs_folder(folder, sim.fleet)
    code = 0
    async with sim.running(host="127.0.0.1", port=0) as url:
        out.print(
            f"simulated tenant: {devices} devices at {url} "
            f"(an hour lasts {3600 / TIME_SCALE:g} s)\n"
        )
        config = JobConfig(
            connection=Connection(base_url=url, token=token),
            tenant=url.split("://", 1)[1],
            db_path=folder / "demo.db",
            rate=Rate(9000, 3600.0 / TIME_SCALE),
            budget_db=folder / "budget.db",
            options=RunOptions(concurrency=8),
        )
        for name in ("inventory-everything.jsonl", "lock-lost-macs.json"):
            manifest = jobs / name
            out.print(f"$ bulkops run {manifest}", style="bold")
            store = Store(config.db_path)
            try:
                run, _ = start_run(store, manifest, tenant=config.tenant, new_run=True)
                demo_config = JobConfig(
                    **{**_fields(config), "out_dir": folder / "reports" / run.run_id}
                )
                result = await drive_with_signals(
                    store, run, demo_config, quiet=False, approval=Approval(yes=True)
                )
                print_result(result, as_json=False)
                code = max(code, result.exit_code)
            finally:
                store.close()
            out.print("")
    ledger = sim.ledger.outcomes()
    out.print(
        f"the simulator saw {sum(ledger.values())} requests: "
        + ", ".join(f"{k} {v}" for k, v in sorted(ledger.items()))
    )
    me = _command_name()
    out.print(f"try it yourself: `{me} sim --token-file token.txt` in one terminal, then")
    out.print(
        f"  `{me} run {jobs / 'blankpush-blueprint.csv'} --base-url http://127.0.0.1:8765 "
        "--token-file token.txt`"
    )
    return code


def _command_name() -> str:
    """How this user reaches bulkops: ``bulkops`` when on PATH, else the path they typed."""
    import os
    import shutil
    import sys

    if shutil.which("bulkops") or not sys.argv[0].endswith("bulkops"):
        return "bulkops"
    near = os.path.relpath(sys.argv[0])  # .venv/bin/bulkops, as the README has it typed
    return sys.argv[0] if near.startswith("..") else near


def _fields(config: Any) -> dict[str, Any]:
    return {name: getattr(config, name) for name in config.__slots__}
