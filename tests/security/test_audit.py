"""The audit log: a typed confirmation, a refused run, a killed pass, and ``bulkops audit``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from bulkops.audit import RunAudit, audit_path, read_audit
from bulkops.cli import _run as run_cli
from bulkops.cli import app
from bulkops.errors import ConfigError
from bulkops.store import Store
from tests.conftest import Tenant, write


def macs(tenant: Tenant) -> list[dict[str, Any]]:
    devices = sorted(tenant.sim.fleet.devices.values(), key=lambda d: d["device_id"])
    return [d for d in devices if d["platform"] == "Mac"]


async def drive(tenant: Tenant, tmp: Path, text: str, approval: run_cli.Approval) -> Path:
    from bulkops.job import start_run

    config = tenant.config(tmp)
    store = Store(config.db_path)
    try:
        run, resumed = start_run(store, write(tmp / "job.csv", text), tenant=config.tenant)
        await run_cli.drive_with_signals(
            store, run, config, quiet=True, resumed=resumed, approval=approval
        )
    finally:
        store.close()
    return audit_path(config.db_path)


async def test_a_typed_confirmation_is_recorded_as_typed(
    tenant: Tenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []

    def prompt(text: str, **_: object) -> str:
        asked.append(text)
        return tenant.url.split("://", 1)[1].split(".", 1)[0]  # the name it asks for

    monkeypatch.setattr(run_cli, "is_interactive", lambda: True)
    monkeypatch.setattr(run_cli.typer, "prompt", prompt)
    text = "device_id,action\n" + "".join(f"{d['device_id']},lock\n" for d in macs(tenant)[:2])
    log = await drive(tenant, tmp_path, text, run_cli.Approval(quiet=True))
    start, end = read_audit(log)
    assert len(asked) == 1 and "send lock to 2 devices" in asked[0]
    assert start["confirmed_by"] == "typed" and start["destructive"] == {"lock": 2}
    assert end["outcomes"]["succeeded"] == 2 and end["exit_code"] == 0


async def test_a_refused_run_writes_nothing_and_a_killed_pass_has_no_end(
    tenant: Tenant, tmp_path: Path
) -> None:
    text = "device_id,action\n" + "".join(f"{d['device_id']},lock\n" for d in macs(tenant)[:3])
    with pytest.raises(ConfigError, match="above the limit of 2"):
        await drive(tenant, tmp_path, text, run_cli.Approval(yes=True, max_destructive=2))
    assert not audit_path(tmp_path / "run.db").exists()

    from bulkops.store import Store as S

    store = S(tmp_path / "run.db")
    try:
        run = store.runs()[0]
    finally:
        store.close()
    audit = RunAudit(audit_path(tmp_path / "run.db"), command="run", run=run)
    audit.ended(None, exit_code=3)  # not started: nothing to end
    assert not audit_path(tmp_path / "run.db").exists()


def test_bulkops_audit_prints_the_records(tmp_path: Path) -> None:
    log = audit_path(tmp_path / "bulkops.db")
    lines = [
        {
            "ts": "2026-11-23T10:07:38Z",
            "event": "start",
            "user": "alice",
            "host": "mac-17",
            "command": "run",
            "run_id": "20261123-100738-fd38",
            "tenant": "acme.api.kandji.io",
            "manifest": "jobs/lost.csv",
            "manifest_sha256": "ab" * 32,
            "rows": 3,
            "actions": {"lock": 3},
            "destructive": {"lock": 3},
            "confirmed_by": "typed",
        },
        {
            "ts": "2026-11-23T10:07:44Z",
            "event": "end",
            "user": "alice",
            "host": "mac-17",
            "run_id": "20261123-100738-fd38",
            "outcomes": {"succeeded": 3, "failed": 0},
            "requests": 4,
            "requests_this_pass": 4,
            "stopped": None,
            "exit_code": 0,
        },
    ]
    log.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in lines) + b'{"torn')
    runner = CliRunner()
    shown = runner.invoke(app, ["audit", "--db", str(tmp_path / "bulkops.db")])
    assert shown.exit_code == 0, shown.output
    first, second = shown.output.splitlines()
    assert first.startswith("2026-11-23 10:07:38  start  20261123-100738-fd38  alice@mac-17")
    assert "jobs/lost.csv (sha256 abababababab…)" in first
    assert first.endswith("destructive lock 3 confirmed by typed")
    assert second.endswith("succeeded 3, failed 0; requests 4 (4 this pass); exit 0")
    raw = runner.invoke(app, ["audit", "--db", str(tmp_path / "bulkops.db"), "--json"])
    assert [orjson.loads(x) for x in raw.output.splitlines()] == lines  # the torn line skipped
    missing = runner.invoke(app, ["audit", "--db", str(tmp_path / "other.db")])
    assert missing.exit_code != 0 and isinstance(missing.exception, ConfigError)
