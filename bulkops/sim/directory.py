"""Tenant directory endpoints: blueprints, tags, users, and ADE devices awaiting enrollment."""

from __future__ import annotations

from collections import Counter
from typing import Any

from bulkops.sim.context import Ctx, cursor_page, limit_offset_page, page_number_page
from bulkops.sim.fleet import Record
from bulkops.sim.replies import NOT_FOUND, Reply, detail, field_errors, json_reply
from bulkops.sim.router import Router
from bulkops.sim.validation import INVALID_UUID, asset_tag_change, is_uuid, not_a_dict

__all__ = ["register"]

ADE = "/api/v1/integrations/apple/ade/devices"


async def list_blueprints(ctx: Ctx) -> Reply:
    """GET /blueprints: `{count, next, previous, results}`, `name` contains, `id`, `id__in`."""
    counts = Counter(d["blueprint_id"] for d in ctx.world.fleet.devices.values())
    items = []
    q = ctx.query
    ids = set(q["id__in"].split(",")) if "id__in" in q else None
    for bp in ctx.world.fleet.blueprints.values():
        if "name" in q and q["name"].lower() not in bp["name"].lower():
            continue
        if "id" in q and bp["id"] != q["id"]:
            continue
        if ids is not None and bp["id"] not in ids:
            continue
        items.append(dict(bp, computers_count=counts.get(bp["id"], 0)))
    return json_reply(200, limit_offset_page(ctx, items))


async def list_tags(ctx: Ctx) -> Reply:
    """GET /tags: `{count, next, previous, results: [{id, name}]}`, `search` contains."""
    search = ctx.query.get("search", "").lower()
    items = [t for t in ctx.world.fleet.tags.values() if search in t["name"].lower()]
    return json_reply(200, limit_offset_page(ctx, items))


def _user_view(user: Record, counts: Counter[str]) -> Record:
    return dict(user, device_count=counts.get(user["id"], 0))


def _device_counts(ctx: Ctx) -> Counter[str]:
    return Counter(
        d["user"]["id"] for d in ctx.world.fleet.devices.values() if isinstance(d["user"], dict)
    )


async def list_users(ctx: Ctx) -> Reply:
    """GET /users: cursor pages `{next, previous, results}` (no count); `email` contains."""
    q = ctx.query
    email = q.get("email", "").lower()
    archived = q.get("archived")
    items = []
    for u in ctx.world.fleet.users.values():
        if email and email not in u["email"].lower():
            continue
        if "id" in q and u["id"] != q["id"]:
            continue
        if archived is not None and u["archived"] != (archived.lower() == "true"):
            continue
        items.append(u)
    page = cursor_page(ctx, items)
    if isinstance(page, Reply):
        return page
    counts = _device_counts(ctx)
    page["results"] = [_user_view(u, counts) for u in page["results"]]
    return json_reply(200, page)


async def get_user(ctx: Ctx) -> Reply:
    """GET /users/{user_id}."""
    user = ctx.world.fleet.users.get(ctx.params["user_id"])
    if user is None:
        return detail(404, NOT_FOUND)
    return json_reply(200, _user_view(user, _device_counts(ctx)))


_ADE_FILTERS = ("blueprint_id", "user_id", "device_family", "model", "os", "profile_status")


async def list_ade_devices(ctx: Ctx) -> Reply:
    """GET /integrations/apple/ade/devices: `page` pagination, filters incl. serial_number."""
    q = ctx.query
    for key in ("blueprint_id", "user_id", "dep_account"):
        if key in q and not is_uuid(q[key]):
            return field_errors({key: [INVALID_UUID]})
    serial = q.get("serial_number", "").lower()
    items = []
    for rec in ctx.world.fleet.ade_devices.values():
        if serial and serial not in rec["serial_number"].lower():
            continue
        if "dep_account" in q and rec["dep_account"]["id"] != q["dep_account"]:
            continue
        if any(key in q and str(rec[key]) != q[key] for key in _ADE_FILTERS):
            continue
        items.append(rec)
    page = page_number_page(ctx, items)
    return page if isinstance(page, Reply) else json_reply(200, page)


async def get_ade_device(ctx: Ctx) -> Reply:
    """GET /integrations/apple/ade/devices/{device_id}."""
    rec = ctx.world.fleet.ade_devices.get(ctx.params["device_id"])
    if rec is None:
        return detail(404, NOT_FOUND, device_id=ctx.params["device_id"])
    return json_reply(200, rec, device_id=rec["id"])


def _ade_changes(ctx: Ctx, body: dict[str, Any]) -> tuple[Record, dict[str, list[str]]]:
    fleet = ctx.world.fleet
    changes: Record = {}
    errors: dict[str, list[str]] = {}
    key = "blueprint_id" if "blueprint_id" in body else "blueprint"
    if key in body:
        v = body[key]
        if not is_uuid(v):
            errors[key] = [INVALID_UUID]
        elif v not in fleet.blueprints:
            errors[key] = [f'Invalid pk "{v}" - object does not exist.']
        else:
            changes["blueprint_id"] = changes["blueprint"] = v
    if "user_id" in body:
        v = body["user_id"]
        if v is None:
            changes["user_id"] = changes["user"] = None
        elif not is_uuid(v):
            errors["user_id"] = [INVALID_UUID]
        elif v not in fleet.users:
            errors["user_id"] = [f'Invalid pk "{v}" - object does not exist.']
        else:
            changes["user_id"] = changes["user"] = v
    asset_tag_change(body, changes, errors)
    return changes, errors


async def patch_ade_device(ctx: Ctx) -> Reply:
    """PATCH an ADE device: `blueprint_id` (or `blueprint`), `asset_tag`, `user_id`."""
    device_id = ctx.params["device_id"]
    rec = ctx.world.fleet.ade_devices.get(device_id)
    if rec is None:
        return detail(404, NOT_FOUND, device_id=device_id)
    body, err = await ctx.json_body()
    if err is not None:
        err.device_id = device_id
        return err
    shape = not_a_dict(body)
    if shape is not None:
        return field_errors(shape, device_id=device_id)
    changes, errors = _ade_changes(ctx, body)
    if errors:
        return field_errors(errors, device_id=device_id)
    rec.update(changes)
    return json_reply(200, rec, applied=True, device_id=device_id)


def register(router: Router[Any]) -> None:
    """Add the directory and ADE routes."""
    router.add("GET", "/api/v1/blueprints", list_blueprints)
    router.add("GET", "/api/v1/tags", list_tags)
    router.add("GET", "/api/v1/users", list_users)
    router.add("GET", "/api/v1/users/{user_id}", get_user)
    router.add("GET", ADE, list_ade_devices)
    router.add("GET", f"{ADE}/{{device_id}}", get_ade_device)
    router.add("PATCH", f"{ADE}/{{device_id}}", patch_ade_device)
