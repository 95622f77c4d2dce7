"""The engine end to end against the simulator: formats, exactly-once, reports, PINs, resume."""

from __future__ import annotations

import asyncio
import csv
import json
import sqlite3
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from bulkops.engine import Engine, RunOptions
from bulkops.job import JobConfig, JobResult, drive, start_run
from bulkops.report import write_reports
from bulkops.store import Store
from tests.conftest import Tenant, stop_after, write


async def run_job(tenant: Tenant, tmp: Path, manifest: Path, **overrides: Any) -> JobResult:
    """Validate, record and drive a manifest in-process."""
    config = tenant.config(tmp, **overrides)
    store = Store(config.db_path)
    try:
        run, _ = start_run(store, manifest, tenant=config.tenant)
        return await drive(store, run, config)
    finally:
        store.close()


def devices(tenant: Tenant, platform: str | None = None) -> list[dict[str, Any]]:
    """Fleet records in a stable order, optionally of one platform."""
    recs = sorted(tenant.sim.fleet.devices.values(), key=lambda d: d["device_id"])
    return [d for d in recs if platform is None or d["platform"] == platform]


def applied(tenant: Tenant, device_id: str, action: str) -> int:
    """How many times the simulator applied this action to this device."""
    if action in ("update", "delete"):
        method = "PATCH" if action == "update" else "DELETE"
        return len(
            tenant.sim.ledger.select(
                device_id=device_id,
                method=method,
                route="/api/v1/devices/{device_id}",
                applied=True,
            )
        )
    return tenant.sim.ledger.applied_count(device_id, action)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def mixed_rows(tenant: Tenant) -> list[dict[str, Any]]:
    """blankpush for 40 devices, lock 5 Macs, set asset tags on 10, rename 5 iPads."""
    macs = devices(tenant, "Mac")
    ipads = devices(tenant, "iPad")
    rows: list[dict[str, Any]] = []
    rows += [{"device_id": d["device_id"], "action": "blankpush"} for d in devices(tenant)[:40]]
    rows += [
        {"device_id": d["device_id"], "action": "lock", "message": "Call IT"} for d in macs[40:45]
    ]
    rows += [
        {"serial_number": d["serial_number"], "action": "update", "asset_tag": f"AT-{i:04d}"}
        for i, d in enumerate(macs[45:55])
    ]
    rows += [
        {"device_id": d["device_id"], "action": "setname", "device_name": f"iPad {i}"}
        for i, d in enumerate(ipads[:5])
    ]
    return rows


def blank_pushes(path: Path, ids: list[str]) -> Path:
    """A manifest of one blank push per device."""
    return write(path, "device_id,action\n" + "".join(f"{i},blankpush\n" for i in ids))


def as_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    cols = ["device_id", "serial_number", "action", "message", "asset_tag", "device_name"]
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in cols})
    return path


def as_json(path: Path, rows: list[dict[str, Any]]) -> Path:
    items = []
    for r in rows:
        ident = {k: r[k] for k in ("device_id", "serial_number") if k in r}
        params = {k: v for k, v in r.items() if k not in ("device_id", "serial_number", "action")}
        items.append({**ident, "action": r["action"], "params": params})
    path.write_bytes(orjson.dumps({"defaults": {}, "items": items}, option=orjson.OPT_INDENT_2))
    return path


