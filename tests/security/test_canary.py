"""A canary token through a representative run: it shows up nowhere; PINs only in secrets.csv.

The console script runs against the simulator as a user would: a mixed manifest (locks, so PINs
exist; a blank push; rows the token may not send, so failures and ``failed.csv`` exist; a serial
that is not enrolled), ``--debug``, then a second job with a token the tenant refuses (401).
Afterwards every byte bulkops left behind is searched: stdout and stderr of every command, the
debug log, the database with its -wal/-shm, the budget ledger, every report, the audit log.
"""

from __future__ import annotations

import csv
import re
import stat
import uuid
from pathlib import Path
from typing import Any

import pytest

from bulkops.manifest import open_manifest
from bulkops.sim import Simulator
from tests.conftest import make_sim

from .conftest import bulkops, cli_env

SETNAME = ("POST", "/api/v1/devices/{device_id}/action/setname")
LOSTMODE = ("POST", "/api/v1/devices/{device_id}/action/enablelostmode")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def by_platform(sim: Simulator, platform: str) -> list[dict[str, Any]]:
    devices = sorted(sim.fleet.devices.values(), key=lambda d: d["device_id"])
    return [d for d in devices if d["platform"] == platform]


def manifest(sim: Simulator, path: Path) -> Path:
    macs, phones = by_platform(sim, "Mac"), by_platform(sim, "iPhone")
    rows = ["device_id,serial_number,action,message,phone_number,device_name"]
    rows += [f",{d['serial_number']},lock,Call IT,+1 555 0100," for d in macs[:6]]
    rows += [f"{d['device_id']},,blankpush,,," for d in macs[6:10]]
    rows += [f"{d['device_id']},,setname,,,- spare {i}" for i, d in enumerate(macs[10:12])]
    rows += [f"{d['device_id']},,enablelostmode,Lost,'+1 555 0100," for d in phones[:2]]
    rows += [",ZZZZ00000000,blankpush,,,"]
    path.write_text("\n".join(rows) + "\n")
    return path


