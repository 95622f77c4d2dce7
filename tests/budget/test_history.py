"""The send ledger: atomic check-and-record, sharing, 429 removal, pruning, file settings."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from bulkops.budget import BudgetConfig, Rate, SendHistory
from bulkops.budget._history import PausedUntil, Sent
from bulkops.budget._limits import Limits, Window
from bulkops.errors import CheckpointError

HOUR = 1_767_225_600.0


def limits(count: int = 5, period_s: float = 10.0, per_second: int = 1000) -> Limits:
    """The window counters alone (no smoothing), so each test sees only what it is about."""
    return Limits(windows=(Window(period_s, count), Window(1.0, per_second)), buckets=())


class Ticker:
    """A now() that advances by ``step`` at each call."""

    def __init__(self, t: float, step: float = 0.0) -> None:
        self.t, self.step = t, step

    def __call__(self) -> float:
        value = self.t
        self.t += self.step
        return value


def fill(history: SendHistory, lim: Limits, at: Ticker, n: int) -> list[Sent | float]:
    return [history.try_send(at, lim) for _ in range(n)]


def test_window_counter_refuses_the_count_plus_one() -> None:
    lim = limits(count=5, period_s=10.0)
    with SendHistory(None, tenant="t") as history:
        results = fill(history, lim, Ticker(HOUR + 1.0, 0.001), 6)
        sent = [r for r in results if isinstance(r, Sent)]
        assert [s.window_count for s in sent] == [1, 2, 3, 4, 5]
        assert results[5] == HOUR + 10.0  # retry at the next window
        assert history.count_in_window(HOUR + 9.9, 10.0) == 5
        assert history.count_in_window(HOUR + 10.0, 10.0) == 0
        assert isinstance(history.try_send(Ticker(HOUR + 10.0), lim), Sent)
        assert history.count_in_window(HOUR + 10.0, 10.0) == 1


def test_bucket_spacing_is_enforced_between_calls() -> None:
    config = BudgetConfig(rate=Rate(1000, 10.0), per_second=4)  # 4/s: one send per 0.25 s
    lim = Limits.from_config(config)
    with SendHistory(None, tenant="t") as history:
        first = history.try_send(Ticker(HOUR), lim)
        second = history.try_send(Ticker(HOUR + 0.1), lim)
        assert isinstance(first, Sent)
        assert second == pytest.approx(HOUR + 0.25)


def test_two_connections_share_one_tenant_budget(tmp_path: Path) -> None:
    lim = limits(count=4)
    path = tmp_path / "budget.db"
    with SendHistory(path, tenant="t") as a, SendHistory(path, tenant="t") as b:
        at = Ticker(HOUR, 0.01)
        results = [h.try_send(at, lim) for h in (a, b, a, b, a, b)]
        assert [isinstance(r, Sent) for r in results] == [True] * 4 + [False] * 2
        assert a.count_in_window(at.t, 10.0) == b.count_in_window(at.t, 10.0) == 4


def test_tenants_do_not_share(tmp_path: Path) -> None:
    lim = limits(count=2)
    path = tmp_path / "budget.db"
    with SendHistory(path, tenant="a.api.kandji.io") as a, SendHistory(path, tenant="b") as b:
        at = Ticker(HOUR, 0.01)
        assert all(isinstance(r, Sent) for r in fill(a, lim, at, 2) + fill(b, lim, at, 2))
        assert not isinstance(a.try_send(at, lim), Sent)


def test_remove_uncounts_a_refused_send() -> None:
    lim = limits(count=3)
    with SendHistory(None, tenant="t") as history:
        sent = fill(history, lim, Ticker(HOUR, 0.01), 3)
        assert isinstance(sent[2], Sent)
        history.remove(sent[2])
        assert history.count_in_window(HOUR + 1.0, 10.0) == 2
        history.remove(sent[2])  # twice: no effect
        assert history.count_in_window(HOUR + 1.0, 10.0) == 2
        assert history.count_in_window(HOUR + 1.0, 1.0) == 0  # the second it was in has passed


def test_remove_after_the_window_rolled_leaves_the_new_window_alone() -> None:
    lim = limits(count=3)
    with SendHistory(None, tenant="t") as history:
        old = history.try_send(Ticker(HOUR + 9.9), lim)
        assert isinstance(old, Sent)
        assert isinstance(history.try_send(Ticker(HOUR + 10.5), lim), Sent)
        history.remove(old)
        assert history.count_in_window(HOUR + 10.6, 10.0) == 1


def test_a_new_window_length_is_seeded_from_the_sends(tmp_path: Path) -> None:
    """A run at 150/m after a run at 9000/h counts the earlier run's sends of this minute."""
    path = tmp_path / "budget.db"
    with SendHistory(path, tenant="t") as history:
        hourly = limits(count=9000, period_s=3600.0)
        fill(history, hourly, Ticker(HOUR + 30.0, 0.1), 20)
        per_minute = limits(count=25, period_s=60.0)
        results = fill(history, per_minute, Ticker(HOUR + 40.0, 0.1), 10)
        assert sum(isinstance(r, Sent) for r in results) == 5
        # … and the 9000/h window keeps counting the 150/m run's sends.
        assert history.count_in_window(HOUR + 50.0, 3600.0) == 25


