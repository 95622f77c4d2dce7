"""A job from start to reports: the library calls behind ``bulkops run``, ``resume``, ``plan``.

``start_run`` validates and records the manifest (nothing is sent when it is invalid), or finds
the run of the same manifest content to continue; ``drive`` sends under the budget and writes the
reports.  The CLI only parses options, confirms destructive work, and renders progress.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bulkops.actions import ACTIONS
from bulkops.budget import Budget, BudgetConfig, Rate, SendHistory
from bulkops.client import Connection, KandjiClient
from bulkops.engine import EXIT_FAILED, Engine, Progress, RunOptions
from bulkops.errors import ConfigError, RunAborted
from bulkops.manifest import open_manifest
from bulkops.report import ReportPaths, Summary, write_reports
from bulkops.store import RunInfo, Store

__all__ = [
    "JobConfig",
    "JobResult",
    "Plan",
    "default_state_dir",
    "drive",
    "plan_run",
    "start_run",
]


def default_state_dir() -> Path:
    """Where the machine-wide budget ledger lives (``$BULKOPS_STATE_DIR`` overrides)."""
    env = os.environ.get("BULKOPS_STATE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "bulkops"


@dataclass(frozen=True, slots=True)
class JobConfig:
    """Everything a run needs besides the manifest."""

    connection: Connection
    tenant: str
    db_path: Path = Path("bulkops.db")
    out_dir: Path | None = None
    rate: Rate = field(default_factory=lambda: Rate(9000, 3600.0))
    per_second: int = 45
    budget_db: Path | None = None
    options: RunOptions = field(default_factory=RunOptions)

    def budget_path(self) -> Path:
        """The machine-wide send history this run shares with every other run."""
        return self.budget_db or default_state_dir() / "budget.db"


@dataclass(frozen=True, slots=True)
class Plan:
    """What a run will do, before it does it."""

    run: RunInfo
    actions: dict[str, int]
    destructive: dict[str, int]
    permissions: list[str]
    serial_rows: int
    requests_max: int
    resumed: bool


@dataclass(frozen=True, slots=True)
class JobResult:
    """How a run ended."""

    summary: Summary
    reports: ReportPaths
    exit_code: int
    stopped: str | None = None


def plan_run(store: Store, run: RunInfo, *, resumed: bool) -> Plan:
    """Count what the run will send: per action, destructive, permissions, the request ceiling."""
    actions = store.action_counts(run.run_id)
    counts = store.counts(run.run_id)
    open_items = counts.get("pending", 0) + counts.get("sending", 0)
    serial_rows = int(
        store._conn.execute(
            "SELECT count(*) FROM items WHERE run_id = ? AND device_id IS NULL "
            "AND state IN ('pending', 'sending')",
            (run.run_id,),
        ).fetchone()[0]
    )
    return Plan(
        run=run,
        actions=dict(sorted(actions.items())),
        destructive={a: n for a, n in sorted(actions.items()) if ACTIONS[a].destructive},
        permissions=sorted({ACTIONS[a].permission for a in actions}),
        serial_rows=serial_rows,
        requests_max=open_items + serial_rows,
        resumed=resumed,
    )


def start_run(
    store: Store,
    manifest_path: Path,
    *,
    tenant: str,
    default_action: str | None = None,
    new_run: bool = False,
) -> tuple[RunInfo, bool]:
    """The run to work on: the unfinished run of this manifest content, or a new one.

    Returns ``(run, resumed)``.  A new run is validated whole before it is recorded.
    """
    manifest = open_manifest(manifest_path, default_action=default_action)
    digest = manifest.sha256()
    if not new_run:
        found = store.find_run(manifest_sha256=digest, tenant=tenant)
        if found is not None:
            return found, True
    run = store.create_run(
        manifest,
        manifest_path=str(manifest_path),
        manifest_sha256=digest,
        manifest_format=manifest.format,
        tenant=tenant,
        options={"default_action": default_action} if default_action else {},
    )
    return run, False


async def drive(
    store: Store,
    run: RunInfo,
    config: JobConfig,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    on_engine: Callable[[Engine], None] | None = None,
) -> JobResult:
    """Send the run's open items and write its reports; a resumable stop is in ``stopped``."""
    if run.tenant != config.tenant:
        raise ConfigError(
            f"run {run.run_id} was made for {run.tenant}, not {config.tenant}; "
            "resume it against the same tenant"
        )
    history = SendHistory(config.budget_path(), tenant=config.tenant)
    budget = Budget(
        BudgetConfig(rate=config.rate, per_second=config.per_second, tenant=config.tenant),
        history=history,
    )
    aborted: RunAborted | None = None
    await store.start()
    try:
        async with KandjiClient(config.connection, budget=budget) as client:
            engine = Engine(
                store=store, client=client, run=run, options=config.options, on_progress=on_progress
            )
            if on_engine is not None:
                on_engine(engine)
            try:
                await engine.run()
            except RunAborted as exc:
                aborted = exc
    finally:
        await store.stop()
        budget.close()
        history.close()
    final = store.run(run.run_id)
    assert final is not None
    folder = config.out_dir or Path("reports") / run.run_id
    reports, summary = await asyncio.to_thread(write_reports, store, final, folder)
    if reports.secrets_csv is not None and final.status == "done":
        store.forget_secrets(run.run_id)  # secrets.csv (0600) now holds them; the db need not
    if aborted is not None:
        return JobResult(summary, reports, aborted.exit_code, stopped=str(aborted))
    bad = summary.outcomes.get("failed", 0) + summary.outcomes.get("unknown", 0)
    return JobResult(summary, reports, EXIT_FAILED if bad else 0)
