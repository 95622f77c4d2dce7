"""``bulkops --profile FILE COMMAND``: where a command's time goes, to attach to a bug report.

cProfile over the command's main thread (the event loop, parsing, planning, reports); the store's
SQLite thread is not in it, and its work shows as the loop waiting. The file opens with
``python -m pstats FILE`` or any pstats viewer; stderr gets the dozen functions that took most
of the time themselves. Function names and line numbers only: no argument, so no token.
"""

from __future__ import annotations

import cProfile
import pstats
from collections.abc import Callable
from pathlib import Path

from bulkops.cli._common import err

__all__ = ["start"]

_TOP = 12


def start(path: Path) -> Callable[[], None]:
    """Start profiling; the returned function stops, writes ``path`` and prints the top."""
    profiler = cProfile.Profile()
    profiler.enable()

    def stop() -> None:
        profiler.disable()
        try:
            profiler.dump_stats(path)
        except OSError as exc:
            err.print(f"--profile {path}: cannot write it ({exc.strerror or exc})")
            return
        stats = pstats.Stats(profiler)
        total = max(stats.total_tt, 1e-9)  # type: ignore[attr-defined]
        rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)  # type: ignore[attr-defined]
        err.print(
            f"profile: {path} (python -m pstats {path}); main thread {total:.2f} s, by own time:",
            markup=False,
            highlight=False,
        )
        for (file, line, name), (_, calls, own, cumulative, _) in rows[:_TOP]:
            where = f"{Path(file).name}:{line}" if line else file
            err.print(
                f"  {100 * own / total:5.1f}%  {own:7.3f} s own  {cumulative:7.3f} s in all"
                f"  {calls:>8} calls  {name} ({where})",
                markup=False,
                highlight=False,
            )

    return stop
