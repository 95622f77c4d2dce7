"""Where the API token comes from, and the tenant's address.

Token sources, in order:

1. ``--token-file PATH``: refused when group or others can read it (with the ``chmod`` to fix);
2. the environment: ``IRU_API_TOKEN``, fallback ``KANDJI_API_TOKEN``;
3. the OS keychain through ``keyring`` (the macOS Keychain, Windows Credential Locker, the Secret
   Service on Linux): service ``bulkops``, account the tenant's API host, stored there by
   ``bulkops auth set``.

Never a command-line value: it would show in ``ps`` and in shell history.  Whatever the source,
the token must look like a token (a UUID) before the first request is sent.

The tenant is ``--tenant NAME`` (a profile, :mod:`bulkops.profiles`), ``--subdomain`` with
``--region``, or ``--base-url`` / ``$BULKOPS_BASE_URL``.  A base URL whose host is not a
Kandji / Iru API host is allowed only when given explicitly, and comes with a warning.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from bulkops.client import _is_loopback, check_base_url
from bulkops.errors import ConfigError
from bulkops.profiles import REGIONS, SUBDOMAIN, Profile, load_profile

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

__all__ = [
    "ENV_VARS",
    "KEYCHAIN_SERVICE",
    "KeychainUnavailable",
    "TokenSource",
    "base_url_for",
    "find_token",
    "foreign_host_warning",
    "keychain_delete",
    "keychain_get",
    "keychain_name",
    "keychain_set",
    "load_token",
    "resolve_tenant",
    "tenant_of",
    "token_sources",
]

ENV_VARS = ("IRU_API_TOKEN", "KANDJI_API_TOKEN")
KEYCHAIN_SERVICE = "bulkops"
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_API_HOST = re.compile(
    r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.(?:"
    + "|".join(map(re.escape, REGIONS.values()))
    + ")$"
)
_HOW_TO_SET = (
    "set IRU_API_TOKEN in the environment, pass --token-file PATH (a file only you can read), "
    "or store it in the keychain with `bulkops auth set` and the same tenant options"
)


class KeychainUnavailable(ConfigError):
    """No usable OS keychain (e.g. Linux without a Secret Service), or it refused us."""


def check_shape(token: str, source: str) -> str:
    """The token without surrounding whitespace, if it looks like a Kandji / Iru token."""
    token = token.strip()
    if not token:
        raise ConfigError(f"{source} is empty; put the API token there")
    if not _UUID.match(token):
        raise ConfigError(
            f"{source} does not hold an API token (Kandji/Iru tokens are UUIDs like "
            "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx); check you copied the whole token"
        )
    return token


# ---- the keychain ---------------------------------------------------------------------------


def _backend() -> KeyringBackend:
    try:
        import keyring
        from keyring.backends import fail
    except ImportError as exc:  # pragma: no cover - keyring is a dependency
        raise KeychainUnavailable(f"no keychain: the keyring package is missing ({exc})") from None
    try:
        backend = keyring.get_keyring()
    except Exception as exc:  # a broken keyringrc or PYTHON_KEYRING_BACKEND
        raise KeychainUnavailable(f"no keychain: {_reason(exc)}") from None
    if isinstance(backend, fail.Keyring):
        raise KeychainUnavailable(
            "no keychain is available here (on Linux, a Secret Service such as GNOME Keyring "
            "must be running); use IRU_API_TOKEN or --token-file instead"
        )
    return backend


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def keychain_name() -> str:
    """The keychain backend in use, e.g. ``macOS Keyring``; raises when there is none."""
    backend = _backend()
    return str(getattr(backend, "name", type(backend).__name__))


def keychain_get(account: str) -> str | None:
    """The token stored for ``account`` (the tenant's API host), or ``None``."""
    backend = _backend()
    try:
        return backend.get_password(KEYCHAIN_SERVICE, account)
    except Exception as exc:  # backends raise their own errors (locked, denied, D-Bus…)
        raise KeychainUnavailable(f"the keychain could not be read: {_reason(exc)}") from None


def keychain_set(account: str, token: str) -> None:
    """Store ``token`` for ``account``, replacing any earlier one."""
    backend = _backend()
    try:
        backend.set_password(KEYCHAIN_SERVICE, account, token)
    except Exception as exc:
        raise KeychainUnavailable(f"the keychain refused the token: {_reason(exc)}") from None


def keychain_delete(account: str) -> bool:
    """Remove the token stored for ``account``; ``False`` when there was none."""
    backend = _backend()
    try:
        if backend.get_password(KEYCHAIN_SERVICE, account) is None:
            return False
        backend.delete_password(KEYCHAIN_SERVICE, account)
    except Exception as exc:
        raise KeychainUnavailable(f"the keychain could not be changed: {_reason(exc)}") from None
    return True


# ---- the token ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenSource:
    """One place a token may come from, and what is there (never the token itself)."""

    label: str
    state: str  # "found", "absent", "unreadable", "unavailable", "not given"
    detail: str = ""


def _read_token_file(token_file: Path) -> str:
    try:
        st = token_file.stat()
    except OSError as exc:
        raise ConfigError(f"--token-file {token_file}: {exc.strerror}") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"--token-file {token_file} can be read by other users; run: chmod 600 {token_file}"
        )
    try:
        text = token_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--token-file {token_file}: cannot read it ({exc})") from None
    return check_shape(text, f"--token-file {token_file}")


