"""Rate parsing and the budget configuration."""

from __future__ import annotations

import dataclasses

import pytest

from bulkops.budget import DEFAULT_RATE, BudgetConfig, Rate


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9000/h", Rate(9000, 3600.0)),
        ("150/m", Rate(150, 60.0)),
        ("2.5/s", Rate(25, 10.0)),
        ("0.25/s", Rate(25, 100.0)),
        ("100/10s", Rate(100, 10.0)),
        (" 10 / H ", Rate(10, 3600.0)),
        ("1_000/hour", Rate(1000, 3600.0)),
        ("45/sec", Rate(45, 1.0)),
        ("30/min", Rate(30, 60.0)),
        ("500/0.5h", Rate(500, 1800.0)),
    ],
)
def test_parse(text: str, expected: Rate) -> None:
    assert Rate.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "expected COUNT/UNIT"),
        ("9000", "expected COUNT/UNIT"),
        ("fast", "expected COUNT/UNIT"),
        ("1e3/h", "expected COUNT/UNIT"),
        ("-5/h", "expected COUNT/UNIT"),
        ("9000/d", "unknown unit 'd'"),
        ("0/h", "above zero"),
        ("5/0s", "above zero"),
    ],
)
def test_parse_rejects_with_a_clear_message(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match="invalid rate") as info:
        Rate.parse(text)
    assert fragment in str(info.value)
    assert repr(text) in str(info.value)


def test_per_hour_and_str() -> None:
    assert Rate(9000, 3600.0).per_hour == 9000
    assert Rate(150, 60.0).per_hour == 9000
    assert Rate.parse("2.5/s").per_hour == 9000
    assert str(Rate(9000, 3600.0)) == "9000/h"
    assert str(Rate(150, 60.0)) == "150/m"
    assert str(Rate(25, 10.0)) == "25/10s"
    assert Rate.parse(str(Rate(25, 10.0))) == Rate(25, 10.0)


@pytest.mark.parametrize(("count", "period_s"), [(0, 1.0), (-1, 1.0), (1, 0.0), (1, float("inf"))])
def test_rate_rejects_nonsense(count: int, period_s: float) -> None:
    with pytest.raises(ValueError, match="rate"):
        Rate(count, period_s)


def test_rate_count_must_be_whole() -> None:
    with pytest.raises(ValueError, match="whole number"):
        Rate(2.5, 1.0)  # type: ignore[arg-type]


def test_defaults_leave_a_reserve_below_the_tenant_limit() -> None:
    config = BudgetConfig()
    assert config.rate == DEFAULT_RATE == Rate(9000, 3600.0)
    assert config.rate.per_hour <= 10_000 - 1000
    assert config.per_second == 45 < 50
    assert config.burst == 10
    assert config.tenant == "default"
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.burst = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [({"per_second": 0}, "per_second"), ({"burst": 0}, "burst"), ({"tenant": ""}, "tenant")],
)
def test_config_rejects_nonsense(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        BudgetConfig(**kwargs)  # type: ignore[arg-type]


def test_burst_is_at_most_one_percent_of_the_count() -> None:
    """A bigger burst would cost more than 1% of the rate in every window (see _limits)."""
    assert BudgetConfig(rate=Rate(9000, 3600.0)).effective_burst == 10
    assert BudgetConfig(rate=Rate(450, 1.0)).effective_burst == 4
    assert BudgetConfig(rate=Rate(6, 60.0)).effective_burst == 1
    assert BudgetConfig(rate=Rate(1, 60.0)).effective_burst == 1
