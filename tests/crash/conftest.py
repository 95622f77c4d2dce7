"""Fixtures of the crash tests: one fork server per session, a simulator served from a thread."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest

from bulkops.sim import Simulator
from tests.crash.harness import ForkServer, make_sim


@pytest.fixture(scope="session")
def fork_server() -> Iterator[ForkServer]:
    """The runner with everything imported; each pass is a forked child of it."""
    with ForkServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _quiet_sim(caplog: pytest.LogCaptureFixture) -> None:
    # A client killed mid-request makes the simulator log the handler's ConnectionResetError.
    caplog.set_level(logging.CRITICAL, logger="bulkops.sim")


@dataclass
class Served:
    """A simulator on loopback and a token for it."""

    sim: Simulator
    url: str
    token: str


@pytest.fixture
def serve() -> Iterator[Callable[..., Served]]:
    """``serve(devices=…, seed=…, latency_s=…)``: a simulator served from a thread."""
    with ExitStack() as stack:

        def start(**kwargs: Any) -> Served:
            sim = make_sim(**{"devices": 200, "seed": 7, **kwargs})
            token = sim.add_token()
            url = stack.enter_context(sim.in_thread())
            return Served(sim, url, token)

        yield start
