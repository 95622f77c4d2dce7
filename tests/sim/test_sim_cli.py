"""`bulkops sim` as a subprocess: token file, serving, clean Ctrl-C, loopback policy."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import urllib.request
from pathlib import Path

import orjson
import pytest

from bulkops.sim.cli import is_loopback

CLI = [sys.executable, "-m", "bulkops.sim"]


def _start(*args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if "listening on " in line:
            return proc, line.rsplit(" ", 1)[1].strip()
    proc.wait(timeout=10)
    raise AssertionError(f"did not start: {proc.stderr.read() if proc.stderr else ''}")


def test_serves_with_a_0600_token_file_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    token_file = tmp_path / "sim.token"
    ledger = tmp_path / "ledger.jsonl"
    fleet = tmp_path / "fleet.json"
    proc, url = _start(
        "--port",
        "0",
        "--devices",
        "12",
        "--token-file",
        str(token_file),
        "--ledger",
        str(ledger),
        "--fleet",
        str(fleet),
    )
    try:
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        req = urllib.request.Request(
            f"{url}/api/v1/devices", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert len(orjson.loads(resp.read())) == 12
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0
    assert "Traceback" not in err
    assert token not in out and token not in err, "the token is never printed with --token-file"
    assert fleet.exists() and len(orjson.loads(fleet.read_bytes())["devices"]) == 12
    entry = orjson.loads(ledger.read_bytes().splitlines()[0])
    assert entry["status"] == 200 and entry["token"] == "cli"
    assert token.encode() not in ledger.read_bytes()


def test_a_busy_port_leaves_the_running_simulators_token_file_alone(tmp_path: Path) -> None:
    """A second `bulkops sim` on the same port fails in one line and keeps the first's token."""
    token_file = tmp_path / "sim.token"
    first, url = _start("--port", "0", "--devices", "3", "--token-file", str(token_file))
    try:
        token = token_file.read_text()
        port = url.rsplit(":", 1)[1]
        second = subprocess.run(
            [*CLI, "--port", port, "--token-file", str(token_file)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert second.returncode == 1
        assert f"cannot serve on 127.0.0.1:{port}" in second.stderr
        assert "Traceback" not in second.stderr
        assert token_file.read_text() == token  # the running simulator's token still works
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=15)


def test_refuses_a_non_loopback_host() -> None:
    proc = subprocess.run(
        [*CLI, "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "loopback" in proc.stderr and "--allow-remote" in proc.stderr


def test_sim_command_is_a_plain_function_for_typer() -> None:
    import inspect

    from bulkops.sim.cli import sim_command

    params = inspect.signature(sim_command).parameters
    for name in (
        "host",
        "port",
        "devices",
        "seed",
        "time_scale",
        "hour_limit",
        "second_limit",
        "sliding_window",
        "no_rate_limit_headers",
        "ledger",
        "fleet",
        "token_file",
        "allow_remote",
        "error_5xx_rate",
        "reset_after_rate",
    ):
        assert name in params, name
    assert params["host"].default == "127.0.0.1" and params["port"].default == 8765
    assert "token" not in params, "the token never travels on argv"


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("127.0.0.1", True),
        ("127.8.9.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("192.168.1.4", False),
        ("example.com", False),
    ],
)
def test_is_loopback(host: str, ok: bool) -> None:
    assert is_loopback(host) is ok


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX modes")
def test_token_file_is_tightened_if_it_existed(tmp_path: Path) -> None:
    from bulkops.sim.cli import _write_token

    path = tmp_path / "t"
    path.write_text("old")
    path.chmod(0o644)
    _write_token(path, "secret")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == "secret\n"


def test_an_unwritable_token_file_is_named_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    target = tmp_path / "a-file" / "sim.token"  # a folder that is a file: cannot be created
    proc = subprocess.run(
        [*CLI, "--port", "0", "--token-file", str(target)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    assert f"cannot write the token file {target}" in proc.stderr
    assert "cannot serve" not in proc.stderr and "Traceback" not in proc.stderr
