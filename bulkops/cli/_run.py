"""``bulkops run``, ``plan`` and ``resume``: parse, confirm, drive (shown by ``_render``)."""

from __future__ import annotations

import asyncio
import ipaddress
import signal
from contextlib import ExitStack
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import typer

from bulkops.cli._common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    count_of,
    err,
    exit_code_for,
    fail,
    is_interactive,
    out,
    run_async,
)
from bulkops.cli._render import (
    Renderer,
    print_not_done,
    print_plan,
    print_plan_json,
    print_result,
)
from bulkops.cli._signals import StopSignals
from bulkops.errors import BulkopsError, ConfigError, ManifestError, RunAborted

if TYPE_CHECKING:
    from bulkops.engine import RunOptions
    from bulkops.job import JobConfig, JobResult
    from bulkops.planner import Plan
    from bulkops.store import RunInfo, Store


def job_config(
    *,
    db: Path,
    out_dir: Path | None,
    base_url: str | None,
    subdomain: str | None,
    region: str,
    token_file: Path | None,
    rate: str | None,
    per_second: int,
    budget_db: Path | None,
    concurrency: int,
    resend_unknown: bool = False,
    tenant: str | None = None,
) -> JobConfig:
    """Options → a frozen ``JobConfig`` (profile read, token loaded and redacted, URL checked)."""
    from bulkops.budget import DEFAULT_RATE, Rate
    from bulkops.client import Connection
    from bulkops.credentials import foreign_host_warning, load_token, resolve_tenant, tenant_of
    from bulkops.engine import RunOptions
    from bulkops.job import JobConfig
    from bulkops.profiles import TENANT_CAP_PER_HOUR
    from bulkops.redact import remember

    url, profile = resolve_tenant(
        tenant=tenant, base_url=base_url, subdomain=subdomain, region=region
    )
    if warning := foreign_host_warning(url):
        err.print(f"warning: {warning}")
    token = load_token(token_file, account=tenant_of(url))
    remember(token)  # scrubbed from every log line and error message from now on
    try:
        parsed = Rate.parse(rate) if rate else (profile and profile.rate) or DEFAULT_RATE
    except ValueError as exc:
        raise ConfigError(f"--rate {rate!r}: {exc}") from None
    if concurrency < 1 or concurrency > 256:
        raise ConfigError(f"--concurrency {concurrency}: use a number from 1 to 256")
    if per_second < 1 or per_second > 50:
        raise ConfigError(
            f"--per-second {per_second}: use a number from 1 to 50 (the gateway's limit)"
        )
    if parsed.per_hour > TENANT_CAP_PER_HOUR and not is_loopback_url(
        url
    ):  # a simulator's caps vary
        err.print(
            f"warning: --rate {parsed} is above the tenant's cap of {TENANT_CAP_PER_HOUR}/h; "
            "expect 429 pauses, and nothing left for the tenant's other integrations"
        )
    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir} is a file; give a folder for the reports")
    check_db_path(db)
    return JobConfig(
        connection=Connection(base_url=url, token=token),
        tenant=tenant_of(url),
        db_path=db,
        out_dir=out_dir,
        rate=parsed,
        per_second=per_second,
        budget_db=budget_db,
        options=RunOptions(concurrency=concurrency, resend_unknown=resend_unknown),
    )


def check_db_path(db: Path) -> None:
    """Refuse a ``--db`` that is a folder or a manifest: SQLite would take over the file."""
    from bulkops.manifest._manifest import MANIFEST_SUFFIXES

    if db.is_dir():
        raise ConfigError(
            f"--db {db} is a folder; give the database file's path, e.g. {db / 'bulkops.db'}"
        )
    if db.suffix.lower() in MANIFEST_SUFFIXES:
        raise ConfigError(
            f"--db {db} looks like a manifest, not a checkpoint database; give the manifest "
            "first and the database with --db (default bulkops.db)"
        )


OUTCOME_ORDER = ("succeeded", "failed", "skipped", "unknown")


def is_loopback_url(url: str) -> bool:
    """True for a URL on this machine: the simulator, whose caps are its own."""
    host = (urlsplit(url).hostname or "").strip("[]")
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class Approval:
    """What the user allowed on the command line."""

    yes: bool = False
    strict: bool = False
    max_destructive: int = 25
    canary: int | None = None
    quiet: bool = False
    preview: bool = False  # `plan`: show, refuse what --strict refuses, confirm nothing
    as_json: bool = False  # the plan as JSON (`plan --json`)

    def __post_init__(self) -> None:
        if self.max_destructive < 0:
            raise ConfigError(
                f"--max-destructive {self.max_destructive}: use 0 or more "
                "(0 refuses every destructive action)"
            )
        if self.canary is not None and self.canary < 0:
            raise ConfigError(f"--canary {self.canary}: use 0 (none) or a number of items")


