"""The ``bulkops`` command: a thin typer shell over the library.

Each command parses its options, builds a frozen config, calls one library function, and turns
our errors into one line on stderr and a documented exit code:

  0  every item succeeded or was skipped      2  invalid input or options; nothing was sent
  1  some items failed or are unknown         3  stopped: token refused, storage failure,
  130 interrupted; run the same command          canary or failure-rate stop (resumable)
      again to resume
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bulkops.cli import _resume, _run
from bulkops.cli._common import (
    EXIT_INVALID,
    BaseUrl,
    BudgetDb,
    Concurrency,
    Db,
    Debug,
    DebugLog,
    PerSecond,
    RateText,
    Region,
    Subdomain,
    Tenant,
    TokenFile,
    TokenTrap,
    err,
    exit_code_for,
    print_error,
    refuse_token_flag,
)
from bulkops.errors import BulkopsError, ConfigError

if TYPE_CHECKING:
    from bulkops.job import JobConfig

__all__ = ["app", "main"]

app = typer.Typer(
    name="bulkops",
    help="Crash-safe bulk operations for the Kandji / Iru Endpoint Management API.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _global_options(
    ctx: typer.Context,
    profile: Annotated[
        Path | None,
        typer.Option(
            "--profile",
            metavar="FILE",
            help="Write where the command's time goes (cProfile) to FILE and print the top.",
        ),
    ] = None,
) -> None:
    """Crash-safe bulk operations for the Kandji / Iru Endpoint Management API."""
    if profile is not None:
        from bulkops.cli._profile import start

        ctx.call_on_close(start(profile))


Manifest = Annotated[Path, typer.Argument(help="CSV, JSON or JSON Lines manifest.")]
ActionOpt = Annotated[str | None, typer.Option("--action", help="Action for rows without one.")]
Out = Annotated[Path | None, typer.Option("--out", help="Report folder [reports/RUN_ID].")]
Yes = Annotated[bool, typer.Option("--yes", help="Confirm destructive actions without asking.")]
Json = Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No plan or progress display.")]
Strict = Annotated[
    bool,
    typer.Option(
        "--strict", help="Refuse the run if any row is not found, ambiguous or ineligible."
    ),
]
Verify = Annotated[bool, typer.Option("--verify", help="Read each record back after an update.")]
MaxDestructive = Annotated[
    int,
    typer.Option(
        "--max-destructive", help="Refuse more destructive actions than this, even with --yes."
    ),
]
Canary = Annotated[
    int | None,
    typer.Option(
        "--canary", help="Send K items first; go on only if all succeed [5 for blueprint moves]."
    ),
]
MaxFailureRate = Annotated[
    float | None, typer.Option("--max-failure-rate", help="Stop when more than P% of items fail.")
]
Window = Annotated[
    str | None, typer.Option("--window", help="Send only between HH:MM-HH:MM local time.")
]


def _options(
    config: JobConfig,
    *,
    verify: bool,
    canary: int | None,
    rate: float | None,
    window: str | None,
) -> JobConfig:
    from dataclasses import replace

    from bulkops.schedule import TimeWindow

    if rate is not None and not 0 <= rate <= 100:
        raise ConfigError(f"--max-failure-rate {rate:g}: give a percentage from 0 to 100")
    if canary is not None and canary < 0:
        raise ConfigError(f"--canary {canary}: give a number of items, 0 for none")
    try:
        parsed = TimeWindow.parse(window) if window else None
    except ValueError as exc:
        raise ConfigError(f"--window {exc}") from None
    opts = replace(config.options, verify=verify, max_failure_rate=rate, window=parsed)
    return replace(config, options=opts)


def _debug(debug: bool, target: Path | None, db: Path) -> None:
    if debug or target is not None:
        from bulkops.cli._log import enable_debug

        err.print(f"debug log: {enable_debug(target, db=db)} (request lines; no token, no body)")


@app.command()
def run(
    manifest: Manifest,
    action: ActionOpt = None,
    db: Db = Path("bulkops.db"),
    out_dir: Out = None,
    tenant: Tenant = None,
    base_url: BaseUrl = None,
    subdomain: Subdomain = None,
    region: Region = "us",
    token_file: TokenFile = None,
    rate: RateText = None,
    per_second: PerSecond = 45,
    budget_db: BudgetDb = None,
    concurrency: Concurrency = 8,
    yes: Yes = False,
    strict: Strict = False,
    verify: Verify = False,
    max_destructive: MaxDestructive = 25,
    canary: Canary = None,
    max_failure_rate: MaxFailureRate = None,
    window: Window = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Resolve and plan; write nothing.")
    ] = False,
    new_run: Annotated[
        bool, typer.Option("--new-run", help="Start over even if this manifest ran.")
    ] = False,
    json_out: Json = False,
    quiet: Quiet = False,
    debug: Debug = False,
    debug_log: DebugLog = None,
    token: TokenTrap = None,
) -> None:
    """Run a manifest; the same command again resumes it after any stop."""
    refuse_token_flag(token)
    _debug(debug, debug_log, db)
    config = _run.job_config(
        db=db,
        out_dir=out_dir,
        tenant=tenant,
        base_url=base_url,
        subdomain=subdomain,
        region=region,
        token_file=token_file,
        rate=rate,
        per_second=per_second,
        budget_db=budget_db,
        concurrency=concurrency,
    )
    config = _options(config, verify=verify, canary=canary, rate=max_failure_rate, window=window)
    approval = _run.Approval(
        yes=yes,
        strict=strict,
        max_destructive=max_destructive,
        canary=canary,
        quiet=quiet,
        preview=dry_run,
    )
    raise typer.Exit(
        _run.run_command(
            manifest=manifest,
            config=config,
            default_action=action,
            approval=approval,
            as_json=json_out,
            new_run=new_run,
            dry_run=dry_run,
        )
    )


@app.command()
def plan(
    manifest: Manifest,
    action: ActionOpt = None,
    db: Db = Path("bulkops.db"),
    out_dir: Out = None,
    tenant: Tenant = None,
    base_url: BaseUrl = None,
    subdomain: Subdomain = None,
    region: Region = "us",
    token_file: TokenFile = None,
    rate: RateText = None,
    per_second: PerSecond = 45,
    budget_db: BudgetDb = None,
    strict: Strict = False,
    verify: Verify = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    token: TokenTrap = None,
) -> None:
    """Resolve a manifest against the tenant and show what a run would do; writes nothing."""
    refuse_token_flag(token)
    config = _run.job_config(
        db=db,
        out_dir=out_dir,
        tenant=tenant,
        base_url=base_url,
        subdomain=subdomain,
        region=region,
        token_file=token_file,
        rate=rate,
        per_second=per_second,
        budget_db=budget_db,
        concurrency=1,
    )
    config = _options(config, verify=verify, canary=None, rate=None, window=None)
    approval = _run.Approval(strict=strict, preview=True)
    raise typer.Exit(
        _run.run_command(
            manifest=manifest,
            config=config,
            default_action=action,
            approval=approval,
            as_json=json_out,
            new_run=False,
            dry_run=True,
        )
    )


@app.command()
def resume(
    run_id: Annotated[str, typer.Argument(help="Run id (a unique prefix); see `bulkops status`.")],
    db: Db = Path("bulkops.db"),
    out_dir: Out = None,
    tenant: Tenant = None,
    base_url: BaseUrl = None,
    subdomain: Subdomain = None,
    region: Region = "us",
    token_file: TokenFile = None,
    rate: RateText = None,
    per_second: PerSecond = 45,
    budget_db: BudgetDb = None,
    concurrency: Concurrency = 8,
    resend_unknown: Annotated[
        bool, typer.Option("--resend-unknown", help="Send items whose outcome is unknown again.")
    ] = False,
    yes: Yes = False,
    verify: Verify = False,
    max_destructive: MaxDestructive = 25,
    canary: Canary = None,
    max_failure_rate: MaxFailureRate = None,
    window: Window = None,
    json_out: Json = False,
    quiet: Quiet = False,
    debug: Debug = False,
    debug_log: DebugLog = None,
    token: TokenTrap = None,
) -> None:
    """Continue a stopped run (against its own tenant unless told otherwise)."""
    refuse_token_flag(token)
    _debug(debug, debug_log, db)
    if not (tenant or base_url or subdomain or os.environ.get("BULKOPS_BASE_URL")):
        tenant, url = _resume.tenant_of_run(db, run_id)
        base_url = None if tenant else url
    config = _run.job_config(
        db=db,
        out_dir=out_dir,
        tenant=tenant,
        base_url=base_url,
        subdomain=subdomain,
        region=region,
        token_file=token_file,
        rate=rate,
        per_second=per_second,
        budget_db=budget_db,
        concurrency=concurrency,
        resend_unknown=resend_unknown,
    )
    config = _options(config, verify=verify, canary=canary, rate=max_failure_rate, window=window)
    approval = _run.Approval(yes=yes, max_destructive=max_destructive, canary=canary, quiet=quiet)
    raise typer.Exit(
        _resume.resume_command(run_id=run_id, config=config, approval=approval, as_json=json_out)
    )


from bulkops.cli import (  # noqa: E402  (each registers its commands on app)
    _auth,  # auth, audit, permissions
    _show,  # status, report, actions, select, sim, demo
)

__all__ += ["_auth", "_show"]


def main() -> None:
    """Console entry point: our errors become one line and an exit code, never a traceback."""
    from bulkops.cli._log import install

    os.umask(0o077)  # the database, its -wal/-shm, reports and logs are the user's alone
    install()  # warnings on stderr, the token and Authorization values scrubbed
    try:
        app()  # standalone: exits with the command's code; usage errors exit 2
    except BulkopsError as exc:
        for line in str(exc).splitlines():  # several bad rows: one line each
            print_error(line)
        sys.exit(exit_code_for(exc))
    except OSError as exc:  # a path we were given cannot be written or read (--out, --debug-log…)
        where = f"{exc.filename}: " if exc.filename else ""
        print_error(
            f"{where}{exc.strerror or exc}; check the path and that you can write there, "
            "then run the same command again"
        )
        sys.exit(EXIT_INVALID)
    except KeyboardInterrupt:  # Ctrl-C before a run took over the signal (start-up, reading)
        err.print("interrupted; nothing more was sent")
        sys.exit(130)
