"""Fixes from the new-user review: the canary, Ctrl-C, and unknown outcomes at resume."""

from __future__ import annotations

import csv
import sqlite3
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import pytest

from bulkops.budget import Rate
from bulkops.engine import RunOptions
from bulkops.errors import ConfigError
from bulkops.job import JobConfig, drive, start_run
from bulkops.store import RunInfo, Store, scratch_store
from tests.conftest import Tenant, stop_after, write


def macs(tenant: Tenant) -> list[dict[str, Any]]:
    return sorted(
        (d for d in tenant.sim.fleet.devices.values() if d["platform"] == "Mac"),
        key=lambda d: d["device_id"],
    )


def own(config: JobConfig, run: RunInfo) -> JobConfig:
    """The config with a report folder of the run's own: one folder holds one run's reports."""
    assert config.out_dir is not None
    return replace(config, out_dir=config.out_dir.parent / f"reports-{run.run_id}")


def sent(tenant: Tenant, action: str) -> int:
    return len(tenant.sim.ledger.select(action=action, method="POST"))


async def test_a_canary_larger_than_the_first_completions_still_holds(
    tenant: Tenant, tmp_path: Path
) -> None:
    """The canary waited for only the first completion when it was larger than ~24 (review)."""
    ids = [d["device_id"] for d in macs(tenant)][:60]
    missing = "00000000-0000-4000-8000-00000000dead"  # 404: fails inside the canary
    rows = [*ids[:29], missing, *ids[29:]]
    manifest = write(
        tmp_path / "c.csv", "device_id,action\n" + "".join(f"{i},restart\n" for i in rows)
    )
    config = tenant.config(tmp_path, options=RunOptions(concurrency=8, canary=30))
    store = Store(config.db_path)
    try:
        run, _ = start_run(store, manifest, tenant=config.tenant)
        result = await drive(store, run, config)
    finally:
        store.close()
    assert result.exit_code == 3 and result.stopped and "canary" in result.stopped
    assert sent(tenant, "restart") <= 30 + 8  # the canary and what was already queued, not 60


async def test_after_a_stop_workers_waiting_for_the_budget_send_nothing(
    tenant: Tenant, tmp_path: Path
) -> None:
    ids = [d["device_id"] for d in macs(tenant)][:40]
    manifest = write(
        tmp_path / "s.csv", "device_id,action\n" + "".join(f"{i},restart\n" for i in ids)
    )
    config = tenant.config(tmp_path, rate=Rate(4, 1.0), options=RunOptions(concurrency=8))
    store = Store(config.db_path)
    at_stop: list[int] = []
    try:
        run, _ = start_run(store, manifest, tenant=config.tenant)

        at_two = stop_after(2, then=lambda: at_stop.append(sent(tenant, "restart")))
        result = await drive(store, run, config, on_engine=at_two)
    finally:
        store.close()
    assert result.exit_code == 130
    assert sent(tenant, "restart") - at_stop[0] <= 1  # only what was already on the wire


async def test_an_unsafe_request_cut_off_after_it_landed_is_settled_at_once(tmp_path: Path) -> None:
    """A reset after the server applied a lock: the device's commands show it; the PIN is kept."""
    from bulkops.sim import Faults
    from tests.conftest import make_sim

    lock_route = ("POST", "/api/v1/devices/{device_id}/action/lock")
    sim = make_sim(faults=Faults(reset_after_rate=1.0, routes=frozenset({lock_route})))
    token = sim.add_token()
    async with sim.running() as url:
        tenant = Tenant(sim, url, token)
        a = macs(tenant)[0]
        manifest = write(tmp_path / "u.csv", f"device_id,action\n{a['device_id']},lock\n")
        config = tenant.config(tmp_path)
        store = Store(config.db_path)
        try:
            run, _ = start_run(store, manifest, tenant=config.tenant)
            result = await drive(store, run, config)
        finally:
            store.close()
    assert result.reports is not None and result.summary is not None
    assert result.summary.outcomes["succeeded"] == 1, result.summary.outcomes
    assert sim.ledger.applied_count(a["device_id"], "lock") == 1  # never resent
    assert result.reports.secrets_csv is not None
    assert sim.ledger.pins()[0] in result.reports.secrets_csv.read_text()


