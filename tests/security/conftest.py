"""Fixtures of the security tests: keychains that are not the machine's, the CLI as a process."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.core
import pytest

from bulkops.redact import forget_all

from .keyrings import MemoryKeyring

ROOT = Path(__file__).resolve().parents[2]
# Subprocesses keep their bytecode here (this environment sets PYTHONDONTWRITEBYTECODE).
PYCACHE = Path(tempfile.gettempdir()) / "bulkops-tests-pycache"


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    """An in-memory keychain for this test, the previous backend restored after."""
    before = keyring.core._keyring_backend
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.core._keyring_backend = before


@pytest.fixture(autouse=True)
def _no_remembered_secrets() -> Iterator[None]:
    yield
    forget_all()


def cli_env(tmp: Path, *, token: str | None = None, **extra: str) -> dict[str, str]:
    """A ``bulkops`` subprocess environment: a file-backed test keychain, the token if given."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHON_KEYRING_BACKEND"] = "tests.security.keyrings.FileKeyring"
    env["BULKOPS_TEST_KEYRING"] = str(tmp / "keychain.json")
    if token is not None:
        env["IRU_API_TOKEN"] = token
    env.update(extra)
    return env


def bulkops(
    *args: str, env: dict[str, str], cwd: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``bulkops ARGS`` as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "bulkops", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        input=stdin,
        timeout=120,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a refused command (and no traceback)."""
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, result.stderr
    return lines[0]