def as_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
async def test_mixed_manifest_runs_every_item_exactly_once(
    tenant: Tenant, tmp_path: Path, fmt: str
) -> None:
    rows = mixed_rows(tenant)
    writer = {"csv": as_csv, "json": as_json, "jsonl": as_jsonl}[fmt]
    manifest = writer(tmp_path / f"job.{fmt}", rows)

    result = await run_job(tenant, tmp_path, manifest)

    assert result.exit_code == 0, result
    assert result.summary is not None and result.reports is not None
    assert result.summary.outcomes["succeeded"] == len(rows)
    by_serial = {d["serial_number"]: d["device_id"] for d in devices(tenant)}
    for r in rows:
        device_id = r.get("device_id") or by_serial[r["serial_number"]]
        assert applied(tenant, device_id, r["action"]) == 1, r
    # The reports agree with the ledger, row for row.
    results = read_csv(result.reports.results_csv)
    assert len(results) == len(rows)
    assert {r["outcome"] for r in results} == {"succeeded"}
    assert all(int(r["attempts"]) == 1 for r in results)
    # Every PIN the simulator issued is in secrets.csv, and nowhere else in the reports.
    pins = tenant.sim.ledger.pins()
    assert len(pins) == 5
    assert result.reports.secrets_csv is not None
    secrets = read_csv(result.reports.secrets_csv)
    assert sorted(s["secret"] for s in secrets) == sorted(pins)
    assert result.reports.secrets_csv.stat().st_mode & 0o777 == 0o600
    for other in (
        result.reports.results_csv,
        result.reports.results_jsonl,
        result.reports.summary_json,
    ):
        text = other.read_text(encoding="utf-8-sig")
        assert not any(pin in text for pin in pins), other
    summary = json.loads(result.reports.summary_json.read_text())
    assert summary["outcomes"]["succeeded"] == len(rows)
    assert summary["requests"] >= len(rows)
    assert result.reports.failed_csv is None


async def test_pins_leave_the_database_once_secrets_csv_holds_them(
    tenant: Tenant, tmp_path: Path
) -> None:
    macs = devices(tenant, "Mac")[:3]
    manifest = write(
        tmp_path / "lock.csv",
        "device_id,action\n" + "".join(f"{d['device_id']},lock\n" for d in macs),
    )
    result = await run_job(tenant, tmp_path, manifest)
    assert result.exit_code == 0
    db = sqlite3.connect(tmp_path / "run.db")
    assert db.execute("SELECT count(*) FROM items WHERE secret IS NOT NULL").fetchone()[0] == 0
    assert (tmp_path / "run.db").stat().st_mode & 0o777 == 0o600


async def test_failures_are_reported_per_row_and_failed_csv_reruns_them(
    tenant: Tenant, tmp_path: Path
) -> None:
    mac = devices(tenant, "Mac")[0]
    gone = "0a1b2c3d-0000-4000-8000-00000000dead"  # deleted since the sheet was made
    tv = devices(tenant, "AppleTV")[0]
    before = len(tenant.sim.ledger)
    manifest = write(
        tmp_path / "job.csv",
        "device_id,serial_number,action\n"
        f"{mac['device_id']},,blankpush\n"
        f"{gone},,blankpush\n"  # the server says 404
        f"{tv['device_id']},,clearpasscode\n"  # not on Apple TV → skipped before any write
        ",ZZZZ0000ZZZZ,blankpush\n",  # not enrolled → skipped
    )
    result = await run_job(tenant, tmp_path, manifest)

    assert result.exit_code == 1
    assert result.reports is not None
    rows = {int(r["line"]): r for r in read_csv(result.reports.results_csv)}
    assert rows[2]["outcome"] == "succeeded"
    assert rows[3]["outcome"] == "failed" and rows[3]["http_status"] == "404"
    assert "device not found" in rows[3]["error"]
    assert rows[4]["outcome"] == "skipped" and rows[4]["error"].startswith("ineligible")
    assert rows[5]["outcome"] == "skipped" and rows[5]["error"].startswith("not found")
    sent = tenant.sim.ledger.entries[before:]
    assert not [e for e in sent if e.device_id == tv["device_id"]]  # the skip cost 0 requests
    assert result.reports.failed_csv is not None
    again = read_csv(result.reports.failed_csv)  # every row that did not get its change
    assert [(r["device_id"], r["serial_number"], r["action"]) for r in again] == [
        (gone, "", "blankpush"),
        (tv["device_id"], "", "clearpasscode"),
        ("", "ZZZZ0000ZZZZ", "blankpush"),
    ]
    assert result.summary is not None
    assert result.summary.not_applied == {"ineligible": 1, "not found": 1}
    # failed.csv is itself a valid manifest.
    store = Store(tmp_path / "other.db")
    try:
        run, _ = start_run(store, result.reports.failed_csv, tenant="x")
        assert run.total == 3
    finally:
        store.close()