async def test_a_new_run_of_an_edited_file_never_erases_a_device_twice(
    tenant: Tenant, tmp_path: Path
) -> None:
    """Review: a run stopped after some erases, the PIN fixed in the file, then ``--new-run``:
    the new run erased those devices again, and resuming the old run erased the rest twice.
    Now a new run skips what the runs it replaces sent (done when it succeeded, not done when
    its outcome is unknown), a chain of them too, and neither a replaced run nor its file as
    it was can be run again without ``--new-run``."""
    import pytest

    from bulkops.errors import ConfigError

    ids = [d["device_id"] for d in macs(tenant)][:8]
    manifest = tmp_path / "erase.csv"
    original = "device_id,action,pin\n" + "".join(f"{i},erase,123456\n" for i in ids)
    write(manifest, original)
    config = tenant.config(tmp_path, rate=Rate(20, 1.0), options=RunOptions(concurrency=1))
    posts = partial(tenant.sim.ledger.select, action="erase", method="POST")
    store = Store(config.db_path)
    try:
        run1, _ = start_run(store, manifest, tenant=config.tenant)
        first = await drive(store, run1, config, on_engine=stop_after(3))
        assert first.exit_code == 130
        sent1 = {e.device_id for e in posts()}
        assert 3 <= len(sent1) <= 4, sent1
        # As if killed with the next erase's intent on disk: it may have left.
        store._conn.execute(
            "UPDATE items SET state = 'sending' WHERE run_id = ? AND line = ?",
            (run1.run_id, len(sent1) + 2),
        )

        write(manifest, original.replace("123456", "654321"))
        run2, resumed = start_run(store, manifest, tenant=config.tenant, new_run=True)
        assert not resumed
        second = await drive(store, run2, own(config, run2), on_engine=stop_after(len(sent1) + 2))
        assert second.plan is not None
        assert second.plan.skips == {"already sent": len(sent1), "sent, outcome unknown": 1}
        assert second.exit_code == 130
        sent2 = {e.device_id for e in posts()} - sent1
        assert sent2, "the second run erased nothing before its stop"

        write(manifest, original.replace("123456", "111111"))  # and once more
        run3, _ = start_run(store, manifest, tenant=config.tenant, new_run=True)
        third = await drive(store, run3, own(config, run3))
        assert third.summary is not None and third.summary.not_applied == {
            "sent, outcome unknown": 1
        }
        assert third.exit_code == 1  # the unknown one is not done

        for replaced in (run1, run2):
            info = store.run(replaced.run_id)
            assert info is not None and info.status == "superseded"
            with pytest.raises(ConfigError, match="replaced by run"):
                await drive(store, info, config, resumed=True)
        write(manifest, original)  # the file as it first was: its run was replaced
        with pytest.raises(ConfigError, match=f"run {run1.run_id} .* replaced by run"):
            start_run(store, manifest, tenant=config.tenant)
    finally:
        store.close()
    per_device = Counter(e.device_id for e in posts())  # every POST, landed or refused
    assert set(per_device) == set(ids) - {ids[len(sent1)]}, per_device  # the unknown one
    assert set(per_device.values()) == {1}, per_device


