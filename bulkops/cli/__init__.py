"""The ``bulkops`` command: a thin typer shell over the library.

Each command parses its options, builds a frozen config, calls one library function, and turns
our errors into one line on stderr and a documented exit code:

  0  every item succeeded or was skipped      2  invalid input or options; nothing was sent
  1  some items failed or are unknown         3  aborted (token refused, storage failure…)
  130 interrupted; run the same command again to resume
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from bulkops.cli import _run
from bulkops.cli._common import (
    BaseUrlOpt,
    BudgetDbOpt,
    DbOpt,
    PerSecondOpt,
    RateOpt,
    RegionOpt,
    SubdomainOpt,
    TokenFileOpt,
    TokenTrap,
    err,
    exit_code_for,
    refuse_token_flag,
)
from bulkops.errors import BulkopsError

__all__ = ["app", "main"]

app = typer.Typer(
    name="bulkops",
    help="Crash-safe bulk operations for the Kandji / Iru Endpoint Management API.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

ConcurrencyOpt = typer.Option(8, "--concurrency", help="Requests in flight at most.")


@app.command()
def run(
    manifest: Path = typer.Argument(..., help="CSV, JSON or JSON Lines manifest."),
    action: str | None = typer.Option(None, "--action", help="Action for rows without one."),
    db: Path = DbOpt,
    out_dir: Path | None = typer.Option(None, "--out", help="Report folder [reports/RUN_ID]."),
    base_url: str | None = BaseUrlOpt,
    subdomain: str | None = SubdomainOpt,
    region: str = RegionOpt,
    token_file: Path | None = TokenFileOpt,
    rate: str = RateOpt,
    per_second: int = PerSecondOpt,
    budget_db: Path | None = BudgetDbOpt,
    concurrency: int = ConcurrencyOpt,
    yes: bool = typer.Option(False, "--yes", help="Confirm destructive actions without asking."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and plan; send nothing."),
    new_run: bool = typer.Option(False, "--new-run", help="Start over even if this manifest ran."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
    token: str | None = TokenTrap,
) -> None:
    """Run a manifest; the same command again resumes it after any stop."""
    refuse_token_flag(token)
    config = _run.job_config(
        db=db,
        out_dir=out_dir,
        base_url=base_url,
        subdomain=subdomain,
        region=region,
        token_file=token_file,
        rate=rate,
        per_second=per_second,
        budget_db=budget_db,
        concurrency=concurrency,
    )
    raise typer.Exit(
        _run.run_command(
            manifest=manifest,
            config=config,
            default_action=action,
            yes=yes,
            as_json=json_out,
            quiet=quiet,
            new_run=new_run,
            dry_run=dry_run,
        )
    )


@app.command()
def plan(
    manifest: Path = typer.Argument(..., help="CSV, JSON or JSON Lines manifest."),
    action: str | None = typer.Option(None, "--action", help="Action for rows without one."),
    db: Path = DbOpt,
    base_url: str | None = BaseUrlOpt,
    subdomain: str | None = SubdomainOpt,
    region: str = RegionOpt,
    token_file: Path | None = TokenFileOpt,
    rate: str = RateOpt,
    per_second: int = PerSecondOpt,
    token: str | None = TokenTrap,
) -> None:
    """Validate a manifest and show what it will send; sends nothing."""
    refuse_token_flag(token)
    config = _run.job_config(
        db=db,
        out_dir=None,
        base_url=base_url,
        subdomain=subdomain,
        region=region,
        token_file=token_file,
        rate=rate,
        per_second=per_second,
        budget_db=None,
        concurrency=1,
    )
    raise typer.Exit(
        _run.run_command(
            manifest=manifest,
            config=config,
            default_action=action,
            yes=False,
            as_json=False,
            quiet=False,
            new_run=False,
            dry_run=True,
        )
    )


@app.command()
def resume(
    run_id: str = typer.Argument(
        ..., help="Run id (a unique prefix is enough); see `bulkops status`."
    ),
    db: Path = DbOpt,
    out_dir: Path | None = typer.Option(None, "--out", help="Report folder [reports/RUN_ID]."),
    base_url: str | None = BaseUrlOpt,
    subdomain: str | None = SubdomainOpt,
    region: str = RegionOpt,
    token_file: Path | None = TokenFileOpt,
    rate: str = RateOpt,
    per_second: int = PerSecondOpt,
    budget_db: Path | None = BudgetDbOpt,
    concurrency: int = ConcurrencyOpt,
    resend_unknown: bool = typer.Option(
        False, "--resend-unknown", help="Send items whose outcome is unknown again (your choice)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
    token: str | None = TokenTrap,
) -> None:
    """Continue a stopped run."""
    refuse_token_flag(token)
    config = _run.job_config(
        db=db,
        out_dir=out_dir,
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
    raise typer.Exit(
        _run.resume_command(run_id=run_id, config=config, as_json=json_out, quiet=quiet)
    )


from bulkops.cli import _show  # noqa: E402  (registers status, report, actions, sim, demo)

__all__ += ["_show"]


def main() -> None:
    """Console entry point: our errors become one line and an exit code, never a traceback."""
    os.umask(0o077)  # the database, its -wal/-shm, reports and logs are the user's alone
    try:
        app()  # standalone: exits with the command's code; usage errors exit 2
    except BulkopsError as exc:
        err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
        sys.exit(exit_code_for(exc))
