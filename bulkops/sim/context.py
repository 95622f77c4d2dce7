"""The per-request context handed to handlers, and DRF-style pagination helpers."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from bulkops.sim.replies import Reply, detail
from bulkops.sim.validation import parse_body
from bulkops.sim.world import World

__all__ = ["Ctx", "Handler", "cursor_page", "int_param", "limit_offset_page", "page_number_page"]


@dataclass(slots=True)
class Ctx:
    """What a handler needs: the request, path parameters, virtual now and the world."""

    request: web.BaseRequest
    params: dict[str, str]
    now_v: float
    world: World

    @property
    def query(self) -> MultiMapping[str]:
        """The query string."""
        return self.request.query

    async def json_body(self) -> tuple[Any, Reply | None]:
        """The decoded JSON body (`{}` when empty) or the 400/415 reply for a bad one."""
        raw = await self.request.read()
        return parse_body(raw, self.request.content_type if raw else "")

    def url(self, **query: str | int | None) -> str:
        """This request's absolute URL with `query` keys replaced (None removes a key)."""
        current = dict(self.request.query)
        for key, value in query.items():
            if value is None:
                current.pop(key, None)
            else:
                current[key] = str(value)
        return str(self.request.url.with_query(current))


Handler = Callable[[Ctx], Awaitable[Reply]]


def int_param(ctx: Ctx, name: str, default: int, *, maximum: int | None = None) -> int:
    """A non-negative integer query parameter; invalid values fall back to `default`."""
    raw = ctx.query.get(name)
    try:
        value = int(raw) if raw is not None else default
    except ValueError:
        value = default
    if value < 0:
        value = default
    if maximum is not None:
        value = min(value, maximum)
    return value


def limit_offset_page(
    ctx: Ctx, items: Sequence[Any], *, default_limit: int = 300, max_limit: int = 300
) -> dict[str, Any]:
    """`{count, next, previous, results}` paged by `limit`/`offset` (DRF LimitOffset)."""
    limit = int_param(ctx, "limit", default_limit, maximum=max_limit) or default_limit
    offset = int_param(ctx, "offset", 0)
    count = len(items)
    nxt = ctx.url(limit=limit, offset=offset + limit) if offset + limit < count else None
    prev = None
    if offset > 0:
        prev = ctx.url(limit=limit, offset=None if offset - limit <= 0 else offset - limit)
    return {
        "count": count,
        "next": nxt,
        "previous": prev,
        "results": list(items[offset : offset + limit]),
    }


def page_number_page(
    ctx: Ctx, items: Sequence[Any], *, page_size: int = 300
) -> dict[str, Any] | Reply:
    """`{count, next, previous, results}` paged by `page` (DRF PageNumber); bad page → 404."""
    raw = ctx.query.get("page", "1")
    pages = max(1, -(-len(items) // page_size))
    try:
        page = int(raw)
    except ValueError:
        page = 0 if raw != "last" else pages
    if not 1 <= page <= pages:
        return detail(404, "Invalid page.")
    start = (page - 1) * page_size
    nxt = ctx.url(page=page + 1) if page < pages else None
    prev = None if page == 1 else ctx.url(page=None if page == 2 else page - 1)
    return {
        "count": len(items),
        "next": nxt,
        "previous": prev,
        "results": list(items[start : start + page_size]),
    }


def cursor_page(ctx: Ctx, items: Sequence[Any], *, page_size: int = 300) -> dict[str, Any] | Reply:
    """`{next, previous, results}` with an opaque `cursor` (DRF Cursor style, no count)."""
    size = (
        int_param(ctx, "sizePerPage", 0, maximum=page_size)
        or int_param(ctx, "limit", page_size, maximum=page_size)
        or page_size
    )
    position = 0
    raw = ctx.query.get("cursor")
    if raw:
        try:
            decoded = base64.urlsafe_b64decode(raw.encode()).decode()
            key, _, value = decoded.partition("=")
            if key != "p":
                raise ValueError(decoded)
            position = int(value)
        except ValueError:
            return detail(404, "Invalid cursor")

    def cursor(pos: int) -> str:
        return base64.urlsafe_b64encode(f"p={pos}".encode()).decode()

    end = position + size
    nxt = ctx.url(cursor=cursor(end)) if end < len(items) else None
    prev = None
    if position > 0:
        prev = ctx.url(cursor=None if position - size <= 0 else cursor(position - size))
    return {"next": nxt, "previous": prev, "results": list(items[position:end])}