async def test_a_new_run_checks_a_device_before_resending_an_unsettled_lock(
    tenant: Tenant, tmp_path: Path
) -> None:
    """Review: ``failed.csv`` of a run with unknown locks, run as it says, locked two Macs a
    second time (the first locks had landed; their PINs were in no secrets.csv). A new run now
    reads the commands of each device an earlier run left unsettled: found, it is skipped as
    already sent and its PIN kept; not found, it is sent."""
    ids = [d["device_id"] for d in macs(tenant)][:4]
    first = write(tmp_path / "lock.csv", "device_id,action\n" + "".join(f"{i},lock\n" for i in ids))
    config = tenant.config(tmp_path, options=RunOptions(concurrency=1))
    locks = partial(tenant.sim.ledger.select, action="lock", method="POST")
    store = Store(config.db_path)
    try:
        run1, _ = start_run(store, first, tenant=config.tenant)
        assert (await drive(store, run1, config, on_engine=stop_after(2))).exit_code == 130
        landed = {e.device_id for e in locks()}
        assert len(landed) == 2
        # As if every answer had been lost: two landed, two never left.
        store._conn.execute(
            "UPDATE items SET state = 'unknown', secret = NULL, sent_at = ? WHERE run_id = ?",
            (time.time(), run1.run_id),
        )
        store._conn.execute("UPDATE runs SET status = 'done' WHERE run_id = ?", (run1.run_id,))

        retry = write(  # another file, the same rows, as failed.csv writes them
            tmp_path / "failed.csv", first.read_text().replace(",lock\n", ",lock,retry\n")
        )
        retry.write_text(retry.read_text().replace("device_id,action\n", "device_id,action,note\n"))
        run2, _ = start_run(store, retry, tenant=config.tenant)
        result = await drive(store, run2, own(config, run2))
        assert result.plan is not None and result.plan.skips == {"already sent": 2}
        assert result.exit_code == 0
        rows = {r["device_id"]: r for r in store.results(run2.run_id)}
    finally:
        store.close()
    assert Counter(e.device_id for e in locks()) == dict.fromkeys(ids, 1)  # each locked once
    pins = {e.device_id: e.pin for e in locks()}
    assert result.reports is not None and result.reports.secrets_csv is not None
    with result.reports.secrets_csv.open(encoding="utf-8-sig", newline="") as fh:
        kept = {r["device_id"]: r["secret"] for r in csv.DictReader(fh)}
    assert kept == pins  # the two found on the devices, and the two sent now
    for device in landed:
        assert rows[device]["state"] == "skipped"
        assert "DeviceLock found on the device" in rows[device]["error"]
    for device in set(ids) - landed:
        assert rows[device]["state"] == "succeeded"


async def test_a_deliberate_second_run_is_not_skipped_once_a_check_settled_the_first(
    tenant: Tenant, tmp_path: Path
) -> None:
    """Diff review: the earlier run's rows stayed unknown after a new run had checked the
    devices, so every run within the day checked them again, found the later run's restarts,
    and skipped a deliberate third restart as already sent. The check is written back: the
    earlier rows say what the device showed, and a later run sends."""
    ids = [d["device_id"] for d in macs(tenant)][:4]
    rows = "".join(f"{i},restart\n" for i in ids)
    config = tenant.config(tmp_path, options=RunOptions(concurrency=1))
    restarts = partial(tenant.sim.ledger.select, action="restart", method="POST")
    store = Store(config.db_path)
    try:
        run1, _ = start_run(
            store, write(tmp_path / "a.csv", "device_id,action\n" + rows), tenant=config.tenant
        )
        assert (await drive(store, run1, config, on_engine=stop_after(2))).exit_code == 130
        landed = {e.device_id for e in restarts()}
        store._conn.execute(
            "UPDATE items SET state = 'unknown', sent_at = ? WHERE run_id = ?",
            (time.time(), run1.run_id),
        )
        store._conn.execute("UPDATE runs SET status = 'done' WHERE run_id = ?", (run1.run_id,))
        second = write(tmp_path / "b.csv", "device_id,action,note\n" + rows.replace("\n", ",b\n"))
        run2, _ = start_run(store, second, tenant=config.tenant)
        result2 = await drive(store, run2, own(config, run2))
        assert result2.plan is not None and result2.plan.skips == {"already sent": 2}
        earlier = {r["device_id"]: r for r in store.results(run1.run_id)}
        assert {d for d, r in earlier.items() if r["state"] == "succeeded"} == landed
        assert {r["state"] for d, r in earlier.items() if d not in landed} == {"failed"}
        assert all("when run " + run2.run_id in r["error"] for r in earlier.values())

        third = write(tmp_path / "c.csv", "device_id,action,note\n" + rows.replace("\n", ",c\n"))
        run3, _ = start_run(store, third, tenant=config.tenant)
        result3 = await drive(store, run3, own(config, run3))
        assert result3.plan is not None and result3.plan.skips == {}
    finally:
        store.close()
    assert Counter(e.device_id for e in restarts()) == dict.fromkeys(ids, 2)  # runs 1-2, then 3


