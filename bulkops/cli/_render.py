"""What ``run``, ``plan`` and ``resume`` show: the plan before a run, its progress, its summary.

The plan and the summary go to stdout (the summary as JSON with ``--json``); the live progress
goes to stderr, only when it is a terminal and not ``--quiet``.  Nothing here decides anything:
the commands in ``_run`` (and ``demo``) pass in what the library returned.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import orjson

from bulkops.actions import ACTIONS
from bulkops.cli._common import count_of, err, human_s, out, real_console

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID

    from bulkops.engine import Progress
    from bulkops.job import JobResult
    from bulkops.planner import Plan
    from bulkops.report import ReportPaths
    from bulkops.summary import Summary


def print_plan(plan: Plan) -> None:
    """The plan as a person reads it: what is sent, what is skipped and why, what it costs."""
    run = plan.run
    verb = "continues" if plan.resumed else "has"
    rows = count_of(run.total, "row")
    out.print(f"run {run.run_id} {verb} {rows} from {run.manifest_path} on {run.tenant}")
    out.print(f"  resolution: {plan.strategy}")
    for action, n in sorted(plan.actions.items()):
        flag = "  destructive" if ACTIONS[action].destructive else ""
        unit = "row " if n == 1 else "rows"
        out.print(f"  {action:<18} {n:>8} {unit}  {plan.sends[action]:>8} to send{flag}")
    if plan.done_before:
        done = " · ".join(
            f"{k} {n}" for k in ("succeeded", "failed", "unknown") if (n := plan.done_before[k])
        )
        out.print(f"  ended in an earlier pass, not sent again: {done}")
        if plan.done_before["unknown"]:
            out.print(
                f"  {count_of(plan.done_before['unknown'], 'outcome')} unknown: "
                f"`bulkops resume {run.run_id} --resend-unknown` sends them again"
            )
    if plan.skips:
        out.print(
            "  skipped, 0 requests: " + " · ".join(f"{k} {n}" for k, n in plan.skips.most_common())
        )
    if plan.fields:
        by_field: dict[str, list[str]] = {}
        for (f, kind), n in sorted(plan.fields.items()):
            by_field.setdefault(f, []).append(f"{kind} {n}")
        out.print("  fields: " + "; ".join(f"{f}: {', '.join(v)}" for f, v in by_field.items()))
    extra = f" + {plan.verify} read-backs" if plan.verify else ""
    out.print(
        f"requests: {plan.reads} reads done · {plan.writes} writes{extra} to send · "
        f"{plan.window_left} left in this window · ETA {human_s(plan.eta_s)}"
    )
    if plan.permissions:  # none when nothing is left to send or read
        out.print("token permissions needed: " + ", ".join(sorted(plan.permissions)))
    if plan.plan_csv is not None:
        out.print(f"plan, row by row: {plan.plan_csv}")


def print_plan_json(plan: Plan) -> None:
    """The plan as one JSON document (``plan --json``), for scripts."""
    run = plan.run
    by_field: dict[str, dict[str, int]] = {}
    for (f, kind), n in sorted(plan.fields.items()):
        by_field.setdefault(f, {})[kind] = n
    data = {
        "run_id": run.run_id,
        "resumed": plan.resumed,
        "manifest": run.manifest_path,
        "tenant": run.tenant,
        "rows": run.total,
        "resolution": plan.strategy,
        "actions": {
            a: {"rows": n, "to_send": plan.sends[a], "destructive": ACTIONS[a].destructive}
            for a, n in sorted(plan.actions.items())
        },
        "ended_earlier": dict(plan.done_before),
        "skipped": dict(plan.skips.most_common()),
        "fields": by_field,
        "requests": {"reads_done": plan.reads, "writes": plan.writes, "read_backs": plan.verify},
        "window_left": plan.window_left,
        "eta_s": round(plan.eta_s, 1),
        "permissions": sorted(plan.permissions),
        "plan_csv": str(plan.plan_csv) if plan.plan_csv else None,
    }
    out.print(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode(), markup=False)


def print_result(result: JobResult, *, as_json: bool) -> None:
    """The summary, then where the reports are."""
    s = result.summary
    assert s is not None and result.reports is not None
    if as_json:
        data = s.as_dict() | {"reports": str(result.reports.folder), "exit_code": result.exit_code}
        if result.stopped:
            data["stopped"] = result.stopped
        out.print(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode(), markup=False)
        return
    parts = " · ".join(f"{k} {v}" for k, v in s.outcomes.items())
    out.print(f"run {s.run_id} on {s.tenant}: {count_of(s.total, 'item')} — {parts}")
    dur = (s.finished_at or 0) - (s.started_at or 0) if s.started_at and s.finished_at else None
    out.print(f"requests {s.requests} ({s.rate_limited} × 429) in {human_s(dur)}")
    files = [
        p.name
        for p in (
            result.reports.results_csv,
            result.reports.summary_json,
            result.reports.failed_csv,
            result.reports.secrets_csv,
        )
        if p
    ]
    out.print(f"reports: {result.reports.folder}/ ({', '.join(files)})")
    if result.reports.secrets_csv:
        out.print(f"unlock PINs are in {result.reports.secrets_csv} (only you can read it)")
    print_not_done(s, result.reports)
    if result.stopped:
        err.print(f"stopped: {result.stopped}")


def print_not_done(s: Summary, reports: ReportPaths, *, replaced_by: str | None = None) -> None:
    """What is left to look at: PINs not read, rows not applied, unknown outcomes, rows not
    sent yet (by this run's resume, or by the run that replaced it)."""
    if n := s.secrets_not_read:
        out.print(
            f"{count_of(n, 'lock')} whose unlock PIN could not be read back (PIN not read in "
            f"{reports.results_csv}): `bulkops resume {s.run_id}` tries to read them again; a "
            "Mac's PIN is also in the Iru web console; iPhones and iPads have none"
        )
    if failed := s.outcomes.get("failed", 0):
        from bulkops.summary import PERMISSION_MISSING

        kinds = list(s.failed_by.items())
        why = " · ".join(f"{k} {n}" for k, n in kinds[:4]) + (" · …" if len(kinds) > 4 else "")
        where = f": see {reports.failed_csv}, to fix and run" if reports.failed_csv else ""
        out.print(f"{count_of(failed, 'row')} failed" + (f" ({why})" if why else "") + where)
        for kind, _ in kinds:
            if kind.startswith(PERMISSION_MISSING):
                out.print(f"{kind}: enable it in Access > API tokens, then run failed.csv")
    if s.not_applied:
        why = " · ".join(f"{k} {n}" for k, n in s.not_applied.items())
        n = sum(s.not_applied.values())
        where = f": see {reports.failed_csv}, to fix and run" if reports.failed_csv else ""
        out.print(f"{count_of(n, 'row')} not applied ({why}){where}")
    if unknown := s.outcomes.get("unknown", 0):
        out.print(
            f"{count_of(unknown, 'outcome')} unknown (sent, but whether the device got it could "
            f"not be confirmed): check the devices, or `bulkops resume {s.run_id} "
            "--resend-unknown` sends them again"
        )
    if (flying := s.outcomes.get("sending", 0)) and not replaced_by:
        out.print(
            f"{count_of(flying, 'request')} in flight when it stopped (it may have landed): "
            f"`bulkops resume {s.run_id}` settles them, checking on the device first an action "
            "that must not run twice"
        )
    if left := s.outcomes.get("pending", 0) + (s.outcomes.get("sending", 0) if replaced_by else 0):
        if replaced_by:
            out.print(
                f"{count_of(left, 'row')} not sent by this run: run {replaced_by}, which "
                "replaced it (--new-run), sends them"
            )
        else:
            out.print(
                f"{count_of(left, 'row')} not sent yet: `bulkops resume {s.run_id}` sends them "
                "(they are not in failed.csv)"
            )


LOG_EVERY_S = 60.0  # without a terminal (cron, a pipe, a log file): one progress line a minute


class Renderer:
    """Live progress on stderr: a rich line on a terminal, else a timestamped line a minute."""

    def __init__(self, *, quiet: bool, log_every_s: float = LOG_EVERY_S) -> None:
        self._bar: RichProgress | None = None
        self._task: TaskID | None = None
        self._log_every_s = None if quiet or err.is_terminal else log_every_s
        self._logged_at = time.monotonic()  # a run shorter than that logs no progress at all
        if quiet or not err.is_terminal:
            return  # no live line: rich.progress is not even imported
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            console=real_console(err),
            transient=True,
        )
        self._task = self._bar.add_task("sending", total=None, detail="")

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None and self._bar.live.is_started:
            self._bar.stop()

    def __call__(self, p: Progress) -> None:
        if self._log_every_s is not None:
            self._log(p)
        if self._bar is None or self._task is None:
            return
        if not self._bar.live.is_started:
            # Only once sending starts: a live line drawn earlier would redraw over the plan
            # and erase the question that confirms destructive work.
            self._bar.start()
        c = p.counts
        per_min = p.requests * 60 / max(time.time() - p.started_at, 1e-3)
        detail = (
            f"ok {c['succeeded']} · failed {c['failed']} · skipped {c['skipped']} · "
            f"unknown {c['unknown']} · requests {p.requests} ({per_min:.0f}/min) · "
            f"429s {p.rate_limited} · window left {p.window_left} · ETA {human_s(p.eta_s)} {p.note}"
        )
        if p.paused_s > 0 and not p.note:
            detail += f" · paused by a 429 for {human_s(p.paused_s)}"
        self._bar.update(self._task, total=p.total, completed=p.done, detail=detail)

    def _log(self, p: Progress) -> None:
        """One line for a log file, at most every ``log_every_s``, with the time in UTC."""
        now = time.monotonic()
        if self._log_every_s is None or now - self._logged_at < self._log_every_s:
            return
        self._logged_at = now
        c = p.counts
        line = (
            f"{time.strftime('%Y-%m-%d %H:%M:%SZ', time.gmtime())} {p.run_id}: {p.done}/{p.total}"
            f" done · ok {c['succeeded']} · failed {c['failed']} · skipped {c['skipped']} · "
            f"unknown {c['unknown']} · requests {p.requests} (429s {p.rate_limited}) · "
            f"window left {p.window_left} · ETA {human_s(p.eta_s)}"
        )
        if p.note:
            line += f" · {p.note}"
        elif p.paused_s > 0:
            line += f" · paused by a 429 for {human_s(p.paused_s)}"
        err.print(line, markup=False, highlight=False, soft_wrap=True)