def approve(plan: Plan, *, options: RunOptions, approval: Approval) -> RunOptions:
    """Show the plan, refuse what is not allowed, ask for destructive work; options to run with."""
    if approval.as_json:
        print_plan_json(plan)
    elif not approval.quiet:
        print_plan(plan)
    if approval.strict and plan.unsendable:
        what = ", ".join(f"{n} {k}" for k, n in plan.unsendable.items())
        raise ConfigError(
            f"--strict: {what} row(s) cannot be sent as written; see {plan.plan_csv} "
            "(nothing was sent)"
        )
    total = sum(plan.destructive.values())
    if approval.preview:
        return options
    if total > approval.max_destructive:
        raise ConfigError(
            f"this run would send {total} destructive actions "
            f"({', '.join(f'{a} {n}' for a, n in plan.destructive.items())}) in tenant "
            f"{plan.run.tenant}, above the limit of {approval.max_destructive}; pass "
            f"--max-destructive {total} if that is what you mean (nothing was sent)"
        )
    if total:
        what = ", ".join(f"{a} to {count_of(n, 'device')}" for a, n in plan.destructive.items())
        line = f"This run will send {what} in tenant {plan.run.tenant}."
        if approval.yes:
            err.print(line + " (confirmed by --yes)")
        elif not is_interactive():
            raise ConfigError(
                f"this run would send {what} in tenant {plan.run.tenant}: pass --yes to confirm "
                "(nobody is at the terminal to ask; nothing was sent)"
            )
        else:
            name = plan.run.tenant.split(".", 1)[0]
            # The event loop is blocked in the prompt and cannot see its own signal handlers:
            # let Ctrl-C, kill (SIGTERM) and a closed window (SIGHUP) interrupt the prompt the
            # ordinary way while it waits (a SIGHUP that nohup ignores stays ignored).
            stops = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
            previous = {sig: signal.getsignal(sig) for sig in stops}
            for sig in stops:
                if previous[sig] is not signal.SIG_IGN:
                    signal.signal(sig, signal.default_int_handler)
            # Nor does the loop hear of it afterwards: one outcome, "not confirmed", exit 2.
            wakeup = signal.set_wakeup_fd(-1)
            try:
                answer = typer.prompt(
                    f"{line} Type {name!r} to go on", default="", show_default=False
                )
            except (KeyboardInterrupt, EOFError, typer.Abort):
                raise ConfigError("not confirmed (interrupted); nothing was sent") from None
            finally:
                signal.set_wakeup_fd(wakeup)
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
            if answer.strip() not in (name, plan.run.tenant):
                raise ConfigError("not confirmed; nothing was sent")
    canary = approval.canary
    if canary is None and plan.blueprint_moves:
        canary = min(5, plan.blueprint_moves)
        err.print(
            f"{plan.blueprint_moves} devices change blueprint: library items may be removed and "
            f"reinstalled. A canary of {canary} goes first (--canary 0 to skip)."
        )
    return replace(options, canary=canary or 0)


async def drive_with_signals(
    store: Store,
    run: RunInfo,
    config: JobConfig,
    *,
    quiet: bool,
    resumed: bool = False,
    dry_run: bool = False,
    approval: Approval | None = None,
    command: str = "run",
) -> JobResult:
    """Drive the run; the first stop signal finishes in-flight requests, a second Ctrl-C stops
    at once (see ``_signals``)."""
    from bulkops.audit import RunAudit, audit_path
    from bulkops.job import drive

    stops = StopSignals(asyncio.get_running_loop(), grace_s=config.options.grace_s)
    audit = None
    if approval is not None and not dry_run:  # who ran what: beside the db, append-only
        audit = RunAudit(audit_path(config.db_path), command=command, run=run)

    approved: list[bool] = []

    def on_plan(plan: Plan) -> RunOptions:
        assert approval is not None
        options = approve(plan, options=config.options, approval=approval)
        approved.append(True)
        if audit is not None:
            how = "--yes" if approval.yes else "typed"
            audit.started(plan, options=options, confirmed_by=how)
        return options

    try:
        with stops, Renderer(quiet=quiet) as render:
            try:
                result = await drive(
                    store,
                    run,
                    config,
                    resumed=resumed,
                    dry_run=dry_run,
                    on_plan=None if approval is None else on_plan,
                    on_progress=render,
                    on_engine=stops.attach,
                )
            except asyncio.CancelledError:
                if not stops.cut_short:
                    raise
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()
                if not (approved or resumed or dry_run):  # as if never started: keep nothing
                    store.delete_run(run.run_id)
                raise RunAborted(
                    "stopped while the rows were resolved (reads only); nothing was sent. Run "
                    "the same command again to go on",
                    exit_code=EXIT_INTERRUPTED,
                ) from None
    except BaseException as exc:
        if audit is not None:
            code = EXIT_INTERRUPTED if isinstance(exc, KeyboardInterrupt) else 1
            if isinstance(exc, BulkopsError):
                code = exit_code_for(exc)
            audit.ended(None, exit_code=code, error=str(exc) or type(exc).__name__)
        raise
    if audit is not None:
        audit.ended(result, exit_code=result.exit_code)
    return result


