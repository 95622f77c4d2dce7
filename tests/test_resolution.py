"""Resolution, diff-before-write, the plan, blast-radius controls; counts from the ledger."""

from __future__ import annotations

import asyncio
import csv
import math
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bulkops.cli._run import Approval, approve
from bulkops.engine import RunOptions
from bulkops.errors import ConfigError, ManifestError
from bulkops.job import JobResult, drive, start_run
from bulkops.planner import Plan
from bulkops.store import Store
from tests.conftest import Tenant, make_sim, write

DEVICES = 700  # three inventory pages


@pytest.fixture
async def big() -> AsyncIterator[Tenant]:
    """A 700-device tenant with one serial on two records and ten devices awaiting ADE."""
    sim = make_sim(devices=DEVICES, duplicate_serials=1, ade_devices=10)
    token = sim.add_token()
    async with sim.running() as url:
        yield Tenant(sim, url, token)


async def go(
    tenant: Tenant, tmp: Path, manifest: Path, *, dry_run: bool = False, **options: Any
) -> JobResult:
    config = tenant.config(tmp, options=RunOptions(**{"concurrency": 8, **options}))
    store = Store(config.db_path)
    try:
        run, resumed = start_run(store, manifest, tenant=config.tenant)
        return await drive(store, run, config, resumed=resumed, dry_run=dry_run)
    finally:
        store.close()


def gets(tenant: Tenant, route: str) -> int:
    return len(tenant.sim.ledger.select(method="GET", route=route))


def writes(tenant: Tenant) -> list[Any]:
    return [e for e in tenant.sim.ledger.entries if e.method != "GET"]


def unique_macs(tenant: Tenant) -> list[dict[str, Any]]:
    seen: dict[str, int] = {}
    for d in tenant.sim.fleet.devices.values():
        seen[d["serial_number"]] = seen.get(d["serial_number"], 0) + 1
    macs = [
        d
        for d in tenant.sim.fleet.devices.values()
        if d["platform"] == "Mac" and seen[d["serial_number"]] == 1
    ]
    return sorted(macs, key=lambda d: d["serial_number"])


