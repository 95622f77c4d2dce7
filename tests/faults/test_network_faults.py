"""Network faults over a mixed manifest: every item ends with an outcome, nothing unsafe is resent.

The simulator answers 10% of requests with a 5xx, resets 2% before handling them and 3% after
applying them, and answers 3% only after the client's timeout. The ledger is the ground truth:
it shows which requests reached the application, so a second request of an unsafe action after
one of those is a blind resend, and there must be none.
"""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from bulkops.job import JobResult, drive, start_run
from bulkops.retry import RetryPolicy
from bulkops.sim import Faults, LedgerEntry, Simulator
from bulkops.store import Store
from tests.conftest import Tenant, make_sim

from .kit import (
    OUTCOMES,
    UNSAFE,
    blind_resends,
    by_item,
    drive_to_end,
    fast_config,
    figures,
    mixed_rows,
    one_action,
    read_results,
    read_secrets,
    sends,
    unsafe_second_sends,
    write_csv,
)

TIMEOUT_S = 0.5  # the client's; slow answers come after SLOW_S
SLOW_S = 1.0
CONCURRENCY = 8
PER_KIND = 25  # 11 kinds of row: 275 items
FAULTS = Faults(
    error_5xx_rate=0.10,
    reset_before_rate=0.02,
    reset_after_rate=0.03,
    slow_rate=0.03,
    slow_s=SLOW_S,
    seed=11,
)
POLICY = RetryPolicy()  # the engine's defaults: 3 attempts, full jitter from 0.5 s


async def test_reset_after_apply_makes_an_unsafe_item_unknown(tmp_path: Path) -> None:
    """Every request resets after the server applied it: unknown, sent once, never repeated.

    The engine then tries to settle each one from the device's command history; those reads
    reset too, so the items stay unknown, and nothing but reads follows the six restarts.
    """
    sim = make_sim(devices=30, faults=Faults(reset_after_rate=1.0, seed=1))
    token = sim.add_token()
    async with sim.running() as url:
        ids = sorted(sim.fleet.devices)[:6]
        manifest = write_csv(tmp_path / "job.csv", one_action(ids, "restart"))
        runs = await drive_to_end(fast_config(Tenant(sim, url, token), tmp_path), manifest)
    results = read_results(runs.last)
    assert [r["outcome"] for r in results] == ["unknown"] * 6
    assert all("connection lost after sending" in r["error"] for r in results)
    # …and what the read of the device's commands found, or why it could not tell.
    assert all("could not read the device's commands" in r["error"] for r in results), results
    assert sim.ledger.applied_count(action="restart") == 6
    assert len(sim.ledger.select(method="POST")) == 6
    reads = {e.path.rsplit("/", 1)[-1] for e in sim.ledger if e.method != "POST"}
    assert reads <= {"commands"}


async def one_pass_through_5xx(
    tmp_path: Path, action: str, *, rate: float, rows: int
) -> tuple[Simulator, list[str], JobResult]:
    """One pass of ``rows`` items of ``action``, whose POSTs get a 5xx at ``rate``."""
    route = ("POST", f"/api/v1/devices/{{device_id}}/action/{action}")
    sim = make_sim(devices=rows + 10, faults=Faults(error_5xx_rate=rate, routes=frozenset({route})))
    token = sim.add_token()
    async with sim.running() as url:
        ids = sorted(sim.fleet.devices)[:rows]
        manifest = write_csv(tmp_path / "job.csv", one_action(ids, action))
        config = fast_config(Tenant(sim, url, token), tmp_path, concurrency=CONCURRENCY)
        runs = await drive_to_end(config, manifest, max_passes=1)
    return sim, ids, runs.last


async def test_breaker_pause_leaves_the_items_it_interrupts_for_the_resume(
    tmp_path: Path,
) -> None:
    """Every blankpush gets a 5xx: the breaker pauses the run (exit 3, "paused").

    An item is ``failed`` only after its third attempt; one whose retry the pause cut short
    stays open, so the resume gives it the attempts it has left.
    """
    sim, ids, result = await one_pass_through_5xx(tmp_path, "blankpush", rate=1.0, rows=40)
    assert result.exit_code == 3 and result.stopped is not None and "paused" in result.stopped
    results = read_results(result)
    tried = {k[0]: len(sends(v)) for k, v in by_item(sim.ledger.entries).items()}
    failed = [r for r in results if r["outcome"] == "failed"]
    still_open = [r for r in results if r["outcome"] not in OUTCOMES]
    assert failed and still_open
    for r in failed:
        assert tried[r["device_id"]] == POLICY.max_attempts, r
        assert "on 3 attempts in a row" in r["error"], r
    assert any(0 < tried.get(r["device_id"], 0) < POLICY.max_attempts for r in still_open)
    assert len(failed) + len(still_open) == len(ids)


