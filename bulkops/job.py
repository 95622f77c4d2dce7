"""A job from start to reports: the library calls behind ``bulkops run``, ``resume``, ``plan``.

``start_run`` validates and records the manifest (nothing is sent when it is invalid), or finds
the run of the same manifest content to continue; ``drive`` sends under the budget and writes the
reports.  The CLI only parses options, confirms destructive work, and renders progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path

from bulkops._pins import reread_pins
from bulkops._replaced import SUPERSEDED, replacing_run, runs_of_file, supersede
from bulkops.budget import Budget, BudgetConfig, Rate, SendHistory
from bulkops.client import READ_ATTEMPTS, Connection, KandjiClient
from bulkops.engine import EXIT_ABORTED, EXIT_FAILED, Engine, Progress, RunOptions
from bulkops.errors import (
    ApiError,
    AuthError,
    ConfigError,
    PermissionDenied,
    RunAborted,
    ServerError,
    TransportError,
)
from bulkops.manifest import open_manifest
from bulkops.planner import Plan, resolve_run
from bulkops.report import ReportPaths, check_folder, write_reports
from bulkops.store import OUTCOMES, RunInfo, Store, note_run, runs_elsewhere
from bulkops.store._lock import RunLock
from bulkops.summary import Summary

__all__ = [
    "JobConfig",
    "JobResult",
    "default_runs_index",
    "default_state_dir",
    "drive",
    "finished_reports",
    "start_run",
    "tenant_error",
]


log = logging.getLogger("bulkops")


def default_state_dir() -> Path:
    """Where the machine-wide budget ledger lives (``$BULKOPS_STATE_DIR`` overrides)."""
    env = os.environ.get("BULKOPS_STATE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "bulkops"


def default_runs_index() -> Path:
    """Where every run's database is noted (:mod:`bulkops.store._index`)."""
    return default_state_dir() / "runs.jsonl"


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

    def runs_index(self) -> Path:
        """Where every run's database is noted: the user's, whatever ``--budget-db`` says."""
        return default_runs_index()


@dataclass(frozen=True, slots=True)
class JobResult:
    """How a run ended; a dry run has only its plan."""

    plan: Plan
    exit_code: int
    summary: Summary | None = None
    reports: ReportPaths | None = None
    stopped: str | None = None


def tenant_error(exc: ApiError, base_url: str, *, answered: bool) -> RunAborted:
    """Why resolution could not read the tenant, in one line with what to check; ``answered``:
    an HTTP response has come back before (so the URL is right)."""
    if isinstance(exc, AuthError):
        why = (
            f"the API token was refused ({exc.detail}); check which token is in use with "
            "`bulkops auth status`, set a valid one and run the same command again"
        )
    elif isinstance(exc, PermissionDenied):
        from bulkops.permissions import permission_for

        why = (
            f"the API token lacks the permission {permission_for(exc.method, exc.path)}; enable "
            "it in Access > API tokens (`bulkops permissions MANIFEST` lists every one the job "
            "needs)"
        )
    elif isinstance(exc, TransportError) and not answered:  # nothing ever came back
        why = (
            f"cannot reach the tenant at {base_url}: {exc}; check --base-url "
            "(http or https, host, port) and the network"
        )
    elif isinstance(exc, TransportError | ServerError):  # it answered before: a passing fault
        why = (
            f"reading the tenant at {base_url} failed {READ_ATTEMPTS} times in a row ({exc}), "
            "although the host answers: likely a passing fault; run the same command again"
        )
    else:
        why = f"could not read the tenant at {base_url}: {exc}"
    return RunAborted(why + " (nothing was sent)", exit_code=EXIT_ABORTED)


async def _check_token(client: KandjiClient) -> int:
    """Read one device so a plan that needed no lookups still proves the host and token.

    Raises ``ApiError`` as a lookup would; a token without the device-list permission passes
    (the tenant knew it). Returns the requests made.
    """
    with contextlib.suppress(PermissionDenied):
        await client.read("/api/v1/devices", params={"limit": 1})
    return 1


