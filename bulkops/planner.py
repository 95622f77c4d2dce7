"""The resolution pass and the plan: every row decided before the first write.

``resolve_run`` walks the run's unplanned pending items once, asks the ``Resolver`` for each, and
records either the exact request to send or a skip with its reason.  It sends only reads.  What
it learns becomes the ``Plan``: rows per action, rows that cost nothing, rows that cannot be sent,
the requests still needed, the token permissions, and a per-row ``plan.csv`` to review.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from bulkops.actions import ACTIONS, ParamKind
from bulkops.client import KandjiClient
from bulkops.inventory import Inventory
from bulkops.permissions import after_send
from bulkops.resolve import Decision, Resolver, needs_lookup
from bulkops.store import RunInfo, Store
from bulkops.store._checks import conflict_reason

__all__ = ["Plan", "resolve_run"]

_BATCH = 500
_NAMED = (ParamKind.BLUEPRINT_NAME, ParamKind.USER_REF)
PLAN_COLUMNS = ("line", "device_id", "serial_number", "action", "decision", "reason", "changes")


@dataclass(slots=True)
class Plan:
    """What a run will do, decided before it does it."""

    run: RunInfo
    resumed: bool
    strategy: str = ""
    actions: Counter[str] = field(default_factory=Counter)
    sends: Counter[str] = field(default_factory=Counter)
    skips: Counter[str] = field(default_factory=Counter)
    fields: Counter[tuple[str, str]] = field(default_factory=Counter)
    reads: int = 0
    verify: int = 0
    done_before: int = 0
    permissions: set[str] = field(default_factory=set)
    window_left: int = 0
    eta_s: float = 0.0
    plan_csv: Path | None = None

    @property
    def unsendable(self) -> dict[str, int]:
        """Rows that cannot be sent as written: not found, ambiguous, ineligible."""
        return {k: n for k, n in self.skips.items() if k != "already in target state"}

    @property
    def writes(self) -> int:
        """Requests that change something, still to send."""
        return sum(self.sends.values())

    @property
    def destructive(self) -> dict[str, int]:
        """Destructive sends per action."""
        return {a: n for a, n in sorted(self.sends.items()) if ACTIONS[a].destructive and n}

    @property
    def blueprint_moves(self) -> int:
        """Updates that move a device to another blueprint."""
        return sum(
            n for (f, kind), n in self.fields.items() if f == "blueprint_id" and kind == "new"
        )


def _preview_kind(text: str) -> str:
    return text.split(":", 1)[0].split(" ", 1)[0]


async def resolve_run(
    store: Store,
    run: RunInfo,
    client: KandjiClient,
    *,
    resumed: bool,
    verify: bool = False,
    plan_csv: Path | None = None,
) -> Plan:
    """Decide every unplanned pending item; reads only. Returns the plan of what is left."""
    plan = Plan(run=run, resumed=resumed)
    run_id = run.run_id
    shape = await store.call(store.open_shape, run_id)
    serial_rows = sum(n for _, by_serial, _, n in shape if by_serial)
    both = sum(n for _, _, id_and_serial, n in shape if id_and_serial)
    maybe = sum(
        n
        for a, by_serial, _, n in shape
        if not by_serial and needs_lookup(ACTIONS[a], by_serial=False)
    )
    inventory = Inventory(client)
    plan.strategy = await inventory.prepare(serials=serial_rows, device_ids=maybe)
    resolver = Resolver(inventory, use_inventory=inventory.swept)
    named = {a for a, _, _, _ in shape if any(p.kind in _NAMED for p in ACTIONS[a].params)}
    if inventory.swept:
        named |= {a for a, _, _, _ in shape if needs_lookup(ACTIONS[a], by_serial=False)}
    after = 0
    decided = 0
    while serial_rows or named or both:
        batch = await store.call(
            store.fetch, run_id, states=("pending",), after_line=after, limit=_BATCH, unplanned=True
        )
        if not batch:
            break
        for item in batch:
            after = item.line
            if item.device_id is not None and item.action not in named and not item.serial_number:
                continue  # its request is built from the catalogue when it is sent
            decision = await resolver.decide(
                action=ACTIONS[item.action],
                device_id=item.device_id,
                serial=item.serial_number,
                params=item.params,
            )
            _record(store, run_id, item.line, decision)
            decided += 1
    await store.flush()
    if serial_rows:  # a serial may name a device another row names by id
        for line, reason in await store.call(_same_device_rows, store, run_id):
            store.complete(run_id, line, state="skipped", error=reason)
        await store.flush()
    await store.call(_tally, store, plan, verify)
    if plan_csv is not None:
        await store.call(_refresh_plan_csv, store, run_id, plan_csv, keep=resumed and not decided)
    plan.reads = inventory.requests
    plan.permissions |= inventory.permissions | set(after_send(plan.sends, verify=verify))
    plan.plan_csv = plan_csv
    plan.window_left = client.budget.window_left()
    plan.eta_s = client.budget.eta_s(plan.writes + plan.verify)
    return plan


def _record(store: Store, run_id: str, line: int, decision: Decision) -> None:
    preview = orjson.dumps(decision.preview).decode() if decision.preview else None
    if decision.request is None:
        store.complete(
            run_id,
            line,
            state="skipped",
            error=decision.reason,
            device_id=decision.device_id,
            preview=preview,
        )
    else:
        store.plan_request(
            run_id, line, decision.request, device_id=decision.device_id, preview=preview
        )


def _same_device_rows(store: Store, run_id: str) -> list[tuple[int, str]]:
    """Rows that, once serials are resolved, repeat or contradict an earlier row's device."""
    conn = store._conn
    out: list[tuple[int, str]] = []
    groups = conn.execute(
        "SELECT device_id, group_concat(action || ' ' || line || ' ' || state, ',') FROM items"
        " WHERE run_id = ? AND state != 'skipped' AND device_id IS NOT NULL"
        " GROUP BY device_id HAVING count(*) > 1",
        (run_id,),
    )
    for device_id, packed in groups:
        rows = sorted(
            (int(line), action, state)
            for action, line, state in (p.split(" ") for p in packed.split(","))
        )
        for i, (line, action, state) in enumerate(rows):
            if state != "pending":
                continue  # only what is still to send can be held back
            for first, earlier, _ in rows[:i]:
                if earlier == action:
                    why = f"duplicate: line {first} already has {action} for device {device_id}"
                else:
                    clash = conflict_reason(earlier, action)
                    if clash is None:
                        continue
                    why = f"conflict: line {first} has {earlier} for device {device_id}; {clash}"
                out.append((line, why))
                break
    return out


