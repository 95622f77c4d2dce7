"""Shared fixtures: a simulator on loopback, a token, and a job wired to both."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bulkops.budget import Rate
from bulkops.client import Connection
from bulkops.engine import Engine, RunOptions
from bulkops.job import JobConfig
from bulkops.sim import Faults, SimConfig, Simulator


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test touches the user's budget ledger, tokens or working directory."""
    monkeypatch.setenv("BULKOPS_STATE_DIR", str(tmp_path / "state"))
    for name in ("IRU_API_TOKEN", "KANDJI_API_TOKEN", "BULKOPS_BASE_URL", "BULKOPS_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    # the keychain of the machine is never read or written: keyring's do-nothing backend
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    monkeypatch.chdir(tmp_path)
    yield


@dataclass
class Tenant:
    """A running simulator and what a job needs to reach it."""

    sim: Simulator
    url: str
    token: str

    def config(self, tmp: Path, **overrides: object) -> JobConfig:
        """A job config pointed at this tenant, with a fast budget unless overridden."""
        options = overrides.pop("options", RunOptions(concurrency=8))
        base: dict[str, object] = {
            "connection": Connection(base_url=self.url, token=self.token),
            "tenant": self.url.split("://", 1)[1],
            "db_path": tmp / "run.db",
            "out_dir": tmp / "reports",
            "rate": Rate(100_000, 3600.0),
            "per_second": 45,
            "budget_db": tmp / "budget.db",
            "options": options,
        }
        base.update(overrides)
        return JobConfig(**base)  # type: ignore[arg-type]


def make_sim(**kwargs: object) -> Simulator:
    """A simulator with a lifted rate limit unless the test sets one."""
    faults = kwargs.pop("faults", Faults())
    defaults: dict[str, object] = {
        "devices": 120,
        "seed": 7,
        "hour_limit": 1_000_000,
        "second_limit": 100_000,
        "faults": faults,
    }
    defaults.update(kwargs)
    return Simulator(SimConfig(**defaults))  # type: ignore[arg-type]


@pytest.fixture
async def tenant() -> AsyncIterator[Tenant]:
    """A 120-device simulated tenant with a lifted rate limit."""
    sim = make_sim()
    token = sim.add_token()
    async with sim.running(host="127.0.0.1", port=0) as url:
        yield Tenant(sim, url, token)


def write(path: Path, text: str) -> Path:
    """Write a manifest file and return its path."""
    path.write_text(text, encoding="utf-8")
    return path


def env_with_token(token: str) -> dict[str, str]:
    """The environment for a `bulkops` subprocess: the token in the environment, never argv."""
    env = dict(os.environ)
    env["IRU_API_TOKEN"] = token
    return env


def stop_after(done: int, *, then: Callable[[], None] = lambda: None) -> Callable[[Engine], None]:
    """An ``on_engine`` hook: a first Ctrl-C once ``done`` items have an outcome, after ``then``."""

    def attach(engine: Engine) -> None:
        async def watch() -> None:
            while engine.progress.done < done:
                await asyncio.sleep(0.001)
            then()
            engine.request_stop()

        asyncio.get_running_loop().create_task(watch())

    return attach