def run_command(
    *,
    manifest: Path,
    config: JobConfig,
    default_action: str | None,
    approval: Approval,
    as_json: bool,
    new_run: bool,
    dry_run: bool,
) -> int:
    """``bulkops run`` / ``plan``: validate, resolve, plan, approve, drive, report."""
    from bulkops._replaced import copy_for_plan
    from bulkops.job import start_run
    from bulkops.store import Store, scratch_store

    if manifest.is_dir():
        fail(
            f"{manifest} is a folder; give the path to a CSV, JSON or JSON Lines manifest",
            EXIT_INVALID,
        )
    if not manifest.is_file():
        fail(
            f"{manifest}: no such file (give the path to a CSV, JSON or JSON Lines manifest)",
            EXIT_INVALID,
        )
    created = not config.db_path.exists()
    with ExitStack() as stack:
        # A plan of a new run keeps nothing: it works in a throwaway store, and the real one
        # is only read (for a run of the same manifest to continue), or not even created.
        scratch = stack.enter_context(scratch_store(config.db_path)) if dry_run else None
        if scratch is not None and created:
            store = scratch
        else:
            if created:  # refused before its run was recorded: leave no empty database behind
                stack.push(partial(_discard_on_error, config.db_path))
            store = Store(config.db_path)
            stack.callback(store.close)  # closed before the discard above looks at the file
        run, resumed = start_run(
            store,
            manifest,
            tenant=config.tenant,
            default_action=default_action,
            new_run=new_run,
            record_in=scratch if store is not scratch else None,
            index=config.runs_index(),
        )
        if scratch is not None and not resumed:
            if store is not scratch:  # the rows a run it would replace sent are skipped
                copy_for_plan(store, scratch, run)
            store, config = scratch, replace(config, db_path=scratch.path)
        if resumed and run.status == "done" and dry_run and not as_json:  # a plan: nothing to do
            counts = store.counts(run.run_id)
            parts = " · ".join(f"{k} {counts.get(k, 0)}" for k in OUTCOME_ORDER)
            out.print(
                f"run {run.run_id} of this manifest already finished: {parts}; nothing to send "
                f"(see `bulkops report {run.run_id}`; --new-run plans running it again)"
            )
            return 0
        if resumed and run.status == "done" and not dry_run:
            from bulkops.job import finished_reports

            # a stop may have cut the reports short: written again
            reports, summary = finished_reports(store, run, config)
            code = EXIT_FAILED if summary.attention else 0
            if as_json:  # stdout stays one JSON document, as after a run
                import orjson

                data = summary.as_dict() | {"reports": str(reports.folder), "exit_code": code}
                data["already_finished"] = True  # nothing was sent: --new-run runs it again
                out.print(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode(), markup=False)
                return code
            parts = " · ".join(f"{k} {summary.outcomes.get(k, 0)}" for k in OUTCOME_ORDER)
            out.print(
                f"run {run.run_id} of this manifest already finished: {parts}; reports are in "
                f"{reports.folder}/ (pass --new-run to run it again)"
            )
            print_not_done(summary, reports)
            return code
        quiet = approval.quiet or as_json
        try:
            result = run_async(
                drive_with_signals(
                    store,
                    run,
                    config,
                    quiet=quiet,
                    resumed=resumed,
                    dry_run=dry_run,
                    approval=replace(
                        approval, quiet=quiet and not dry_run, as_json=as_json and dry_run
                    ),
                )
            )
        except (ConfigError, ManifestError):  # not confirmed; a name the tenant does not have
            if not resumed and not dry_run:
                store.delete_run(run.run_id)  # refused before any write: keep nothing
            raise
        if dry_run:
            return 0
        print_result(result, as_json=as_json)
        return result.exit_code


def _discard_on_error(db: Path, exc_type: type[BaseException] | None, *_: object) -> None:
    from bulkops.store import discard_if_unused

    if exc_type is not None:
        discard_if_unused(db)