async def test_same_manifest_again_resumes_the_finished_run(tenant: Tenant, tmp_path: Path) -> None:
    manifest = as_csv(tmp_path / "job.csv", mixed_rows(tenant)[:10])
    first = await run_job(tenant, tmp_path, manifest)
    sent = len(tenant.sim.ledger)
    second = await run_job(tenant, tmp_path, manifest)
    assert second.summary.run_id == first.summary.run_id
    assert len(tenant.sim.ledger) == sent  # nothing sent twice


async def test_clean_interrupt_then_resume_loses_nothing_and_repeats_nothing(
    tenant: Tenant, tmp_path: Path
) -> None:
    rows = mixed_rows(tenant)
    manifest = as_csv(tmp_path / "job.csv", rows)
    config: JobConfig = tenant.config(tmp_path, options=RunOptions(concurrency=2))
    store = Store(config.db_path)
    try:
        run, _ = start_run(store, manifest, tenant=config.tenant)
        first = await drive(store, run, config, on_engine=stop_after(12))
        assert first.exit_code == 130
        assert 12 <= first.summary.outcomes["succeeded"] < len(rows)
        plan_csv = first.plan.plan_csv
        assert plan_csv is not None and plan_csv.exists()
        written = plan_csv.stat().st_mtime_ns
        info = store.run(run.run_id)
        assert info is not None and info.status == "interrupted"
        second = await drive(store, info, config, resumed=True)
        # Nothing new to decide on the resume: the plan it wrote stays (a million-row rewrite
        # would delay the first request by seconds) …
        assert second.plan.plan_csv == plan_csv
        assert plan_csv.stat().st_mtime_ns == written
        # … but only while it is the very file this run wrote (not another run's, not a stub
        # left by a crash mid-write): anything else is written again.
        plan_csv.write_text("device_id\n")
        info = store.run(run.run_id)
        assert info is not None
        third = await drive(store, info, config, resumed=True)
    finally:
        store.close()
    assert third.exit_code == 0
    assert len(plan_csv.read_text(encoding="utf-8-sig").splitlines()) == len(rows) + 1
    assert not plan_csv.with_name("plan.csv.part").exists()
    assert second.exit_code == 0
    assert second.summary.outcomes["succeeded"] == len(rows)
    by_serial = {d["serial_number"]: d["device_id"] for d in devices(tenant)}
    for r in rows:
        device_id = r.get("device_id") or by_serial[r["serial_number"]]
        assert applied(tenant, device_id, r["action"]) == 1, r


