"""Bearer tokens, revocation, per-route permissions, unknown paths and methods."""

from __future__ import annotations

import uuid

from simkit import Api

FORBIDDEN = {"detail": "You do not have permission to perform this action."}
LOCK = ("POST", "/api/v1/devices/{device_id}/action/lock")


async def test_missing_and_unknown_tokens_are_401(api: Api) -> None:
    r = await api.get("/api/v1/devices", auth=False)
    assert r.status == 401
    assert r.json() == {"detail": "Authentication credentials were not provided."}
    r = await api.get("/api/v1/devices", token=str(uuid.uuid4()))
    assert r.status == 401 and r.json() == {"detail": "Invalid token."}
    r = await api.get("/api/v1/devices", auth=False, headers={"Authorization": "Token abc"})
    assert r.json() == {"detail": "Authentication credentials were not provided."}
    r = await api.get("/api/v1/devices", auth=False, headers={"Authorization": "Bearer"})
    assert r.json() == {"detail": "Invalid token header. No credentials provided."}
    assert [e.outcome for e in api.sim.ledger.entries] == ["unauthorized"] * 4
    assert not any(e.counted for e in api.sim.ledger.entries)


async def test_add_token_returns_distinct_uuids(api: Api) -> None:
    tokens = {api.sim.add_token() for _ in range(5)} | {api.token}
    assert len(tokens) == 6
    assert all(str(uuid.UUID(t)) == t for t in tokens)


async def test_revoked_token_fails_mid_run_and_the_ledger_keeps_only_labels(api: Api) -> None:
    second = api.sim.add_token(label="ops")
    mac = api.device_of("Mac")
    assert (await api.post(f"/api/v1/devices/{mac}/action/blankpush", token=second)).status == 200
    api.sim.revoke_token(second)
    r = await api.post(f"/api/v1/devices/{mac}/action/blankpush", token=second)
    assert r.status == 401 and r.json() == {"detail": "Invalid token."}
    assert (await api.get("/api/v1/tags")).status == 200, "other tokens keep working"
    entries = api.sim.ledger.entries
    assert [(e.token, e.outcome) for e in entries] == [
        ("ops", "applied"),
        ("ops", "unauthorized"),
        ("token-1", "ok"),
    ]
    assert api.sim.ledger.applied_count(mac, "blankpush") == 1
    dumped = repr(entries)
    assert api.token not in dumped and second not in dumped


async def test_route_permissions_give_403_elsewhere(api: Api) -> None:
    limited = api.sim.add_token(allowed_routes={LOCK, ("GET", "/api/v1/devices")})
    mac = api.device_of("Mac")
    assert (await api.get("/api/v1/devices", token=limited)).status == 200
    r = await api.post(f"/api/v1/devices/{mac}/action/lock", token=limited)
    assert r.status == 200 and "PIN" in r.json()
    for method, path in [
        ("POST", f"/api/v1/devices/{mac}/action/erase"),
        ("GET", f"/api/v1/devices/{mac}"),
        ("PATCH", f"/api/v1/devices/{mac}"),
        ("GET", "/api/v1/blueprints"),
    ]:
        r = await api.call(method, path, token=limited, json={})
        assert r.status == 403 and r.json() == FORBIDDEN, (method, path)
    assert api.sim.ledger.outcomes()["forbidden"] == 4
    assert api.sim.ledger.applied_count(mac) == 1


async def test_routes_list_the_permission_grid(api: Api) -> None:
    routes = api.sim.routes()
    assert LOCK in routes
    assert ("PATCH", "/api/v1/devices/{device_id}") in routes
    assert ("GET", "/api/v1/integrations/apple/ade/devices") in routes
    actions = [r for m, r in routes if m == "POST" and "/action/" in r]
    assert len(actions) == 18


async def test_unknown_paths_and_methods(api: Api) -> None:
    r = await api.get("/api/v1/nothing/here")
    assert r.status == 404 and r.json() == {"detail": "Not found."}
    r = await api.call("DELETE", "/api/v1/library/custom-apps/123")
    assert r.status == 404 and r.headers["Content-Type"].startswith("text/html")
    assert b"<h1>Not Found</h1>" in r.body
    mac = api.device_of("Mac")
    r = await api.post(f"/api/v1/devices/{mac}/action/selfdestruct")
    assert r.status == 404
    r = await api.call("PUT", f"/api/v1/devices/{mac}")
    assert r.status == 405 and r.json() == {"detail": 'Method "PUT" not allowed.'}
    assert r.headers["Allow"] == "DELETE, GET, PATCH"
