"""``bulkops auth set|forget|status``, ``bulkops audit`` and ``bulkops permissions``."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from bulkops.cli import app
from bulkops.cli._common import (
    EXIT_INVALID,
    BaseUrl,
    Db,
    Region,
    Subdomain,
    Tenant,
    TokenFile,
    err,
    out,
)
from bulkops.errors import ConfigError

auth_app = typer.Typer(
    name="auth",
    help="The API token in the OS keychain: set, forget, status.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
app.add_typer(auth_app)


def _account(
    tenant: str | None, base_url: str | None, subdomain: str | None, region: str
) -> tuple[str, str]:
    """The keychain account (the tenant's API host) and how to name the tenant to the user."""
    from bulkops.credentials import foreign_host_warning, resolve_tenant, tenant_of

    url, profile = resolve_tenant(
        tenant=tenant, base_url=base_url, subdomain=subdomain, region=region
    )
    if warning := foreign_host_warning(url):
        err.print(f"warning: {warning}")
    account = tenant_of(url)
    return account, f"{account} (profile {profile.name})" if profile else account


@auth_app.command("set")
def auth_set(
    tenant: Tenant = None,
    base_url: BaseUrl = None,
    subdomain: Subdomain = None,
    region: Region = "us",
) -> None:
    """Store the tenant's API token in the OS keychain (asked for, never echoed)."""
    from bulkops.credentials import ENV_VARS, check_shape, keychain_name, keychain_set

    account, shown = _account(tenant, base_url, subdomain, region)
    name = keychain_name()  # no keychain: say so before asking for the token
    if sys.stdin.isatty():
        text = getpass.getpass(f"API token for {account} (input hidden): ")
    else:  # piped in by a script: one line
        text = sys.stdin.readline()
    token = check_shape(text, "the token given")
    keychain_set(account, token)
    out.print(f"stored the API token for {shown} in {name}", markup=False)
    for var in ENV_VARS:
        if os.environ.get(var):
            err.print(f"note: ${var} is set and is used before the keychain; unset it to use this")


@auth_app.command("forget")
def auth_forget(
    tenant: Tenant = None,
    base_url: BaseUrl = None,
    subdomain: Subdomain = None,
    region: Region = "us",
) -> None:
    """Remove the tenant's API token from the OS keychain."""
    from bulkops.credentials import keychain_delete

    account, shown = _account(tenant, base_url, subdomain, region)
    if keychain_delete(account):
        out.print(f"removed the API token for {shown} from the keychain", markup=False)
    else:
        out.print(f"no API token for {shown} was in the keychain", markup=False)


@auth_app.command("status")
def auth_status(
    tenant: Tenant = None,
    base_url: BaseUrl = None,
    subdomain: Subdomain = None,
    region: Region = "us",
    token_file: TokenFile = None,
) -> None:
    """Where a run would take the tenant's token from, in order; the token is never shown."""
    from bulkops.credentials import token_sources

    account, shown = _account(tenant, base_url, subdomain, region)
    sources = token_sources(token_file, account=account)
    # A run takes the first source that holds something, and stops there if it is unusable.
    decisive = next((s for s in sources if s.state not in ("absent", "not given")), None)
    out.print(f"tenant {shown}", markup=False)
    width = max(len(s.label) for s in sources)
    for i, s in enumerate(sources, 1):
        mark = "  <- used" if s is decisive and s.state == "found" else ""
        detail = f" ({s.detail})" if s.detail else ""
        out.print(f"  {i}. {s.label.ljust(width)}  {s.state}{detail}{mark}", markup=False)
    if decisive is None:
        err.print(f"no API token for {account} in any of these", markup=False)
        raise typer.Exit(EXIT_INVALID)
    if decisive.state != "found":
        err.print(f"a run would stop at {decisive.label}: {decisive.detail}", markup=False)
        raise typer.Exit(EXIT_INVALID)
    out.print(f"a run takes its token from {decisive.label}", markup=False)


def _when(record: dict[str, Any]) -> str:
    return str(record.get("ts", "?")).replace("T", " ").rstrip("Z")


def _counts(counts: object) -> str:
    if not isinstance(counts, dict) or not counts:
        return "none"
    return ", ".join(f"{k} {v}" for k, v in counts.items())


def _audit_line(r: dict[str, Any]) -> str:
    who = f"{r.get('user', '?')}@{r.get('host', '?')}"
    head = f"{_when(r)}  {r.get('event', '?'):<5}  {r.get('run_id', '?')}  {who}"
    if r.get("event") == "start":
        sha = str(r.get("manifest_sha256", ""))[:12]
        text = (
            f"{head}  {r.get('command')} on {r.get('tenant')}: {r.get('manifest')} "
            f"(sha256 {sha}…) rows {r.get('rows')}: {_counts(r.get('actions'))}"
        )
        if r.get("destructive"):
            text += (
                f"; destructive {_counts(r.get('destructive'))} "
                f"confirmed by {r.get('confirmed_by')}"
            )
        return text
    text = f"{head}  {_counts(r.get('outcomes'))}"
    if "requests" in r:
        text += f"; requests {r['requests']} ({r.get('requests_this_pass')} this pass)"
    if r.get("stopped"):
        text += f"; stopped: {r['stopped']}"
    return f"{text}; exit {r.get('exit_code')}"


@app.command()
def audit(
    db: Db = Path("bulkops.db"),
    json_out: Annotated[bool, typer.Option("--json", help="The records as JSON Lines.")] = False,
) -> None:
    """The audit log of a database: who ran what, on which tenant, how it ended."""
    from bulkops.audit import audit_path, read_audit

    path = audit_path(db)
    n = 0
    for record in read_audit(path):
        n += 1
        if json_out:
            out.print(orjson.dumps(record).decode(), markup=False)
        else:
            out.print(_audit_line(record), markup=False)
    if n == 0 and not json_out:
        out.print(f"{path}: no records yet")


@app.command()
def permissions(
    manifest: Annotated[Path, typer.Argument(help="CSV, JSON or JSON Lines manifest.")],
    action: Annotated[
        str | None, typer.Option("--action", help="Action for rows without one.")
    ] = None,
    verify: Annotated[
        bool, typer.Option("--verify", help="Include the read-backs of --verify.")
    ] = False,
) -> None:
    """The exact token permissions a run of this manifest may need (reads nothing remote)."""
    from bulkops.manifest import open_manifest
    from bulkops.permissions import manifest_permissions, sorted_permissions

    need = manifest_permissions(open_manifest(manifest, default_action=action), verify=verify)
    if not need:
        raise ConfigError(f"{manifest}: no rows, so no permissions")
    out.print(
        f"token permissions for {manifest} ({len(need)}; tick exactly these on the Access page):",
        markup=False,
    )
    width = max(len(p) for p in need)
    for perm in sorted_permissions(need):
        out.print(f"  {perm.ljust(width)}  {need[perm]}", markup=False)
