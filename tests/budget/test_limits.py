"""Window arithmetic and the GCRA bucket, without a loop."""

from __future__ import annotations

import math

import pytest

from bulkops.budget import BudgetConfig, Rate
from bulkops.budget._limits import Bucket, Limits, window_end, window_index

from .spy import max_aligned, max_sliding

HOUR = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def test_windows_are_aligned_to_the_utc_clock() -> None:
    assert window_index(HOUR, 3600.0) == window_index(HOUR + 3599.999, 3600.0)
    assert window_index(HOUR + 3600.0, 3600.0) == window_index(HOUR, 3600.0) + 1
    assert window_end(HOUR + 1234.5, 3600.0) == HOUR + 3600.0
    assert window_end(HOUR, 1.0) == HOUR + 1.0


@pytest.mark.parametrize("period_s", [0.1, 0.3, 1.0 / 3, 7.7, 3600.0])
def test_window_end_is_the_next_window_for_awkward_periods(period_s: float) -> None:
    for i in range(2000):
        t = HOUR + i * 0.0137
        end = window_end(t, period_s)
        assert window_index(end, period_s) == window_index(t, period_s) + 1
        assert window_index(math.nextafter(end, 0.0), period_s) == window_index(t, period_s)


def greedy_sends(bucket: Bucket, start: float, count: int) -> list[float]:
    """Send as early as the bucket allows, ``count`` times."""
    tat, times = -math.inf, []
    t = start
    for _ in range(count):
        t = max(t, bucket.earliest(tat))
        times.append(t)
        tat = bucket.after_send(tat, t)
    return times


def test_bucket_bursts_then_spaces() -> None:
    bucket = Bucket("b", interval_s=0.5, burst=3)
    times = greedy_sends(bucket, 100.0, 6)
    assert times == [100.0, 100.0, 100.0, 100.5, 101.0, 101.5]


@pytest.mark.parametrize(("count", "burst"), [(100, 10), (9000, 10), (20, 10), (7, 3)])
def test_rate_bucket_keeps_every_window_under_the_count(count: int, burst: int) -> None:
    """The smoothing bucket alone never lets ``count`` + 1 into any period, sliding or aligned."""
    config = BudgetConfig(rate=Rate(count, 10.0), burst=burst, per_second=10**6)
    bucket = Limits.from_config(config).buckets[0]
    times = greedy_sends(bucket, HOUR + 3.3, count * 5)
    assert max_sliding(times, 10.0) <= count
    assert max_aligned(times, 10.0) <= count


def test_naive_bucket_of_n_lets_nearly_2n_into_one_window() -> None:
    """The mistake the notes describe (AsyncLimiter(N, period)), shown with the same spy."""
    naive = Bucket("naive", interval_s=10.0 / 100, burst=100)
    times = greedy_sends(naive, HOUR, 300)
    assert max_aligned(times, 10.0) >= 199


def test_per_second_spacing_keeps_a_sliding_second_under_kong() -> None:
    limits = Limits.from_config(BudgetConfig(per_second=45))
    second = limits.buckets[1]
    times = greedy_sends(second, HOUR + 0.123, 500)
    assert max_sliding(times, 1.0) <= 46


@pytest.mark.parametrize("per_second", [45, 200, 400, 1000])
def test_no_sliding_second_sees_more_than_per_second_even_with_a_burst(per_second: int) -> None:
    limits = Limits.from_config(BudgetConfig(per_second=per_second))
    second = limits.buckets[1]
    assert second.burst == max(1, per_second // 100)
    times = greedy_sends(second, HOUR + 0.123, 5 * per_second)
    assert max_sliding(times, 1.0) <= per_second
    assert max_sliding(times, 1.0) >= per_second - 1  # and the pace is not given away


def test_limits_from_default_config() -> None:
    limits = Limits.from_config(BudgetConfig())
    assert [(w.period_s, w.limit) for w in limits.windows] == [(3600.0, 9000), (1.0, 45)]
    assert limits.buckets[0].interval_s == pytest.approx(3600.0 / 8991 + 1e-6)
    assert limits.buckets[0].burst == 10
    assert limits.pace_s == pytest.approx(3600.0 / 8991 + 1e-6)