async def test_item_left_sending_is_reconciled_not_resent(tenant: Tenant, tmp_path: Path) -> None:
    """A crash after the lock was applied: the command list proves it; the PIN is fetched."""
    macs = devices(tenant, "Mac")[:2]
    manifest = write(
        tmp_path / "lock.csv",
        "device_id,action\n" + "".join(f"{d['device_id']},lock\n" for d in macs),
    )
    config = tenant.config(tmp_path)
    store = Store(config.db_path)
    try:
        run, _ = start_run(store, manifest, tenant=config.tenant)
        # Simulate the crash: the first lock reached the server, the second never left.
        import aiohttp

        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {tenant.token}"}) as s:
            resp = await s.post(f"{tenant.url}/api/v1/devices/{macs[0]['device_id']}/action/lock")
            assert resp.status == 200
            pin = (await resp.json())["PIN"]
        for line, mac in ((2, macs[0]), (3, macs[1])):  # what the engine committed, then died
            store._conn.execute(
                "UPDATE items SET state = 'sending', attempts = 1, device_id = ?,"
                " sent_at = strftime('%s', 'now') - 1 WHERE line = ?",
                (mac["device_id"], line),
            )
        result = await drive(store, run, config)
    finally:
        store.close()
    rows = {int(r["line"]): r for r in read_csv(result.reports.results_csv)}
    assert rows[2]["outcome"] == "succeeded" and "reconciled" in rows[2]["error"]
    assert rows[3]["outcome"] == "unknown"
    assert applied(tenant, macs[0]["device_id"], "lock") == 1
    assert applied(tenant, macs[1]["device_id"], "lock") == 0  # never resent blindly
    assert result.reports.secrets_csv is not None
    assert [s["secret"] for s in read_csv(result.reports.secrets_csv)] == [pin]
    assert result.exit_code == 1


async def test_invalid_manifest_sends_nothing_and_records_nothing(
    tenant: Tenant, tmp_path: Path
) -> None:
    from bulkops.errors import ManifestError

    mac = devices(tenant, "Mac")[0]
    manifest = write(
        tmp_path / "bad.csv",
        f"device_id,action,message\n{mac['device_id']},lock,A\n{mac['device_id']},lock,B\n",
    )
    with pytest.raises(ManifestError) as info:
        await run_job(tenant, tmp_path, manifest)
    assert info.value.line == 3 and "conflicts with line 2" in str(info.value)
    assert len(tenant.sim.ledger) == 0
    assert Store(tmp_path / "run.db").runs() == []


async def test_a_row_pasted_twice_is_sent_once_and_the_copy_skipped(
    tenant: Tenant, tmp_path: Path
) -> None:
    mac = devices(tenant, "Mac")[0]
    serial = mac["serial_number"]
    manifest = write(
        tmp_path / "twice.csv",
        f"serial_number,action,message\n{serial},lock,Call IT\n{serial.lower()},lock, Call IT \n",
    )
    result = await run_job(tenant, tmp_path, manifest)  # drive() asks nobody: the CLI does
    assert result.exit_code == 0, result.stopped
    assert result.reports is not None
    rows = {int(r["line"]): r for r in read_csv(result.reports.results_csv)}
    assert rows[2]["outcome"] == "succeeded"
    assert rows[3]["outcome"] == "skipped"
    assert rows[3]["error"] == f"duplicate: line 2 has the same lock for serial number {serial}"
    assert applied(tenant, mac["device_id"], "lock") == 1
    assert result.plan.skips == {"duplicate": 1}


async def test_a_stop_counts_only_the_requests_that_left(tenant: Tenant, tmp_path: Path) -> None:
    """Workers queued on a paced budget get their permits after the stop and send nothing: the
    run's request count and the shared history must not charge them."""
    from bulkops.budget import Rate, SendHistory

    macs = devices(tenant, "Mac")[:30]
    manifest = write(
        tmp_path / "b.csv",
        "device_id,action\n" + "".join(f"{d['device_id']},blankpush\n" for d in macs),
    )
    config = tenant.config(tmp_path, rate=Rate(20, 1.0), per_second=20)
    store = Store(config.db_path)
    engines: list[Engine] = []

    async def stop_after_a_few() -> None:
        while len(tenant.sim.ledger) < 5:
            await asyncio.sleep(0.01)
        engines[0].request_stop()

    try:
        run, _ = start_run(store, manifest, tenant=config.tenant)
        stopper = asyncio.create_task(stop_after_a_few())
        result = await drive(store, run, config, on_engine=engines.append)
        await stopper
    finally:
        store.close()
    sent = len(tenant.sim.ledger)
    assert result.summary is not None and 5 <= sent < 30
    assert result.summary.requests == sent
    with SendHistory(config.budget_path(), tenant=config.tenant) as history:
        assert history.count_in_window(time.time(), 3600.0) <= sent