async def test_breaker_counts_errors_left_unknown_for_actions_not_retried(
    tmp_path: Path,
) -> None:
    """Review: at 60% of 5xx a blankpush run paused (its retries tripped the breaker), but a
    restart of 60 Macs ran to the end, 40 of them unknown: a restart is never retried, so the
    breaker never saw a retry. Errors left unknown now count as retries do."""
    sim, _, result = await one_pass_through_5xx(tmp_path, "restart", rate=0.6, rows=150)
    assert result.exit_code == 3 and result.stopped is not None, result.stopped
    assert "left unknown" in result.stopped and "paused" in result.stopped, result.stopped
    outcomes = Counter(r["outcome"] for r in read_results(result))
    assert outcomes["unknown"] and outcomes["pending"] > 50, outcomes  # stopped early
    assert len(sim.ledger.select(method="POST")) < 100


async def test_an_update_answered_with_an_unreadable_200_is_read_back_before_it_fails(
    tmp_path: Path,
) -> None:
    """Review: a PATCH answered `200` with a text body (applied) was retried, met 5xx, and was
    reported failed "server error (5xx) on all 3 attempts" while the device had the new asset
    tag. A write that may have landed is now read back before it is called failed."""
    route = ("PATCH", "/api/v1/devices/{device_id}")
    odd = Faults(odd_responses_rate=1.0, odd_kinds=("text",), routes=frozenset({route}))
    sim = make_sim(devices=20, faults=odd)
    token = sim.add_token()
    async with sim.running() as url:
        ids = sorted(sim.fleet.devices)[:3]
        rows = [
            {"device_id": i, "action": "update", "asset_tag": f"T-{n}"} for n, i in enumerate(ids)
        ]
        manifest = write_csv(tmp_path / "job.csv", rows)
        config = fast_config(Tenant(sim, url, token), tmp_path, concurrency=CONCURRENCY)
        runs = await drive_to_end(config, manifest, max_passes=1)
    results = read_results(runs.last)
    assert [r["outcome"] for r in results] == ["succeeded"] * 3, results
    assert all(
        r["error"].startswith("applied (read back): an attempt was answered HTTP 200")
        for r in results
    )
    assert [sim.fleet.devices[i]["asset_tag"] for i in ids] == ["T-0", "T-1", "T-2"]


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


