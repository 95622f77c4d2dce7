"""``bulkops status``, ``report``, ``actions``, ``sim`` and ``demo``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bulkops.cli import app
from bulkops.cli._common import (
    BaseUrl,
    BudgetDb,
    Db,
    RateText,
    Region,
    Subdomain,
    Tenant,
    TokenFile,
    TokenTrap,
    count_of,
    no_such_run,
    out,
    refuse_token_flag,
    require_db,
    run_async,
)
from bulkops.errors import ConfigError

if TYPE_CHECKING:
    from bulkops.actions import Param
    from bulkops.store import Store


@app.command()
def status(
    run_id: Annotated[
        str | None, typer.Argument(help="One run (a unique prefix); default: all.")
    ] = None,
    db: Db = Path("bulkops.db"),
) -> None:
    """Runs in a database and their progress."""
    from bulkops.store import Store

    require_db(db, run_id)
    store = Store(db)
    try:
        runs = store.runs() if run_id is None else [r for r in [store.run(run_id)] if r]
        if not runs:
            if run_id is None:
                raise ConfigError(f"{db} holds no runs")
            raise no_such_run(db, run_id, [r.run_id for r in store.runs()])
        sending = _in_use(db)
        for r in runs:
            counts = store.counts(r.run_id)
            done = sum(counts.get(k, 0) for k in ("succeeded", "failed", "skipped", "unknown"))
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created_at))
            parts = " · ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            # "running" with no process holding the database: it was killed; it resumes.
            shown = "interrupted" if r.status == "running" and not sending else r.status
            out.print(
                f"{r.run_id}  {shown:<11} {done}/{r.total}  {when}  {r.tenant}  {r.manifest_path}"
            )
            out.print(f"    {parts} · requests {r.requests} · 429s {r.rate_limited}")
            if shown in ("interrupted", "aborted") or (shown == "ready" and not sending):
                out.print(f"    to finish it: bulkops resume {r.run_id}")
            elif by := _replaced_by(store, r.run_id, r.status):
                out.print(f"    replaced by run {by} (--new-run): that run sends its rows")
    finally:
        store.close()


def _replaced_by(store: Store, run_id: str, status: str) -> str | None:
    """The run that replaced a superseded run."""
    from bulkops._replaced import SUPERSEDED, replacing_run

    return replacing_run(store, run_id) if status == SUPERSEDED else None


def _in_use(db: Path) -> bool:
    """Whether a bulkops process is sending from ``db`` now (it holds the database's lock)."""
    from bulkops.store._lock import RunLock

    return RunLock(db).in_use()


@app.command()
def report(
    run_id: Annotated[str, typer.Argument(help="Run id (a unique prefix is enough).")],
    db: Db = Path("bulkops.db"),
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Report folder [reports/RUN_ID].")
    ] = None,
) -> None:
    """Write a run's reports again (results.csv, results.jsonl, summary.json, failed.csv)."""
    from bulkops.cli._render import print_not_done
    from bulkops.report import write_reports
    from bulkops.store import Store

    require_db(db, run_id)
    store = Store(db)
    try:
        run = store.run(run_id)
        if run is None:
            raise no_such_run(db, run_id, [r.run_id for r in store.runs()])
        paths, summary = write_reports(store, run, out_dir or Path("reports") / run.run_id)
        parts = " · ".join(f"{k} {v}" for k, v in summary.outcomes.items())
        out.print(f"run {run.run_id}: {parts}")
        out.print(f"reports: {paths.folder}/")
        print_not_done(summary, paths, replaced_by=_replaced_by(store, run.run_id, run.status))
    finally:
        store.close()


@app.command()
def actions() -> None:
    """Every action: parameters, safety, platforms, and the token permission it needs."""
    from bulkops.actions import ACTIONS

    head = ("action", "parameters", "repeat-safe", "destructive", "platforms", "permission")
    rows = [head]
    for a in ACTIONS.values():
        rows.append(
            (
                a.name,
                ", ".join(p.name + _mark(p) for p in a.params) or "-",
                "yes" if a.safe_to_repeat else "no",
                "yes" if a.destructive else "",
                ", ".join(sorted(a.platforms)) if len(a.platforms) < 4 else "all",
                a.permission,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head) - 1)]
    for r in rows:  # plain aligned text: whole lines in a pipe, greppable
        out.print(
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1],
            markup=False,
        )
    out.print(
        "* required; (Mac*) required for Macs. Repeat-safe actions are resent after an unknown "
        "outcome; others are reconciled."
    )


