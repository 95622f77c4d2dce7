"""What every command shares: options, error-to-exit-code mapping, the event loop, output."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console

from bulkops.errors import BulkopsError, CheckpointError, ConfigError, ManifestError, RunAborted

T = TypeVar("T")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_ABORTED = 3
EXIT_INTERRUPTED = 130

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

# ---- options shared by several commands --------------------------------------------------

DbOpt = typer.Option(Path("bulkops.db"), "--db", help="Checkpoint database (created 0600).")
BaseUrlOpt = typer.Option(
    None,
    "--base-url",
    help="Tenant API root, e.g. https://acme.api.kandji.io (or $BULKOPS_BASE_URL).",
)
SubdomainOpt = typer.Option(
    None, "--subdomain", help="Tenant subdomain (acme for acme.api.kandji.io)."
)
RegionOpt = typer.Option("us", "--region", help="us, eu or iru (the host family).")
TokenFileOpt = typer.Option(
    None, "--token-file", help="File holding the API token (mode 0600). Default: $IRU_API_TOKEN."
)
TokenTrap = typer.Option(None, "--token", hidden=True)
RateOpt = typer.Option(
    "9000/h", "--rate", help="Budget for this job: N/h, N/m or N/s (the tenant's cap is 10000/h)."
)
PerSecondOpt = typer.Option(45, "--per-second", help="Per-second ceiling (the gateway allows 50).")
BudgetDbOpt = typer.Option(
    None, "--budget-db", help="Send-history ledger shared by runs on this machine."
)


def refuse_token_flag(value: str | None) -> None:
    """A token on the command line shows in ps and shell history: refuse it."""
    if value is not None:
        raise ConfigError(
            "--token is not accepted: a token on the command line shows in ps and shell "
            "history; set IRU_API_TOKEN or use --token-file PATH"
        )


def fail(message: str, code: int) -> NoReturn:
    """Print one line to stderr and exit with ``code``."""
    err.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    raise typer.Exit(code)


def exit_code_for(exc: BulkopsError) -> int:
    """The documented exit code for one of our errors."""
    if isinstance(exc, RunAborted):
        return exc.exit_code
    if isinstance(exc, ManifestError | ConfigError):
        return EXIT_INVALID
    if isinstance(exc, CheckpointError):
        return EXIT_ABORTED
    return EXIT_ABORTED


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run the library coroutine under uvloop where it is installed."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows
        return asyncio.run(coro)
    return uvloop.run(coro)


def human_s(seconds: float | None) -> str:
    """``1h 02m``, ``3m 05s``, ``12s``."""
    if seconds is None:
        return "–"
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s}s"


def is_interactive() -> bool:
    """True when a person can answer a question."""
    return sys.stdin.isatty() and sys.stderr.isatty()