def start_run(
    store: Store,
    manifest_path: Path,
    *,
    tenant: str,
    default_action: str | None = None,
    new_run: bool = False,
    record_in: Store | None = None,
    index: Path | None = None,
) -> tuple[RunInfo, bool]:
    """The run to work on: the unfinished run of this manifest content, or a new one.

    Returns ``(run, resumed)``.  A new run is validated whole before it is recorded, in
    ``record_in`` when given (a plan's scratch store) and else in ``store``. With ``index``
    (``JobConfig.runs_index()``) a new run is noted there, and refused while a run of the same
    content for the tenant is recorded in another database (a plan only warns).
    """
    manifest = open_manifest(manifest_path, default_action=default_action)
    digest = manifest.sha256()
    if not new_run:
        found = store.find_run(manifest_sha256=digest, tenant=tenant)
        if found is not None and found.status == SUPERSEDED:
            by = replacing_run(store, found.run_id) or "a later run"
            raise ConfigError(
                f"run {found.run_id} of this content of {manifest_path} was replaced by run "
                f"{by} (a --new-run of an edited version); pass --new-run to send this version "
                "again"
            )
        if found is not None:
            return found, True
        if record_in is None:  # a plan only shows; a run must not resend what the other sent
            _refuse_a_changed_manifest(store, manifest_path, tenant)
        if index is not None:
            plan = record_in is not None or store.scratch
            _refuse_a_run_elsewhere(index, store.path, digest, tenant, warn=plan)
    run = (record_in or store).create_run(
        manifest,
        manifest_path=str(manifest_path),
        manifest_sha256=digest,
        manifest_format=manifest.format,
        tenant=tenant,
        options={"default_action": default_action} if default_action else {},
    )
    if index is not None and record_in is None and not store.scratch:  # a plan keeps nothing
        note_run(index, store.path, run)
    return run, False


def _refuse_a_run_elsewhere(index: Path, db: Path, digest: str, tenant: str, *, warn: bool) -> None:
    """This content already has a run for this tenant in another database (the default --db
    is in the current folder): a new run here would send its rows again."""
    for other in runs_elsewhere(index, db, sha256=digest, tenant=tenant):
        if other.status == SUPERSEDED:
            continue
        if other.status == "done":
            text = (
                f"this manifest already ran to the end on {tenant} as run {other.run_id} in "
                f"{other.db}; see it with `bulkops report {other.run_id} --db {other.db}`, or "
                "pass --new-run to run it again with this database"
            )
        else:
            text = (
                f"run {other.run_id} of this manifest is unfinished in {other.db} "
                f"({other.status}, {other.done}/{other.total} done); continue it with "
                f"--db {other.db} (--new-run would start over here and send its "
                f"{other.done} finished rows again)"
            )
        if warn:
            log.warning("%s", text)
            return
        raise ConfigError(text)


def _refuse_a_changed_manifest(store: Store, manifest_path: Path, tenant: str) -> None:
    """An unfinished run started from this file, whose content has changed since: its items
    may be half sent, and a new run of the edited file would send them all again."""
    for earlier in runs_of_file(store, manifest_path, tenant):
        if earlier.status not in ("done", SUPERSEDED):
            counts = store.counts(earlier.run_id)
            done = sum(counts.get(state, 0) for state in OUTCOMES)
            raise ConfigError(
                f"{manifest_path} changed since run {earlier.run_id} started from it "
                f"({earlier.status}, {done}/{earlier.total} done); finish that run with "
                f"`bulkops resume {earlier.run_id}` (it keeps its own copy of the rows), or pass "
                "--new-run to send every row of the file as it is now"
            )


def finished_reports(store: Store, run: RunInfo, config: JobConfig) -> tuple[ReportPaths, Summary]:
    """Write a finished run's reports again from the database.

    A run is marked done just before its reports are written: a stop in between (kill -9, a full
    disk) leaves them missing or cut short while the database still holds every outcome, and the
    PINs until ``secrets.csv`` has them.  Running the same command again must repair that.
    """
    folder = config.out_dir or Path("reports") / run.run_id
    reports, summary = write_reports(store, run, folder)
    if reports.secrets_csv is not None:
        store.forget_secrets(run.run_id)
    return reports, summary


