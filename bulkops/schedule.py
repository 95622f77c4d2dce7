"""Send windows: ``--window 22:00-06:00`` lets an unattended run send only at night.

Times are the machine's local wall clock; a window that ends before it starts crosses midnight.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["ETA_CAP_S", "TimeWindow"]

ETA_CAP_S = 366 * 86400.0  # an ETA past a year says only "too slow": it is shown as a year

_FORM = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """A daily window, as minutes after midnight: ``start`` included, ``end`` excluded."""

    start_min: int
    end_min: int

    @classmethod
    def parse(cls, text: str) -> TimeWindow:
        """``"22:00-06:00"`` → a window; ``ValueError`` with the expected form otherwise."""
        m = _FORM.match(text)
        if not m:
            raise ValueError(f"{text!r} is not a window; write it as HH:MM-HH:MM, e.g. 22:00-06:00")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
            raise ValueError(f"{text!r} has a time that does not exist; use 00:00 to 24:00")
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if start == end:
            raise ValueError(f"{text!r} is empty; its start and end are the same")
        return cls(start, end)

    def __str__(self) -> str:
        start, end = divmod(self.start_min, 60), divmod(self.end_min, 60)
        return f"{start[0]:02d}:{start[1]:02d}-{end[0]:02d}:{end[1]:02d}"

    def contains(self, when: datetime) -> bool:
        """Whether sending is allowed at ``when``."""
        minute = when.hour * 60 + when.minute
        if self.start_min < self.end_min:
            return self.start_min <= minute < self.end_min
        return minute >= self.start_min or minute < self.end_min

    def wait_s(self, when: datetime) -> float:
        """Seconds from ``when`` until the window opens (0 when it is open)."""
        if self.contains(when):
            return 0.0
        midnight = when.replace(hour=0, minute=0, second=0, microsecond=0)
        opens = midnight + timedelta(minutes=self.start_min)
        if opens <= when:
            opens += timedelta(days=1)
        return (opens - when).total_seconds()

    def finish_s(self, when: datetime, work_s: float) -> float:
        """Seconds from ``when`` until ``work_s`` seconds of sending are done, sending only
        while the window is open: the ETA of a run longer than one night's window. Nothing
        left is done now; whole days are counted at once (a one-minute window and a low
        ``--rate`` may need years), and the answer stops at :data:`ETA_CAP_S`."""
        if work_s <= 0:
            return 0.0
        daily_s = ((self.end_min - self.start_min) % (24 * 60) or 24 * 60) * 60.0
        t, left = when, work_s
        for _ in range(3):  # at most: the rest of today's window, whole days, the last one
            t += timedelta(seconds=self.wait_s(t))
            midnight = t.replace(hour=0, minute=0, second=0, microsecond=0)
            closes = midnight + timedelta(minutes=self.end_min)
            if closes <= t:
                closes += timedelta(days=1)
            open_s = (closes - t).total_seconds()
            if left <= open_s:
                break
            left -= open_s
            days = min(int((left - 1e-9) // daily_s), int(ETA_CAP_S // 86400))
            t = closes + timedelta(days=days)
            left -= days * daily_s
            if (t - when).total_seconds() >= ETA_CAP_S:
                return ETA_CAP_S
        return min((t - when).total_seconds() + left, ETA_CAP_S)
