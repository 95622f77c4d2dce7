"""The resolution pass and the plan: every row decided before the first write.

``resolve_run`` walks the run's unplanned pending items once, asks the ``Resolver`` for each, and
records either the exact request to send or a skip with its reason.  It sends only reads.  What
it learns becomes the ``Plan``: rows per action, rows that cost nothing, rows that cannot be sent,
the requests still needed, the token permissions, and a per-row ``plan.csv`` to review.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from bulkops._plan_csv import refresh_plan_csv
from bulkops._replaced import check_unsettled, sent_by_replaced, sent_lately
from bulkops.actions import ACTIONS, Action, ParamKind
from bulkops.client import KandjiClient
from bulkops.errors import ManifestError
from bulkops.inventory import Inventory
from bulkops.permissions import after_send
from bulkops.resolve import Decision, Resolver, UnknownName, needs_lookup
from bulkops.store import RunInfo, Store
from bulkops.store._checks import conflict_reason
from bulkops.summary import DONE_SKIPS

__all__ = ["Plan", "resolve_run"]

log = logging.getLogger("bulkops")

_BATCH = 500
_NAMED = (ParamKind.BLUEPRINT_NAME, ParamKind.USER_REF)


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
    states: Counter[str] = field(default_factory=Counter)  # every row, by state
    reads: int = 0
    verify: int = 0
    done_before: Counter[str] = field(default_factory=Counter)  # final in an earlier pass
    permissions: set[str] = field(default_factory=set)
    window_left: int = 0
    eta_s: float = 0.0
    plan_csv: Path | None = None

    @property
    def unsendable(self) -> dict[str, int]:
        """Rows that cannot be sent as written: not found, ambiguous, ineligible, conflicts
        (not those already in their target state, nor copies another row sends)."""
        return {k: n for k, n in self.skips.items() if k not in DONE_SKIPS}

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
            n
            for (f, kind), n in self.fields.items()
            if f == "blueprint_id" and kind in ("new", "change")
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
    resend_unknown: bool = False,
    plan_csv: Path | None = None,
    runs_index: Path | None = None,
) -> Plan:
    """Decide every unplanned pending item; reads only. Returns the plan of what is left.

    With ``resend_unknown`` the items an earlier pass left ``unknown`` count as sends: the engine
    puts them back to pending only once the plan is approved.
    """
    plan = Plan(run=run, resumed=resumed)
    run_id = run.run_id
    if not resumed:
        for name, (count, lines) in await store.call(_names_given_twice, store, run_id):
            log.warning("device_name %r is given to %d devices (lines %s)", name, count, lines)
    groups = await store.call(_survey, store, run_id)
    shape = [g for g in groups if g.state == "pending" and g.route is None]  # still undecided
    serial_rows = sum(g.n for g in shape if g.by_serial)
    both = sum(g.n for g in shape if g.id_and_serial)
    maybe = sum(  # rows by id whose action reads the device, or whose serial must match
        g.n
        for g in shape
        if not g.by_serial and (g.id_and_serial or needs_lookup(ACTIONS[g.action], by_serial=False))
    )
    for name in {g.action for g in shape if not g.by_serial and not g.id_and_serial}:
        maybe += await store.call(_lacking, store, run_id, ACTIONS[name])
    inventory = Inventory(client)
    plan.strategy = await inventory.prepare(serials=serial_rows, device_ids=maybe)
    resolver = Resolver(inventory, use_inventory=inventory.swept)
    named = {
        g.action
        for g in shape
        if any(p.kind in _NAMED or p.required_on for p in ACTIONS[g.action].params)
    }
    if inventory.swept:
        named |= {g.action for g in shape if needs_lookup(ACTIONS[g.action], by_serial=False)}
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
            try:
                decision = await resolver.decide(
                    action=ACTIONS[item.action],
                    device_id=item.device_id,
                    serial=item.serial_number,
                    params=item.params,
                )
            except UnknownName as exc:  # every row naming it would be skipped: stop, send none
                raise ManifestError(
                    exc.message,
                    path=run.manifest_path,
                    line=item.line,
                    column=exc.column,
                    hint=exc.hint,
                ) from None
            _record(store, run_id, item.line, decision)
            decided += 1
    await store.flush()
    if serial_rows:  # a serial may name a device another row names by id
        for line, reason in await store.call(_same_device_rows, store, run_id):
            store.complete(run_id, line, state="skipped", error=reason)
        await store.flush()
    checks = 0
    if run.started_at is None:  # a new run: what earlier runs sent is not sent twice
        sent_before = client.budget.stats.sent
        for line, (why, secret) in await check_unsettled(store, run, client, index=runs_index):
            store.complete(run_id, line, state="skipped", error=why, secret=secret)
            decided += 1
        checks = client.budget.stats.sent - sent_before
        await store.flush()
        for line, why in await store.call(sent_by_replaced, store, run):  # --new-run
            store.complete(run_id, line, state="skipped", error=why)
            decided += 1
        await store.flush()
        for name, (earlier, count) in (
            await store.call(sent_lately, store, run, runs_index)
        ).items():  # a deliberate second erase is the admin's call: said, not refused
            log.warning(
                "%s succeeded on %s of these devices in the last 24 h (run %s): this run sends "
                "it to them again; stop here unless that is meant",
                name,
                count,
                ", ".join(earlier),
            )
    if decided:  # else the survey still holds (serial rows are always decided): no second pass
        groups = await store.call(_survey, store, run_id)
    await store.call(_tally, store, plan, groups, verify, resend_unknown)
    if plan_csv is not None:
        await store.call(refresh_plan_csv, store, run_id, plan_csv, keep=resumed and not decided)
    plan.reads = inventory.requests + checks
    plan.permissions |= inventory.permissions | set(after_send(plan.sends, verify=verify))
    plan.plan_csv = plan_csv
    plan.window_left = client.budget.window_left()
    plan.eta_s = client.budget.eta_s(plan.writes + plan.verify)
    return plan


def _names_given_twice(store: Store, run_id: str) -> list[tuple[str, tuple[int, str]]]:
    """New device names that the run gives to more than one device (a rename sheet's
    copy-paste slip); a warning, not an error: the API allows it."""
    rows = store._conn.execute(
        "SELECT json_extract(params, '$.device_name') AS name, count(*),"
        " group_concat(line, ', ') FROM items WHERE run_id = ? AND action = 'setname'"
        " AND state != 'skipped' GROUP BY name HAVING count(*) > 1 ORDER BY min(line) LIMIT 5",
        (run_id,),
    )
    return [(name, (n, lines)) for name, n, lines in rows]


def _lacking(store: Store, run_id: str, action: Action) -> int:
    """Pending rows of ``action`` by id alone that leave out a parameter some platforms need
    (an erase's PIN): their devices must be read to know."""
    names = [p.name for p in action.params if p.required_on]
    if not names or needs_lookup(action, by_serial=False):
        return 0
    lacks = " OR ".join(["json_extract(params, ?) IS NULL"] * len(names))
    (n,) = store._conn.execute(
        "SELECT count(*) FROM items WHERE run_id = ? AND action = ? AND state = 'pending'"  # noqa: S608 (placeholders only)
        f" AND serial_number IS NULL AND device_id IS NOT NULL AND ({lacks})",
        (run_id, action.name, *(f"$.{name}" for name in names)),
    ).fetchone()
    return int(n)


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
        "SELECT device_id,"
        " group_concat(action || ' ' || line || ' ' || state || ' ' || hex(params), ',')"
        " FROM items WHERE run_id = ? AND state != 'skipped' AND device_id IS NOT NULL"
        " GROUP BY device_id HAVING count(*) > 1",
        (run_id,),
    )
    for device_id, packed in groups:
        rows = sorted(
            (int(line), action, state, params)
            for action, line, state, params in (p.split(" ") for p in packed.split(","))
        )
        for i, (line, action, state, params) in enumerate(rows):
            if state != "pending":
                continue  # only what is still to send can be held back
            for first, earlier, _, earlier_params in rows[:i]:
                if earlier == action and earlier_params != params:
                    why = (
                        f"conflict: line {first} has {action} for device {device_id} with other "
                        "parameters; keep one of the two rows"
                    )
                elif earlier == action:
                    why = f"duplicate: line {first} already has {action} for device {device_id}"
                else:
                    clash = conflict_reason(earlier, action)
                    if clash is None:
                        continue
                    why = f"conflict: line {first} has {earlier} for device {device_id}; {clash}"
                out.append((line, why))
                break
    return out