def _mark(param: Param) -> str:
    if param.required:
        return "*"
    return f" ({', '.join(sorted(param.required_on))}*)" if param.required_on else ""


def _register_sim() -> None:
    from bulkops.sim.cli import sim_command

    app.command("sim", help="Run the Kandji API simulator on loopback.")(sim_command)


_register_sim()


@app.command()
def demo(
    devices: Annotated[
        int, typer.Option("--devices", help="Devices in the simulated tenant.")
    ] = 200,
    folder: Annotated[
        Path, typer.Option("--dir", help="Where the demo keeps its database and reports.")
    ] = Path("bulkops-demo"),
) -> None:
    """Run real jobs on the embedded simulator: update inventory everywhere, lock lost Macs."""
    from bulkops.cli._demo import run_demo

    raise typer.Exit(run_demo(devices=devices, folder=folder))


@app.command()
def select(
    action: Annotated[str, typer.Option("--action", help="Action every selected device gets.")],
    out_path: Annotated[Path, typer.Option("--out", help="Manifest to write (CSV).")],
    blueprint: Annotated[str | None, typer.Option("--blueprint", help="Blueprint name.")] = None,
    platform: Annotated[
        str | None, typer.Option("--platform", help="Mac, iPhone, iPad or AppleTV.")
    ] = None,
    tag: Annotated[str | None, typer.Option("--tag", help="Tag name.")] = None,
    where: Annotated[
        list[str] | None, typer.Option("--where", help="field=value, exact (repeatable).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace --out if it exists.")] = False,
    tenant: Tenant = None,
    base_url: BaseUrl = None,
    subdomain: Subdomain = None,
    region: Region = "us",
    token_file: TokenFile = None,
    rate: RateText = None,
    budget_db: BudgetDb = None,
    token: TokenTrap = None,
) -> None:
    """Write a manifest of the tenant's devices that match, for review before `bulkops run`."""
    from bulkops.cli._run import job_config
    from bulkops.select import Selection, to_fill

    refuse_token_flag(token)
    if platform is not None:
        named = _PLATFORMS.get(platform.replace(" ", "").casefold())
        if named is None:
            raise ConfigError(f"--platform {platform!r}: use Mac, iPhone, iPad or AppleTV")
        platform = named
    selection = Selection(blueprint, platform, tag, Selection.parse_where(where or []))
    if not (blueprint or platform or tag or where):
        raise ConfigError("select needs at least one of --blueprint, --platform, --tag, --where")
    if out_path.exists() and not force:
        raise ConfigError(f"{out_path} exists; pass --force to replace it, or choose another --out")
    config = job_config(
        db=Path("bulkops.db"),
        out_dir=None,
        tenant=tenant,
        base_url=base_url,
        subdomain=subdomain,
        region=region,
        token_file=token_file,
        rate=rate,
        per_second=45,
        budget_db=budget_db,
        concurrency=1,
    )
    count = run_async(_select(config, selection, action=action, out_path=out_path))
    if not count:
        raise ConfigError(f"no device in the tenant matches; nothing was written to {out_path}")
    fill = to_fill(action)
    todo = f"fill in {', '.join(fill)} (a blank cell leaves a field alone), " if fill else ""
    out.print(
        f"{count_of(count, 'device')} written to {out_path}; {todo}review it, then: "
        f"bulkops run {out_path}"
    )


_PLATFORMS = {p.casefold(): p for p in ("Mac", "iPhone", "iPad", "AppleTV")}


async def _select(config: Any, selection: Any, *, action: str, out_path: Path) -> int:
    from bulkops.budget import Budget, BudgetConfig, SendHistory
    from bulkops.client import KandjiClient
    from bulkops.errors import ApiError
    from bulkops.job import tenant_error
    from bulkops.select import write_selection

    with SendHistory(config.budget_path(), tenant=config.tenant) as history:
        budget = Budget(
            BudgetConfig(rate=config.rate, per_second=config.per_second, tenant=config.tenant),
            history=history,
        )
        async with KandjiClient(config.connection, budget=budget) as client:
            try:
                return await write_selection(client, selection, action=action, out=out_path)
            except ApiError as exc:
                url = config.connection.base_url
                raise tenant_error(exc, url, answered=client.answered) from None