async def drive(
    store: Store,
    run: RunInfo,
    config: JobConfig,
    *,
    resumed: bool = False,
    dry_run: bool = False,
    on_plan: Callable[[Plan], RunOptions | None] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    on_engine: Callable[[Engine], None] | None = None,
) -> JobResult:
    """Resolve every row (reads only), let ``on_plan`` approve, then send and write reports.

    ``on_plan`` sees the plan before the first write; it may raise to refuse (nothing is sent) or
    return adjusted run options (a canary for blueprint moves).  A resumable stop is in
    ``JobResult.stopped``.  One process at a time may drive the runs of a database.
    """
    lock = RunLock(config.db_path)
    lock.acquire()  # two senders on one run would send its items twice
    try:
        return await _drive(
            store,
            run,
            config,
            resumed=resumed,
            dry_run=dry_run,
            on_plan=on_plan,
            on_progress=on_progress,
            on_engine=on_engine,
        )
    finally:
        lock.release()


async def _drive(
    store: Store,
    run: RunInfo,
    config: JobConfig,
    *,
    resumed: bool = False,
    dry_run: bool = False,
    on_plan: Callable[[Plan], RunOptions | None] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    on_engine: Callable[[Engine], None] | None = None,
) -> JobResult:
    """``drive`` with the database's lock held."""
    if run.tenant != config.tenant:
        raise ConfigError(
            f"run {run.run_id} was made for {run.tenant}, not {config.tenant}; "
            "resume it against the same tenant"
        )
    if run.status == SUPERSEDED:
        by = replacing_run(store, run.run_id) or "a later run"
        raise ConfigError(
            f"run {run.run_id} was replaced by run {by} (a --new-run of "
            f"{run.manifest_path}), which sends its rows; resuming it too could send them "
            f"twice, so it is not resumed (nothing was sent). See `bulkops status {by}`"
        )
    folder = config.out_dir or Path("reports") / run.run_id
    check_folder(folder, run.run_id)  # before anything is sent, not only once it is
    history = SendHistory(config.budget_path(), tenant=config.tenant)
    budget = Budget(
        BudgetConfig(rate=config.rate, per_second=config.per_second, tenant=config.tenant),
        history=history,
    )
    aborted: RunAborted | None = None
    options = config.options
    await store.start()
    try:
        async with KandjiClient(config.connection, budget=budget) as client:
            try:
                plan = await resolve_run(
                    store,
                    run,
                    client,
                    resumed=resumed,
                    verify=options.verify,
                    resend_unknown=options.resend_unknown,
                    plan_csv=folder / "plan.csv",
                    runs_index=config.runs_index(),
                )
                if dry_run and not plan.reads:  # it has not met the tenant yet: one read
                    plan.reads += await _check_token(client)
                    # its answer said what the tenant has left this hour (other integrations)
                    plan.window_left = client.budget.window_left()
                    plan.eta_s = client.budget.eta_s(plan.writes + plan.verify)
                if options.window is not None and plan.writes:  # sent only while it is open
                    plan.eta_s = options.window.finish_s(datetime.now(), plan.eta_s)
            except ApiError as exc:
                url = config.connection.base_url
                raise tenant_error(exc, url, answered=client.answered) from None
            if on_plan is not None:
                options = on_plan(plan) or options
            if dry_run:
                return JobResult(plan=plan, exit_code=0)
            if run.started_at is None:  # approved: the runs a --new-run replaces end here
                supersede(store, run)
            elif resumed:  # PINs an earlier pass could not read back: once more
                await reread_pins(store, run, client)
            engine = Engine(
                store=store,
                client=client,
                run=run,
                options=options,
                on_progress=on_progress,
                counts=plan.states,
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
    reports, summary = await asyncio.to_thread(
        partial(write_reports, store, final, folder, stopped=aborted)
    )
    if reports.secrets_csv is not None and final.status == "done":
        store.forget_secrets(run.run_id)  # secrets.csv (0600) now holds them; the db need not
    if aborted is not None:
        return JobResult(plan, aborted.exit_code, summary, reports, stopped=str(aborted))
    return JobResult(plan, EXIT_FAILED if summary.attention else 0, summary, reports)
