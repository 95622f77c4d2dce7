"""What every command shares: options, error-to-exit-code mapping, the event loop, output."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar, cast

import typer

from bulkops.errors import BulkopsError, CheckpointError, ConfigError, ManifestError, RunAborted

T = TypeVar("T")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_ABORTED = 3
EXIT_INTERRUPTED = 130

if TYPE_CHECKING:
    from rich.console import Console


class _LazyConsole:
    """A rich ``Console`` made on first use: importing rich costs ~40 ms of start-up, and a
    ``--quiet`` run prints nothing before its first request."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def real(self) -> Console:
        """The console itself, made now if not yet."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real(), name)


def real_console(console: Console) -> Console:
    """The rich ``Console`` behind ``out`` or ``err``, for rich objects that take one: they use
    it as a context manager, which a stand-in forwarding attributes cannot be."""
    return console.real() if isinstance(console, _LazyConsole) else console


# No markup: what we print holds the user's own text (paths, values, names), and "[x]" in it
# must show as typed. The few styled lines opt in and escape what they quote.
out = cast("Console", _LazyConsole(highlight=False, soft_wrap=True, markup=False))
err = cast("Console", _LazyConsole(stderr=True, highlight=False, soft_wrap=True, markup=False))

# ---- options shared by several commands --------------------------------------------------

Db = Annotated[Path, typer.Option("--db", help="Checkpoint database (created 0600).")]
BaseUrl = Annotated[
    str | None,
    typer.Option(
        "--base-url", help="Tenant API root, e.g. https://acme.api.kandji.io [$BULKOPS_BASE_URL]."
    ),
]
Subdomain = Annotated[
    str | None, typer.Option("--subdomain", help="Tenant subdomain (acme for acme.api.kandji.io).")
]
Region = Annotated[str, typer.Option("--region", help="us, eu or iru (the host family).")]
TokenFile = Annotated[
    Path | None,
    typer.Option(
        "--token-file",
        help="File holding the API token (mode 0600); default: $IRU_API_TOKEN, then the keychain.",
    ),
]
TokenTrap = Annotated[str | None, typer.Option("--token", hidden=True)]
RateText = Annotated[
    str | None,
    typer.Option(
        "--rate",
        help="Budget for this job: N/h, N/m or N/s (tenant cap: 10000/h) [profile's, or 9000/h].",
    ),
]
Tenant = Annotated[
    str | None,
    typer.Option(
        "--tenant",
        help="Tenant profile from ~/.config/bulkops/config.toml [$BULKOPS_CONFIG].",
    ),
]
Debug = Annotated[
    bool,
    typer.Option("--debug", help="Log each request line (never headers or bodies), 0600."),
]
DebugLog = Annotated[
    Path | None,
    typer.Option("--debug-log", help="Where --debug writes; - for stderr [bulkops-debug.log]."),
]
PerSecond = Annotated[
    int, typer.Option("--per-second", help="Per-second ceiling (the gateway allows 50).")
]
BudgetDb = Annotated[
    Path | None, typer.Option("--budget-db", help="Send history shared by runs on this machine.")
]
Concurrency = Annotated[int, typer.Option("--concurrency", help="Requests in flight at most.")]


def refuse_token_flag(value: str | None) -> None:
    """A token on the command line shows in ps and shell history: refuse it."""
    if value is not None:
        raise ConfigError(
            "--token is not accepted: a token on the command line shows in ps and shell "
            "history; set IRU_API_TOKEN, use --token-file PATH, or `bulkops auth set`"
        )


def require_db(db: Path, run_id: str | None = None) -> None:
    """Refuse a ``--db`` that does not exist, rather than create an empty one to read."""
    if not db.exists():
        hint = _look_elsewhere(db, run_id) or " (pass --db PATH)"
        raise ConfigError(f"{db}: no such database{hint}")


def no_such_run(db: Path, run_id: str, runs: list[str]) -> ConfigError:
    """The error for a run id that names no single run of ``runs`` (the ids in ``db``)."""
    matches = [r for r in runs if r.startswith(run_id)]
    if len(matches) > 1:
        shown = ", ".join(matches[:5]) + (", …" if len(matches) > 5 else "")
        return ConfigError(
            f"{run_id!r} matches {len(matches)} runs in {db} ({shown}); give more of the id"
        )
    known = f" (runs: {', '.join(runs[:5])})" if runs else " (it holds no runs)"
    hint = _look_elsewhere(db, run_id)
    return ConfigError(f"no run {run_id!r} in {db}" + (hint or known))


def _look_elsewhere(db: Path, run_id: str | None) -> str:
    """``; run … is in OTHER: pass --db OTHER``, from the index of runs; else nothing."""
    from bulkops.job import default_runs_index
    from bulkops.store import databases_of_run

    if run_id:
        here = db.resolve()
        others = [d for d in databases_of_run(default_runs_index(), run_id) if d != here]
        if len(others) == 1:
            return f"; run {run_id} is in {others[0]}: pass --db {others[0]}"
        if others:
            return f"; runs {run_id}… are in {', '.join(map(str, others))}: pass --db with one"
    return ""


def print_error(message: str) -> None:
    """``error: …`` on stderr, in one line, the token masked and the text shown as written."""
    from rich.markup import escape

    from bulkops.redact import redact

    err.print(f"[bold red]error:[/] {escape(redact(message))}", markup=True, highlight=False)


def fail(message: str, code: int) -> NoReturn:
    """Print one line to stderr and exit with ``code``."""
    print_error(message)
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


def count_of(n: int, noun: str) -> str:
    """``1 device``, ``3 devices``."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


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
