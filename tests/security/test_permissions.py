"""Least privilege: the permissions a manifest needs, proven by a token holding exactly those."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bulkops.actions import ACTIONS
from bulkops.client import Connection
from bulkops.engine import RunOptions
from bulkops.errors import RunAborted
from bulkops.job import JobResult, drive, start_run
from bulkops.manifest import open_manifest
from bulkops.permissions import manifest_permissions, markdown_table
from bulkops.store import Store
from tests.conftest import Tenant, make_sim, write

from .conftest import ROOT, bulkops, cli_env

LOCK = "POST /api/v1/devices/{device_id}/action/lock"
EXPECTED = {
    "GET /api/v1/devices",
    "GET /api/v1/blueprints",
    "GET /api/v1/users",
    "GET /api/v1/integrations/apple/ade/devices",
    "PATCH /api/v1/integrations/apple/ade/devices/{device_id}",
    "PATCH /api/v1/devices/{device_id}",
    LOCK,
    "POST /api/v1/devices/{device_id}/action/setname",
    "POST /api/v1/devices/{device_id}/action/blankpush",
    "GET /api/v1/devices/{device_id}/commands",
    "GET /api/v1/devices/{device_id}/secrets/unlockpin",
}
# Read only when an outcome is unknown or a lock's response lost its PIN: a clean run skips them.
ONLY_ON_TROUBLE = {
    "GET /api/v1/devices/{device_id}/commands",
    "GET /api/v1/devices/{device_id}/secrets/unlockpin",
}


def macs(tenant: Tenant) -> list[dict[str, Any]]:
    devices = sorted(tenant.sim.fleet.devices.values(), key=lambda d: d["device_id"])
    return [d for d in devices if d["platform"] == "Mac"]


def mixed_manifest(tenant: Tenant, path: Path) -> Path:
    m = macs(tenant)
    user = next(iter(tenant.sim.fleet.users.values()))["email"]
    ade = next(iter(tenant.sim.fleet.ade_devices.values()))["serial_number"]
    return write(
        path,
        "device_id,serial_number,action,message,blueprint,user,asset_tag,device_name\n"
        f",{m[0]['serial_number']},lock,Call IT,,,,\n"
        f",{m[1]['serial_number']},update,,Kiosk iPads,{user},A-1,\n"
        f",{ade},update,,,,ADE-9,\n"
        f"{m[2]['device_id']},,setname,,,,,Lab-1\n"
        f"{m[3]['device_id']},,blankpush,,,,,\n",
    )


async def go(tenant: Tenant, tmp: Path, manifest: Path, token: str, **options: Any) -> JobResult:
    config = tenant.config(tmp, options=RunOptions(**{"concurrency": 4, **options}))
    config = replace(config, connection=Connection(base_url=tenant.url, token=token))
    store = Store(config.db_path)
    try:
        run, resumed = start_run(store, manifest, tenant=config.tenant)
        return await drive(store, run, config, resumed=resumed)
    finally:
        store.close()


def routes(perms: set[str]) -> list[tuple[str, str]]:
    return [(p.split(" ", 1)[0], p.split(" ", 1)[1]) for p in perms]


def test_the_manifest_names_every_read_write_and_reconciliation(tmp_path: Path) -> None:
    from tests.conftest import make_sim

    sim = make_sim(devices=60)
    manifest = mixed_manifest(Tenant(sim, "", ""), tmp_path / "job.csv")
    need = manifest_permissions(open_manifest(manifest))
    assert set(need) == EXPECTED
    assert need[LOCK] == "lock (1 row)"
    with_verify = manifest_permissions(open_manifest(manifest), verify=True)
    assert set(with_verify) - set(need) == {"GET /api/v1/devices/{device_id}"}


async def test_a_token_with_exactly_these_permissions_runs_the_job(
    tenant: Tenant, tmp_path: Path
) -> None:
    manifest = mixed_manifest(tenant, tmp_path / "job.csv")
    need = set(manifest_permissions(open_manifest(manifest)))
    scoped = tenant.sim.add_token(allowed_routes=routes(need))
    result = await go(tenant, tmp_path / "run", manifest, scoped)
    assert result.exit_code == 0, result.stopped
    assert result.summary is not None and result.summary.outcomes["succeeded"] == 5
    assert [e for e in tenant.sim.ledger.entries if e.status == 403] == []
    used = {f"{e.method} {e.route}" for e in tenant.sim.ledger.entries}
    assert used == need - ONLY_ON_TROUBLE  # nothing listed that a clean run does not use …
    assert result.plan.permissions == need  # … and the plan names the same list


@pytest.mark.parametrize(
    ("action", "reads"),
    [
        # one inventory sweep, or on a big tenant one read per row: both reads
        ("blankpush", {"GET /api/v1/devices/{device_id}", "GET /api/v1/devices"}),
        ("setname", {"GET /api/v1/devices/{device_id}", "GET /api/v1/devices"}),
    ],
)
async def test_rows_naming_a_device_by_id_and_serial_need_the_device_read(
    tenant: Tenant, tmp_path: Path, action: str, reads: set[str]
) -> None:
    """What `bulkops select` writes: both columns, so each row's serial number is checked."""
    name = "Lab-{}" if action == "setname" else ""
    rows = "".join(
        f"{m['device_id']},{m['serial_number']},{action},{name.format(i)}\n"
        for i, m in enumerate(macs(tenant)[:3])
    )
    manifest = write(tmp_path / "sel.csv", "device_id,serial_number,action,device_name\n" + rows)
    need = set(manifest_permissions(open_manifest(manifest)))
    assert need == reads | {ACTIONS[action].permission}
    result = await go(
        tenant, tmp_path / "run", manifest, tenant.sim.add_token(allowed_routes=routes(need))
    )
    assert result.exit_code == 0, result.stopped
    assert result.plan.permissions <= need  # a sweep makes the per-device read unneeded