async def test_fault_run_every_item_has_an_outcome_and_no_unsafe_resend(tmp_path: Path) -> None:
    sim = make_sim(devices=300, faults=FAULTS)
    token = sim.add_token()
    engine_starts: list[int] = []  # ledger length when each pass's engine started
    async with sim.running() as url:
        rows = mixed_rows(sim, per_kind=PER_KIND)
        manifest = write_csv(tmp_path / "job.csv", rows)
        config = fast_config(
            Tenant(sim, url, token), tmp_path, concurrency=CONCURRENCY, timeout_s=TIMEOUT_S
        )
        runs = await drive_to_end(
            config, manifest, on_engine=lambda _: engine_starts.append(len(sim.ledger))
        )

    result = runs.last
    results = read_results(result)
    entries = list(sim.ledger.entries)
    items = by_item(entries)
    faults = Counter(e.fault.split(":")[0] for e in entries if e.fault)
    outcomes = Counter(r["outcome"] for r in results)

    # The faults really happened (the injector is seeded: its sequence of draws is fixed).
    assert faults["5xx"] >= 15 and faults["reset_before"] >= 2, faults
    assert faults["reset_after"] >= 3 and faults["slow"] >= 2, faults

    # Every item ends with an outcome; all but plain successes say why.
    assert len(results) == len(rows)
    assert {r["outcome"] for r in results} <= OUTCOMES, outcomes
    assert result.stopped is None and result.exit_code == 1
    for r in results:
        if r["outcome"] != "succeeded":
            assert r["error"].strip(), r
        assert "retrying" not in r["error"], r  # never reported as given up mid-retry
    # Unknown is only for actions that must not run twice, and says it was not resent.
    unknown = [r for r in results if r["outcome"] == "unknown"]
    assert unknown
    for r in unknown:  # decided now ("… not resent"), or by reconciliation on a resume
        assert r["action"] in UNSAFE, r
        assert "not resent" in r["error"] or r["error"].startswith("outcome unknown"), r
    for r in results:  # a safe action fails only after its attempts, or on a 4xx answer
        if r["action"] not in UNSAFE and r["outcome"] == "failed":
            assert "attempts" in r["error"] or "quota" in r["error"] or "HTTP 4" in r["error"], r

    # No blind resend, from the ledger rather than from what the engine believes.
    assert blind_resends(items) == 0
    assert unsafe_second_sends(items) == 0

    # At most 3 attempts per item in each pass (a resume after a pause starts afresh).
    def pass_of(e: LedgerEntry) -> int:
        return sum(1 for start in engine_starts if e.seq > start)

    per_pass = Counter((k, pass_of(e)) for k, reqs in items.items() for e in sends(reqs))
    assert max(per_pass.values()) <= POLICY.max_attempts, per_pass.most_common(3)
    attempts = {k: len(sends(v)) for k, v in items.items()}
    retries = sum(n - 1 for n in attempts.values())
    assert retries > 0

    # The retry quota (500 tokens; a retry costs 5, 10 after a timeout; a success gives 1
    # back) never went below zero: what the retries cost is covered by capacity + refunds.
    cost = sum(10 if e.fault == "slow" else 5 for reqs in items.values() for e in sends(reqs)[:-1])
    refunds = sum(1 for e in entries if e.applied and e.fault is None)
    assert cost <= 500 + refunds, (cost, refunds)

    # Full jitter: after an immediate failure the retry comes within [0, ceiling], spread over
    # that range (a fixed delay would put every ratio at one point).
    ratios = []
    for reqs in items.values():
        s = sends(reqs)
        for attempt, (a, b) in enumerate(itertools.pairwise(s), start=1):
            if a.outcome in ("fault_5xx", "reset_before", "reset_after") and (
                pass_of(a) == pass_of(b)
            ):
                ceiling = min(POLICY.base_s * 2 ** (attempt - 1), POLICY.cap_s)
                ratios.append((b.t_real - a.t_real) / ceiling)
    assert len(ratios) >= 15, len(ratios)
    assert max(ratios) <= 1.0 + 0.25 / POLICY.base_s, max(ratios)  # + 0.25 s of scheduling
    below_half = sum(1 for r in ratios if r < 0.5)
    assert 0.1 * len(ratios) <= below_half <= 0.9 * len(ratios), sorted(ratios)

    # Report and ledger agree: an unsafe item reported succeeded ran exactly once, one
    # reported failed never ran.
    reported = {(r["device_id"], r["action"]): r for r in results}
    for key, reqs in items.items():
        applied = sum(1 for e in reqs if e.applied)
        if key[1] in UNSAFE and reported[key]["outcome"] == "succeeded":
            assert applied == 1, (reported[key], reqs)
        if key[1] in UNSAFE and reported[key]["outcome"] == "failed":
            assert applied == 0, (reported[key], reqs)

    # Every lock PIN the simulator issued is in secrets.csv, or its item is reported unknown.
    kept = {s["secret"] for s in read_secrets(result)}
    unknown_devices = {r["device_id"] for r in unknown}
    lost = [
        e for e in entries if e.pin and e.pin not in kept and e.device_id not in unknown_devices
    ]
    assert lost == [], lost

    figures(
        "network faults",
        items=len(rows),
        requests=len(entries),
        faults=dict(sorted(faults.items())),
        outcomes=dict(sorted(outcomes.items())),
        retries=retries,
        retried_items=sum(1 for n in attempts.values() if n > 1),
        max_attempts_per_pass=max(per_pass.values()),
        quota_cost=cost,
        unknown=len(unknown),
        unknown_by_action=dict(sorted(Counter(r["action"] for r in unknown).items())),
        blind_resends_unsafe=blind_resends(items),
        second_sends_unsafe=unsafe_second_sends(items),
        breaker_pauses=len(runs.stops),
        jitter_samples=len(ratios),
        jitter_below_half=f"{below_half / len(ratios):.2f}",
    )


async def test_every_request_the_server_saw_was_granted_and_seen_by_the_engine(
    tmp_path: Path,
) -> None:
    """Half the DELETEs reset after the server deleted; connections are kept alive and reused.

    No request may leave behind the engine's back: the server's count equals the budget's
    grants and the attempts the report shows, and a 404 on the engine's own retry reads as
    "already deleted" (our first request deleted it), never as "device not found".
    """
    route = ("DELETE", "/api/v1/devices/{device_id}")
    sim = make_sim(
        devices=40, faults=Faults(reset_after_rate=0.5, routes=frozenset({route}), seed=2)
    )
    token = sim.add_token()
    async with sim.running() as url:
        ids = sorted(sim.fleet.devices)[:30]
        manifest = write_csv(tmp_path / "job.csv", one_action(ids, "delete"))
        config = fast_config(Tenant(sim, url, token), tmp_path, concurrency=2)
        runs = await drive_to_end(config, manifest, max_passes=1)
    results = read_results(runs.last)
    deletes = [e for e in sim.ledger.entries if e.method == "DELETE"]
    resets = sum(1 for e in deletes if e.outcome == "reset_after")
    assert resets >= 5
    assert runs.last.summary is not None
    assert runs.last.summary.requests == len(sim.ledger)  # the budget granted every one
    assert sum(int(r["attempts"]) for r in results) == len(deletes)
    for r in results:  # a 404 on our own retry is "already deleted", never "not found"
        assert r["outcome"] == "succeeded" or "on 3 attempts in a row" in r["error"], r
        assert "not found" not in r["error"], r
    assert sum(1 for r in results if "already deleted" in r["error"]) >= 1