async def test_failed_csv_run_from_another_folder_checks_the_first_runs_database(
    tenant: Tenant, tmp_path: Path
) -> None:
    """Noted at stop 14: the check of unsettled sends read only the new run's own database, and
    ``failed.csv`` run from another folder gets another ``--db``: its locks were sent again. The
    index of runs names the first database; the check reads it (and writes back there what it
    found), and skips the rows whose lock is on the device, or whose run is still working."""
    from bulkops.store._lock import RunLock

    ids = [d["device_id"] for d in macs(tenant)][:4]
    first = write(tmp_path / "lock.csv", "device_id,action\n" + "".join(f"{i},lock\n" for i in ids))
    config1 = tenant.config(tmp_path, options=RunOptions(concurrency=1))
    index = config1.runs_index()
    locks = partial(tenant.sim.ledger.select, action="lock", method="POST")
    store1 = Store(config1.db_path)
    try:
        run1, _ = start_run(store1, first, tenant=config1.tenant, index=index)
        assert (await drive(store1, run1, config1, on_engine=stop_after(2))).exit_code == 130
        landed = {e.device_id for e in locks()}
        store1._conn.execute(  # as if every answer had been lost: two landed, two never left
            "UPDATE items SET state = 'unknown', secret = NULL, sent_at = ? WHERE run_id = ?",
            (time.time(), run1.run_id),
        )
    finally:
        store1.close()

    elsewhere = tmp_path / "home"
    retry = write(tmp_path / "failed.csv", first.read_text().replace("action\n", "action,note\n"))
    retry.write_text(retry.read_text().replace(",lock\n", ",lock,retry\n"))

    async def run_from(folder: Path, *, plan: bool = False) -> tuple[Any, dict[str, Any]]:
        config = tenant.config(
            folder, options=RunOptions(concurrency=1), budget_db=tmp_path / "b.db"
        )
        with ExitStack() as stack:  # a plan works in a throwaway database, as `plan` does
            if plan:
                store = stack.enter_context(scratch_store(config.db_path))
            else:
                store = Store(config.db_path)
                stack.callback(store.close)
            # the index would refuse the same content again: a note per folder
            manifest = write(folder / "failed.csv", retry.read_text().replace("retry", folder.name))
            run, _ = start_run(store, manifest, tenant=config.tenant, index=index)
            result = await drive(store, run, config, dry_run=plan)
            return result, {r["device_id"]: r for r in store.results(run.run_id)}

    held = RunLock(config1.db_path)  # the first run still working: nothing may be judged
    held.acquire()
    try:
        with pytest.raises(
            ConfigError,
            match=r"is in use by another bulkops process, and its run .* sent lock to 4 devices",
        ):
            await run_from(elsewhere / "a")
    finally:
        held.release()
    assert len(locks()) == len(landed)  # nothing sent

    result, rows = await run_from(elsewhere / "p", plan=True)  # shows the same, keeps nothing
    assert result.plan is not None and result.plan.skips == {"already sent": 2}
    store1 = Store(config1.db_path)
    try:
        assert {r["state"] for r in store1.results(run1.run_id)} == {"unknown"}
    finally:
        store1.close()

    result, rows = await run_from(elsewhere / "b")
    assert result.plan is not None and result.plan.skips == {"already sent": 2}
    assert Counter(e.device_id for e in locks()) == dict.fromkeys(ids, 1)  # each locked once
    assert {d for d, r in rows.items() if r["state"] == "skipped"} == landed
    assert result.reports is not None and result.reports.secrets_csv is not None
    with result.reports.secrets_csv.open(encoding="utf-8-sig", newline="") as fh:
        kept = {r["device_id"]: r["secret"] for r in csv.DictReader(fh)}
    assert kept == {e.device_id: e.pin for e in locks()}  # found on the devices, and sent now
    store1 = Store(config1.db_path)
    try:  # written back where the first run keeps them
        earlier = {r["device_id"]: r["state"] for r in store1.results(run1.run_id)}
    finally:
        store1.close()
    assert earlier == {d: "succeeded" if d in landed else "failed" for d in ids}


