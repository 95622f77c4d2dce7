"""The Kong-like gateway: fixed UTC windows, rejected-not-counted, headers, sliding, scale."""

from __future__ import annotations

import pytest
from conftest import Serve
from simkit import HOUR_ALIGNED, FakeClock

from bulkops.sim.clock import VirtualClock
from bulkops.sim.ratelimit import GatewayLimiter

RATE_LIMITED = {"message": "API rate limit exceeded"}


def limiter(clock: FakeClock, *, scale: float = 1.0, **kw: object) -> GatewayLimiter:
    opts: dict[str, object] = {"hour_limit": 10_000, "second_limit": 50}
    opts.update(kw)
    return GatewayLimiter(clock=VirtualClock(time_scale=scale, real=clock), **opts)  # type: ignore[arg-type]


def test_second_window_is_the_whole_utc_second_and_refusals_are_not_counted() -> None:
    clock = FakeClock(HOUR_ALIGNED + 0.1)
    gw = limiter(clock, second_limit=3)
    assert [gw.hit(clock.t).allowed for _ in range(3)] == [True, True, True]
    refused = gw.hit(clock.t)
    assert not refused.allowed and refused.headers["Retry-After"] == "1"
    clock.advance(0.85)  # still inside the same whole second
    assert not any(gw.hit(clock.t).allowed for _ in range(20))
    clock.t = HOUR_ALIGNED + 1.0  # next whole second: a fresh window of exactly 3
    assert [gw.hit(clock.t).allowed for _ in range(4)] == [True, True, True, False]
    assert gw.remaining(clock.t)["Hour"] == 10_000 - 6


def test_hour_window_starts_at_the_top_of_the_utc_hour() -> None:
    clock = FakeClock(HOUR_ALIGNED + 3599.5)
    gw = limiter(clock, hour_limit=2)
    assert gw.hit(clock.t).allowed and gw.hit(clock.t).allowed
    assert not gw.hit(clock.t).allowed
    clock.t = HOUR_ALIGNED + 3600.0  # 0.5 s later but a new fixed window
    assert gw.hit(clock.t).allowed


def test_retry_after_counts_to_the_end_of_the_exceeded_window() -> None:
    clock = FakeClock(HOUR_ALIGNED + 600.25)
    gw = limiter(clock, hour_limit=5)
    for i in range(5):
        clock.t = HOUR_ALIGNED + 600.25 + i * 2  # spread: the second window never fills
        assert gw.hit(clock.t).allowed
    refused = gw.hit(clock.t)
    assert not refused.allowed
    assert refused.headers["Retry-After"] == str(3600 - 608)  # ceil(2991.75)
    assert refused.headers["X-RateLimit-Remaining-Hour"] == "0"
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert refused.headers["RateLimit-Limit"] == "5"


def test_headers_describe_the_most_restrictive_window() -> None:
    clock = FakeClock(HOUR_ALIGNED + 10.5)
    gw = limiter(clock, hour_limit=10_000, second_limit=50)
    h = gw.hit(clock.t).headers
    assert h == {
        "X-RateLimit-Limit-Second": "50",
        "X-RateLimit-Remaining-Second": "49",
        "X-RateLimit-Limit-Hour": "10000",
        "X-RateLimit-Remaining-Hour": "9999",
        "RateLimit-Limit": "50",
        "RateLimit-Remaining": "49",
        "RateLimit-Reset": "1",
    }
    gw2 = limiter(clock, hour_limit=3, second_limit=50)
    h = gw2.hit(clock.t).headers
    assert (h["RateLimit-Limit"], h["RateLimit-Remaining"]) == ("3", "2")
    assert h["RateLimit-Reset"] == str(3600 - 10)  # ceil(3589.5)


def test_other_integration_spends_part_of_every_hour_window() -> None:
    clock = FakeClock(HOUR_ALIGNED + 5)
    gw = limiter(clock, hour_limit=10, other_per_hour=7)
    results = []
    for i in range(5):
        clock.t = HOUR_ALIGNED + 5 + i * 2
        results.append(gw.hit(clock.t).allowed)
    assert results == [True, True, True, False, False]
    clock.t = HOUR_ALIGNED + 3600 + 5
    assert gw.hit(clock.t).headers["X-RateLimit-Remaining-Hour"] == "2"


def test_sliding_window_counts_the_last_period() -> None:
    clock = FakeClock(HOUR_ALIGNED + 3599.5)
    gw = limiter(clock, hour_limit=2, window="sliding")
    assert gw.hit(clock.t).allowed
    clock.advance(0.25)
    assert gw.hit(clock.t).allowed
    clock.t = HOUR_ALIGNED + 3600.0  # a fixed window would reset here; sliding does not
    refused = gw.hit(clock.t)
    assert not refused.allowed
    assert refused.headers["Retry-After"] == "3600"  # ceil(3599.5): the first hit expires
    clock.t = HOUR_ALIGNED + 3599.5 + 3600.0
    assert gw.hit(clock.t).allowed
    assert not gw.hit(clock.t).allowed  # the second one is still inside the hour


def test_hidden_headers_hide_retry_after_too() -> None:
    clock = FakeClock(HOUR_ALIGNED)
    gw = limiter(clock, second_limit=1, headers=False)
    assert gw.hit(clock.t).headers == {}
    refused = gw.hit(clock.t)
    assert not refused.allowed and refused.headers == {}