async def test_a_missing_read_is_named_as_the_access_page_names_it(tmp_path: Path) -> None:
    """A 403 on one device's path names the route as the Access page does: ``{device_id}``.
    One row on a tenant of three inventory pages: its device is read alone, not swept."""
    sim = make_sim(devices=700)
    mac = [d for d in sim.fleet.devices.values() if d["platform"] == "Mac"][-1]  # not on page 1
    manifest = write(
        tmp_path / "sel.csv",
        f"device_id,serial_number,action\n{mac['device_id']},{mac['serial_number']},blankpush\n",
    )
    scoped = sim.add_token(
        allowed_routes=[
            ("GET", "/api/v1/devices"),
            ("POST", "/api/v1/devices/{device_id}/action/blankpush"),
        ]
    )
    async with sim.running() as url:
        tenant = Tenant(sim, url, scoped)
        with pytest.raises(
            RunAborted, match=re.escape("lacks the permission GET /api/v1/devices/{device_id};")
        ):
            await go(tenant, tmp_path / "run", manifest, scoped)


async def test_verify_without_the_read_stops_the_run_and_keeps_what_was_written(
    tenant: Tenant, tmp_path: Path
) -> None:
    rows = "".join(f"{m['device_id']},update,VF-{i}\n" for i, m in enumerate(macs(tenant)[:12]))
    manifest = write(tmp_path / "v.csv", "device_id,action,asset_tag\n" + rows)
    no_read_back = [("GET", "/api/v1/devices"), ("PATCH", "/api/v1/devices/{device_id}")]
    token = tenant.sim.add_token(allowed_routes=no_read_back)
    result = await go(tenant, tmp_path, manifest, token, concurrency=2, verify=True)
    assert result.exit_code == 3 and result.stopped is not None
    assert "--verify: the API token lacks the permission GET /api/v1/devices/{device_id}" in (
        result.stopped
    )
    assert result.summary is not None
    outcomes = result.summary.outcomes
    assert outcomes["failed"] == 0  # written is not failed
    assert 1 <= outcomes["succeeded"] <= 2 and outcomes["pending"] == 12 - outcomes["succeeded"]
    patched = tenant.sim.ledger.select(method="PATCH", applied=True)
    assert len(patched) == outcomes["succeeded"]


