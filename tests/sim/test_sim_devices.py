"""Device record endpoints: list (pagination, filters, ordering), get, PATCH, DELETE."""

from __future__ import annotations

import itertools

import pytest
from conftest import Serve
from simkit import Api

DEVICES = "/api/v1/devices"


async def test_list_is_a_bare_array_ordered_by_device_id(api: Api) -> None:
    r = await api.get(DEVICES)
    assert r.status == 200
    assert r.headers["Content-Type"] == "application/json"
    page = r.json()
    assert isinstance(page, list) and len(page) == 60
    ids = [d["device_id"] for d in page]
    assert ids == sorted(api.sim.fleet.devices)
    assert r.headers["X-Total-Count"] == "60"


async def test_limit_is_clamped_to_300_and_offset_walks_to_an_empty_page(serve: Serve) -> None:
    async with serve(devices=650) as api:
        first = await api.get(DEVICES, params={"limit": "1000"})
        assert len(first.json()) == 300
        assert first.headers["X-Total-Count"] == "650"
        seen: list[str] = []
        offset = 0
        while True:
            page = (await api.get(DEVICES, params={"limit": "300", "offset": str(offset)})).json()
            if not page:
                break
            seen += [d["device_id"] for d in page]
            offset += 300
        assert offset == 900  # 300 + 300 + 50, then the empty page
        assert seen == sorted(api.sim.fleet.devices)
        past = await api.get(DEVICES, params={"offset": "5000"})
        assert past.status == 200 and past.json() == []


async def test_default_limit_is_300_and_bad_values_fall_back(serve: Serve) -> None:
    async with serve(devices=320) as api:
        assert len((await api.get(DEVICES)).json()) == 300
        assert len((await api.get(DEVICES, params={"limit": "abc"})).json()) == 300
        assert len((await api.get(DEVICES, params={"limit": "7", "offset": "-3"})).json()) == 7


async def test_partial_serial_filter_matches_every_device_containing_it(api: Api) -> None:
    dev = next(iter(api.sim.fleet.devices.values()))
    part = dev["serial_number"][2:7].lower()
    r = await api.get(DEVICES, params={"serial_number": part})
    got = {d["device_id"] for d in r.json()}
    want = {
        d["device_id"] for d in api.sim.fleet.devices.values() if part in d["serial_number"].lower()
    }
    assert dev["device_id"] in got and got == want
    assert r.headers["X-Total-Count"] == str(len(want))
    none = await api.get(DEVICES, params={"serial_number": "NOSUCHSERIAL"})
    assert none.status == 200 and none.json() == []


@pytest.mark.parametrize(
    ("param", "pick"),
    [
        ("platform", lambda d: d["platform"]),
        ("blueprint_id", lambda d: d["blueprint_id"]),
        ("device_id", lambda d: d["device_id"]),
    ],
)
async def test_exact_filters(api: Api, param: str, pick: object) -> None:
    dev = list(api.sim.fleet.devices.values())[3]
    value = pick(dev)  # type: ignore[operator]
    got = (await api.get(DEVICES, params={param: value})).json()
    assert got and all(d[param] == value for d in got)
    want = [d for d in api.sim.fleet.devices.values() if d[param] == value]
    assert len(got) == len(want)


async def test_asset_tag_user_email_and_tag_filters(api: Api) -> None:
    fleet = api.sim.fleet.devices.values()
    tagged = next(d for d in fleet if d["asset_tag"])
    got = (await api.get(DEVICES, params={"asset_tag": tagged["asset_tag"]})).json()
    assert [d["device_id"] for d in got] == [tagged["device_id"]]
    owned = next(d for d in fleet if isinstance(d["user"], dict))
    domain_part = owned["user"]["email"].split("@")[0][:4]
    got = (await api.get(DEVICES, params={"user_email": domain_part})).json()
    assert owned["device_id"] in {d["device_id"] for d in got}
    assert all(domain_part in d["user"]["email"] for d in got)
    with_tag = next(d for d in fleet if d["tags"])
    name = with_tag["tags"][0]
    got = (await api.get(DEVICES, params={"tag_name": name})).json()
    assert got and all(name in d["tags"] for d in got)
    assert len(got) == sum(1 for d in fleet if name in d["tags"])


async def test_ordering_by_keys_and_descending(api: Api) -> None:
    got = (await api.get(DEVICES, params={"ordering": "-serial_number"})).json()
    serials = [d["serial_number"] for d in got]
    assert serials == sorted(serials, reverse=True)
    got = (await api.get(DEVICES, params={"ordering": "platform,-device_name"})).json()
    keys = [(d["platform"], d["device_name"]) for d in got]
    assert [k[0] for k in keys] == sorted(k[0] for k in keys)
    for a, b in itertools.pairwise(keys):
        if a[0] == b[0]:
            assert a[1] >= b[1]


async def test_get_device_and_404(api: Api) -> None:
    device_id = next(iter(api.sim.fleet.devices))
    r = await api.get(f"{DEVICES}/{device_id}")
    assert r.status == 200 and r.json() == api.sim.fleet.devices[device_id]
    missing = await api.get(f"{DEVICES}/00000000-0000-4000-8000-000000000000")
    assert missing.status == 404 and missing.json() == {"detail": "Not found."}
    assert (await api.get(f"{DEVICES}/{device_id}/")).status == 200  # trailing slash