@pytest.mark.parametrize("why", ["the window's budget is spent", "a 429 pause"])
async def test_a_stop_does_not_wait_for_the_budget(tmp_path: Path, why: str) -> None:
    """Review: Ctrl-C while the workers waited for the budget (its hour spent, or a 429 pause:
    up to an hour) waited 15 s for the grace to run out, though nothing was in flight. Now the
    waiting workers are withdrawn at once; their items stay pending, sent by the resume."""
    from bulkops.budget import Rate
    from tests.conftest import make_sim

    paused = why == "a 429 pause"
    # Three blank pushes fit in the tenant's hour, then a 429; our own 3 an hour are paced, one
    # now and the next in 20 minutes.
    sent = 3 if paused else 1
    sim = make_sim(devices=20, hour_limit=3 if paused else 1_000_000, rate_limit_headers=False)
    token = sim.add_token()
    async with sim.running(host="127.0.0.1", port=0) as url:
        tenant = Tenant(sim, url, token)
        ids = sorted(sim.fleet.devices)[:8]
        manifest = blank_pushes(tmp_path / "b.csv", ids)
        rate = Rate(10**6, 3600.0) if paused else Rate(3, 3600.0)
        config = tenant.config(tmp_path, rate=rate, options=RunOptions(concurrency=4))
        store = Store(config.db_path)
        engines: list[Engine] = []

        async def stop_while_they_wait() -> None:
            while not engines or engines[0].progress.done < sent:
                await asyncio.sleep(0.005)
            while paused and not sim.ledger.select(outcome="rate_limited"):
                await asyncio.sleep(0.005)
            engines[0].request_stop()

        try:
            run, _ = start_run(store, manifest, tenant=config.tenant)
            stopper = asyncio.create_task(stop_while_they_wait())
            # Both waits last until the hour ends: a stop that waited for them times out here.
            result = await asyncio.wait_for(
                drive(store, run, config, on_engine=engines.append), timeout=60
            )
            await stopper
            counts = store.counts(run.run_id)
        finally:
            store.close()
    applied = sim.ledger.applied_count()
    assert result.exit_code == 130
    assert applied == sent and counts == {"succeeded": sent, "pending": 8 - sent}, counts
    assert len(sim.ledger.select(outcome="rate_limited")) == (1 if paused else 0)


async def test_rows_not_applied_fail_the_run_and_rows_already_so_do_not(
    tenant: Tenant, tmp_path: Path
) -> None:
    """A serial number with a typo is not a success (exit 1, failed.csv); a device that already
    has the asset tag, or a row another row already covers, is."""
    a, b = [d for d in devices(tenant, "Mac") if d["asset_tag"]][:2]
    manifest = write(
        tmp_path / "tags.csv",
        "device_id,serial_number,action,asset_tag\n"
        f",{a['serial_number']},update,NEW-1\n"
        f",{b['serial_number']},update,{b['asset_tag']}\n"  # already so: nothing to send
        f"{a['device_id']},,update,NEW-1\n"  # the same device as line 2, by id
        ",C02TYPO00001,update,NEW-2\n",
    )
    result = await run_job(tenant, tmp_path, manifest)
    assert result.summary is not None and result.reports is not None
    outcomes = {int(r["line"]): r["outcome"] for r in read_csv(result.reports.results_csv)}
    assert outcomes == {2: "succeeded", 3: "skipped", 4: "skipped", 5: "skipped"}
    assert result.summary.not_applied == {"not found": 1}
    assert result.exit_code == 1
    assert result.reports.failed_csv is not None
    again = read_csv(result.reports.failed_csv)
    assert [(r["serial_number"], r["asset_tag"]) for r in again] == [("C02TYPO00001", "NEW-2")]
    summary = json.loads(result.reports.summary_json.read_text())
    assert summary["not_applied"] == {"not found": 1}


