"""The ledger: every request the simulator received, in order, as ground truth for tests."""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Literal, NamedTuple

import orjson

__all__ = ["COUNTED_OUTCOMES", "Ledger", "LedgerEntry", "Outcome"]

Outcome = Literal[
    "ok",  # 2xx read
    "applied",  # 2xx write or action: the state changed / the command was queued
    "rejected",  # 4xx business or validation error (400, 405, 415)
    "not_found",  # 404
    "unauthorized",  # 401 (not counted by the gateway)
    "forbidden",  # 403
    "rate_limited",  # 429 (not counted by the gateway)
    "fault_5xx",  # injected 500/502/503, nothing applied
    "reset_before",  # connection aborted before handling, nothing applied
    "reset_after",  # handled (maybe applied), then the connection aborted without a response
    "odd",  # mangled response (text, HTML 404, empty, truncated JSON)
    "error",  # the simulator itself failed (a bug)
]

#: Outcomes the gateway counted against the rate-limit windows.
COUNTED_OUTCOMES: frozenset[str] = frozenset(
    {
        "ok",
        "applied",
        "rejected",
        "not_found",
        "forbidden",
        "fault_5xx",
        "reset_before",
        "reset_after",
        "odd",
        "error",
    }
)


class LedgerEntry(NamedTuple):
    """One request as the simulator saw it (never holds a token value, only its label)."""

    # A tuple of plain values: the garbage collector stops tracking it, so a ledger of
    # millions of entries costs no collection time on the hot path.

    seq: int
    t_real: float
    t_virtual: float
    method: str
    path: str
    route: str | None
    device_id: str | None
    action: str | None
    token: str | None
    status: int | None
    outcome: Outcome
    applied: bool
    pin: str | None = None
    fault: str | None = None
    reason: str | None = None

    @property
    def counted(self) -> bool:
        """Whether the gateway counted this request against its windows."""
        return self.outcome in COUNTED_OUTCOMES

    def to_dict(self) -> dict[str, Any]:
        """Plain dict in field order (for JSON Lines)."""
        return self._asdict()


class Ledger:
    """Append-only list of `LedgerEntry`, optionally mirrored to a JSON Lines file."""

    def __init__(self, *, path: str | os.PathLike[str] | None = None) -> None:
        self.entries: list[LedgerEntry] = []
        self._file: IO[bytes] | None = None
        if path is not None:
            p = Path(path)
            p.parent.mkdir(parents=True, exist_ok=True)
            self._file = p.open("ab", buffering=0)

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[LedgerEntry]:
        return iter(list(self.entries))

    def append(self, entry: LedgerEntry) -> None:
        """Record one entry (a list append: safe to read from another thread meanwhile)."""
        self.entries.append(entry)
        if self._file is not None:
            self._file.write(orjson.dumps(entry.to_dict()) + b"\n")

    def next_seq(self) -> int:
        """Sequence number for the next entry (1-based)."""
        return len(self.entries) + 1

    def close(self) -> None:
        """Close the JSON Lines file, if any."""
        if self._file is not None:
            self._file.close()
            self._file = None

    # -- queries -------------------------------------------------------------------------------

    def select(
        self,
        *,
        device_id: str | None = None,
        action: str | None = None,
        method: str | None = None,
        route: str | None = None,
        outcome: str | None = None,
        applied: bool | None = None,
    ) -> list[LedgerEntry]:
        """Entries matching every given criterion."""
        out = []
        for e in list(self.entries):
            if device_id is not None and e.device_id != device_id:
                continue
            if action is not None and e.action != action:
                continue
            if method is not None and e.method != method:
                continue
            if route is not None and e.route != route:
                continue
            if outcome is not None and e.outcome != outcome:
                continue
            if applied is not None and e.applied != applied:
                continue
            out.append(e)
        return out

    def applied_count(self, device_id: str | None = None, action: str | None = None) -> int:
        """How many requests changed state (optionally for one device and/or action)."""
        return len(self.select(device_id=device_id, action=action, applied=True))

    def outcomes(self) -> Counter[str]:
        """Count of entries per outcome."""
        return Counter(e.outcome for e in list(self.entries))

    def pins(self, device_id: str | None = None) -> list[str]:
        """Lock PINs issued, in order (optionally for one device)."""
        return [e.pin for e in self.select(device_id=device_id) if e.pin is not None]

    def max_per_window(self, seconds: float, *, counted_only: bool = True) -> int:
        """Most requests in any fixed window of `seconds` virtual seconds aligned to the epoch."""
        return _max_fixed(
            (e.t_virtual for e in list(self.entries) if e.counted or not counted_only), seconds
        )

    def max_sliding(self, seconds: float, *, counted_only: bool = True) -> int:
        """Most requests in any interval of length `seconds` (virtual), sliding."""
        times = sorted(e.t_virtual for e in list(self.entries) if e.counted or not counted_only)
        best = 0
        lo = 0
        for hi, t in enumerate(times):
            while times[lo] <= t - seconds:
                lo += 1
            best = max(best, hi - lo + 1)
        return best


def _max_fixed(times: Iterable[float], seconds: float) -> int:
    if seconds <= 0:
        raise ValueError("seconds must be > 0")
    counts = Counter(math.floor(t / seconds) for t in times)
    return max(counts.values(), default=0)