@pytest.mark.parametrize("dropped", sorted(EXPECTED - ONLY_ON_TROUBLE))
async def test_without_any_one_of_them_the_job_does_not_succeed(
    tenant: Tenant, tmp_path: Path, dropped: str
) -> None:
    manifest = mixed_manifest(tenant, tmp_path / "job.csv")
    scoped = tenant.sim.add_token(allowed_routes=routes(EXPECTED - {dropped}))
    try:
        result = await go(tenant, tmp_path / "run", manifest, scoped)
    except RunAborted as exc:  # a read the resolution cannot do without: one line, named
        assert f"lacks the permission {dropped}" in str(exc)
        assert "nothing was sent" in str(exc)
    else:
        assert result.exit_code != 0
    assert any(e.status == 403 for e in tenant.sim.ledger.entries)


def test_plan_and_permissions_print_the_same_list_through_the_cli(tmp_path: Path) -> None:
    from tests.conftest import make_sim

    sim = make_sim(devices=60)
    token = sim.add_token()
    manifest = mixed_manifest(Tenant(sim, "", token), tmp_path / "job.csv")
    env = cli_env(tmp_path, token=token)
    listed = bulkops("permissions", str(manifest), env=env, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    printed = {
        " ".join(line.split()[:2]) for line in listed.stdout.splitlines()[1:] if line.strip()
    }
    assert printed == EXPECTED
    with sim.in_thread() as url:
        plan = bulkops("plan", str(manifest), "--base-url", url, env=env, cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    line = next(ln for ln in plan.stdout.splitlines() if ln.startswith("token permissions"))
    assert set(line.split(": ", 1)[1].split(", ")) == EXPECTED


def test_the_readme_permission_table_is_the_catalogue() -> None:
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- permissions:start -->\n(.*?)\n<!-- permissions:end -->", readme, re.S)
    assert found, "README.md needs the generated permissions table between its markers"
    assert found.group(1) == markdown_table(), (
        "regenerate the README table: "
        "python -c 'from bulkops.permissions import markdown_table; print(markdown_table())'"
    )
    for action in ACTIONS.values():
        assert f"| `{action.name}` | `{action.permission}` |" in found.group(1)


async def test_an_erase_needs_a_device_read_only_where_a_row_leaves_the_pin_out(
    tenant: Tenant, tmp_path: Path
) -> None:
    """A PIN-less erase row must read its device (is it a Mac?); one with a PIN needs no read,
    so a least-privilege erase token keeps working without the inventory permission."""
    fleet = sorted(tenant.sim.fleet.devices.values(), key=lambda d: d["device_id"])
    ipad = next(d for d in fleet if d["platform"] == "iPad")
    mac = macs(tenant)[0]
    for name, rows in (
        ("pinless.csv", f"device_id,action\n{ipad['device_id']},erase\n"),
        ("pin.csv", f"device_id,action,pin\n{mac['device_id']},erase,123456\n"),
    ):
        manifest = write(tmp_path / name, rows)
        need = set(manifest_permissions(open_manifest(manifest)))
        assert ("GET /api/v1/devices/{device_id}" in need) is (name == "pinless.csv"), need
        token = tenant.sim.add_token(allowed_routes=routes(need))
        result = await go(tenant, tmp_path / f"run-{name}", manifest, token)
        assert result.exit_code == 0, (name, result.stopped, result.summary)


def test_the_summary_names_the_missing_permission_of_the_rows_it_failed(tmp_path: Path) -> None:
    """Review: a token without the write permission failed 60 rows, exit 1, and not one line
    on screen named the permission; the summary listed only the rows not applied."""
    sim = make_sim(devices=60)
    blank = "POST /api/v1/devices/{device_id}/action/blankpush"
    token = sim.add_token(allowed_routes=routes({"GET /api/v1/devices", LOCK}))
    rows = sorted(sim.fleet.devices)[:5]
    manifest = write(
        tmp_path / "job.csv", "device_id,action\n" + "".join(f"{i},blankpush\n" for i in rows)
    )
    with sim.in_thread() as url:
        env = cli_env(tmp_path, token=token)
        run = bulkops("run", str(manifest), "--base-url", url, env=env, cwd=tmp_path)
    assert run.returncode == 1, run.stderr
    lines = run.stdout.splitlines()
    failed = next(ln for ln in lines if ln.startswith("5 rows failed"))
    assert failed.startswith(f"5 rows failed (the API token lacks the permission {blank} 5): see")
    assert failed.endswith("failed.csv, to fix and run")
    assert f"lacks the permission {blank}: enable it in Access > API tokens" in run.stdout
