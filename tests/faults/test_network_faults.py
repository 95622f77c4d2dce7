"""Network faults over a mixed manifest: every item ends with an outcome, nothing unsafe is resent.

The simulator answers 10% of requests with a 5xx, resets 2% before handling them and 3% after
applying them, and answers 3% only after the client's timeout. The ledger is the ground truth:
it shows which requests reached the application, so a second request of an unsafe action after
one of those is a blind resend, and there must be none.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp

from bulkops.job import drive, start_run
from bulkops.retry import RetryPolicy
from bulkops.sim import Faults
from bulkops.store import Store
from tests.conftest import Tenant, make_sim

from .kit import (
    OUTCOMES,
    by_item,
    drive_to_end,
    fast_config,
    one_action,
    read_results,
    sends,
    write_csv,
)

TIMEOUT_S = 0.5  # the client's; slow answers come after SLOW_S
SLOW_S = 1.0
CONCURRENCY = 8
POLICY = RetryPolicy()  # the engine's defaults: 3 attempts, full jitter from 0.5 s


async def test_reset_after_apply_makes_an_unsafe_item_unknown(tmp_path: Path) -> None:
    """Every request resets after the server applied it: unknown, sent once, never repeated."""
    sim = make_sim(devices=30, faults=Faults(reset_after_rate=1.0, seed=1))
    token = sim.add_token()
    async with sim.running() as url:
        ids = sorted(sim.fleet.devices)[:6]
        manifest = write_csv(tmp_path / "job.csv", one_action(ids, "restart"))
        runs = await drive_to_end(fast_config(Tenant(sim, url, token), tmp_path), manifest)
    results = read_results(runs.last)
    assert [r["outcome"] for r in results] == ["unknown"] * 6
    assert all("connection lost after sending" in r["error"] for r in results)
    assert sim.ledger.applied_count(action="restart") == 6
    assert len(sim.ledger) == 6


async def test_breaker_pause_leaves_the_items_it_interrupts_for_the_resume(
    tmp_path: Path,
) -> None:
    """Every blankpush gets a 5xx: the breaker pauses the run (exit 3, "paused").

    An item is ``failed`` only after its third attempt; one whose retry the pause cut short
    stays open, so the resume gives it the attempts it has left.
    """
    route = ("POST", "/api/v1/devices/{device_id}/action/blankpush")
    sim = make_sim(devices=60, faults=Faults(error_5xx_rate=1.0, routes=frozenset({route})))
    token = sim.add_token()
    async with sim.running() as url:
        ids = sorted(sim.fleet.devices)[:40]
        manifest = write_csv(tmp_path / "job.csv", one_action(ids, "blankpush"))
        config = fast_config(Tenant(sim, url, token), tmp_path, concurrency=CONCURRENCY)
        runs = await drive_to_end(config, manifest, max_passes=1)
    result = runs.last
    assert result.exit_code == 3 and result.stopped is not None and "paused" in result.stopped
    results = read_results(result)
    tried = {k[0]: len(sends(v)) for k, v in by_item(sim.ledger.entries).items()}
    failed = [r for r in results if r["outcome"] == "failed"]
    still_open = [r for r in results if r["outcome"] not in OUTCOMES]
    assert failed and still_open
    for r in failed:
        assert tried[r["device_id"]] == POLICY.max_attempts, r
        assert "on all 3 attempts" in r["error"], r
    assert any(0 < tried.get(r["device_id"], 0) < POLICY.max_attempts for r in still_open)
    assert len(failed) + len(still_open) == len(ids)


async def test_delete_sent_again_after_a_stop_takes_404_as_already_deleted(
    tmp_path: Path,
) -> None:
    """The first DELETE reached the server, then the process stopped before the answer.

    DELETE is safe to repeat, so the resume sends it again and gets 404: the device is gone
    because of our first request, which is the outcome the row asked for.
    """
    sim = make_sim(devices=20)
    token = sim.add_token()
    async with sim.running() as url:
        tenant = Tenant(sim, url, token)
        gone, kept = sorted(sim.fleet.devices)[:2]
        manifest = write_csv(tmp_path / "job.csv", one_action([gone, kept], "delete"))
        config = fast_config(tenant, tmp_path)
        store = Store(config.db_path)
        try:
            run, _ = start_run(store, manifest, tenant=config.tenant)
            headers = {"Authorization": f"Bearer {token}"}
            async with (  # our first DELETE …
                aiohttp.ClientSession(headers=headers) as s,
                s.delete(f"{url}/api/v1/devices/{gone}") as resp,
            ):
                assert resp.status in (200, 204)
            store._conn.execute(  # … whose intent was committed before the process died
                "UPDATE items SET state = 'sending', attempts = 1, device_id = ?,"
                " sent_at = strftime('%s', 'now') - 1 WHERE line = 2",
                (gone,),
            )
            result = await drive(store, run, config)
        finally:
            store.close()
    rows = {r["device_id"]: r for r in read_results(result)}
    assert rows[gone]["outcome"] == "succeeded", rows[gone]["error"]
    assert "already deleted" in rows[gone]["error"]
    assert rows[kept]["outcome"] == "succeeded"
    assert result.exit_code == 0
