"""The ledger: fields, queries, JSON Lines mirror, and no token values anywhere."""

from __future__ import annotations

from pathlib import Path

import orjson
from conftest import Serve
from simkit import HOUR_ALIGNED, FakeClock

from bulkops.sim import LedgerEntry
from bulkops.sim.ledger import Ledger

FIELDS = [
    "seq",
    "t_real",
    "t_virtual",
    "method",
    "path",
    "route",
    "device_id",
    "action",
    "token",
    "status",
    "outcome",
    "applied",
    "pin",
    "fault",
    "reason",
]


async def test_entries_record_every_request_in_order(serve: Serve, tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    clock = FakeClock(HOUR_ALIGNED + 12.0)
    async with serve(ledger_path=path, clock=clock, time_scale=2.0) as api:
        mac = api.device_of("Mac")
        pin = (await api.post(f"/api/v1/devices/{mac}/action/lock")).json()["PIN"]
        await api.post(f"/api/v1/devices/{mac}/action/lock")
        await api.get("/api/v1/devices", auth=False)
        entries = api.sim.ledger.entries
        assert [e.seq for e in entries] == [1, 2, 3]
        first = entries[0]
        assert (first.method, first.route, first.device_id, first.action) == (
            "POST",
            "/api/v1/devices/{device_id}/action/lock",
            mac,
            "lock",
        )
        assert (first.status, first.outcome, first.applied, first.pin) == (
            200,
            "applied",
            True,
            pin,
        )
        assert first.t_real == clock.t and first.t_virtual == clock.t * 2.0
        assert (entries[1].outcome, entries[1].reason) == (
            "rejected",
            "This device is already locked.",
        )
        assert (entries[2].outcome, entries[2].token) == ("unauthorized", None)
        token = api.token
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert [list(line) for line in lines] == [FIELDS] * 3
    assert lines[0]["pin"] == pin and lines[0]["token"] == "token-1"
    assert token.encode() not in path.read_bytes()


def _entry(seq: int, t: float, **kw: object) -> LedgerEntry:
    fields: dict[str, object] = {
        "method": "POST",
        "path": "/p",
        "route": "/r",
        "device_id": "d1",
        "action": "lock",
        "token": "token-1",
        "status": 200,
        "outcome": "applied",
        "applied": True,
    }
    fields.update(kw)
    return LedgerEntry(seq=seq, t_real=t, t_virtual=t, **fields)  # type: ignore[arg-type]


def test_queries() -> None:
    ledger = Ledger()
    ledger.append(_entry(1, 10.1))
    ledger.append(_entry(2, 10.2, device_id="d2", pin="111111"))
    ledger.append(_entry(3, 10.9, outcome="rate_limited", applied=False, status=429))
    ledger.append(_entry(4, 11.05, action="erase"))
    ledger.append(_entry(5, 11.5, outcome="reset_after", status=None))
    assert ledger.applied_count() == 4
    assert ledger.applied_count("d1") == 3
    assert ledger.applied_count("d1", "lock") == 2
    assert ledger.pins() == ["111111"] and ledger.pins("d1") == []
    assert ledger.outcomes()["applied"] == 3
    assert ledger.max_per_window(1) == 2  # [10, 11): entries 1, 2 (3 was refused, uncounted)
    assert ledger.max_per_window(1, counted_only=False) == 3
    assert ledger.max_sliding(1) == 3  # 10.2, 11.05, 11.5 lie within one second
    assert [e.seq for e in ledger.select(outcome="reset_after")] == [5]
    assert len(ledger) == 5 and [e.seq for e in ledger] == [1, 2, 3, 4, 5]
