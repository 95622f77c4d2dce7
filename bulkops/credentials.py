"""Where the API token comes from, and the tenant's address.

Sources, in order: ``--token-file PATH`` (refused when group or others can read it), then the
environment (``IRU_API_TOKEN``, fallback ``KANDJI_API_TOKEN``).  Never a command-line value: it
would show in ``ps`` and in shell history.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from bulkops.client import check_base_url
from bulkops.errors import ConfigError

__all__ = ["ENV_VARS", "base_url_for", "load_token", "tenant_of"]

ENV_VARS = ("IRU_API_TOKEN", "KANDJI_API_TOKEN")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_SUBDOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_HOSTS = {"us": "api.kandji.io", "eu": "api.eu.kandji.io", "iru": "api.iru.com"}


def _check_shape(token: str, source: str) -> str:
    token = token.strip()
    if not token:
        raise ConfigError(f"{source} is empty; put the API token there")
    if not _UUID.match(token):
        raise ConfigError(
            f"{source} does not hold an API token (Kandji/Iru tokens are UUIDs like "
            "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx); check you copied the whole token"
        )
    return token


def load_token(token_file: Path | None) -> str:
    """The API token from the token file or the environment."""
    if token_file is not None:
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
        return _check_shape(text, f"--token-file {token_file}")
    for name in ENV_VARS:
        value = os.environ.get(name)
        if value:
            return _check_shape(value, f"${name}")
    raise ConfigError(
        "no API token: set IRU_API_TOKEN in the environment or pass --token-file PATH "
        "(a file only you can read)"
    )


def base_url_for(*, base_url: str | None, subdomain: str | None, region: str) -> str:
    """The tenant's API root from ``--base-url`` or ``--subdomain``/``--region``."""
    if base_url:
        return check_base_url(base_url)
    env = os.environ.get("BULKOPS_BASE_URL")
    if not subdomain and env:
        return check_base_url(env)
    if not subdomain:
        raise ConfigError(
            "no tenant: pass --subdomain NAME (and --region us|eu), --base-url URL, "
            "or set BULKOPS_BASE_URL"
        )
    sub = subdomain.strip().lower()
    if not _SUBDOMAIN.match(sub):
        raise ConfigError(
            f"--subdomain {subdomain!r} is not a tenant name (letters, digits, hyphens)"
        )
    host = _HOSTS.get(region.lower())
    if host is None:
        raise ConfigError(f"--region {region!r}: use one of {', '.join(sorted(_HOSTS))}")
    return f"https://{sub}.{host}"


def tenant_of(base_url: str) -> str:
    """The tenant's name for budgets and reports: the API host."""
    return base_url.split("://", 1)[-1].rstrip("/")