def find_token(token_file: Path | None, *, account: str | None = None) -> tuple[str, str]:
    """``(token, where it came from)``: the token file, the environment, then the keychain."""
    if token_file is not None:
        return _read_token_file(token_file), f"--token-file {token_file}"
    for name in ENV_VARS:
        value = os.environ.get(name)
        if value:
            return check_shape(value, f"${name}"), f"${name}"
    if account is None:
        raise ConfigError(f"no API token: {_HOW_TO_SET}")
    label = f"the keychain (service {KEYCHAIN_SERVICE}, account {account})"
    try:
        stored = keychain_get(account)
    except KeychainUnavailable as exc:
        raise ConfigError(f"no API token: {_HOW_TO_SET} ({exc})") from None
    if stored is None:
        raise ConfigError(f"no API token for {account}: {_HOW_TO_SET}")
    return check_shape(stored, label), label


def load_token(token_file: Path | None, *, account: str | None = None) -> str:
    """The API token from the token file, the environment or the keychain entry of ``account``."""
    return find_token(token_file, account=account)[0]


def token_sources(token_file: Path | None, *, account: str) -> list[TokenSource]:
    """Every source in the order they are tried, and what each holds; the token never shows."""
    sources: list[TokenSource] = []
    if token_file is None:
        sources.append(TokenSource("--token-file", "not given"))
    else:
        try:
            _read_token_file(token_file)
        except ConfigError as exc:
            sources.append(TokenSource(f"--token-file {token_file}", "unreadable", str(exc)))
        else:
            sources.append(TokenSource(f"--token-file {token_file}", "found"))
    for name in ENV_VARS:
        value = os.environ.get(name)
        if not value:
            sources.append(TokenSource(f"${name}", "absent"))
            continue
        try:
            check_shape(value, f"${name}")
        except ConfigError as exc:
            sources.append(TokenSource(f"${name}", "unreadable", str(exc)))
        else:
            sources.append(TokenSource(f"${name}", "found"))
    label = f"keychain {KEYCHAIN_SERVICE}/{account}"
    try:
        stored = keychain_get(account)
    except KeychainUnavailable as exc:
        sources.append(TokenSource(label, "unavailable", str(exc)))
    else:
        if stored is None:
            sources.append(TokenSource(label, "absent"))
        else:
            try:
                check_shape(stored, label)
            except ConfigError as exc:
                sources.append(TokenSource(label, "unreadable", str(exc)))
            else:
                sources.append(TokenSource(label, "found"))
    return sources


# ---- the tenant -----------------------------------------------------------------------------


def base_url_for(*, base_url: str | None, subdomain: str | None, region: str) -> str:
    """The tenant's API root from ``--base-url`` or ``--subdomain``/``--region``."""
    if base_url:
        return check_base_url(base_url)
    env = os.environ.get("BULKOPS_BASE_URL")
    if not subdomain and env:
        return check_base_url(env)
    if not subdomain:
        raise ConfigError(
            "no tenant: pass --tenant NAME (a profile in the config file), --subdomain NAME "
            "(and --region us|eu|iru), --base-url URL, or set BULKOPS_BASE_URL"
        )
    sub = subdomain.strip().lower()
    if not SUBDOMAIN.match(sub):
        raise ConfigError(
            f"--subdomain {subdomain!r} is not a tenant name (letters, digits, hyphens)"
        )
    host = REGIONS.get(region.lower())
    if host is None:
        raise ConfigError(f"--region {region!r}: use one of {', '.join(sorted(REGIONS))}")
    return f"https://{sub}.{host}"


def resolve_tenant(
    *, tenant: str | None, base_url: str | None, subdomain: str | None, region: str
) -> tuple[str, Profile | None]:
    """The tenant's API root and its profile (when ``--tenant`` named one)."""
    if tenant is None:
        return base_url_for(base_url=base_url, subdomain=subdomain, region=region), None
    if base_url or subdomain:
        given = "--base-url" if base_url else "--subdomain"
        raise ConfigError(f"--tenant {tenant} already names the tenant; drop {given}")
    profile = load_profile(tenant)
    return profile.base_url, profile


def foreign_host_warning(url: str) -> str | None:
    """One line when ``url`` is neither a Kandji / Iru API host nor loopback, else ``None``."""
    host = (urlsplit(url).hostname or "").lower()
    if _API_HOST.match(host) or _is_loopback(host):
        return None
    return (
        f"{host} is not a Kandji / Iru API host (*.{', *.'.join(REGIONS.values())}); "
        "the token is sent there because the base URL was given explicitly"
    )


def tenant_of(base_url: str) -> str:
    """The tenant's name for budgets, reports and the keychain: the API host."""
    return base_url.split("://", 1)[-1].rstrip("/")