async def test_another_database_is_checked_under_its_lock_cleanly_and_within_the_day(
    tenant: Tenant,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Diff review of the check across databases: (1) the other database was unlocked while its
    devices were read, so its run could resume and send meanwhile; (2) reading it left -wal and
    -shm files beside it; (3) rows of any age were written back, a 3-day-old lock among them;
    (4) a database that could not be read was passed over in silence."""
    import bulkops._replaced as replaced_module
    from bulkops.store._lock import RunLock

    ids = [d["device_id"] for d in macs(tenant)][:4]
    first = write(tmp_path / "lock.csv", "device_id,action\n" + "".join(f"{i},lock\n" for i in ids))
    config1 = tenant.config(tmp_path, options=RunOptions(concurrency=1))
    index = config1.runs_index()
    store1 = Store(config1.db_path)
    try:
        run1, _ = start_run(store1, first, tenant=config1.tenant, index=index)
        assert (await drive(store1, run1, config1, on_engine=stop_after(2))).exit_code == 130
        store1._conn.execute(
            "UPDATE items SET state = 'unknown', secret = NULL, sent_at = ? WHERE run_id = ?",
            (time.time(), run1.run_id),
        )
        store1._conn.execute(  # the last one: three days ago, another job
            "UPDATE items SET sent_at = ? WHERE run_id = ? AND device_id = ?",
            (time.time() - 3 * 86400, run1.run_id, ids[3]),
        )
    finally:
        store1.close()
    broken = tmp_path / "broken" / "bulkops.db"
    broken.parent.mkdir()
    broken.write_bytes(b"not a database at all" * 100)
    with index.open("ab") as fh:
        fh.write(orjson.dumps({"db": str(broken), "run_id": "r", "tenant": config1.tenant}) + b"\n")

    older = tmp_path / "older" / "bulkops.db"  # another version's database: never changed
    older.parent.mkdir()
    with sqlite3.connect(older) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    conn.close()
    with index.open("ab") as fh:
        fh.write(orjson.dumps({"db": str(older), "run_id": "o", "tenant": config1.tenant}) + b"\n")

    def beside() -> dict[str, bytes]:
        found = [*tmp_path.glob("run.db*"), *older.parent.iterdir()]
        return {p.name: p.read_bytes() for p in found if p.suffix != ".db" or p == older}

    before = beside()
    plan_folder = tmp_path / "plan"
    plan_folder.mkdir()
    plan_config = tenant.config(plan_folder, options=RunOptions(concurrency=1))
    plan_manifest = write(plan_folder / "p.csv", first.read_text().replace("lock\n", "lock,p\n"))
    plan_manifest.write_text(plan_manifest.read_text().replace("action\n", "action,note\n", 1))
    with scratch_store(plan_config.db_path) as scratch:
        planned, _ = start_run(scratch, plan_manifest, tenant=config1.tenant, index=index)
        shown = await drive(scratch, planned, plan_config, dry_run=True)
    assert shown.plan is not None and shown.plan.skips == {"already sent": 2}
    assert beside() == before  # diff review: a plan took the lock, wrote its pid, made files

    locked_during_check: list[bool] = []
    real = replaced_module.reconcile

    async def watching(*args: Any, **kwargs: Any) -> Any:
        try:
            RunLock(config1.db_path).acquire()
        except ConfigError:
            locked_during_check.append(True)
        else:
            locked_during_check.append(False)
        return await real(*args, **kwargs)

    monkeypatch.setattr(replaced_module, "reconcile", watching)
    other = tmp_path / "home"
    other.mkdir()
    config = tenant.config(other, options=RunOptions(concurrency=1), budget_db=tmp_path / "b.db")
    retry = write(other / "failed.csv", first.read_text().replace("action\n", "action,note\n"))
    retry.write_text(retry.read_text().replace(",lock\n", ",lock,again\n"))
    store = Store(config.db_path)
    try:
        run, _ = start_run(store, retry, tenant=config.tenant, index=index)
        with caplog.at_level("WARNING", logger="bulkops"):
            result = await drive(store, run, config)
    finally:
        store.close()
    assert locked_during_check == [True, True, True]  # the three of the last day, each locked
    assert result.plan is not None and result.plan.skips == {"already sent": 2}
    assert sorted(p.name for p in tmp_path.glob("run.db*")) == ["run.db", "run.db.lock"]
    store1 = Store(config1.db_path)
    try:
        earlier = {r["device_id"]: r for r in store1.results(run1.run_id)}
    finally:
        store1.close()
    assert earlier[ids[3]]["state"] == "unknown"  # older than the day: not this check's to judge
    assert f"(--db {config.db_path.resolve()}) checked the device" in earlier[ids[0]]["error"]
    said = [r.getMessage() for r in caplog.records if "could not check" in r.getMessage()]
    assert len(said) == 2 and str(broken) in said[0] and str(older) in said[1], said
    assert "another version of bulkops" in said[1]
    after = beside()  # the older database: no table, no -wal/-shm added by the run either
    assert after["bulkops.db"] == before["bulkops.db"]
    assert not {"bulkops.db-wal", "bulkops.db-shm", "run.db-wal", "run.db-shm"} & set(after)


async def test_a_resume_checks_the_sends_left_in_flight_several_at_once(
    tenant: Tenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review: a resume read the devices of the items a killed run left in flight one at a
    time: 5 locks against an API answering in 25 s took 4 minutes. The reads now overlap, as
    many as the run sends at once; each item is still settled from its device, none resent."""
    import asyncio

    import bulkops.engine as engine_module

    ids = [d["device_id"] for d in macs(tenant)][:6]
    manifest = write(tmp_path / "l.csv", "device_id,action\n" + "".join(f"{i},lock\n" for i in ids))
    config = tenant.config(tmp_path, options=RunOptions(concurrency=4))
    active, most = 0, 0
    real = engine_module.reconcile

    async def slow(*args: Any, **kwargs: Any) -> Any:
        nonlocal active, most
        active += 1
        most = max(most, active)
        try:
            await asyncio.sleep(0.05)  # a slow API: the reads overlap, or take turns
            return await real(*args, **kwargs)
        finally:
            active -= 1

    store = Store(config.db_path)
    try:
        run, _ = start_run(store, manifest, tenant=config.tenant)
        assert (await drive(store, run, config)).exit_code == 0
        store._conn.execute(  # as if killed with every lock in flight
            "UPDATE items SET state = 'sending', secret = NULL WHERE run_id = ?", (run.run_id,)
        )
        store._conn.execute(
            "UPDATE runs SET status = 'interrupted' WHERE run_id = ?", (run.run_id,)
        )
        monkeypatch.setattr(engine_module, "reconcile", slow)
        info = store.run(run.run_id)
        assert info is not None
        again = await drive(store, info, own(config, info), resumed=True)
        states = Counter(r["state"] for r in store.results(run.run_id))
    finally:
        store.close()
    assert again.exit_code == 0 and states == {"succeeded": 6}, states
    assert most == 4  # four at once: the run's concurrency
    assert len(tenant.sim.ledger.select(action="lock", method="POST")) == 6  # none resent
