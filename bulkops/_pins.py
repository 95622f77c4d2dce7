"""Lock PINs an earlier pass could not read back, read again when the run is resumed.

A lock that landed while the PIN read failed (5xx, resets) is done: the Mac is locked. Its PIN
is then only in the Iru web console, and the row says ``PIN not read``. ``bulkops resume RUN_ID``
tries those reads once more, so the PIN reaches ``secrets.csv``.
"""

from __future__ import annotations

import logging

from bulkops.actions import ACTIONS, SECRET_NOT_READ
from bulkops.client import KandjiClient
from bulkops.reconcile import read_secret
from bulkops.store import RunInfo, Store

__all__ = ["READ_LATER", "reread_pins"]

log = logging.getLogger("bulkops")

READ_LATER = "PIN read back by a later pass"


def _unread(store: Store, run_id: str) -> list[tuple[int, str, str, int | None, str]]:
    return [
        tuple(row)
        for row in store._conn.execute(
            "SELECT line, device_id, action, http_status, error FROM items WHERE run_id = ?"
            " AND state = 'succeeded' AND secret IS NULL AND device_id IS NOT NULL"
            " AND instr(error, ?) > 0 ORDER BY line",
            (run_id, SECRET_NOT_READ),
        )
    ]


async def reread_pins(store: Store, run: RunInfo, client: KandjiClient) -> int:
    """Read again the PINs of this run's rows that say ``PIN not read``; how many were found."""
    found = 0
    for line, device_id, name, status, error in await store.call(_unread, store, run.run_id):
        path = ACTIONS[name].secret_path
        if path is None:
            continue
        secret, problem = await read_secret(client, path, device_id)
        if secret is None or problem is not None:
            continue  # still not readable: the row keeps saying so
        head = error.split(SECRET_NOT_READ, 1)[0].rstrip("; ")
        note = f"{head}; {READ_LATER}" if head else READ_LATER
        store.complete(
            run.run_id, line, state="succeeded", http_status=status, error=note, secret=secret
        )
        found += 1
    if found:
        log.warning("%d unlock PIN(s) not read back before are read now: see secrets.csv", found)
    return found
