"""Token sources in order (file, environment, keychain), their refusals, and ``bulkops auth``."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail

from bulkops.credentials import (
    KEYCHAIN_SERVICE,
    find_token,
    foreign_host_warning,
    keychain_delete,
    keychain_get,
    keychain_set,
    token_sources,
)
from bulkops.errors import ConfigError

from .conftest import bulkops, cli_env, one_error_line
from .keyrings import LockedKeyring, MemoryKeyring

ACME = "acme.api.kandji.io"


def token() -> str:
    return str(uuid.uuid4())


def token_file(tmp: Path, value: str, mode: int = 0o600) -> Path:
    path = tmp / "token.txt"
    path.write_text(value + "\n")
    path.chmod(mode)
    return path


def test_sources_are_tried_in_order_file_environment_keychain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, memory_keyring: MemoryKeyring
) -> None:
    in_file, in_iru, in_kandji, in_keychain = token(), token(), token(), token()
    memory_keyring.set_password(KEYCHAIN_SERVICE, ACME, in_keychain)
    assert find_token(None, account=ACME) == (
        in_keychain,
        f"the keychain (service bulkops, account {ACME})",
    )
    monkeypatch.setenv("KANDJI_API_TOKEN", in_kandji)
    assert find_token(None, account=ACME) == (in_kandji, "$KANDJI_API_TOKEN")
    monkeypatch.setenv("IRU_API_TOKEN", in_iru)
    assert find_token(None, account=ACME) == (in_iru, "$IRU_API_TOKEN")
    path = token_file(tmp_path, in_file)
    assert find_token(path, account=ACME) == (in_file, f"--token-file {path}")


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o644])
def test_a_token_file_others_can_reach_is_refused_with_the_chmod_that_fixes_it(
    tmp_path: Path, mode: int
) -> None:
    path = token_file(tmp_path, token(), mode)
    with pytest.raises(ConfigError, match=rf"run: chmod 600 {path}$"):
        find_token(path, account=ACME)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [("", "is empty"), ("Bearer " + "a" * 20, "does not hold an API token"), ("12345", "UUIDs")],
)
def test_every_source_checks_the_token_shape_before_any_request(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    memory_keyring: MemoryKeyring,
    value: str,
    fragment: str,
) -> None:
    memory_keyring.set_password(KEYCHAIN_SERVICE, ACME, value or " ")
    with pytest.raises(ConfigError, match=fragment):
        find_token(None, account=ACME)
    with pytest.raises(ConfigError, match=fragment):
        find_token(token_file(tmp_path, value), account=ACME)
    monkeypatch.setenv("IRU_API_TOKEN", value or " ")
    with pytest.raises(ConfigError, match=fragment):
        find_token(None, account=ACME)


def test_the_keychain_round_trip_is_per_tenant(memory_keyring: MemoryKeyring) -> None:
    a, b = token(), token()
    keychain_set(ACME, a)
    keychain_set("beta.api.eu.kandji.io", b)
    assert keychain_get(ACME) == a
    assert memory_keyring.entries == {
        (KEYCHAIN_SERVICE, ACME): a,
        (KEYCHAIN_SERVICE, "beta.api.eu.kandji.io"): b,
    }
    assert keychain_delete(ACME) is True
    assert keychain_delete(ACME) is False
    assert keychain_get(ACME) is None and keychain_get("beta.api.eu.kandji.io") == b


@pytest.mark.parametrize(
    ("backend", "fragment"),
    [(fail.Keyring(), "no keychain is available here"), (LockedKeyring(), "KeyringLocked")],
)
def test_no_usable_keychain_is_one_clear_line(
    backend: keyring.backend.KeyringBackend, fragment: str
) -> None:
    before = keyring.core._keyring_backend
    keyring.set_keyring(backend)
    try:
        with pytest.raises(ConfigError) as caught:
            find_token(None, account=ACME)
        message = str(caught.value)
        assert message.startswith("no API token: set IRU_API_TOKEN")
        assert fragment in message and "\n" not in message
        with pytest.raises(ConfigError, match=fragment):
            keychain_set(ACME, token())
        status = token_sources(None, account=ACME)
        assert status[-1].state == "unavailable" and fragment in status[-1].detail
    finally:
        keyring.core._keyring_backend = before


def test_status_never_shows_the_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, memory_keyring: MemoryKeyring
) -> None:
    secret = token()
    memory_keyring.set_password(KEYCHAIN_SERVICE, ACME, secret)
    monkeypatch.setenv("KANDJI_API_TOKEN", "not-a-token")
    sources = token_sources(token_file(tmp_path, secret, 0o644), account=ACME)
    assert [s.state for s in sources] == ["unreadable", "absent", "unreadable", "found"]
    assert secret not in repr(sources)


@pytest.mark.parametrize(
    ("url", "warned"),
    [
        ("https://acme.api.kandji.io", False),
        ("https://acme.api.eu.kandji.io", False),
        ("https://acme.api.iru.com", False),
        ("http://127.0.0.1:8765", False),
        ("http://localhost:8765", False),
        ("https://acme.clients.us-1.kandji.io", True),  # legacy host
        ("https://acme.api.eu.iru.com", True),  # claimed by a third party only
        ("https://kandji.evil.example", True),
        ("https://api.kandji.io", True),  # no tenant
    ],
)
def test_hosts_other_than_kandji_and_iru_are_warned_about(url: str, warned: bool) -> None:
    warning = foreign_host_warning(url)
    assert (warning is not None) is warned
    assert warning is None or "\n" not in warning


# ---- through the CLI ---------------------------------------------------------------------------


def test_auth_set_status_forget_through_the_cli(tmp_path: Path) -> None:
    secret = token()
    env = cli_env(tmp_path)
    tenant = ["--subdomain", "acme", "--region", "eu"]
    stored = bulkops("auth", "set", *tenant, env=env, cwd=tmp_path, stdin=secret + "\n")
    assert stored.returncode == 0, stored.stderr
    assert "stored the API token for acme.api.eu.kandji.io" in stored.stdout
    assert secret in (tmp_path / "keychain.json").read_text()  # in the (test) keychain

    status = bulkops("auth", "status", *tenant, env=env, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "keychain bulkops/acme.api.eu.kandji.io  found  <- used" in status.stdout
    assert secret not in status.stdout + status.stderr

    shadowed = bulkops(
        "auth", "status", *tenant, env=cli_env(tmp_path, token=token()), cwd=tmp_path
    )
    assert "$IRU_API_TOKEN" in shadowed.stdout.splitlines()[-1]

    gone = bulkops("auth", "forget", *tenant, env=env, cwd=tmp_path)
    assert gone.returncode == 0 and "removed" in gone.stdout
    assert secret not in (tmp_path / "keychain.json").read_text()
    after = bulkops("auth", "status", *tenant, env=env, cwd=tmp_path)
    assert after.returncode == 2
    assert one_error_line(after) == "no API token for acme.api.eu.kandji.io in any of these"


def test_auth_set_refuses_what_is_not_a_token_and_stores_nothing(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    result = bulkops(
        "auth", "set", "--subdomain", "acme", env=env, cwd=tmp_path, stdin="Bearer sk-12\n"
    )
    assert result.returncode == 2
    assert "does not hold an API token" in one_error_line(result)
    assert "sk-12" not in result.stderr
    assert not (tmp_path / "keychain.json").exists()


def test_no_keychain_backend_is_one_line_never_a_traceback(tmp_path: Path) -> None:
    env = cli_env(tmp_path, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    result = bulkops("auth", "set", "--subdomain", "acme", env=env, cwd=tmp_path, stdin=token())
    assert result.returncode == 2
    assert "no keychain is available here" in one_error_line(result)
    run = bulkops("run", "job.csv", "--subdomain", "acme", env=env, cwd=tmp_path)
    assert run.returncode == 2
    line = one_error_line(run)
    assert line.startswith("error: no API token: set IRU_API_TOKEN") and "no keychain" in line


def test_a_token_on_the_command_line_is_refused_before_anything_is_read(tmp_path: Path) -> None:
    secret = token()
    for args in (["run", "job.csv", "--token", secret], ["resume", "x", "--token", secret]):
        result = bulkops(*args, "--subdomain", "acme", env=cli_env(tmp_path), cwd=tmp_path)
        assert result.returncode == 2
        line = one_error_line(result)
        assert "--token is not accepted" in line and secret not in line
    assert "--token " not in bulkops("run", "--help", env=cli_env(tmp_path), cwd=tmp_path).stdout
    assert os.environ.get("IRU_API_TOKEN") is None


def test_auth_set_in_process_stores_into_the_memory_keychain(
    memory_keyring: MemoryKeyring,
) -> None:
    from typer.testing import CliRunner

    from bulkops.cli import app

    secret = token()
    result = CliRunner().invoke(app, ["auth", "set", "--subdomain", "acme"], input=secret + "\n")
    assert result.exit_code == 0, result.output
    assert memory_keyring.entries == {(KEYCHAIN_SERVICE, ACME): secret}
    assert secret not in result.output
    forgot = CliRunner().invoke(app, ["auth", "forget", "--subdomain", "acme"])
    assert forgot.exit_code == 0 and memory_keyring.entries == {}


def test_auth_set_at_a_terminal_does_not_echo_the_token(tmp_path: Path) -> None:
    import pty
    import select
    import subprocess
    import sys

    secret = token()
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bulkops", "auth", "set", "--subdomain", "acme"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=cli_env(tmp_path),
        cwd=tmp_path,
        start_new_session=True,  # no controlling terminal: getpass uses this pty, never ours
    )
    os.close(follower)
    seen = b""

    def read_until(marker: bytes) -> None:
        nonlocal seen
        while marker not in seen:
            ready, _, _ = select.select([leader], [], [], 30)
            assert ready, seen
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the follower closed
                return
            if not chunk:
                return
            seen += chunk

    try:
        read_until(b"(input hidden): ")
        os.write(leader, secret.encode() + b"\n")
        read_until(b"stored the API token")
        assert proc.wait(timeout=30) == 0, seen
    finally:
        proc.kill()
        os.close(leader)
    assert b"stored the API token for acme.api.kandji.io" in seen
    assert secret.encode() not in seen  # not echoed
    assert secret in (tmp_path / "keychain.json").read_text()
