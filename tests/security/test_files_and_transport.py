"""File modes whatever the umask; https with certificate checks; plain http only to loopback."""

from __future__ import annotations

import asyncio
import os
import re
import ssl
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from bulkops.audit import audit_path, read_audit, write_audit
from bulkops.budget import Budget, BudgetConfig, SendHistory
from bulkops.client import Connection, KandjiClient, check_base_url
from bulkops.errors import ConfigError, TransportError
from bulkops.job import start_run
from bulkops.report import write_reports
from bulkops.store import Store

from .conftest import ROOT, bulkops, cli_env, one_error_line


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """A umask that would make every new file world-readable if we relied on it."""
    old = os.umask(0o002)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("loose_umask")
def test_database_wal_shm_reports_and_audit_are_private_under_any_umask(tmp_path: Path) -> None:
    manifest = tmp_path / "job.csv"
    manifest.write_text("device_id,action\n5b1f0b9e-0a4e-4c6e-9a53-3c5d5f1e2a10,blankpush\n")
    db = tmp_path / "state" / "run.db"
    store = Store(db)
    try:
        run, _ = start_run(store, manifest, tenant="acme.api.kandji.io")
        wal, shm = Path(f"{db}-wal"), Path(f"{db}-shm")
        assert wal.exists() and shm.exists()  # open, in WAL mode
        assert [mode(p) for p in (db, wal, shm)] == [0o600, 0o600, 0o600]
        assert mode(db.parent) == 0o700
        paths, _ = write_reports(store, run, tmp_path / "out" / "reports" / run.run_id)
    finally:
        store.close()
    # The run's folder is 0700 whatever the umask; folders above it that did not exist are
    # made under the umask (the CLI sets 077 first: see test_canary).
    assert mode(paths.folder) == 0o700
    written = [p for p in paths.folder.iterdir()]
    assert written and all(mode(p) == 0o600 for p in written)
    log = audit_path(db)
    write_audit(log, "start", {"run_id": run.run_id})
    assert log.name == "run.db.audit.jsonl" and mode(log) == 0o600
    log.chmod(0o644)  # made readable by someone: the next record takes it back
    write_audit(log, "end", {"run_id": run.run_id})
    assert mode(log) == 0o600
    assert [r["event"] for r in read_audit(log)] == ["start", "end"]


def test_we_never_turn_certificate_checks_off() -> None:
    forbidden = re.compile(
        r"ssl\s*=\s*False|verify_ssl|CERT_NONE|check_hostname\s*=\s*False|"
        r"_create_unverified_context|PYTHONHTTPSVERIFY"
    )
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in sorted((ROOT / "bulkops").rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if forbidden.search(line)
    ]
    assert offenders == []


@pytest.mark.parametrize(
    "url",
    ["http://acme.api.kandji.io", "http://10.0.0.5:8080", "http://example.com", "ftp://x.y"],
)
def test_plain_http_is_refused_except_to_loopback(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_base_url(url)
    assert "\n" not in str(caught.value)
    assert check_base_url("http://127.0.0.1:8765") == "http://127.0.0.1:8765"
    assert check_base_url("http://[::1]:8765") == "http://[::1]:8765"


def test_plain_http_through_the_cli_is_one_line_and_sends_nothing(tmp_path: Path) -> None:
    result = bulkops(
        "plan",
        "job.csv",
        "--base-url",
        "http://acme.api.kandji.io",
        env=cli_env(tmp_path, token="5b1f0b9e-0a4e-4c6e-9a53-3c5d5f1e2a10"),
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "uses plain http; only https is allowed" in one_error_line(result)


def _self_signed(tmp: Path) -> ssl.SSLContext:
    import subprocess

    key, cert = tmp / "key.pem", tmp / "cert.pem"
    done = subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        capture_output=True,
    )
    if done.returncode != 0:
        pytest.skip("openssl cannot make a test certificate here")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


async def test_an_https_server_with_an_untrusted_certificate_gets_no_request(
    tmp_path: Path,
) -> None:
    import shutil

    if shutil.which("openssl") is None:
        pytest.skip("no openssl to make a test certificate")
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        return web.json_response([])

    app = web.Application()
    app.router.add_get("/api/v1/devices", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=_self_signed(tmp_path))
    await site.start()
    port = runner.addresses[0][1]
    try:
        conn = Connection(
            base_url=f"https://127.0.0.1:{port}", token="5b1f0b9e-0a4e-4c6e-9a53-3c5d5f1e2a10"
        )
        with SendHistory(tmp_path / "budget.db", tenant="t") as history:
            budget = Budget(BudgetConfig(tenant="t"), history=history)
            async with KandjiClient(conn, budget=budget) as client:
                with pytest.raises(TransportError, match="cannot connect") as caught:
                    await client.request("GET", "/api/v1/devices")
        assert caught.value.maybe_applied is False
        assert seen == []  # the token never left: the handshake failed first
    finally:
        await runner.cleanup()
        await asyncio.sleep(0)


async def test_forgotten_pins_leave_no_bytes_in_the_database_file(tmp_path: Path) -> None:
    manifest = tmp_path / "job.csv"
    ids = [f"5b1f0b9e-0a4e-4c6e-9a53-{i:012d}" for i in range(300)]
    manifest.write_text("device_id,action\n" + "".join(f"{i},lock\n" for i in ids))
    pins = [f"{917000 + i}" for i in range(300)]
    db = tmp_path / "run.db"
    store = Store(db)
    try:
        assert store._conn.execute("PRAGMA secure_delete").fetchone()[0] == 1
        run, _ = start_run(store, manifest, tenant="acme.api.kandji.io")
        await store.start()
        for line, pin in enumerate(pins, 2):
            store.complete(run.run_id, line, state="succeeded", http_status=200, secret=pin)
        await store.stop()
        store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        data = db.read_bytes()
        assert sum(pin.encode() in data for pin in pins) == 300  # they were there …
        store.forget_secrets(run.run_id)
    finally:
        store.close()
    data = b"".join(p.read_bytes() for p in tmp_path.glob("run.db*"))
    assert [pin for pin in pins if pin.encode() in data] == []  # … and nothing of them is left