@dataclass(frozen=True, slots=True)
class _Group:
    """Rows alike in everything the plan counts: one row of the survey."""

    action: str
    state: str
    reason: str | None  # a skip's reason up to its first ':'
    route: str | None  # the route resolution planned, else the catalogue's
    by_serial: bool  # no device id: named by serial number only
    id_and_serial: bool  # a device id and a serial number to check against it
    n: int
    previews: int  # rows with a preview of their changes


def _survey(store: Store, run_id: str) -> list[_Group]:
    """The run's rows grouped by what the plan counts: one pass of SQL, whatever its size.

    A run this store has just ingested needs no pass: its rows are all pending and unplanned,
    and the ingest counted them.
    """
    fresh = store.take_ingest_shape(run_id)
    if fresh is not None:
        return [
            _Group(action, "pending", None, None, by_serial, both, n, 0)
            for (action, by_serial, both), n in fresh.items()
        ]
    return [
        _Group(a, st, reason, route, bool(by_serial), bool(both), n, previews)
        for a, st, reason, route, by_serial, both, n, previews in store._conn.execute(
            "SELECT action, state,"
            " CASE WHEN state = 'skipped' THEN substr(error, 1, instr(error || ':', ':') - 1)"
            " END, req_route, device_id IS NULL,"
            " device_id IS NOT NULL AND serial_number IS NOT NULL, count(*), count(preview)"
            " FROM items WHERE run_id = ? GROUP BY 1, 2, 3, 4, 5, 6",
            (run_id,),
        )
    ]


def _tally(
    store: Store, plan: Plan, groups: list[_Group], verify: bool, resend_unknown: bool
) -> None:
    """Count the plan from the survey (and the previews of updates, when there are any)."""
    previews = 0
    to_send = ("pending", "sending", "unknown") if resend_unknown else ("pending", "sending")
    for g in groups:
        previews += g.previews
        plan.states[g.state] += g.n
        plan.actions[g.action] += g.n
        if g.state in to_send:
            plan.sends[g.action] += g.n
            method = ACTIONS[g.action].method
            plan.permissions.add(f"{method} {g.route or ACTIONS[g.action].route}")
            if verify and method == "PATCH":
                plan.verify += g.n
        elif g.state == "skipped":
            plan.skips[g.reason or "skipped"] += g.n
        else:
            plan.done_before[g.state] += g.n
    if not previews:
        return  # no update in the run: no second scan of a million rows
    for (preview,) in store._conn.execute(
        "SELECT preview FROM items WHERE run_id = ? AND preview IS NOT NULL", (plan.run.run_id,)
    ):
        for f, text in orjson.loads(preview).items():
            plan.fields[(f, _preview_kind(text))] += 1
