"""What the fault tests share: mixed manifests, driving a job, reading the ledger, figures.

The simulator's ledger is the ground truth: every request it received, with what became of it.
Requests are keyed by what they carry (``(device_id, action)``) from the method and the path, so
429s and 401s, which the gateway refuses before routing, are keyed too.
"""

from __future__ import annotations

import csv
import math
import os
import re
import shutil
import sys
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bulkops.actions import ACTIONS
from bulkops.budget import Rate
from bulkops.client import Connection
from bulkops.engine import Engine, RunOptions
from bulkops.job import JobConfig, JobResult, drive, start_run
from bulkops.sim import LedgerEntry, Simulator
from bulkops.store import Store
from tests.conftest import Tenant

UNSAFE = frozenset(name for name, a in ACTIONS.items() if not a.safe_to_repeat)
# A request that reached the application: a resend after one of these is a blind resend.
REACHED = frozenset({"applied", "reset_after", "fault_5xx", "odd"})
# Refused before the application saw it: replaying these is safe for every action.
REFUSED = frozenset({"rate_limited", "unauthorized"})
OUTCOMES = frozenset({"succeeded", "failed", "skipped", "unknown"})

_ITEM_PATH = re.compile(r"^/api/v1/devices/([0-9a-f-]{36})(?:/action/([a-z]+))?/?$")
_RECORD_ACTIONS = {"PATCH": "update", "DELETE": "delete"}

Key = tuple[str, str]

# Subprocesses keep their bytecode here, as an installed package would next to its sources:
# this environment sets PYTHONDONTWRITEBYTECODE, which makes every start recompile bulkops.
PYCACHE = Path(tempfile.gettempdir()) / "bulkops-tests-pycache"

# The console script of the installed package (the venv's, even when it is not on PATH).
BULKOPS = str(
    next(
        (p for p in (Path(sys.executable).with_name("bulkops"),) if p.exists()),
        shutil.which("bulkops") or "bulkops",
    )
)


def key_of(entry: LedgerEntry) -> Key | None:
    """``(device_id, action)`` of a request that carries an item; ``None`` for lookups."""
    m = _ITEM_PATH.match(entry.path)
    if m is None:
        return None
    device_id, action = m.groups()
    if action is not None:
        return (device_id, action) if entry.method == "POST" else None
    name = _RECORD_ACTIONS.get(entry.method)
    return (device_id, name) if name else None


def by_item(entries: Iterable[LedgerEntry]) -> dict[Key, list[LedgerEntry]]:
    """Each item's requests in arrival order."""
    out: dict[Key, list[LedgerEntry]] = defaultdict(list)
    for e in sorted(entries, key=lambda e: (e.t_real, e.seq)):
        k = key_of(e)
        if k is not None:
            out[k].append(e)
    return dict(out)


def sends(requests: Sequence[LedgerEntry]) -> list[LedgerEntry]:
    """The requests the application could have seen (not refused by the gateway or auth)."""
    return [e for e in requests if e.outcome not in REFUSED]


def blind_resends(items: dict[Key, list[LedgerEntry]]) -> int:
    """Requests of an unsafe action sent to a device after one that reached the application."""
    n = 0
    for (_, action), reqs in items.items():
        if action not in UNSAFE:
            continue
        first = next((i for i, e in enumerate(reqs) if e.outcome in REACHED), None)
        if first is not None:
            n += len(reqs) - first - 1
    return n


def unsafe_second_sends(items: dict[Key, list[LedgerEntry]]) -> int:
    """Stricter: any second request of an unsafe action the gateway let through."""
    return sum(
        max(len(sends(reqs)) - 1, 0) for (_, action), reqs in items.items() if action in UNSAFE
    )


def cli_env(token: str, *, state_dir: Path | None = None) -> dict[str, str]:
    """The environment of a ``bulkops`` subprocess: the token there (never in argv)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    env["IRU_API_TOKEN"] = token
    if state_dir is not None:
        env["BULKOPS_STATE_DIR"] = str(state_dir)
    return env


def devices(sim: Simulator, *platforms: str) -> list[dict[str, Any]]:
    """Fleet records in ``device_id`` order, of the given platforms (all when none given)."""
    recs = sorted(sim.fleet.devices.values(), key=lambda d: d["device_id"])
    return [d for d in recs if not platforms or d["platform"] in platforms]


COLUMNS = ("device_id", "serial_number", "action", "message", "asset_tag", "device_name", "pin")


def write_csv(path: Path, rows: Sequence[dict[str, str]]) -> Path:
    """A CSV manifest with the columns the mixed manifests use."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in COLUMNS})
    return path


