"""Device record endpoints: list (filters, ordering, limit/offset), get, PATCH, DELETE."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson

from bulkops.sim.context import Ctx, int_param
from bulkops.sim.fleet import Record
from bulkops.sim.replies import NOT_FOUND, Reply, detail, empty, field_errors, json_reply
from bulkops.sim.router import Router
from bulkops.sim.validation import (
    BLANK,
    INVALID_UUID,
    NOT_STRING,
    NULL,
    asset_tag_change,
    is_uuid,
    not_a_dict,
)

__all__ = ["register"]

MAX_PAGE = 300
DEVICE = "/api/v1/devices/{device_id}"
ORDERING_KEYS = frozenset(
    {
        "asset_tag",
        "blueprint_id",
        "device_id",
        "device_name",
        "last_check_in",
        "model",
        "platform",
        "os_version",
        "serial_number",
        "user",
    }
)


def _contains(field: str) -> Callable[[str], Callable[[Record], bool]]:
    def make(value: str) -> Callable[[Record], bool]:
        needle = value.lower()
        return lambda d: needle in str(d[field]).lower()

    return make


def _exact(field: str) -> Callable[[str], Callable[[Record], bool]]:
    return lambda value: lambda d: d[field] == value


def _user_attr(attr: str, *, exact: bool) -> Callable[[str], Callable[[Record], bool]]:
    def make(value: str) -> Callable[[Record], bool]:
        needle = value if exact else value.lower()

        def pred(d: Record) -> bool:
            user = d["user"]
            if not isinstance(user, dict):
                return False
            got = str(user[attr])
            return got == needle if exact else needle in got.lower()

        return pred

    return make


def _tag_names_in(value: str) -> Callable[[Record], bool]:
    wanted = {v for v in value.split(",") if v}
    return lambda d: bool(wanted.intersection(d.get("tags", ())))


FILTERS: dict[str, Callable[[str], Callable[[Record], bool]]] = {
    "serial_number": _contains("serial_number"),
    "blueprint_id": _contains("blueprint_id"),
    "device_name": _contains("device_name"),
    "model": _contains("model"),
    "os_version": _contains("os_version"),
    "platform": _exact("platform"),
    "asset_tag": _exact("asset_tag"),
    "device_id": _exact("device_id"),
    "user_email": _user_attr("email", exact=False),
    "user_email_exact": _user_attr("email", exact=True),
    "user_id": _user_attr("id", exact=True),
    "user_name": _user_attr("name", exact=False),
    "user": _user_attr("name", exact=False),
    "tag_name": lambda v: lambda d: v in d.get("tags", ()),
    "tag_name_in": _tag_names_in,
}


def _sort_key(field: str) -> Callable[[Record], Any]:
    if field == "user":
        return lambda d: d["user"]["name"] if isinstance(d["user"], dict) else ""
    return lambda d: d[field]


def _order(records: list[Record], ordering: str) -> list[Record]:
    keys = [k.strip() for k in ordering.split(",") if k.strip().lstrip("-") in ORDERING_KEYS]
    for key in reversed(keys):  # stable sorts, least significant key first
        records.sort(key=_sort_key(key.lstrip("-")), reverse=key.startswith("-"))
    return records


def _tag_filters(ctx: Ctx) -> list[Callable[[Record], bool]]:
    preds: list[Callable[[Record], bool]] = []
    q = ctx.query
    if "tag_id" not in q and "tag_id_in" not in q and "filevault_enabled" not in q:
        return preds  # the common case: no work on the listing hot path
    by_id = {t["id"]: t["name"] for t in ctx.world.fleet.tags.values()}
    if "tag_id" in ctx.query:
        name = by_id.get(ctx.query["tag_id"])
        preds.append(lambda d: name is not None and name in d.get("tags", ()))
    if "tag_id_in" in ctx.query:
        names = {by_id[i] for i in ctx.query["tag_id_in"].split(",") if i in by_id}
        preds.append(lambda d: bool(names.intersection(d.get("tags", ()))))
    if "filevault_enabled" in ctx.query:
        want = ctx.query["filevault_enabled"].lower() == "true"
        traits = ctx.world.fleet.traits
        preds.append(lambda d: traits.get(d["device_id"], {}).get("filevault_enabled") is want)
    return preds


async def list_devices(ctx: Ctx) -> Reply:
    """GET /devices: a bare array; `X-Total-Count` is the filtered total."""
    devices = ctx.world.fleet.devices
    limit = int_param(ctx, "limit", MAX_PAGE, maximum=MAX_PAGE) or MAX_PAGE
    offset = int_param(ctx, "offset", 0)
    preds = [make(ctx.query[k]) for k, make in FILTERS.items() if k in ctx.query]
    preds += _tag_filters(ctx)
    ordering = ctx.query.get("ordering", "")
    ids = ctx.world.sorted_ids()
    if not preds and not ordering:
        total = len(ids)
        page = [devices[i] for i in ids[offset : offset + limit]]
    else:
        matched = [devices[i] for i in ids]
        for pred in preds:
            matched = [d for d in matched if pred(d)]
        if ordering:
            matched = _order(matched, ordering)
        total = len(matched)
        page = matched[offset : offset + limit]
    pages = -(-total // limit)
    nxt = ctx.url(limit=limit, offset=offset + limit) if offset + limit < total else "None"
    prev = ctx.url(limit=limit, offset=max(offset - limit, 0)) if offset > 0 else "None"
    headers = {
        "X-Total-Count": str(total),
        "X-Total-Pages": str(pages),
        "Link": f'<{nxt}>; rel="next", <{prev}>; rel="prev"',
    }
    return Reply(200, orjson.dumps(page), headers=headers)


def _device_or_404(ctx: Ctx) -> tuple[Record | None, Reply | None]:
    device_id = ctx.params["device_id"]
    dev = ctx.world.fleet.devices.get(device_id)
    if dev is None:
        return None, detail(404, NOT_FOUND, device_id=device_id)
    return dev, None


async def get_device(ctx: Ctx) -> Reply:
    """GET /devices/{id}."""
    dev, err = _device_or_404(ctx)
    if err is not None:
        return err
    return Reply(200, orjson.dumps(dev), device_id=ctx.params["device_id"])


async def delete_device(ctx: Ctx) -> Reply:
    """DELETE /devices/{id}: 204, then the record is gone."""
    _dev, err = _device_or_404(ctx)
    if err is not None:
        return err
    ctx.world.delete_device(ctx.params["device_id"])
    return empty(204, device_id=ctx.params["device_id"])


def _pk_error(value: object) -> str:
    return f'Invalid pk "{value}" - object does not exist.'


def _validate_patch(ctx: Ctx, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    fleet = ctx.world.fleet
    changes: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    if "blueprint_id" in body:
        v = body["blueprint_id"]
        if v is None:
            errors["blueprint_id"] = [NULL]
        elif not is_uuid(v):
            errors["blueprint_id"] = [INVALID_UUID]
        elif v not in fleet.blueprints:
            errors["blueprint_id"] = [_pk_error(v)]
        else:
            changes["blueprint_id"] = v
    if "user" in body:
        v = body["user"]
        if v is None:
            changes["user"] = ""
        elif v == "":
            errors["user"] = [BLANK]
        elif not is_uuid(v):
            errors["user"] = [INVALID_UUID]
        elif v not in fleet.users:
            errors["user"] = [_pk_error(v)]
        else:
            changes["user"] = fleet.user_ref(v)
    asset_tag_change(body, changes, errors)
    if "tags" in body:
        v = body["tags"]
        if v is None:
            errors["tags"] = [NULL]
        elif not isinstance(v, list):
            errors["tags"] = [f'Expected a list of items but got type "{type(v).__name__}".']
        elif not all(isinstance(t, str) and t.strip() for t in v):
            errors["tags"] = [NOT_STRING]
        else:
            changes["tags"] = list(dict.fromkeys(t.strip() for t in v))
    return changes, errors


def _ensure_tags(ctx: Ctx, names: Iterable[str]) -> None:
    """Unknown tag names are created, as the tenant UI does on assignment."""
    tags = ctx.world.fleet.tags
    known = {t["name"] for t in tags.values()}
    for name in names:
        if name not in known:
            tid = ctx.world.new_uuid()
            tags[tid] = {"id": tid, "name": name}
            known.add(name)


async def patch_device(ctx: Ctx) -> Reply:
    """PATCH /devices/{id}: blueprint_id, user, asset_tag, tags; answers the device object."""
    dev, err = _device_or_404(ctx)
    if err is not None:
        return err
    assert dev is not None
    device_id = ctx.params["device_id"]
    body, err = await ctx.json_body()
    if err is not None:
        err.device_id = device_id
        return err
    shape = not_a_dict(body)
    if shape is not None:
        return field_errors(shape, device_id=device_id)
    changes, errors = _validate_patch(ctx, body)
    if errors:
        return field_errors(errors, device_id=device_id)
    if "tags" in changes:
        _ensure_tags(ctx, changes["tags"])
    for key, value in changes.items():
        if dev[key] != value:
            ctx.world.record_activity(
                device_id,
                f"{key}_changed",
                {"from": _shown(dev[key]), "to": _shown(value)},
                ctx.now_v,
            )
        dev[key] = value
    if "blueprint_id" in changes:
        dev["blueprint_name"] = ctx.world.fleet.blueprints[changes["blueprint_id"]]["name"]
    return json_reply(200, dev, applied=True, device_id=device_id)


def _shown(value: Any) -> Any:
    return value["email"] if isinstance(value, dict) else value


def register(router: Router[Any]) -> None:
    """Add the device record routes."""
    router.add("GET", "/api/v1/devices", list_devices)
    router.add("GET", DEVICE, get_device)
    router.add("PATCH", DEVICE, patch_device)
    router.add("DELETE", DEVICE, delete_device)
