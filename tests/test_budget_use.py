"""The budget against the simulated gateway, time-compressed: never over, also across restarts.

With ``time_scale=3600`` the simulator's hour lasts one real second, aligned to whole seconds, and
the engine's budget uses the same one-second window: five hours of budget in five seconds.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from bulkops.budget import Rate
from bulkops.engine import Engine, RunOptions
from bulkops.job import drive, start_run
from bulkops.store import Store
from tests.conftest import Tenant, make_sim

CAP = 100  # the simulated tenant's hourly cap (one real second here)
BUDGET = 90  # ours: a reserve of 10% for the tenant's other integrations


def blankpush_manifest(tmp: Path, tenant: Tenant, n: int) -> Path:
    ids = sorted(tenant.sim.fleet.devices)[:n]
    path = tmp / "job.csv"
    path.write_text("device_id,action\n" + "".join(f"{i},blankpush\n" for i in ids))
    return path


async def test_compressed_run_never_exceeds_the_budget_in_any_window(tmp_path: Path) -> None:
    sim = make_sim(devices=3 * BUDGET, hour_limit=CAP, time_scale=3600.0, second_limit=10_000)
    token = sim.add_token()
    async with sim.running() as url:
        tenant = Tenant(sim, url, token)
        manifest = blankpush_manifest(tmp_path, tenant, 3 * BUDGET)
        config = tenant.config(
            tmp_path, rate=Rate(BUDGET, 1.0), per_second=1000, options=RunOptions(concurrency=16)
        )
        store = Store(config.db_path)
        try:
            run, _ = start_run(store, manifest, tenant=config.tenant)
            result = await drive(store, run, config)
        finally:
            store.close()
    assert result.exit_code == 0
    assert result.summary.outcomes["succeeded"] == 3 * BUDGET
    assert sim.ledger.outcomes().get("rate_limited", 0) == 0  # no self-inflicted 429
    assert sim.ledger.max_per_window(3600.0) <= BUDGET


async def test_restarts_mid_window_do_not_burst_again(tmp_path: Path) -> None:
    """Five stop/resume cycles, each a new process-like Budget on the same send history."""
    sim = make_sim(devices=3 * BUDGET, hour_limit=CAP, time_scale=3600.0, second_limit=10_000)
    token = sim.add_token()
    async with sim.running() as url:
        tenant = Tenant(sim, url, token)
        manifest = blankpush_manifest(tmp_path, tenant, 3 * BUDGET)
        config = tenant.config(
            tmp_path, rate=Rate(BUDGET, 1.0), per_second=1000, options=RunOptions(concurrency=16)
        )
        store = Store(config.db_path)
        try:
            run, _ = start_run(store, manifest, tenant=config.tenant)
            restarts = 0
            while True:
                target = min(run.total, (restarts + 1) * 15)  # several restarts per window

                def stop_at(engine: Engine, target: int = target) -> None:
                    async def watch() -> None:
                        while engine.progress.done < target:
                            await asyncio.sleep(0.001)
                        engine.request_stop()

                    asyncio.get_running_loop().create_task(watch())

                result = await drive(store, run, config, on_engine=stop_at)
                if result.exit_code != 130:
                    break
                restarts += 1
                info = store.run(run.run_id)
                assert info is not None
                run = info
        finally:
            store.close()
    assert restarts >= 10
    assert result.exit_code == 0
    assert sim.ledger.applied_count() == 3 * BUDGET  # each item once, none lost
    assert sim.ledger.outcomes().get("rate_limited", 0) == 0
    assert sim.ledger.max_per_window(3600.0) <= BUDGET