async def test_reads_that_keep_failing_mid_resolution_are_called_a_passing_fault(
    tmp_path: Path,
) -> None:
    """Review: a read reset on every try during resolution ended with "cannot reach the tenant
    … check --base-url", which sends the admin after the wrong cause: the inventory read had
    been answered; only the read of devices awaiting enrollment kept failing."""
    import pytest

    from bulkops.errors import RunAborted

    ade_list = frozenset({("GET", "/api/v1/integrations/apple/ade/devices")})
    sim = make_sim(
        devices=30, ade_devices=2, faults=Faults(reset_after_rate=1.0, routes=ade_list, seed=2)
    )
    token = sim.add_token()
    serial = next(iter(sim.fleet.ade_devices.values()))["serial_number"]  # not enrolled yet
    manifest = write_csv(
        tmp_path / "job.csv", [{"serial_number": serial, "action": "update", "asset_tag": "A-1"}]
    )
    async with sim.running() as url:
        config = fast_config(Tenant(sim, url, token), tmp_path)
        store = Store(config.db_path)
        try:
            run, _ = start_run(store, manifest, tenant=config.tenant)
            with pytest.raises(RunAborted) as caught:
                await drive(store, run, config)
        finally:
            store.close()
    text = str(caught.value)
    assert "failed 5 times in a row" in text and "likely a passing fault" in text, text
    ade_reads = [e for e in sim.ledger.entries if e.route == next(iter(ade_list))[1]]
    assert len(ade_reads) == 5  # review: 3 tries gave up within a second at 30% of 5xx
    assert "check --base-url" not in text and "(nothing was sent)" in text
    assert not sim.ledger.select(method="POST")


async def test_a_tenant_that_never_answered_points_at_the_base_url(tmp_path: Path) -> None:
    """Every read reset (what http:// against an https port looks like): no answer ever came
    back, so the URL or the network is the likely cause, whatever the error's kind."""
    import pytest

    from bulkops.errors import RunAborted

    every_read = frozenset({("GET", "/api/v1/devices")})
    sim = make_sim(devices=30, faults=Faults(reset_after_rate=1.0, routes=every_read, seed=2))
    token = sim.add_token()
    serials = [sim.fleet.devices[i]["serial_number"] for i in sorted(sim.fleet.devices)[:2]]
    manifest = write_csv(
        tmp_path / "job.csv", [{"serial_number": s, "action": "blankpush"} for s in serials]
    )
    async with sim.running() as url:
        config = fast_config(Tenant(sim, url, token), tmp_path)
        store = Store(config.db_path)
        try:
            run, _ = start_run(store, manifest, tenant=config.tenant)
            with pytest.raises(RunAborted, match=r"cannot reach the tenant .* check --base-url"):
                await drive(store, run, config)
        finally:
            store.close()


async def test_a_read_that_times_out_says_so_before_it_tries_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Review: `plan` against a tenant that took every connection and never answered printed
    nothing for 2 min 36 s (5 tries of 30 s), then one line. Each timed-out try now says it is
    trying again, so a long silence is never the first sign."""
    import pytest

    from bulkops.errors import RunAborted

    sim = make_sim(devices=30, faults=Faults(slow_rate=1.0, slow_s=5.0, seed=2))
    token = sim.add_token()
    serial = sim.fleet.devices[sorted(sim.fleet.devices)[0]]["serial_number"]
    manifest = write_csv(tmp_path / "job.csv", [{"serial_number": serial, "action": "blankpush"}])
    async with sim.running() as url:
        config = fast_config(Tenant(sim, url, token), tmp_path, timeout_s=0.2)
        store = Store(config.db_path)
        try:
            run, _ = start_run(store, manifest, tenant=config.tenant)
            with caplog.at_level("WARNING", logger="bulkops"), pytest.raises(RunAborted):
                await drive(store, run, config)
        finally:
            store.close()
    said = [r.getMessage() for r in caplog.records if "no answer from the tenant" in r.getMessage()]
    assert [s.rsplit("(", 1)[1] for s in said] == [f"{n} of 5)" for n in range(2, 6)], said
    assert all("in 0.2 s (GET /api/v1/devices" in s for s in said), said
