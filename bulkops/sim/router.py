"""Path-template router: `/api/v1/devices/{device_id}` style templates matched per segment."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["Match", "Router"]

H = TypeVar("H")


@dataclass(slots=True)
class _Node(Generic[H]):
    static: dict[str, _Node[H]] = field(default_factory=dict)
    param: tuple[str, _Node[H]] | None = None
    template: str | None = None
    handlers: dict[str, H] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Match(Generic[H]):
    """A resolved path: its template, the captured parameters and the handlers per method."""

    template: str
    params: dict[str, str]
    handlers: dict[str, H]


class Router(Generic[H]):
    """Maps (method, path) to a handler; a trailing slash is ignored, as Django's views allow."""

    __slots__ = ("_cache", "_root")

    def __init__(self) -> None:
        self._root: _Node[H] = _Node()
        self._cache: dict[str, Match[H] | None] = {}

    def add(self, method: str, template: str, handler: H) -> None:
        """Register `handler` for `method` on `template` (segments like `{name}` capture)."""
        node = self._root
        for seg in template.strip("/").split("/"):
            if seg.startswith("{") and seg.endswith("}"):
                name = seg[1:-1]
                if node.param is None:
                    node.param = (name, _Node())
                elif node.param[0] != name:
                    raise ValueError(f"conflicting parameter names at {template}")
                node = node.param[1]
            else:
                node = node.static.setdefault(seg, _Node())
        if method in node.handlers:
            raise ValueError(f"duplicate route {method} {template}")
        self._cache.clear()
        node.template = template
        node.handlers[method] = handler

    def route(self, method: str, template: str) -> Callable[[H], H]:
        """Decorator form of `add`."""

        def deco(handler: H) -> H:
            self.add(method, template, handler)
            return handler

        return deco

    def resolve(self, path: str) -> Match[H] | None:
        """Find the template for `path`, or None (static segments win over parameters)."""
        cache = self._cache
        if path in cache:
            return cache[path]
        found = self._walk(path)
        if len(cache) >= 65_536:
            cache.clear()
        cache[path] = found
        return found

    def _walk(self, path: str) -> Match[H] | None:
        params: dict[str, str] = {}
        node = self._root
        for seg in path.strip("/").split("/"):
            nxt = node.static.get(seg)
            if nxt is None:
                if node.param is None or not seg:
                    return None
                name, nxt = node.param
                params[name] = seg
            node = nxt
        if node.template is None:
            return None
        return Match(node.template, params, node.handlers)

    def templates(self) -> list[tuple[str, str]]:
        """Every registered `(method, template)` pair."""
        out: list[tuple[str, str]] = []
        stack = [self._root]
        while stack:
            node = stack.pop()
            if node.template is not None:
                out.extend((m, node.template) for m in node.handlers)
            stack.extend(node.static.values())
            if node.param is not None:
                stack.append(node.param[1])
        return sorted(out, key=lambda mt: (mt[1], mt[0]))
