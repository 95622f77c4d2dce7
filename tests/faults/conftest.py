"""Fixtures of the fault tests."""

from __future__ import annotations

import subprocess

import pytest

from .kit import BULKOPS, cli_env


@pytest.fixture(scope="session")
def warm_cli() -> None:
    """Start ``bulkops`` once so its bytecode is cached before processes start in parallel."""
    subprocess.run(
        [BULKOPS, "--help"], env=cli_env("-"), capture_output=True, check=True, timeout=120
    )
