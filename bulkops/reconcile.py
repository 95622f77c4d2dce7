"""Reconciliation: what became of a request whose answer we never saw.

An item found in ``sending`` for an action that must not run twice is never resent blindly.  The
device's MDM command list (``GET /api/v1/devices/{id}/commands``) shows whether the command was
queued after our intent; a lock's PIN can be read back from ``secrets/unlockpin``.  When the
server cannot tell us, the item is ``unknown`` and the user decides (``resume --resend-unknown``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bulkops.actions import SECRET_NOT_READ, Action
from bulkops.client import KandjiClient
from bulkops.errors import ApiError

__all__ = ["Verdict", "read_secret", "reconcile"]

SECRET_READS = 5  # attempts: a PIN lost to a flaky connection is the costliest read of a run


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome reconciliation settled on."""

    state: str
    detail: str
    secret: str | None = None
    checked: bool = True  # the device's commands were read (an unknown then: not found there)


def _timestamp(text: object) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


async def reconcile(
    client: KandjiClient,
    action: Action,
    *,
    device_id: str,
    sent_at: float,
    skew_s: float = 300.0,
) -> Verdict:
    """Look for our command on the device; ``unknown`` when it cannot be told."""
    if action.mdm_command is None:
        return Verdict(
            "unknown",
            "outcome unknown: the API shows no trace of this action to check",
            checked=False,
        )
    path = f"/api/v1/devices/{device_id}/commands"
    try:
        reply = await client.read(path, params={"limit": 300})
    except ApiError as exc:
        return Verdict(
            "unknown",
            f"outcome unknown: could not read the device's commands ({exc})",
            checked=False,
        )
    commands = ((reply.data or {}).get("commands") or {}).get("results") or []
    for cmd in commands:
        if (
            cmd.get("command_type") != action.mdm_command
            and cmd.get("request_type") != action.mdm_command
        ):
            continue
        requested = _timestamp(cmd.get("date_requested"))
        if requested is not None and requested < sent_at - skew_s:
            continue
        secret, problem = None, None
        if action.secret_path:
            secret, problem = await read_secret(client, action.secret_path, device_id)
        found = f"reconciled: {action.mdm_command} found on the device"
        return Verdict("succeeded", f"{found}; {problem}" if problem else found, secret)
    return Verdict(
        "unknown", f"outcome unknown: no {action.mdm_command} command found on the device"
    )


async def read_secret(
    client: KandjiClient, path: str, device_id: str
) -> tuple[str | None, str | None]:
    """The secret an applied action left on the device, read back: ``(secret, problem)``.

    ``(None, None)`` when the device has none (an iPhone's lock has no PIN); a problem when it
    could not be read, which the item's outcome must carry: the device is locked all the same.
    """
    where = path.format(device_id=device_id)
    try:
        reply = await client.read(where, attempts=SECRET_READS)
    except ApiError as exc:
        return None, (
            f"{SECRET_NOT_READ} ({exc}): a Mac is locked with a PIN that only the Iru web "
            f"console (the device's page) or GET {where} shows now; iPhones and iPads have none"
        )
    data = reply.data if isinstance(reply.data, dict) else {}
    return next((str(v) for v in data.values() if v), None), None