async def test_patch_sets_blueprint_user_asset_tag_and_tags(api: Api) -> None:
    fleet = api.sim.fleet
    device_id = api.device_of("Mac")
    bp = list(fleet.blueprints.values())[-1]
    user = list(fleet.users.values())[2]
    r = await api.patch(
        f"{DEVICES}/{device_id}",
        json={
            "blueprint_id": bp["id"],
            "user": user["id"],
            "asset_tag": "A-1040",
            "tags": ["wave-9", "hq", "wave-9"],
        },
    )
    assert r.status == 200
    body = r.json()
    short = {
        "device_id",
        "device_name",
        "serial_number",
        "user",
        "asset_tag",
        "blueprint_id",
        "blueprint_name",
        "tags",
    }
    assert short <= set(body)
    assert body["blueprint_id"] == bp["id"] and body["blueprint_name"] == bp["name"]
    assert body["user"] == {
        "email": user["email"],
        "name": user["name"],
        "id": user["id"],
        "is_archived": user["archived"],
    }
    assert body["asset_tag"] == "A-1040"
    assert body["tags"] == ["wave-9", "hq"]
    assert "wave-9" in {t["name"] for t in fleet.tags.values()}, "unknown tag names are created"
    again = (await api.get(f"{DEVICES}/{device_id}")).json()
    assert again == body
    entry = api.sim.ledger.entries[-2]
    assert entry.method == "PATCH" and entry.applied and entry.device_id == device_id


async def test_patch_null_clears_and_reads_back_empty_string(api: Api) -> None:
    device_id = next(d for d, r in api.sim.fleet.devices.items() if r["user"] and r["asset_tag"])
    r = await api.patch(f"{DEVICES}/{device_id}", json={"user": None, "asset_tag": None})
    assert r.status == 200
    assert r.json()["user"] == "" and r.json()["asset_tag"] == ""
    r = await api.patch(f"{DEVICES}/{device_id}", json={"tags": []})
    assert r.json()["tags"] == []
    got = (await api.get(f"{DEVICES}/{device_id}")).json()
    assert (got["user"], got["asset_tag"], got["tags"]) == ("", "", [])


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"asset_tag": ""}, {"asset_tag": ["This field may not be blank."]}),
        ({"user": ""}, {"user": ["This field may not be blank."]}),
        ({"blueprint_id": "nope"}, {"blueprint_id": ["Enter a valid UUID."]}),
        ({"user": 29001}, {"user": ["Enter a valid UUID."]}),
        ({"asset_tag": 12}, {"asset_tag": ["Not a valid string."]}),
        ({"tags": "hq"}, {"tags": ['Expected a list of items but got type "str".']}),
        ({"blueprint_id": None}, {"blueprint_id": ["This field may not be null."]}),
        ([1, 2], {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}),
    ],
)
async def test_patch_field_errors_change_nothing(api: Api, body: object, errors: object) -> None:
    device_id = next(iter(api.sim.fleet.devices))
    before = dict(api.sim.fleet.devices[device_id])
    r = await api.patch(f"{DEVICES}/{device_id}", json=body)
    assert r.status == 400 and r.json() == errors
    assert api.sim.fleet.devices[device_id] == before
    assert api.sim.ledger.entries[-1].outcome == "rejected"
    assert not api.sim.ledger.entries[-1].applied


async def test_patch_unknown_blueprint_or_user(api: Api) -> None:
    device_id = next(iter(api.sim.fleet.devices))
    ghost = "11111111-1111-4111-8111-111111111111"
    r = await api.patch(f"{DEVICES}/{device_id}", json={"blueprint_id": ghost, "user": ghost})
    assert r.status == 400
    assert r.json() == {
        "blueprint_id": [f'Invalid pk "{ghost}" - object does not exist.'],
        "user": [f'Invalid pk "{ghost}" - object does not exist.'],
    }


async def test_patch_malformed_json_and_wrong_media_type(api: Api) -> None:
    device_id = next(iter(api.sim.fleet.devices))
    r = await api.patch(
        f"{DEVICES}/{device_id}",
        data=b'{\n  "asset_tag": "x"\n  "user": null\n}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status == 400
    assert r.json() == {
        "detail": "JSON parse error - Expecting ',' delimiter: line 3 column 3 (char 23)"
    }
    r = await api.patch(
        f"{DEVICES}/{device_id}", data=b"asset_tag=x", headers={"Content-Type": "text/plain"}
    )
    assert r.status == 415
    assert r.json() == {"detail": 'Unsupported media type "text/plain" in request.'}


async def test_delete_answers_204_then_the_device_is_gone(api: Api) -> None:
    device_id = next(iter(api.sim.fleet.devices))
    r = await api.call("DELETE", f"{DEVICES}/{device_id}")
    assert r.status == 204 and r.body == b""
    assert (await api.get(f"{DEVICES}/{device_id}")).status == 404
    assert (await api.call("DELETE", f"{DEVICES}/{device_id}")).status == 404
    listed = {d["device_id"] for d in (await api.get(DEVICES)).json()}
    assert device_id not in listed and len(listed) == 59
    post = await api.post(f"{DEVICES}/{device_id}/action/blankpush")
    assert post.status == 404 and post.json() == {"detail": "Not found."}


async def test_tag_id_and_filevault_filters(api: Api) -> None:
    fleet = api.sim.fleet
    tag = next(
        t
        for t in fleet.tags.values()
        if any(t["name"] in d["tags"] for d in fleet.devices.values())
    )
    got = (await api.get(DEVICES, params={"tag_id": tag["id"]})).json()
    assert got and all(tag["name"] in d["tags"] for d in got)
    vaulted = (await api.get(DEVICES, params={"filevault_enabled": "true"})).json()
    assert vaulted and all(fleet.traits[d["device_id"]]["filevault_enabled"] for d in vaulted)
    assert all(d["platform"] == "Mac" for d in vaulted)
