"""Blueprints, tags, users (cursor pages) and ADE devices (page numbers)."""

from __future__ import annotations

from collections import Counter

from conftest import Serve
from simkit import Api

ADE = "/api/v1/integrations/apple/ade/devices"


async def test_blueprints_limit_offset_and_counts(api: Api) -> None:
    fleet = api.sim.fleet
    r = (await api.get("/api/v1/blueprints")).json()
    assert set(r) == {"count", "next", "previous", "results"}
    assert r["count"] == len(fleet.blueprints) and r["next"] is None and r["previous"] is None
    counts = Counter(d["blueprint_id"] for d in fleet.devices.values())
    assert {b["id"]: b["computers_count"] for b in r["results"]} == {
        b: counts.get(b, 0) for b in fleet.blueprints
    }
    page = (await api.get("/api/v1/blueprints", params={"limit": "2", "offset": "2"})).json()
    assert [b["id"] for b in page["results"]] == list(fleet.blueprints)[2:4]
    assert "offset=4" in page["next"]
    assert "offset" not in page["previous"] and "limit=2" in page["previous"]
    named = (await api.get("/api/v1/blueprints", params={"name": "default"})).json()
    assert [b["name"] for b in named["results"]] == ["Default"]


async def test_tags_search(api: Api) -> None:
    r = (await api.get("/api/v1/tags", params={"search": "wave"})).json()
    assert r["count"] == len(r["results"]) > 0
    assert all("wave" in t["name"] and set(t) == {"id", "name"} for t in r["results"])
    assert (await api.get("/api/v1/tags")).json()["count"] == len(api.sim.fleet.tags)


async def test_users_cursor_pagination_has_no_count(serve: Serve) -> None:
    async with serve(devices=500) as api:  # 375 users: two pages of 300
        first = (await api.get("/api/v1/users")).json()
        assert set(first) == {"next", "previous", "results"}
        assert len(first["results"]) == 300 and first["previous"] is None
        assert "cursor=" in first["next"]
        second = (await api.get(first["next"].removeprefix(api.url))).json()
        assert second["next"] is None and second["previous"] is not None
        ids = [u["id"] for u in first["results"] + second["results"]]
        assert ids == list(api.sim.fleet.users)
        back = (await api.get(second["previous"].removeprefix(api.url))).json()
        assert back["results"] == first["results"]


async def test_users_small_pages_and_email_filter(api: Api) -> None:
    seen = []
    path = "/api/v1/users?sizePerPage=7"
    while path:
        page = (await api.get(path)).json()
        seen += page["results"]
        path = page["next"].removeprefix(api.url) if page["next"] else ""
    assert [u["id"] for u in seen] == list(api.sim.fleet.users)
    user = seen[5]
    owned = sum(
        1
        for d in api.sim.fleet.devices.values()
        if isinstance(d["user"], dict) and d["user"]["id"] == user["id"]
    )
    assert user["device_count"] == owned
    local = user["email"].split("@")[0]
    hits = (await api.get("/api/v1/users", params={"email": local.upper()})).json()["results"]
    assert user["id"] in {u["id"] for u in hits}
    assert all(local in u["email"] for u in hits)
    bad = await api.get("/api/v1/users", params={"cursor": "garbage!"})
    assert bad.status == 404


async def test_ade_devices_page_pagination_and_serial_filter(serve: Serve) -> None:
    async with serve(ade_devices=310) as api:
        first = (await api.get(ADE)).json()
        assert first["count"] == 310 and len(first["results"]) == 300
        assert first["next"].endswith("page=2") and first["previous"] is None
        second = (await api.get(ADE, params={"page": "2"})).json()
        assert len(second["results"]) == 10 and second["next"] is None
        assert "page" not in second["previous"]
        assert (await api.get(ADE, params={"page": "3"})).json() == {"detail": "Invalid page."}
        rec = second["results"][4]
        hits = (await api.get(ADE, params={"serial_number": rec["serial_number"][1:8]})).json()
        assert rec["id"] in {r["id"] for r in hits["results"]}
        enrolled = next(iter(api.sim.fleet.devices.values()))["serial_number"]
        assert (await api.get(ADE, params={"serial_number": enrolled})).json()["count"] == 0


async def test_ade_invalid_uuid_filter(api: Api) -> None:
    r = await api.get(ADE, params={"dep_account": "x"})
    assert r.status == 400 and r.json() == {"dep_account": ["Enter a valid UUID."]}


async def test_ade_get_and_patch(api: Api) -> None:
    fleet = api.sim.fleet
    ade_id = next(iter(fleet.ade_devices))
    got = await api.get(f"{ADE}/{ade_id}")
    assert got.status == 200 and got.json()["id"] == ade_id
    bp = list(fleet.blueprints)[-1]
    user = next(iter(fleet.users))
    r = await api.patch(f"{ADE}/{ade_id}", json={"blueprint": bp})
    assert r.status == 200
    assert r.json()["blueprint_id"] == r.json()["blueprint"] == bp
    r = await api.patch(f"{ADE}/{ade_id}", json={"user_id": user, "asset_tag": "ADE-1"})
    body = r.json()
    assert (body["user_id"], body["user"], body["asset_tag"]) == (user, user, "ADE-1")
    bad = await api.patch(f"{ADE}/{ade_id}", json={"blueprint_id": "nope", "asset_tag": ""})
    assert bad.status == 400
    assert bad.json() == {
        "blueprint_id": ["Enter a valid UUID."],
        "asset_tag": ["This field may not be blank."],
    }
    assert fleet.ade_devices[ade_id]["asset_tag"] == "ADE-1"
    missing = await api.get(f"{ADE}/00000000-0000-4000-8000-000000000000")
    assert missing.status == 404
