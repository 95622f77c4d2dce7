"""`SimConfig`: every knob of the simulator in one frozen dataclass."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bulkops.sim.faults import Faults
from bulkops.sim.ratelimit import WindowKind

__all__ = ["SimConfig"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SimConfig:
    """How big the tenant is, how the gateway limits, what goes wrong, where to record."""

    devices: int = 200
    seed: int = 7
    time_scale: float = 1.0
    hour_limit: int = 10_000
    second_limit: int = 50
    window: WindowKind = "fixed"
    rate_limit_headers: bool = True
    faults: Faults = field(default_factory=Faults)
    ledger_path: str | os.PathLike[str] | None = None
    fleet_path: str | os.PathLike[str] | None = None
    ade_devices: int = 10
    duplicate_serials: int = 0
    command_delay_s: float = 60.0
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        if self.devices < 0 or self.ade_devices < 0 or self.duplicate_serials < 0:
            raise ValueError("devices, ade_devices and duplicate_serials must be >= 0")
        if not self.time_scale > 0:
            raise ValueError("time_scale must be > 0")
        if self.hour_limit < 1 or self.second_limit < 1:
            raise ValueError("hour_limit and second_limit must be >= 1")
        if self.window not in ("fixed", "sliding"):
            raise ValueError("window must be 'fixed' or 'sliding'")
        if self.command_delay_s < 0:
            raise ValueError("command_delay_s must be >= 0")