async def test_rows_naming_one_device_two_ways_are_not_applied_unless_they_agree(
    tenant: Tenant, tmp_path: Path
) -> None:
    a, b, c = devices(tenant, "Mac")[:3]
    manifest = write(
        tmp_path / "two.csv",
        "device_id,serial_number,action,asset_tag\n"
        f"{a['device_id']},{b['serial_number']},update,T-1\n"  # id and serial disagree
        f",{c['serial_number']},update,T-2\n"
        f"{c['device_id']},,update,T-3\n",  # the same device as line 3, another value
    )
    result = await run_job(tenant, tmp_path, manifest)
    assert result.exit_code == 1 and result.summary is not None and result.reports is not None
    assert result.summary.not_applied == {"mismatch": 1, "conflict": 1}
    again = read_csv(result.reports.failed_csv) if result.reports.failed_csv else []
    # the serial stays beside the id: a rerun of failed.csv checks it again, never trusts the id
    assert [(r["device_id"], r["serial_number"], r["asset_tag"]) for r in again] == [
        (a["device_id"], b["serial_number"], "T-1"),
        (c["device_id"], "", "T-3"),
    ]
    assert applied(tenant, a["device_id"], "update") == 0
    assert applied(tenant, c["device_id"], "update") == 1


async def test_rows_a_stopped_run_has_not_sent_are_left_to_its_resume_not_to_failed_csv(
    tenant: Tenant, tmp_path: Path
) -> None:
    """failed.csv run beside the resume would send them twice (a restart, a lock)."""
    macs = devices(tenant, "Mac")[:3]
    manifest = write(
        tmp_path / "r.csv",
        "device_id,action\n" + "".join(f"{d['device_id']},restart\n" for d in macs),
    )
    config = tenant.config(tmp_path)
    store = Store(config.db_path)
    try:
        run, _ = start_run(store, manifest, tenant=config.tenant)
        # As if stopped after the first row: lines 3 and 4 not sent yet, line 2 failed.
        store._conn.execute("UPDATE items SET state = 'failed', error = 'x' WHERE line = 2")
        store._conn.execute("UPDATE runs SET status = 'stopped'")
        info = store.run(run.run_id)
        assert info is not None
        reports, summary = write_reports(store, info, tmp_path / "reports")
    finally:
        store.close()
    assert summary.outcomes["pending"] == 2
    assert reports.failed_csv is not None
    assert [r["device_id"] for r in read_csv(reports.failed_csv)] == [macs[0]["device_id"]]


async def test_an_erase_pin_from_the_manifest_is_masked_in_results_but_kept_to_rerun(
    tenant: Tenant, tmp_path: Path
) -> None:
    tv = devices(tenant, "AppleTV")[0]
    ipad = devices(tenant, "iPad")[0]
    manifest = write(
        tmp_path / "erase.csv",
        f"device_id,action,pin\n{ipad['device_id']},erase,424242\n{tv['device_id']},erase,135790\n",
    )
    result = await run_job(tenant, tmp_path, manifest)
    assert result.reports is not None
    jsonl = result.reports.results_jsonl.read_text()
    assert "424242" not in jsonl and "135790" not in jsonl and '"pin":"******"' in jsonl