def every_file(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def occurrences(needle: str, haystack: bytes) -> int:
    return len(re.findall(rb"(?<!\d)" + re.escape(needle.encode()) + rb"(?!\d)", haystack))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run the job once for every assertion of this module (it costs a few processes)."""
    tmp = tmp_path_factory.mktemp("canary")
    sim = make_sim(devices=80)
    canary = sim.add_token(
        allowed_routes=[r for r in sim.routes() if r not in (SETNAME, LOSTMODE)], label="canary"
    )
    refused = str(uuid.uuid4())  # a token the tenant does not know: 401 on the first request
    job_csv = manifest(sim, tmp / "job.csv")
    other_csv = tmp / "other.csv"
    other_csv.write_text(
        "device_id,action\n"
        + "".join(f"{d['device_id']},blankpush\n" for d in by_platform(sim, "Mac")[:3])
    )
    state = {"BULKOPS_STATE_DIR": str(tmp / "state")}
    outputs: list[str] = []
    with sim.in_thread() as url:
        run = bulkops(
            "run",
            str(job_csv),
            "--base-url",
            url,
            "--yes",
            "--debug",
            env=cli_env(tmp, token=canary, **state),
            cwd=tmp,
        )
        denied = bulkops(
            "run",
            str(other_csv),
            "--base-url",
            url,
            "--yes",
            env=cli_env(tmp, token=refused, **state),
            cwd=tmp,
        )
        for result in (run, denied):
            outputs += [result.stdout, result.stderr]
        for args in (["status"], ["audit"], ["audit", "--json"]):
            shown = bulkops(*args, env=cli_env(tmp, **state), cwd=tmp)
            assert shown.returncode == 0, shown.stderr
            outputs += [shown.stdout, shown.stderr]
    return {
        "tmp": tmp,
        "sim": sim,
        "run": run,
        "denied": denied,
        "tokens": (canary, refused),
        "outputs": outputs,
        "manifest": job_csv,
    }


def test_the_run_did_what_the_canary_needs(job: dict[str, Any]) -> None:
    run, denied = job["run"], job["denied"]
    assert run.returncode == 1, run.stderr  # the denied rows failed
    assert "succeeded 10 · failed 4 · skipped 1" in run.stdout
    assert denied.returncode == 3 and "the API token was refused" in denied.stderr
    reports = [p.parent for p in job["tmp"].rglob("secrets.csv")]
    assert len(reports) == 1 and (reports[0] / "failed.csv").exists()
    assert len(job["sim"].ledger.pins()) == 6
    debug = (job["tmp"] / "bulkops-debug.log").read_text()
    assert len(re.findall(r" DEBUG POST /api/v1/devices/\S+/action/lock -> 200 ", debug)) == 6


def test_no_token_anywhere(job: dict[str, Any]) -> None:
    files = every_file(job["tmp"])
    names = {p.name for p in files}
    assert {"bulkops.db", "bulkops-debug.log", "bulkops.db.audit.jsonl", "budget.db"} <= names
    assert {"results.csv", "results.jsonl", "summary.json", "failed.csv", "plan.csv"} <= names
    for token in job["tokens"]:
        for path in files:
            assert token.encode() not in path.read_bytes(), path
        for text in job["outputs"]:
            assert token not in text
        assert token[:8] not in "".join(job["outputs"])  # not even a prefix


def test_pins_only_in_secrets_csv_and_never_left_in_the_database(job: dict[str, Any]) -> None:
    pins = job["sim"].ledger.pins()
    for path in every_file(job["tmp"]):
        data = path.read_bytes()
        for pin in pins:
            want = 1 if path.name == "secrets.csv" else 0
            assert occurrences(pin, data) == want, (path, pin)
    assert not any(occurrences(pin, "".join(job["outputs"]).encode()) for pin in pins)


def test_every_file_is_the_users_alone(job: dict[str, Any]) -> None:
    tmp = job["tmp"]
    for name in ("bulkops.db", "bulkops.db-wal", "bulkops.db-shm"):
        if (tmp / name).exists():
            assert mode(tmp / name) == 0o600, name
    assert mode(tmp / "bulkops-debug.log") == 0o600
    assert mode(tmp / "state" / "budget.db") == 0o600
    assert mode(tmp / "bulkops.db.audit.jsonl") == 0o600
    folders = [tmp / "reports", *(p for p in (tmp / "reports").rglob("*") if p.is_dir())]
    assert len(folders) >= 2
    for folder in folders:
        assert mode(folder) == 0o700, folder
    for path in (tmp / "reports").rglob("*"):
        if path.is_file():
            assert mode(path) == 0o600, path


def test_no_report_cell_can_run_as_a_formula(job: dict[str, Any]) -> None:
    checked = 0
    for path in (job["tmp"] / "reports").rglob("*.csv"):
        with path.open(encoding="utf-8-sig", newline="") as fh:
            for row in csv.reader(fh):
                for cell in row:
                    checked += 1
                    assert not cell.startswith(FORMULA_START), (path.name, cell)
    assert checked > 100


def test_failed_csv_reads_back_to_the_rows_that_failed(job: dict[str, Any]) -> None:
    folder = next(job["tmp"].rglob("secrets.csv")).parent  # the first run's (the 401 run has one)
    text = (folder / "failed.csv").read_text(encoding="utf-8-sig")
    assert "'+1 555 0100" in text and "'- spare 0" in text  # neutralised in the file …
    again = {item.device_ref: dict(item.params) for item in open_manifest(folder / "failed.csv")}
    original = {
        item.device_ref: dict(item.params)
        for item in open_manifest(job["manifest"])
        if item.action in ("setname", "enablelostmode") or item.serial_number == "ZZZZ00000000"
    }  # the rows that failed, and the serial number that is not enrolled
    assert again == original  # … and read back as the values the manifest gave
    assert original[next(iter(original))] in (
        {"device_name": "- spare 0"},
        {"message": "Lost", "phone_number": "+1 555 0100"},
    )


def test_the_audit_log_says_who_ran_what(job: dict[str, Any]) -> None:
    import orjson

    records = [
        orjson.loads(line)
        for line in (job["tmp"] / "bulkops.db.audit.jsonl").read_bytes().splitlines()
    ]
    assert [r["event"] for r in records] == ["start", "end", "start", "end"]
    start, end, refused_start, refused_end = records
    assert start["manifest"] == str(job["manifest"])
    assert start["manifest_sha256"] == open_manifest(job["manifest"]).sha256()
    assert start["actions"] == {"blankpush": 5, "enablelostmode": 2, "lock": 6, "setname": 2}
    assert start["destructive"] == {"enablelostmode": 2, "lock": 6}
    assert start["confirmed_by"] == "--yes"
    assert start["user"] and start["host"] and start["tenant"].startswith("127.0.0.1:")
    assert end["outcomes"] == {"succeeded": 10, "failed": 4, "skipped": 1, "unknown": 0}
    assert end["exit_code"] == 1 and end["requests"] == end["requests_this_pass"] > 10
    assert start["run_id"] == end["run_id"] != refused_start["run_id"]
    assert refused_start["destructive"] == {} and refused_start["confirmed_by"] is None
    assert refused_end["exit_code"] == 3 and "token was refused" in refused_end["stopped"]