def test_rows_older_than_the_longest_window_are_pruned(tmp_path: Path) -> None:
    path = tmp_path / "budget.db"
    lim = limits(count=100, period_s=10.0)
    with SendHistory(path, tenant="t") as history:
        fill(history, lim, Ticker(HOUR, 0.5), 30)  # 15 s of sends: two windows
        fill(history, lim, Ticker(HOUR + 25.0, 0.5), 4)  # third window: prune
    with sqlite3.connect(path) as con:
        (oldest,) = con.execute("SELECT min(t) FROM sends").fetchone()
        (rows,) = con.execute("SELECT count(*) FROM sends").fetchone()
    con.close()
    assert oldest >= HOUR + 25.0 - 10.0
    assert rows < 30


def test_file_settings(tmp_path: Path) -> None:
    path = tmp_path / "budget.db"
    with SendHistory(path, tenant="t") as history:
        history.try_send(Ticker(HOUR), limits())
        con = history._con
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert con.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
        assert con.execute("PRAGMA page_size").fetchone()[0] == 1024
        assert con.execute("PRAGMA user_version").fetchone()[0] == 1
    for name in ("budget.db", "budget.db-wal", "budget.db-shm"):
        if (tmp_path / name).exists():
            assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600, name
    assert "budget.db" in repr(history)


def test_missing_folders_are_created_owner_only(tmp_path: Path) -> None:
    with SendHistory(tmp_path / "state" / "bulkops" / "budget.db", tenant="t"):
        pass
    assert stat.S_IMODE(os.stat(tmp_path / "state" / "bulkops").st_mode) == 0o700


def test_unusable_path_is_our_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    with pytest.raises(CheckpointError, match=r"send history .* cannot open"):
        SendHistory(tmp_path / "a-file" / "budget.db", tenant="t")
    with pytest.raises(ValueError, match="tenant"):
        SendHistory(None, tenant="")


def test_a_file_from_an_unknown_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "budget.db"
    with sqlite3.connect(path) as con:
        con.execute("PRAGMA user_version = 99")
    con.close()
    with pytest.raises(CheckpointError, match="unknown send history version 99"):
        SendHistory(path, tenant="t")


def test_a_closed_history_raises_our_error() -> None:
    history = SendHistory(None, tenant="t")
    history.close()
    with pytest.raises(CheckpointError, match="record a send"):
        history.try_send(Ticker(HOUR), limits())


def test_several_sends_in_one_transaction_stop_at_the_window() -> None:
    lim = limits(count=5, period_s=10.0)
    with SendHistory(None, tenant="t") as history:
        batch = history.try_send_many(Ticker(HOUR + 1.0), lim, want=8)
        assert isinstance(batch, list)
        assert [s.window_count for s in batch] == [1, 2, 3, 4, 5]
        assert [s.id for s in batch] == list(range(batch[0].id, batch[0].id + 5))
        assert history.count_in_window(HOUR + 1.0, 10.0) == 5
        assert history.try_send_many(Ticker(HOUR + 2.0), lim, want=3) == HOUR + 10.0
        history.remove(batch[3])  # each send of a batch can be uncounted on its own
        assert history.count_in_window(HOUR + 2.0, 10.0) == 4


def test_several_sends_in_one_transaction_stop_at_the_burst() -> None:
    lim = Limits.from_config(BudgetConfig(rate=Rate(1000, 10.0), burst=5, per_second=10**6))
    with SendHistory(None, tenant="t") as history:
        one_by_one = fill(history, lim, Ticker(HOUR), 10)
        at_once = sum(1 for r in one_by_one if isinstance(r, Sent))
    with SendHistory(None, tenant="t") as history:
        first = history.try_send_many(Ticker(HOUR), lim, want=50)
        assert isinstance(first, list) and len(first) == at_once  # as one by one would
        assert 4 <= at_once <= 5  # the burst (the 5th may be an ulp later)
        again = history.try_send_many(Ticker(HOUR), lim, want=50)
        assert isinstance(again, float) and again > HOUR


def test_a_429_pause_holds_every_connection_of_the_tenant_until_it_ends(tmp_path: Path) -> None:
    lim = limits(count=100)
    path = tmp_path / "budget.db"
    with SendHistory(path, tenant="t") as a, SendHistory(path, tenant="t") as b:
        assert a.paused_until() == -float("inf")
        a.pause(HOUR + 9000.0)  # a bogus end (a clock far ahead) is not kept for ever:
        a.pause(HOUR + 30.0)  # the latest 429's word replaces it
        held = b.try_send(Ticker(HOUR + 5.0), lim)
        assert isinstance(held, PausedUntil) and held == HOUR + 30.0
        assert b.count_in_window(HOUR + 5.0, 10.0) == 0  # nothing was recorded
        assert isinstance(b.try_send(Ticker(HOUR + 30.0), lim), Sent)
        with SendHistory(path, tenant="other") as other:  # another tenant's quota
            assert isinstance(other.try_send(Ticker(HOUR + 5.0), lim), Sent)
    with SendHistory(path, tenant="t") as later:  # and the next run
        assert later.paused_until() == HOUR + 30.0
