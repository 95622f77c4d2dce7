"""Virtual clock: real time multiplied by a time scale, so gateway windows stay UTC-aligned."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["VirtualClock"]


class VirtualClock:
    """Maps a real clock onto virtual seconds (`real * time_scale`) and back."""

    __slots__ = ("_display_offset_s", "_real", "time_scale")

    def __init__(self, *, time_scale: float = 1.0, real: Callable[[], float] = time.time) -> None:
        if not time_scale > 0:
            raise ValueError("time_scale must be > 0")
        self.time_scale = time_scale
        self._real = real
        start_real = real()
        # Timestamps shown in bodies start at the real start time and run time_scale times faster;
        # the raw virtual value (real * scale) can lie far beyond year 9999.
        self._display_offset_s = start_real - start_real * time_scale

    def real(self) -> float:
        """Return the real clock's current value (seconds since the epoch)."""
        return self._real()

    def now(self) -> float:
        """Return the current virtual time in virtual seconds."""
        return self._real() * self.time_scale

    def to_virtual(self, real_s: float) -> float:
        """Convert a real instant to virtual seconds."""
        return real_s * self.time_scale

    def real_seconds(self, virtual_s: float) -> float:
        """Convert a virtual duration to real seconds."""
        return virtual_s / self.time_scale

    def real_ceil_s(self, virtual_s: float) -> int:
        """Convert a virtual duration to whole real seconds, rounded up, at least 1."""
        return max(1, math.ceil(virtual_s / self.time_scale - 1e-9))

    def display_epoch_s(self, virtual_s: float) -> float:
        """Map a virtual instant to the epoch seconds shown in response timestamps."""
        return virtual_s + self._display_offset_s

    def iso(self, virtual_s: float) -> str:
        """Format a virtual instant like Kandji's `last_check_in` (ISO 8601 with `Z`)."""
        dt = datetime.fromtimestamp(self.display_epoch_s(virtual_s), UTC)
        return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