async def test_pins_of_every_pass_stay_in_secrets_csv(tenant: Tenant, tmp_path: Path) -> None:
    """A finished run forgets its PINs in the db; a later pass must not drop them from the file."""
    macs = devices(tenant, "Mac")[:4]
    manifest = write(
        tmp_path / "lock.csv",
        "device_id,action\n" + "".join(f"{d['device_id']},lock\n" for d in macs),
    )
    config = tenant.config(tmp_path)
    store = Store(config.db_path)
    try:
        run, _ = start_run(store, manifest, tenant=config.tenant)
        # Lines 4 and 5 ended 'unknown' in an earlier pass (a reset; never applied).
        store._conn.execute("UPDATE items SET state = 'unknown', attempts = 1 WHERE line IN (4, 5)")
        first = await drive(store, run, config)  # locks lines 2 and 3; the run is done
        assert first.reports is not None and first.reports.secrets_csv is not None
        info = store.run(run.run_id)
        assert info is not None and info.status == "done"
        # The user resends the unknown ones: two new PINs arrive.
        await drive(store, info, replace(config, options=RunOptions(resend_unknown=True)))
    finally:
        store.close()
    pins = {int(r["line"]): r["secret"] for r in read_csv(first.reports.secrets_csv)}
    assert sorted(pins) == [2, 3, 4, 5]
    assert sorted(pins.values()) == sorted(tenant.sim.ledger.pins())


async def test_a_command_already_pending_or_done_on_the_device_is_not_a_failure(
    tenant: Tenant, tmp_path: Path
) -> None:
    """Review: a restart already queued ("Command already running") or a Mac already locked
    ("This device is already locked.") counted as failed, went to failed.csv, and running that
    queued the command once more. The device does what the row asks: succeeded, saying so, and
    a lock's PIN read back."""
    macs = [d["device_id"] for d in devices(tenant, "Mac")[:3]]
    rows = "".join(f"{m},restart\n" for m in macs[:2]) + f"{macs[2]},lock\n"
    first = write(tmp_path / "a.csv", "device_id,action\n" + rows)
    again = write(tmp_path / "b.csv", "device_id,action,note\n" + rows.replace("\n", ",again\n"))
    done = await run_job(tenant, tmp_path / "1", first)
    assert done.exit_code == 0
    result = await run_job(tenant, tmp_path / "2", again)
    assert result.exit_code == 0 and result.summary is not None
    assert result.summary.outcomes["succeeded"] == 3
    assert result.reports is not None
    notes = {r["action"]: r["error"] for r in read_csv(result.reports.results_csv)}
    assert notes["restart"] == "already on the device: Command already running"
    assert notes["lock"] == "already on the device: This device is already locked."
    pins = [e.pin for e in tenant.sim.ledger.select(action="lock", method="POST") if e.pin]
    assert result.reports.secrets_csv is not None
    assert [r["secret"] for r in read_csv(result.reports.secrets_csv)] == pins

    # Diff review: a pending command the row's parameters could tell apart is not this row's:
    # a DeleteUser pending for alice says nothing of bob.
    mac = devices(tenant, "Mac")[3]["device_id"]
    alice = write(tmp_path / "c.csv", f"device_id,action,user_name\n{mac},deleteuser,alice\n")
    bob = write(tmp_path / "d.csv", f"device_id,action,user_name\n{mac},deleteuser,bob\n")
    assert (await run_job(tenant, tmp_path / "3", alice)).exit_code == 0
    other = await run_job(tenant, tmp_path / "4", bob)
    assert other.exit_code == 1 and other.reports is not None
    (row,) = read_csv(other.reports.results_csv)
    assert row["outcome"] == "failed" and row["error"] == "Command already running"

    # Review: a second erase while the first was queued failed, and failed.csv, run once the
    # first was done, erased the Mac again. The queued one is this row's, whatever its PIN.
    # Diff review: a second Lost Mode with another phone number read as plain success; the row
    # now says that the one queued runs, with its own parameters.
    mac, ipad = devices(tenant, "Mac")[4]["device_id"], devices(tenant, "iPad")[0]["device_id"]
    cases = [
        (mac, "erase", "pin", "123456", "654321", "PIN"),
        (ipad, "enablelostmode", "phone_number", "555", "777", "parameters"),
    ]
    for n, (device, action, column, first, other, kept) in enumerate(cases):
        head = f"device_id,action,{column}\n{device},{action},"
        once = write(tmp_path / f"once-{n}.csv", f"{head}{first}\n")
        twice = write(tmp_path / f"twice-{n}.csv", f"{head}{other}\n")
        assert (await run_job(tenant, tmp_path / f"once-{n}", once)).exit_code == 0
        second = await run_job(tenant, tmp_path / f"twice-{n}", twice)
        assert second.exit_code == 0 and second.reports is not None
        assert second.reports.failed_csv is None
        (row,) = read_csv(second.reports.results_csv)
        assert row["outcome"] == "succeeded", row
        assert row["error"] == (
            "already on the device: Command already running; not queued again: the one queued "
            f"runs, with the {kept} it was sent"
        )
        applied = tenant.sim.ledger.select(action=action, method="POST", applied=True)
        assert [e.device_id for e in applied] == [device]


