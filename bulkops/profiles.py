"""Tenant profiles: a small TOML file naming tenants, so ``--tenant acme`` is all a user types.

``~/.config/bulkops/config.toml`` (``$XDG_CONFIG_HOME`` is honoured; ``$BULKOPS_CONFIG`` names
another file)::

    [tenants.acme]
    subdomain = "acme"      # acme.api.kandji.io
    region = "us"           # us (api.kandji.io), eu (api.eu.kandji.io) or iru (api.iru.com)
    rate = "9000/h"         # the budget of this tenant's runs (optional)
    reserve = 1000          # or: requests per hour left to the tenant's other integrations

The file holds no secret: tokens live in the environment, a token file or the keychain.  Any
mistake in it is one line naming the file and the key.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bulkops.budget import Rate
from bulkops.errors import ConfigError

__all__ = ["REGIONS", "TENANT_CAP_PER_HOUR", "Profile", "config_path", "load_profile"]

REGIONS = {"us": "api.kandji.io", "eu": "api.eu.kandji.io", "iru": "api.iru.com"}
TENANT_CAP_PER_HOUR = 10_000  # shared by every token and integration of a tenant
SUBDOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_KEYS = ("subdomain", "region", "rate", "reserve")


@dataclass(frozen=True, slots=True)
class Profile:
    """One tenant as the config file names it."""

    name: str
    subdomain: str
    region: str = "us"
    rate: Rate | None = None

    @property
    def base_url(self) -> str:
        """The tenant's API root."""
        return f"https://{self.subdomain}.{REGIONS[self.region]}"


def config_path() -> Path:
    """The config file: ``$BULKOPS_CONFIG``, else ``<XDG config>/bulkops/config.toml``."""
    env = os.environ.get("BULKOPS_CONFIG")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "bulkops" / "config.toml"


def _read(path: Path) -> dict[str, Any]:
    import tomllib  # only when a config file is read: 3 ms of every start-up otherwise

    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such config file; create it with a [tenants.NAME] table "
            '(subdomain = "acme", region = "us") or set BULKOPS_CONFIG'
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save it as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _profile(path: Path, name: str, table: object) -> Profile:
    where = f"{path}: tenants.{name}"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table ([tenants.{name}] with subdomain = ...)")
    unknown = sorted(set(table) - set(_KEYS))
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key (known keys: {', '.join(_KEYS)})")
    sub = table.get("subdomain")
    if not isinstance(sub, str) or not SUBDOMAIN.match(sub.strip().lower()):
        raise ConfigError(
            f"{where}.subdomain: {sub!r} is not a tenant subdomain "
            "(letters, digits, hyphens: acme for acme.api.kandji.io)"
            if sub is not None
            else f"{where}.subdomain: missing (acme for acme.api.kandji.io)"
        )
    region = table.get("region", "us")
    if not isinstance(region, str) or region.strip().lower() not in REGIONS:
        raise ConfigError(f"{where}.region: {region!r} is not one of {', '.join(REGIONS)}")
    rate: Rate | None = None
    if "rate" in table:
        text = table["rate"]
        if not isinstance(text, str):
            raise ConfigError(f'{where}.rate: write it as text, like rate = "9000/h"')
        try:
            rate = Rate.parse(text)
        except ValueError as exc:
            raise ConfigError(f"{where}.rate: {exc}") from None
    if "reserve" in table:
        reserve = table["reserve"]
        if (
            isinstance(reserve, bool)
            or not isinstance(reserve, int)
            or not 0 <= reserve < TENANT_CAP_PER_HOUR
        ):
            raise ConfigError(
                f"{where}.reserve: {reserve!r} is not a number of requests per hour "
                f"from 0 to {TENANT_CAP_PER_HOUR - 1}"
            )
        left = TENANT_CAP_PER_HOUR - reserve
        if rate is None:
            rate = Rate(left, 3600.0)
        elif rate.per_hour > left:
            raise ConfigError(
                f"{where}.rate: {rate} does not leave the reserve of {reserve}/h "
                f"(at most {left}/h); lower one of them"
            )
    return Profile(name, sub.strip().lower(), region.strip().lower(), rate)


def load_profile(name: str, *, path: Path | None = None) -> Profile:
    """The profile called ``name`` from the config file; :class:`ConfigError` names file and key."""
    path = path or config_path()
    if not _NAME.match(name):
        raise ConfigError(f"--tenant {name!r}: a profile name is letters, digits, '-', '_', '.'")
    data = _read(path)
    tenants = data.get("tenants", {})
    if not isinstance(tenants, dict):
        raise ConfigError(f"{path}: tenants: must be tables, like [tenants.{name}]")
    extra = sorted(set(data) - {"tenants"})
    if extra:
        raise ConfigError(f"{path}: {extra[0]}: unknown key (tenants go in [tenants.NAME])")
    if name not in tenants:
        known = ", ".join(sorted(tenants)) or "none"
        raise ConfigError(f"{path}: no [tenants.{name}] table (tenants: {known})")
    return _profile(path, name, tenants[name])


def profile_for(host: str, *, path: Path | None = None) -> str | None:
    """The name of the config file's profile for the tenant at ``host``, if it has one."""
    path = path or config_path()
    if not path.exists():
        return None
    try:
        tenants = _read(path).get("tenants", {})
    except ConfigError:
        return None  # the file's own mistakes are reported where it is asked for by name
    for name, table in tenants.items() if isinstance(tenants, dict) else ():
        try:
            profile = _profile(path, name, table)
        except ConfigError:
            continue
        if profile.base_url.split("://", 1)[-1] == host:
            return str(name)
    return None