def rows(path: Path) -> dict[int, dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return {int(r["line"]): r for r in csv.DictReader(fh)}


async def test_many_serials_cost_one_sweep_not_one_lookup_each(big: Tenant, tmp_path: Path) -> None:
    macs = unique_macs(big)[:60]
    text = "serial_number,action,asset_tag\n" + "".join(
        f"{d['serial_number']},update,NEW-{i}\n" for i, d in enumerate(macs)
    )
    result = await go(big, tmp_path, write(tmp_path / "tags.csv", text))

    assert result.exit_code == 0
    assert gets(big, "/api/v1/devices") == math.ceil(DEVICES / 300)  # the sweep, nothing per row
    assert len(writes(big)) == 60
    assert len(big.sim.ledger) <= 60 + math.ceil(DEVICES / 300) + 3
    for i, d in enumerate(macs):
        assert big.sim.fleet.devices[d["device_id"]]["asset_tag"] == f"NEW-{i}"


async def test_a_single_serial_is_looked_up_not_swept(big: Tenant, tmp_path: Path) -> None:
    far = unique_macs(big)[-1:]
    text = "serial_number,action\n" + "".join(f"{d['serial_number']},blankpush\n" for d in far)
    result = await go(big, tmp_path, write(tmp_path / "two.csv", text))

    assert result.exit_code == 0
    assert gets(big, "/api/v1/devices") <= 2  # the first page, then one lookup at most
    assert len(writes(big)) == 1


async def test_rows_already_in_target_cost_nothing_and_blank_cells_leave_fields_alone(
    big: Tenant, tmp_path: Path
) -> None:
    macs = [d for d in unique_macs(big) if d["asset_tag"]][:3]
    same, changed, cleared = macs
    was_engineering = changed["blueprint_name"] == "Engineering Macs"  # before the run moves it
    changed_tag = changed["asset_tag"]
    blueprints = {b["name"]: b["id"] for b in big.sim.fleet.blueprints.values()}
    text = (
        "device_id,action,asset_tag,blueprint\n"
        f"{same['device_id']},update,{same['asset_tag']},{same['blueprint_name']}\n"
        f"{changed['device_id']},update,,Engineering Macs\n"
        f"{cleared['device_id']},update,CLEAR!,\n"
    )
    result = await go(big, tmp_path, write(tmp_path / "diff.csv", text))

    assert result.reports is not None
    out = rows(result.reports.results_csv)
    assert out[2]["outcome"] == "skipped" and out[2]["error"] == "already in target state"
    assert result.plan.plan_csv is not None
    assert (
        rows(result.plan.plan_csv)[2]["changes"] == "blueprint_id: unchanged; asset_tag: unchanged"
    )
    patches = {e.device_id: e for e in writes(big)}
    assert same["device_id"] not in patches  # 0 requests for the row already in target
    fleet = big.sim.fleet.devices
    assert fleet[changed["device_id"]]["blueprint_id"] == blueprints["Engineering Macs"]
    assert fleet[changed["device_id"]]["asset_tag"] == changed_tag  # blank: untouched
    assert fleet[cleared["device_id"]]["asset_tag"] == ""  # CLEAR!: cleared
    assert len(writes(big)) == (0 if was_engineering else 1) + 1


async def test_a_blueprint_name_the_tenant_lacks_stops_the_plan_with_the_closest_name(
    big: Tenant, tmp_path: Path
) -> None:
    """A typo in a name is not a device to skip: every row naming it would be skipped."""
    macs = unique_macs(big)[:3]
    text = "device_id,action,blueprint\n" + "".join(
        f"{d['device_id']},update,{name}\n"
        for d, name in zip(macs, ("Default", "Engineering Mac", "Default"), strict=True)
    )
    with pytest.raises(ManifestError) as caught:
        await go(big, tmp_path, write(tmp_path / "typo.csv", text))
    assert caught.value.line == 3 and caught.value.column == "blueprint"
    assert "no blueprint in the tenant is named 'Engineering Mac'" in caught.value.message
    assert "did you mean 'Engineering Macs'?" in caught.value.hint
    assert writes(big) == []


async def test_not_found_ambiguous_and_ineligible_rows_are_skipped_before_any_write(
    big: Tenant, tmp_path: Path
) -> None:
    counts: dict[str, int] = {}
    for d in big.sim.fleet.devices.values():
        counts[d["serial_number"]] = counts.get(d["serial_number"], 0) + 1
    dup = next(s for s, n in counts.items() if n == 2)
    mac = unique_macs(big)[0]
    text = (
        "serial_number,action\n"
        f"{dup},blankpush\n"
        "NOSUCHSERIAL1,blankpush\n"
        f"{mac['serial_number']},clearpasscode\n"
    )
    result = await go(big, tmp_path, write(tmp_path / "bad.csv", text))

    assert result.reports is not None
    out = rows(result.reports.results_csv)
    assert out[2]["error"].startswith("ambiguous") and out[2]["outcome"] == "skipped"
    assert out[3]["error"].startswith("not found")
    assert out[4]["error"].startswith("ineligible: clearpasscode is not available on Mac")
    assert writes(big) == []
    assert result.plan.unsendable == {"ambiguous": 1, "not found": 1, "ineligible": 1}


async def test_an_unenrolled_serial_is_updated_through_its_ade_record(
    big: Tenant, tmp_path: Path
) -> None:
    ade = next(iter(big.sim.fleet.ade_devices.values()))
    text = (
        f"serial_number,action,blueprint,asset_tag\n{ade['serial_number']},update,Default,ADE-1\n"
    )
    result = await go(big, tmp_path, write(tmp_path / "ade.csv", text))

    assert result.exit_code == 0, result.stopped
    sent = writes(big)
    assert [(e.method, e.route) for e in sent] == [
        ("PATCH", "/api/v1/integrations/apple/ade/devices/{device_id}")
    ]
    record = big.sim.fleet.ade_devices[ade["id"]]
    default = next(b["id"] for b in big.sim.fleet.blueprints.values() if b["name"] == "Default")
    assert record["asset_tag"] == "ADE-1" and record["blueprint_id"] == default


async def test_plan_reads_but_never_writes_and_previews_every_field(
    big: Tenant, tmp_path: Path
) -> None:
    macs = unique_macs(big)[:20]
    text = "serial_number,action,asset_tag\n" + "".join(
        f"{d['serial_number']},update,{d['asset_tag'] if i % 2 else 'X-' + str(i)}\n"
        for i, d in enumerate(macs)
        if d["asset_tag"] or i % 2 == 0
    )
    manifest = write(tmp_path / "plan.csv", text)
    result = await go(big, tmp_path, manifest, dry_run=True)

    assert writes(big) == []
    plan = result.plan
    assert plan.reads == math.ceil(DEVICES / 300)
    assert plan.writes + plan.skips["already in target state"] == plan.run.total
    assert plan.fields[("asset_tag", "unchanged")] == plan.skips["already in target state"]
    had_tag = sum(1 for i, d in enumerate(macs) if i % 2 == 0 and d["asset_tag"])
    assert plan.fields[("asset_tag", "change")] == had_tag > 0  # overwrites are shown as such
    assert plan.fields[("asset_tag", "new")] == plan.writes - had_tag
    assert plan.plan_csv is not None
    preview = rows(plan.plan_csv)
    assert len(preview) == plan.run.total
    assert {r["decision"] for r in preview.values()} <= {"send", "skip"}
    assert all(r["changes"].startswith("asset_tag: ") for r in preview.values())
    assert plan.permissions == {"GET /api/v1/devices", "PATCH /api/v1/devices/{device_id}"}


async def test_verify_reads_each_update_back(big: Tenant, tmp_path: Path) -> None:
    macs = unique_macs(big)[:5]
    text = "device_id,action,asset_tag\n" + "".join(
        f"{d['device_id']},update,V-{i}\n" for i, d in enumerate(macs)
    )
    result = await go(big, tmp_path, write(tmp_path / "v.csv", text), verify=True)
    assert result.exit_code == 0
    assert result.plan.verify == 5
    assert gets(big, "/api/v1/devices/{device_id}") == 5


async def test_moves_from_one_blueprint_to_another_are_counted_for_the_canary(
    big: Tenant, tmp_path: Path
) -> None:
    macs = [d for d in unique_macs(big) if d["blueprint_name"] != "Engineering Macs"][:3]
    text = "device_id,action,blueprint\n" + "".join(
        f"{d['device_id']},update,Engineering Macs\n" for d in macs
    )
    result = await go(big, tmp_path, write(tmp_path / "move.csv", text), dry_run=True)
    assert result.plan.blueprint_moves == 3  # every device has a blueprint: each is a change
    assert result.plan.plan_csv is not None
    changes = [r["changes"] for r in rows(result.plan.plan_csv).values()]
    assert all(  # what each device leaves is shown, not only where it goes
        c.startswith(f"blueprint_id: change: {d['blueprint_id']} -> ")
        for c, d in zip(changes, macs, strict=True)
    ), changes


def plan_with(destructive: int, moves: int = 0) -> Plan:
    from bulkops.store import RunInfo

    run = RunInfo(
        "r", 0.0, "m.csv", "x", "csv", "acme.api.kandji.io", {}, "ready", 0, None, None, 0, 0
    )
    plan = Plan(run=run, resumed=False)
    plan.sends["lock"] = destructive
    plan.fields[("blueprint_id", "new")] = moves
    return plan


def test_destructive_bulk_above_the_limit_is_refused_even_with_yes() -> None:
    with pytest.raises(ConfigError, match=r"above the limit of 25.*--max-destructive 30"):
        approve(plan_with(30), options=RunOptions(), approval=Approval(yes=True, quiet=True))
    opts = approve(
        plan_with(30),
        options=RunOptions(),
        approval=Approval(yes=True, max_destructive=30, quiet=True),
    )
    assert opts.canary == 0


def test_destructive_work_needs_yes_when_nobody_can_answer() -> None:
    with pytest.raises(ConfigError, match=r"send lock to 3 devices in tenant acme\.api\.kandji"):
        approve(plan_with(3), options=RunOptions(), approval=Approval(quiet=True))


def test_blueprint_moves_get_a_canary_by_default() -> None:
    opts = approve(plan_with(0, moves=40), options=RunOptions(), approval=Approval(quiet=True))
    assert opts.canary == 5
    opts = approve(
        plan_with(0, moves=40), options=RunOptions(), approval=Approval(canary=0, quiet=True)
    )
    assert opts.canary == 0


async def test_strict_refuses_a_run_with_unsendable_rows(big: Tenant, tmp_path: Path) -> None:
    text = "serial_number,action\nNOSUCHSERIAL1,blankpush\n"
    result = await go(big, tmp_path, write(tmp_path / "s.csv", text), dry_run=True)
    with pytest.raises(ConfigError, match=r"--strict: 1 not found"):
        approve(result.plan, options=RunOptions(), approval=Approval(strict=True, quiet=True))


async def test_strict_lets_a_row_pasted_twice_through(big: Tenant, tmp_path: Path) -> None:
    mac = unique_macs(big)[0]
    text = f"serial_number,action\n{mac['serial_number']},blankpush\n" * 1
    text += f"{mac['serial_number']},blankpush\n"
    result = await go(big, tmp_path, write(tmp_path / "s.csv", text), dry_run=True)
    assert result.plan.skips == {"duplicate": 1}
    approve(result.plan, options=RunOptions(), approval=Approval(strict=True, quiet=True))


def gone(n: int) -> list[str]:
    """Device ids deleted since the sheet was made: a blank push to one fails with a 404."""
    return [f"0a1b2c3d-0000-4000-8000-{i:012x}" for i in range(n)]


async def test_a_failing_canary_stops_the_run_before_the_rest(big: Tenant, tmp_path: Path) -> None:
    ids = [d["device_id"] for d in unique_macs(big)[:30]]
    ids[2] = gone(1)[0]  # the third canary item will fail
    before = len(writes(big))
    text = "device_id,action\n" + "".join(f"{i},blankpush\n" for i in ids)
    result = await go(big, tmp_path, write(tmp_path / "c.csv", text), canary=5, concurrency=2)

    assert result.exit_code == 3 and result.stopped and "canary" in result.stopped
    assert len(writes(big)) - before <= 5 + 1  # the canary (and at most one already queued)
    assert result.summary is not None and result.summary.outcomes.get("pending", 0) >= 24


async def test_failure_rate_above_the_limit_stops_the_run(big: Tenant, tmp_path: Path) -> None:
    ids = gone(40) + [d["device_id"] for d in unique_macs(big)[:20]]
    before = len(writes(big))
    text = "device_id,action\n" + "".join(f"{i},blankpush\n" for i in ids)
    result = await go(
        big, tmp_path, write(tmp_path / "f.csv", text), max_failure_rate=50.0, concurrency=2
    )
    assert result.exit_code == 3 and result.stopped and "max-failure-rate" in result.stopped
    assert not result.stopped.startswith("stopped")  # the CLI says "stopped: " before it
    assert len(writes(big)) - before < 30


async def test_nothing_is_sent_outside_the_window(
    big: Tenant, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from datetime import datetime

    from bulkops.schedule import TimeWindow

    now = datetime.now()
    start = (now.hour * 60 + now.minute + 120) % 1440
    window = TimeWindow(start, (start + 60) % 1440)
    text = "device_id,action\n" + "".join(
        f"{d['device_id']},blankpush\n" for d in unique_macs(big)[:3]
    )
    config = big.config(tmp_path, options=RunOptions(window=window))
    store = Store(config.db_path)
    try:
        run, _ = start_run(store, write(tmp_path / "w.csv", text), tenant=config.tenant)

        def stop_soon(engine: Any) -> None:
            asyncio.get_running_loop().call_later(0.5, engine.request_stop)

        result = await drive(store, run, config, on_engine=stop_soon)
    finally:
        store.close()
    assert result.exit_code == 130
    assert writes(big) == []
    assert 118 * 60 <= result.plan.eta_s <= 121 * 60  # the plan counts the wait for the window
    said = [r.getMessage() for r in caplog.records if "outside --window" in r.getMessage()]
    assert len(said) == 1, said  # once, where cron's log shows it too
    assert re.search(r"nothing is sent for (1 h 59|2 h 00) min$", said[0]), said


def test_the_eta_counts_only_the_hours_the_window_is_open() -> None:
    """Noted at stop 14: the ETA added the wait for the window to open, then counted the work
    as if the window never closed. Nine hours of sends in a 22:00-06:00 window end the next
    night at 23:00, not at 07:00."""
    from datetime import datetime

    from bulkops.schedule import ETA_CAP_S, TimeWindow

    night = TimeWindow.parse("22:00-06:00")
    h = 3600
    assert night.finish_s(datetime(2026, 1, 1, 21, 0), 2 * h) == 3 * h  # opens in 1 h
    assert night.finish_s(datetime(2026, 1, 1, 23, 0), 7 * h) == 7 * h  # inside: to 06:00
    assert night.finish_s(datetime(2026, 1, 1, 21, 0), 9 * h) == 26 * h  # 8 h, 16 h shut, 1 h
    assert night.finish_s(datetime(2026, 1, 1, 21, 0), 0) == 0  # nothing left: done now
    assert night.finish_s(datetime(2026, 1, 1, 21, 0), 8 * h * 30) == 30 * 24 * h - 15 * h  # 06:00
    # Diff review: one loop step per day; a one-minute window and years of sends overflowed.
    minute = TimeWindow.parse("22:00-22:01")
    assert minute.finish_s(datetime(2026, 1, 1, 21, 0), 3.6e8) == ETA_CAP_S
    assert minute.finish_s(datetime(2026, 1, 1, 21, 0), 120) == 25 * h + 60
    day = TimeWindow.parse("09:00-17:30")
    assert day.finish_s(datetime(2026, 1, 1, 17, 0), 3 * h) == 18 * h + 30 * 60  # 11:30 next day
    whole = TimeWindow.parse("00:00-24:00")
    assert whole.finish_s(datetime(2026, 1, 1, 12, 0), 50 * h) == 50 * h


def test_time_windows_parse_and_cross_midnight() -> None:
    from datetime import datetime

    from bulkops.schedule import TimeWindow

    night = TimeWindow.parse("22:00-06:00")
    assert str(night) == "22:00-06:00"
    assert night.contains(datetime(2026, 1, 1, 23, 30)) and night.contains(
        datetime(2026, 1, 2, 5, 59)
    )
    assert not night.contains(datetime(2026, 1, 1, 12, 0))
    assert night.wait_s(datetime(2026, 1, 1, 21, 0)) == 3600
    assert night.wait_s(datetime(2026, 1, 1, 6, 0)) == 16 * 3600
    day = TimeWindow.parse("9:00-17:30")
    assert day.contains(datetime(2026, 1, 1, 17, 29)) and not day.contains(
        datetime(2026, 1, 1, 17, 30)
    )
    for bad in ("22-06", "25:00-01:00", "10:00-10:00", "9:60-10:00"):
        with pytest.raises(ValueError, match=r"window|exist|empty"):
            TimeWindow.parse(bad)
    assert replace(night, end_min=360) == night


async def test_select_writes_a_manifest_of_exactly_the_matching_devices(
    big: Tenant, tmp_path: Path
) -> None:
    from bulkops.budget import Budget, BudgetConfig, Rate
    from bulkops.client import Connection, KandjiClient
    from bulkops.select import Selection, to_fill, write_selection

    want = sorted(
        d["device_id"]
        for d in big.sim.fleet.devices.values()
        if d["platform"] == "Mac" and d["blueprint_name"] == "Engineering Macs"
    )
    out = tmp_path / "eng.csv"
    budget = Budget(BudgetConfig(rate=Rate(100_000, 3600.0), tenant="t"))
    async with KandjiClient(Connection(big.url, big.token), budget=budget) as client:
        n = await write_selection(
            client,
            Selection(blueprint="Engineering Macs", platform="Mac"),
            action="blankpush",
            out=out,
        )
    assert n == len(want) > 0
    got = sorted(r["device_id"] for r in rows_by_order(out))
    assert got == want
    assert writes(big) == []
    # the selection is a valid manifest as it is
    store = Store(tmp_path / "sel.db")
    try:
        run, _ = start_run(store, out, tenant="t")
        assert run.total == n
    finally:
        store.close()
    # Review: an action with parameters refused (setname) or wrote a sheet that could not run
    # (update). The parameters are now blank columns to fill in, the name beside them.
    assert to_fill("blankpush") == [] and to_fill("setname") == ["device_name"]
    assert "asset_tag" in to_fill("update")
    async with KandjiClient(Connection(big.url, big.token), budget=budget) as client:
        await write_selection(client, Selection(platform="Mac"), action="setname", out=out)
    sheet = rows_by_order(out)
    assert list(sheet[0]) == ["device_id", "serial_number", "action", "device_name", "note"]
    assert {r["device_name"] for r in sheet} == {""}
    named = sheet[0]["note"].rsplit(" (", 1)[0]
    assert named == big.sim.fleet.devices[sheet[0]["device_id"]]["device_name"]
    text = out.read_text(encoding="utf-8-sig").replace(",setname,,", ",setname,NYC-1,", 1)
    out.write_text(text)
    store = Store(tmp_path / "sel2.db")
    try:
        with pytest.raises(ManifestError, match="setname needs device_name"):
            start_run(store, out, tenant="t")  # only the first row was filled in
    finally:
        store.close()


def rows_by_order(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


async def test_permissions_name_the_reads_and_the_reconciliation_a_run_may_need(
    big: Tenant, tmp_path: Path
) -> None:
    mac = unique_macs(big)[0]
    text = (
        "serial_number,action,blueprint\n"
        f"{mac['serial_number']},update,Default\n"
        f"{unique_macs(big)[1]['serial_number']},lock,\n"
    )
    result = await go(big, tmp_path, write(tmp_path / "p.csv", text), dry_run=True)
    assert result.plan.permissions == {
        "GET /api/v1/devices",
        "GET /api/v1/blueprints",
        "PATCH /api/v1/devices/{device_id}",
        "POST /api/v1/devices/{device_id}/action/lock",
        "GET /api/v1/devices/{device_id}/commands",
        "GET /api/v1/devices/{device_id}/secrets/unlockpin",
    }
    # and a token holding exactly these can run it: the simulator enforces them
    routes = {tuple(p.split(" ", 1)) for p in result.plan.permissions}
    scoped = big.sim.add_token(allowed_routes=routes)
    narrow = replace(big, token=scoped)
    done = await go(narrow, tmp_path / "run", write(tmp_path / "p2.csv", text))
    assert done.exit_code == 0, done.stopped


async def test_one_device_named_by_id_and_by_serial_is_sent_once(
    big: Tenant, tmp_path: Path
) -> None:
    a, b = unique_macs(big)[:2]
    text = (
        "device_id,serial_number,action,pin\n"
        f"{a['device_id']},,restart,\n"
        f",{a['serial_number']},restart,\n"  # the same Mac again, by serial
        f"{b['device_id']},,lock,\n"
        f",{b['serial_number']},erase,123456\n"  # erase after a lock on the same Mac
    )
    result = await go(big, tmp_path, write(tmp_path / "same.csv", text))
    assert result.reports is not None
    out = rows(result.reports.results_csv)
    assert out[3]["outcome"] == "skipped" and out[3]["error"].startswith("duplicate: line 2")
    assert out[5]["outcome"] == "skipped" and out[5]["error"].startswith("conflict: line 4")
    assert big.sim.ledger.applied_count(a["device_id"], "restart") == 1
    assert big.sim.ledger.applied_count(b["device_id"], "erase") == 0
    assert result.plan.skips == {"duplicate": 1, "conflict": 1}
    assert result.plan.unsendable == {"conflict": 1}  # the copy is sent by line 2: not for --strict


async def test_a_row_whose_id_and_serial_disagree_is_not_sent(big: Tenant, tmp_path: Path) -> None:
    a, b = unique_macs(big)[:2]
    text = f"device_id,serial_number,action\n{a['device_id']},{b['serial_number']},restart\n"
    result = await go(big, tmp_path, write(tmp_path / "mix.csv", text))
    assert result.reports is not None
    row = rows(result.reports.results_csv)[2]
    assert row["outcome"] == "skipped" and row["error"].startswith("mismatch:")
    assert b["serial_number"] in row["error"] and a["serial_number"] in row["error"]
    assert writes(big) == []


async def test_rows_with_an_id_and_a_serial_cost_one_sweep_not_one_read_each(
    big: Tenant, tmp_path: Path
) -> None:
    """Review: the manifest ``bulkops select`` writes (id and serial per row) was checked with
    one GET per row, while the plan said "no device lookups needed"."""
    macs = unique_macs(big)[:60]
    text = "device_id,serial_number,action\n" + "".join(
        f"{d['device_id']},{d['serial_number']},blankpush\n" for d in macs
    )
    result = await go(big, tmp_path, write(tmp_path / "selected.csv", text))

    assert result.exit_code == 0
    assert result.plan is not None and result.plan.strategy.startswith("inventory sweep")
    assert gets(big, "/api/v1/devices") == math.ceil(DEVICES / 300)
    assert gets(big, "/api/v1/devices/{device_id}") == 0
    assert len(writes(big)) == 60


async def test_an_erase_needs_a_pin_on_a_mac_and_none_on_an_ipad(
    big: Tenant, tmp_path: Path
) -> None:
    """Review: "erase a batch of returned iPads" demanded a Find My PIN, which iOS ignores. The
    PIN is required once the row's device is known to be a Mac; a Mac row without one stops
    the plan with its line and column, and nothing is sent."""
    fleet = sorted(big.sim.fleet.devices.values(), key=lambda d: d["device_id"])
    ipads = [d for d in fleet if d["platform"] == "iPad"][:2]
    mac = unique_macs(big)[0]
    by_id = f"device_id,action\n{ipads[0]['device_id']},erase\n"
    by_serial = f"serial_number,action\n{ipads[1]['serial_number']},erase\n"
    for name, text in (("by_id.csv", by_id), ("by_serial.csv", by_serial)):
        result = await go(big, tmp_path / f"run-{name}", write(tmp_path / name, text))
        assert result.exit_code == 0, result.summary
    erased = big.sim.ledger.select(action="erase", applied=True)
    assert {e.device_id for e in erased} == {d["device_id"] for d in ipads}
    assert gets(big, "/api/v1/devices/{device_id}") == 0  # platforms from the inventory

    text = f"device_id,action,pin\n{ipads[0]['device_id']},erase,\n{mac['device_id']},erase,\n"
    with pytest.raises(ManifestError) as caught:
        await go(big, tmp_path / "m", write(tmp_path / "mixed.csv", text))
    assert caught.value.line == 3 and caught.value.column == "pin"
    assert "erase of a Mac needs pin (6 digits)" in caught.value.message
    assert "fill in the pin column" in caught.value.hint
    assert len(big.sim.ledger.select(action="erase")) == 2  # nothing more was sent


async def test_an_ade_record_is_compared_like_an_enrolled_device(
    big: Tenant, tmp_path: Path
) -> None:
    """Review: an ADE row always previewed "new (ADE)", even over a tag it changed or one already
    set, so a second run sent it again; a tags column called the device "not found"."""
    ade = next(r for r in big.sim.fleet.ade_devices.values() if r["asset_tag"])
    serial, was = ade["serial_number"], ade["asset_tag"]
    text = f"serial_number,action,asset_tag\n{serial},update,NEW-003\n"
    first = await go(big, tmp_path / "one", write(tmp_path / "ade.csv", text))
    assert first.exit_code == 0 and first.plan is not None
    assert rows(first.plan.plan_csv)[2]["changes"] == f"asset_tag: change (ADE): {was} -> NEW-003"
    assert big.sim.fleet.ade_devices[ade["id"]]["asset_tag"] == "NEW-003"

    again = await go(big, tmp_path / "two", write(tmp_path / "again.csv", text + "\n"))
    assert again.exit_code == 0 and again.plan is not None
    assert again.plan.skips == {"already in target state": 1}
    assert len(writes(big)) == 1  # nothing sent the second time

    tags = f"serial_number,action,tags,asset_tag\n{serial},update,newhire,NEW-004\n"
    third = await go(big, tmp_path / "three", write(tmp_path / "tags.csv", tags))
    assert third.summary is not None and third.summary.not_applied == {"not enrolled": 1}
    reason = rows(third.reports.results_csv)[2]["error"]
    assert "awaiting Automated Device Enrollment" in reason and "not tags" in reason, reason
    assert len(writes(big)) == 1


async def test_an_unknown_email_is_a_user_not_found_not_a_device(
    big: Tenant, tmp_path: Path
) -> None:
    """Review: a row whose user email the tenant does not have was skipped as "not found 1",
    which reads as the device not being found."""
    mac, other = unique_macs(big)[:2]
    user = next(iter(big.sim.fleet.users.values()))["email"]
    text = (
        "serial_number,action,user\n"
        f"{mac['serial_number']},update,nobody@example.com\n"
        f"{other['serial_number']},update,{user}\n"
    )
    result = await go(big, tmp_path, write(tmp_path / "u.csv", text))
    assert result.reports is not None and result.summary is not None
    out = rows(result.reports.results_csv)
    assert out[2]["error"] == "user not found: no user has the email nobody@example.com"
    assert result.summary.not_applied == {"user not found": 1}
    assert out[3]["outcome"] == "succeeded"


async def test_one_new_name_for_two_devices_is_a_warning_in_the_plan(
    big: Tenant, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Review: a rename sheet gave NYC-000 to two Macs and nothing said so."""
    a, b, c = (d["serial_number"] for d in unique_macs(big)[:3])
    text = (
        "serial_number,action,device_name\n"
        f"{a},setname,NYC-000\n{b},setname,NYC-001\n{c},setname,NYC-000\n"
        f"{a},setname,NYC-000\n"  # the same row pasted twice: a copy, not a second device
    )
    with caplog.at_level("WARNING", logger="bulkops"):
        result = await go(big, tmp_path, write(tmp_path / "r.csv", text), dry_run=True)
    said = [r.getMessage() for r in caplog.records if "device_name" in r.getMessage()]
    assert said == ["device_name 'NYC-000' is given to 2 devices (lines 2, 4)"]
    assert result.plan.writes == 3