def test_time_scale_maps_windows_and_retry_after_to_real_seconds() -> None:
    clock = FakeClock(1_000_000.25)  # real seconds; scale 3600: one virtual hour per real second
    gw = limiter(clock, scale=3600, hour_limit=3, second_limit=10**9)
    now_v = clock.t * 3600
    assert [gw.hit(now_v).allowed for _ in range(4)] == [True, True, True, False]
    assert gw.hit(now_v).headers["Retry-After"] == "1"  # 0.75 real s, rounded up
    clock.t = 1_000_001.0  # the next whole real second is the next virtual hour
    assert gw.hit(clock.t * 3600).allowed
    clock2 = FakeClock(60 * 20_000 + 10.0)  # scale 60: the hour is 60 real s, 10 s used
    gw2 = limiter(clock2, scale=60, hour_limit=1, second_limit=10**9)
    assert gw2.hit(clock2.t * 60).allowed
    assert gw2.hit(clock2.t * 60).headers["Retry-After"] == "50"


# -- over HTTP --------------------------------------------------------------------------------


async def test_429_body_headers_and_shared_budget_across_tokens(serve: Serve) -> None:
    clock = FakeClock(HOUR_ALIGNED + 42.5)
    async with serve(clock=clock, second_limit=4, hour_limit=10_000) as api:
        other = api.sim.add_token()
        mac = api.device_of("Mac")
        for token in (api.token, other, api.token, other):
            r = await api.get(f"/api/v1/devices/{mac}", token=token)
            assert r.status == 200
            assert "X-RateLimit-Remaining-Second" in r.headers
        for token in (api.token, other):
            r = await api.get(f"/api/v1/devices/{mac}", token=token)
            assert r.status == 429 and r.json() == RATE_LIMITED
            assert r.headers["Retry-After"] == "1"
            assert r.headers["X-RateLimit-Remaining-Second"] == "0"
        r = await api.post(f"/api/v1/devices/{mac}/action/lock")
        assert r.status == 429
        assert api.sim.world.states.get(mac) is None, "a refused request never reaches the app"
        clock.advance(0.5)  # next whole second
        assert (await api.get(f"/api/v1/devices/{mac}", token=other)).status == 200
        outcomes = api.sim.ledger.outcomes()
        assert outcomes["ok"] == 5 and outcomes["rate_limited"] == 3
        assert api.sim.ledger.max_per_window(1) == 4
        assert {e.token for e in api.sim.ledger.entries} == {"token-1", "token-2"}


async def test_unauthenticated_requests_are_not_counted(serve: Serve) -> None:
    clock = FakeClock(HOUR_ALIGNED + 7.5)
    async with serve(clock=clock, second_limit=3) as api:
        for _ in range(10):
            r = await api.get("/api/v1/devices", auth=False)
            assert r.status == 401
            assert r.headers["X-RateLimit-Remaining-Second"] == "3"  # shown, not spent
        statuses = [(await api.get("/api/v1/tags")).status for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        assert api.sim.ledger.max_per_window(1) == 3
        assert api.sim.ledger.max_per_window(1, counted_only=False) == 14


async def test_hour_limit_over_http_and_other_integration(serve: Serve) -> None:
    from bulkops.sim import Faults

    clock = FakeClock(HOUR_ALIGNED + 1800.0)
    faults = Faults(other_integration_per_window=95)
    async with serve(clock=clock, hour_limit=100, faults=faults) as api:
        statuses = []
        for _ in range(8):
            statuses.append((await api.get("/api/v1/tags")).status)
            clock.advance(1.0)
        assert statuses == [200] * 5 + [429] * 3
        r = await api.get("/api/v1/tags")
        assert r.headers["Retry-After"] == str(1800 - 8)
        clock.t = HOUR_ALIGNED + 3600.0
        r = await api.get("/api/v1/tags")
        assert r.status == 200 and r.headers["X-RateLimit-Remaining-Hour"] == "4"


async def test_rate_limit_headers_can_be_hidden(serve: Serve) -> None:
    clock = FakeClock(HOUR_ALIGNED + 0.5)
    async with serve(clock=clock, second_limit=1, rate_limit_headers=False) as api:
        ok = await api.get("/api/v1/tags")
        assert ok.status == 200
        assert not [h for h in ok.headers if "ratelimit" in h.lower()]
        refused = await api.get("/api/v1/tags")
        assert refused.status == 429 and refused.json() == RATE_LIMITED
        assert "Retry-After" not in refused.headers


async def test_sliding_window_over_http(serve: Serve) -> None:
    clock = FakeClock(HOUR_ALIGNED + 0.75)
    async with serve(clock=clock, second_limit=2, window="sliding") as api:
        assert (await api.get("/api/v1/tags")).status == 200
        clock.advance(0.5)  # a new fixed second, but within the sliding second
        assert (await api.get("/api/v1/tags")).status == 200
        assert (await api.get("/api/v1/tags")).status == 429
        assert api.sim.ledger.max_sliding(1) == 2
        assert api.sim.ledger.max_per_window(1) == 1


@pytest.mark.parametrize("window", ["fixed", "sliding"])
async def test_no_window_ever_exceeds_the_limit_under_a_burst(serve: Serve, window: str) -> None:
    clock = FakeClock(HOUR_ALIGNED + 0.3)
    async with serve(clock=clock, second_limit=5, window=window) as api:
        for _ in range(60):
            await api.get("/api/v1/tags")
            clock.advance(0.07)
        ledger = api.sim.ledger
        assert ledger.max_per_window(1) <= 5
        if window == "sliding":
            assert ledger.max_sliding(1) <= 5
        assert ledger.outcomes()["rate_limited"] > 0
