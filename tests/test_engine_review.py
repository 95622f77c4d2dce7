"""Fixes from the new-user review: the canary, Ctrl-C, and unknown outcomes at resume."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from bulkops.budget import Rate
from bulkops.engine import Engine, RunOptions
from bulkops.job import drive, start_run
from bulkops.store import Store
from tests.conftest import Tenant, write


def macs(tenant: Tenant) -> list[dict[str, Any]]:
    return sorted(
        (d for d in tenant.sim.fleet.devices.values() if d["platform"] == "Mac"),
        key=lambda d: d["device_id"],
    )


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

        def stop_after_two(engine: Engine) -> None:
            async def watch() -> None:
                while engine.progress.done < 2:
                    await asyncio.sleep(0.005)
                at_stop.append(sent(tenant, "restart"))
                engine.request_stop()

            asyncio.get_running_loop().create_task(watch())

        result = await drive(store, run, config, on_engine=stop_after_two)
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
