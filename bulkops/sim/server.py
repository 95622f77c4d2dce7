"""`Simulator`: the aiohttp server tying gateway, auth, faults, handlers and ledger together."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import threading
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from bulkops.sim import actions, device_info, devices, directory
from bulkops.sim.auth import FORBIDDEN, TokenRegistry
from bulkops.sim.clock import VirtualClock
from bulkops.sim.config import SimConfig
from bulkops.sim.context import Ctx, Handler
from bulkops.sim.faults import FaultDecision, FaultInjector
from bulkops.sim.fleet import Fleet, generate_fleet
from bulkops.sim.ledger import Ledger, LedgerEntry
from bulkops.sim.ratelimit import GatewayLimiter
from bulkops.sim.replies import HTML_NOT_FOUND, NOT_FOUND, Reply, detail, json_reply
from bulkops.sim.router import Router
from bulkops.sim.world import World

__all__ = ["Simulator", "build_router"]

log = logging.getLogger("bulkops.sim")

_RATE_LIMITED = orjson.dumps({"message": "API rate limit exceeded"})
_KONG_5XX = {
    500: "An unexpected error occurred",
    502: "An invalid response was received from the upstream server",
    503: "failure to get a peer from the ring-balancer",
}
_ODD_TEXT = b"upstream sent an unexpected response"
_JSON = "application/json"


def build_router() -> Router[Handler]:
    """The route table of every endpoint the simulator serves."""
    router: Router[Handler] = Router()
    devices.register(router)
    device_info.register(router)
    actions.register(router)
    directory.register(router)
    return router


def load_fleet(config: SimConfig) -> Fleet:
    """Load `fleet_path` if it exists, else generate (and dump there when a path is given)."""
    path = Path(config.fleet_path) if config.fleet_path is not None else None
    if path is not None and path.exists():
        return Fleet.from_json(path)
    fleet = generate_fleet(
        devices=config.devices,
        seed=config.seed,
        ade_devices=config.ade_devices,
        duplicate_serials=config.duplicate_serials,
    )
    if path is not None:
        fleet.to_json(path)
    return fleet


def _abort(request: web.BaseRequest) -> None:
    """Drop the connection with a TCP reset and no response."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _mangle(reply: Reply, kind: str) -> tuple[bytes, str | None]:
    if kind == "text":
        return _ODD_TEXT, "text/plain"
    if kind == "empty":
        return b"", _JSON
    body = reply.body or b'{"detail": "'
    return body[: max(1, len(body) // 2)], _JSON  # truncated


class Simulator:
    """A local Kandji tenant: start it with `running()` (async) or `in_thread()` (sync)."""

    def __init__(self, config: SimConfig | None = None) -> None:
        cfg = config if config is not None else SimConfig()
        self.config = cfg
        self.clock = VirtualClock(time_scale=cfg.time_scale, real=cfg.clock)
        self.fleet = load_fleet(cfg)
        self.ledger = Ledger(path=cfg.ledger_path)
        self.world = World(
            self.fleet, clock=self.clock, seed=cfg.seed, command_delay_s=cfg.command_delay_s
        )
        self.limiter = GatewayLimiter(
            hour_limit=cfg.hour_limit,
            second_limit=cfg.second_limit,
            clock=self.clock,
            window=cfg.window,
            other_per_hour=cfg.faults.other_integration_per_window,
            headers=cfg.rate_limit_headers,
        )
        self._tokens = TokenRegistry()
        self._faults = FaultInjector(cfg.faults, seed=cfg.seed)
        self._router = build_router()

    # -- tokens -----------------------------------------------------------------------------

    def add_token(
        self, allowed_routes: Iterable[tuple[str, str]] | None = None, *, label: str | None = None
    ) -> str:
        """Issue a UUID token; `allowed_routes` limits it to `(METHOD, template)` pairs."""
        return self._tokens.add(allowed_routes, label=label)

    def revoke_token(self, token: str) -> None:
        """Revoke a token: its next requests get 401 `Invalid token.`."""
        self._tokens.revoke(token)

    def token_label(self, token: str) -> str | None:
        """The label the ledger uses for `token`."""
        return self._tokens.label_of(token)

    def routes(self) -> list[tuple[str, str]]:
        """Every `(METHOD, template)` served (the permission grid)."""
        return self._router.templates()

    # -- request path -----------------------------------------------------------------------

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """Serve one request: auth → gateway limit → route → permission → faults → handler."""
        t_real = self.clock.real()
        now_v = self.clock.to_virtual(t_real)
        method = request.method
        path = request.path
        self.world.settle(now_v)
        auth = self._tokens.authenticate(request.headers.get("Authorization"))
        base = _Base(self, t_real, now_v, method, path, auth.label)
        if auth.error is not None:
            reply = detail(401, auth.error)
            reply.outcome = "unauthorized"
            return base.respond(reply, self.limiter.peek(now_v))
        check = self.limiter.hit(now_v)
        if not check.allowed:
            reply = Reply(429, _RATE_LIMITED, _JSON, "rate_limited", reason="rate limited")
            return base.respond(reply, check.headers)
        match = self._router.resolve(path)
        if match is None:
            if path.startswith("/api/v1/library/"):
                return base.respond(
                    Reply(404, HTML_NOT_FOUND, "text/html; charset=utf-8", "not_found"),
                    check.headers,
                )
            return base.respond(detail(404, NOT_FOUND), check.headers)
        base.route = match.template
        lookup = "GET" if method == "HEAD" else method
        handler = match.handlers.get(lookup)
        if handler is None:
            reply = detail(405, f'Method "{method}" not allowed.')
            reply.headers = {"Allow": ", ".join(sorted(match.handlers))}
            return base.respond(reply, check.headers)
        if not auth.permits(lookup, match.template):
            reply = detail(403, FORBIDDEN, device_id=match.params.get("device_id"))
            reply.outcome = "forbidden"
            return base.respond(reply, check.headers)
        fault = self._faults.draw(lookup, match.template)
        if fault.delay_s:
            await asyncio.sleep(fault.delay_s)
        ctx = Ctx(request, match.params, now_v, self.world)
        return await self._serve(base, ctx, handler, fault, check.headers)

    async def _serve(
        self,
        base: _Base,
        ctx: Ctx,
        handler: Handler,
        fault: FaultDecision,
        limit_headers: dict[str, str],
    ) -> web.StreamResponse:
        device_id = ctx.params.get("device_id")
        action = base.route.rsplit("/", 1)[1] if base.route and "/action/" in base.route else None
        if fault.reset_before:
            base.record(None, "reset_before", False, device_id, action, fault="reset_before")
            _abort(ctx.request)
            return web.Response(status=500)
        if fault.error_5xx is not None:
            status = fault.error_5xx
            reply = json_reply(
                status,
                {"message": _KONG_5XX.get(status, "upstream error")},
                device_id=device_id,
                action=action,
            )
            reply.outcome = "fault_5xx"
            return base.respond(reply, limit_headers, fault=f"5xx:{status}")
        if fault.odd == "html404":
            reply = Reply(
                404,
                HTML_NOT_FOUND,
                "text/html; charset=utf-8",
                "odd",
                device_id=device_id,
                action=action,
            )
            return base.respond(reply, limit_headers, fault="odd:html404")
        try:
            reply = await handler(ctx)
        except Exception:
            log.exception("simulator handler failed for %s %s", base.method, base.path)
            reply = json_reply(500, {"detail": "A server error occurred."})
            reply.outcome = "error"
        if fault.reset_after:
            base.record(
                None,
                "reset_after",
                reply.applied,
                reply.device_id,
                reply.action,
                pin=reply.pin,
                fault="reset_after",
            )
            _abort(ctx.request)
            return web.Response(status=500)
        if fault.odd is not None:
            reply.body, reply.content_type = _mangle(reply, fault.odd)
            reply.outcome = "odd"
            return base.respond(reply, limit_headers, fault=f"odd:{fault.odd}")
        response = base.respond(reply, limit_headers, fault="slow" if fault.slow_s else None)
        if fault.slow_s:
            await asyncio.sleep(fault.slow_s)
        return response

    # -- serving ----------------------------------------------------------------------------

    @asynccontextmanager
    async def running(self, *, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        """Serve on the current event loop; yields the base URL (`http://host:port`)."""
        server = web.Server(self.handle, access_log=None)
        runner = web.ServerRunner(server, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
            bound = runner.addresses[0]
            shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
            yield f"http://{shown}:{bound[1]}"
        finally:
            await runner.cleanup()

    @contextmanager
    def in_thread(self, *, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """Serve from a daemon thread with its own event loop; yields the base URL."""
        ready = threading.Event()
        box: dict[str, Any] = {}
        loop = asyncio.new_event_loop()
        stop = asyncio.Event()

        async def main() -> None:
            async with self.running(host=host, port=port) as url:
                box["url"] = url
                ready.set()
                await stop.wait()

        def run() -> None:
            try:
                loop.run_until_complete(main())
            except BaseException as exc:  # surfaced to the caller below
                box["error"] = exc
                ready.set()
            finally:
                loop.close()

        thread = threading.Thread(target=run, name="bulkops-sim", daemon=True)
        thread.start()
        if not ready.wait(timeout=60):
            loop.call_soon_threadsafe(stop.set)
            raise RuntimeError("simulator did not start within 60 s")
        if "error" in box:
            raise RuntimeError("simulator failed to start") from box["error"]
        try:
            yield str(box["url"])
        finally:
            loop.call_soon_threadsafe(stop.set)
            thread.join(timeout=30)

    def close(self) -> None:
        """Close the ledger file (the in-memory ledger stays readable)."""
        self.ledger.close()


class _Base:
    """Facts about one request gathered before its outcome is known."""

    __slots__ = ("label", "method", "now_v", "path", "route", "sim", "t_real")

    def __init__(
        self,
        sim: Simulator,
        t_real: float,
        now_v: float,
        method: str,
        path: str,
        label: str | None,
    ) -> None:
        self.sim = sim
        self.t_real = t_real
        self.now_v = now_v
        self.method = method
        self.path = path
        self.label = label
        self.route: str | None = None

    def record(
        self,
        status: int | None,
        outcome: Any,
        applied: bool,
        device_id: str | None,
        action: str | None,
        *,
        pin: str | None = None,
        fault: str | None = None,
        reason: str | None = None,
    ) -> None:
        ledger = self.sim.ledger
        # Positional, in field order: this runs on every request.
        ledger.append(
            LedgerEntry(
                ledger.next_seq(),
                self.t_real,
                self.now_v,
                self.method,
                self.path,
                self.route,
                device_id,
                action,
                self.label,
                status,
                outcome,
                applied,
                pin,
                fault,
                reason,
            )
        )

    def respond(
        self, reply: Reply, limit_headers: dict[str, str], *, fault: str | None = None
    ) -> web.Response:
        self.record(
            reply.status,
            reply.outcome,
            reply.applied,
            reply.device_id,
            reply.action,
            pin=reply.pin,
            fault=fault,
            reason=reply.reason,
        )
        headers = dict(limit_headers)
        if reply.headers:
            headers.update(reply.headers)
        if reply.content_type is not None:
            headers["Content-Type"] = reply.content_type
        return web.Response(body=reply.body, status=reply.status, headers=headers)