def _tally(store: Store, plan: Plan, verify: bool) -> None:
    """Count the plan from the store: one pass of SQL, whatever the run's size."""
    conn = store._conn
    run_id = plan.run.run_id
    previews = 0
    for action, state, error, route, n, with_preview in conn.execute(
        "SELECT action, state,"
        " CASE WHEN state = 'skipped' THEN substr(error, 1, instr(error || ':', ':') - 1) END,"
        " req_route, count(*), count(preview) FROM items WHERE run_id = ? GROUP BY 1, 2, 3, 4",
        (run_id,),
    ):
        previews += with_preview
        plan.actions[action] += n
        if state in ("pending", "sending"):
            plan.sends[action] += n
            method = ACTIONS[action].method
            plan.permissions.add(f"{method} {route or ACTIONS[action].route}")
            if verify and method == "PATCH":
                plan.verify += n
        elif state == "skipped":
            plan.skips[error or "skipped"] += n
        else:
            plan.done_before += n
    if not previews:
        return  # no update in the run: no second scan of a million rows
    for (preview,) in conn.execute(
        "SELECT preview FROM items WHERE run_id = ? AND preview IS NOT NULL", (run_id,)
    ):
        for f, text in orjson.loads(preview).items():
            plan.fields[(f, _preview_kind(text))] += 1


def _refresh_plan_csv(store: Store, run_id: str, path: Path, *, keep: bool) -> None:
    """Write plan.csv, unless a resume that decided nothing new finds the one it wrote intact.

    Rewriting a million rows would cost seconds before the first request (results.csv has the
    outcomes). The file is kept only if it is exactly the one this run wrote (path, size and
    modification time noted in the database): not another run's sharing ``--out``, not one
    replaced by hand.
    """
    key = f"plan_csv:{run_id}"
    stamp = _stamp(path)
    if keep and stamp is not None and store.meta(key) == stamp:
        return
    write_plan_csv(store, run_id, path)
    store.set_meta(key, _stamp(path) or "")


def _stamp(path: Path) -> str | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def write_plan_csv(store: Store, run_id: str, path: Path) -> None:
    """Every row and what the run will do with it, in manifest order, for review (0600).

    A million rows must not cost seconds before the first request: SQLite builds each cell (the
    decision, spreadsheet-safe text), and a row that needs no CSV quoting, the usual case, is
    joined with commas; the csv module writes only the others.
    """
    from bulkops.report import neutralise, neutralised_sql

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    part = path.with_name(path.name + ".part")  # renamed over plan.csv once whole
    cursor = store._conn.execute(
        "SELECT line, coalesce(device_id, ''), "  # noqa: S608 (constants only)
        + neutralised_sql("serial_number")
        + ", action, CASE WHEN state IN ('pending', 'sending') THEN 'send'"
        " WHEN state = 'skipped' THEN 'skip' ELSE 'done: ' || state END,"
        " CASE WHEN state = 'skipped' THEN "
        + neutralised_sql("error")
        + " ELSE '' END, preview FROM items WHERE run_id = ? ORDER BY line",
        (run_id,),
    )
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)  # its line ends are \r\n, as below
        writer.writerow(PLAN_COLUMNS)
        plain: list[str] = []

        def flush() -> None:
            if plain:
                fh.write("\r\n".join(plain) + "\r\n")
                plain.clear()

        for line, device_id, serial, action, decision, reason, preview in cursor:
            changes = ""
            if preview:  # what an update changes: "field: before → after; …"
                changes = neutralise(
                    "; ".join(f"{k}: {v}" for k, v in orjson.loads(preview).items())
                )
            text = f"{line},{device_id},{serial},{action},{decision},{reason},{changes}"
            if text.count(",") == 6 and '"' not in text and "\n" not in text and "\r" not in text:
                plain.append(text)
                if len(plain) == 10_000:
                    flush()
            else:  # a comma, quote or line break inside a cell: csv quotes it
                flush()
                writer.writerow((line, device_id, serial, action, decision, reason, changes))
        flush()
    os.replace(part, path)