def mixed_rows(sim: Simulator, *, per_kind: int) -> list[dict[str, str]]:
    """One row per device: safe nudges, PATCH by serial, DELETE, and the unsafe actions.

    Each device appears once, so a second request for a ``(device, action)`` is a resend.
    """
    macs = iter(devices(sim, "Mac"))
    mobile = iter(devices(sim, "iPhone", "iPad"))
    rows: list[dict[str, str]] = []

    def take(pool: Any, action: str, **params: str) -> None:
        for _ in range(per_kind):
            d = next(pool)
            rows.append({"device_id": d["device_id"], "action": action, **params})

    take(macs, "blankpush")
    take(mobile, "updateinventory")
    take(macs, "dailycheckin")
    take(mobile, "renewmdmprofile")
    take(macs, "setname", device_name="Fault run")
    for i in range(per_kind):  # update by serial: a lookup, then the PATCH
        d = next(macs)
        rows.append(
            {"serial_number": d["serial_number"], "action": "update", "asset_tag": f"F-{i:04d}"}
        )
    take(mobile, "delete")
    take(macs, "lock", message="Call IT")
    take(mobile, "restart")
    take(macs, "shutdown")
    take(macs, "erase", pin="123456")
    return rows


def one_action(device_ids: Iterable[str], action: str, **params: str) -> list[dict[str, str]]:
    """Rows giving every device the same action."""
    return [{"device_id": d, "action": action, **params} for d in device_ids]


def fast_config(
    tenant: Tenant, tmp: Path, *, concurrency: int = 8, timeout_s: float = 30.0, **overrides: Any
) -> JobConfig:
    """A job config where the budget is not the subject: no pacing worth the name."""
    base: dict[str, Any] = {
        "connection": Connection(base_url=tenant.url, token=tenant.token, timeout_s=timeout_s),
        "rate": Rate(100_000, 1.0),
        "per_second": 5_000,
        "options": RunOptions(concurrency=concurrency),
    }
    base.update(overrides)
    return tenant.config(tmp, **base)


def read_results(result: JobResult) -> list[dict[str, str]]:
    """The rows of results.csv."""
    with result.reports.results_csv.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def read_secrets(result: JobResult) -> list[dict[str, str]]:
    """The rows of secrets.csv (none when the run produced no secret)."""
    path = result.reports.secrets_csv
    if path is None:
        return []
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


@dataclass
class Runs:
    """A job driven to its end, through any number of resumable stops."""

    results: list[JobResult] = field(default_factory=list)

    @property
    def last(self) -> JobResult:
        return self.results[-1]

    @property
    def stops(self) -> list[str]:
        return [r.stopped for r in self.results if r.stopped]


async def drive_to_end(
    config: JobConfig, manifest: Path, *, max_passes: int = 5, on_engine: Any = None
) -> Runs:
    """Drive a manifest; resume after each resumable stop (as a user would) up to ``max_passes``."""
    runs = Runs()
    store = Store(config.db_path)
    try:
        run, _ = start_run(store, manifest, tenant=config.tenant)
        for _ in range(max_passes):
            result = await drive(store, run, config, on_engine=on_engine)
            runs.results.append(result)
            if result.stopped is None:
                break
            info = store.run(run.run_id)
            assert info is not None
            run = info
    finally:
        store.close()
    return runs


def capture_engines(into: list[Engine]) -> Any:
    """An ``on_engine`` hook that keeps each engine (for its counters)."""
    return into.append


def max_in_fixed_windows(times: Iterable[float], seconds: float) -> Counter[int]:
    """Requests per fixed window of ``seconds`` aligned to the epoch."""
    return Counter(math.floor(t / seconds) for t in times)


def figures(title: str, **numbers: object) -> str:
    """Print one line of figures (``pytest -s`` shows them) and return it."""
    line = f"[figures] {title}: " + " · ".join(f"{k}={v}" for k, v in numbers.items())
    print(line)
    return line