async def test_summary_json_says_how_the_pass_ended(tenant: Tenant, tmp_path: Path) -> None:
    """Review: summary.json had no stop reason and no exit code (only the --json stdout did),
    so a script reading it after a cron run could not tell a stop from a finished run."""
    ids = [d["device_id"] for d in devices(tenant)[:6]]
    manifest = write(
        tmp_path / "s.csv", "device_id,action\n" + "".join(f"{i},blankpush\n" for i in ids)
    )
    config = tenant.config(tmp_path, options=RunOptions(concurrency=1))
    store = Store(config.db_path)
    try:
        run, _ = start_run(store, manifest, tenant=config.tenant)
        stopped = await drive(store, run, config, on_engine=stop_after(2))
        assert stopped.reports is not None
        first = json.loads(stopped.reports.summary_json.read_text())
        assert (first["status"], first["exit_code"]) == ("interrupted", 130)
        assert first["stopped"].startswith("interrupted")
        info = store.run(run.run_id)
        assert info is not None
        done = await drive(store, info, config, resumed=True)
        assert done.reports is not None
        last = json.loads(done.reports.summary_json.read_text())
        assert (last["status"], last["stopped"], last["exit_code"]) == ("done", None, 0)
    finally:
        store.close()


async def test_requests_in_flight_at_a_stop_are_not_called_unsent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review: Ctrl-C while 5 slow locks were in flight said `5 rows not sent yet`, and
    results.csv said `pending`, while the server had applied all 5. They are now `sending` in
    results.csv, and the summary says they were in flight and that the resume settles them."""
    from bulkops.cli._render import print_not_done
    from bulkops.sim import Faults
    from tests.conftest import make_sim

    sim = make_sim(devices=20, faults=Faults(slow_rate=1.0, slow_s=1.5, seed=1))
    token = sim.add_token()
    async with sim.running(host="127.0.0.1", port=0) as url:
        tenant = Tenant(sim, url, token)
        ids = sorted(sim.fleet.devices)[:3]
        manifest = blank_pushes(tmp_path / "b.csv", ids)
        config = tenant.config(tmp_path, options=RunOptions(concurrency=3))

        def stop_in_flight(engine: Engine) -> None:  # Ctrl-C, then the grace runs out
            async def watch() -> None:
                while engine.progress.requests < 3:  # all three sent, none answered yet
                    await asyncio.sleep(0.005)
                engine.request_stop()
                await asyncio.sleep(0.2)
                engine.abort_now()

            asyncio.get_running_loop().create_task(watch())

        store = Store(config.db_path)
        try:
            run, _ = start_run(store, manifest, tenant=config.tenant)
            result = await drive(store, run, config, on_engine=stop_in_flight)
        finally:
            store.close()
    assert result.exit_code == 130 and result.summary is not None and result.reports is not None
    assert {r["outcome"] for r in read_csv(result.reports.results_csv)} == {"sending"}
    capsys.readouterr()
    print_not_done(result.summary, result.reports)
    shown = capsys.readouterr().out
    assert "3 requests in flight when it stopped" in shown, shown
    assert "not sent yet" not in shown, shown
