"""Reconciliation: what became of a request whose answer we never saw.

An item found in ``sending`` for an action that must not run twice is never resent blindly.  The
device's MDM command list (``GET /api/v1/devices/{id}/commands``) shows whether the command was
queued after our intent; a lock's PIN can be read back from ``secrets/unlockpin``.  When the
server cannot tell us, the item is ``unknown`` and the user decides (``resume --resend-unknown``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bulkops.actions import Action
from bulkops.client import KandjiClient
from bulkops.errors import ApiError

__all__ = ["Verdict", "reconcile"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome reconciliation settled on."""

    state: str
    detail: str
    secret: str | None = None


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
        return Verdict("unknown", "outcome unknown: the API shows no trace of this action to check")
    path = f"/api/v1/devices/{device_id}/commands"
    try:
        reply = await client.read(path, params={"limit": 300})
    except ApiError as exc:
        return Verdict("unknown", f"outcome unknown: could not read the device's commands ({exc})")
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
        secret = None
        if action.secret_path:
            try:
                got = await client.read(action.secret_path.format(device_id=device_id))
                data = got.data if isinstance(got.data, dict) else {}
                secret = next((str(v) for v in data.values() if v), None)
            except ApiError:
                secret = None
        return Verdict("succeeded", f"reconciled: {action.mdm_command} found on the device", secret)
    return Verdict(
        "unknown", f"outcome unknown: no {action.mdm_command} command found on the device"
    )
