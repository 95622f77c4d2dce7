"""Bearer tokens with per-route permissions, as Kandji API tokens carry them."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["AuthResult", "TokenRegistry"]

_NOT_PROVIDED = "Authentication credentials were not provided."
_INVALID = "Invalid token."
_NO_CREDENTIALS = "Invalid token header. No credentials provided."
_SPACES = "Invalid token header. Token string should not contain spaces."
FORBIDDEN = "You do not have permission to perform this action."


@dataclass(frozen=True, slots=True)
class _Token:
    label: str
    allowed: frozenset[tuple[str, str]] | None


@dataclass(frozen=True, slots=True)
class AuthResult:
    """Who is calling (`label`), or why not (`error`, a DRF-style detail for a 401)."""

    label: str | None
    error: str | None
    allowed: frozenset[tuple[str, str]] | None = None

    def permits(self, method: str, route: str) -> bool:
        """Whether the token may call `method route` (route is the path template)."""
        allowed = self.allowed
        return allowed is None or (method, route) in allowed


class TokenRegistry:
    """Issues UUID tokens, revokes them, and authenticates `Authorization` headers."""

    __slots__ = ("_cache", "_issued", "_revoked", "_tokens")

    def __init__(self) -> None:
        self._tokens: dict[str, _Token] = {}
        self._revoked: dict[str, str] = {}
        self._cache: dict[str, AuthResult] = {}  # header value -> result (cleared on change)
        self._issued = 0

    def add(
        self, allowed_routes: Iterable[tuple[str, str]] | None = None, *, label: str | None = None
    ) -> str:
        """Create a token; `allowed_routes` limits it to `(METHOD, "/api/v1/...")` templates."""
        self._issued += 1
        token = str(uuid.uuid4())
        allowed = None
        if allowed_routes is not None:
            allowed = frozenset((m.upper(), r) for m, r in allowed_routes)
        self._tokens[token] = _Token(label or f"token-{self._issued}", allowed)
        self._cache = {}
        return token

    def revoke(self, token: str) -> None:
        """Forget a token: later requests with it get 401 Invalid token."""
        t = self._tokens.pop(token, None)
        if t is not None:
            self._revoked[token] = t.label
        self._cache = {}

    def label_of(self, token: str) -> str | None:
        """The label of a live token (what the ledger records instead of the token)."""
        t = self._tokens.get(token)
        return t.label if t else None

    def authenticate(self, header: str | None) -> AuthResult:
        """Check an `Authorization` header value the way DRF's token authentication does."""
        if not header:
            return AuthResult(None, _NOT_PROVIDED)
        cached = self._cache.get(header)
        if cached is not None:
            return cached
        result = self._check(header)
        if len(self._cache) < 1024:
            self._cache[header] = result
        return result

    def _check(self, header: str) -> AuthResult:
        parts = header.split()
        if not parts or parts[0].lower() != "bearer":
            return AuthResult(None, _NOT_PROVIDED)
        if len(parts) == 1:
            return AuthResult(None, _NO_CREDENTIALS)
        if len(parts) > 2:
            return AuthResult(None, _SPACES)
        t = self._tokens.get(parts[1])
        if t is None:
            # A revoked token keeps its label so the ledger can say whose requests failed.
            return AuthResult(self._revoked.get(parts[1]), _INVALID)
        return AuthResult(t.label, None, t.allowed)
