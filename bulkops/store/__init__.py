"""The checkpoint store (SQLite): runs, items, states, intents."""

from bulkops.store._db import connect
from bulkops.store._discard import discard_if_unused
from bulkops.store._index import (
    RunElsewhere,
    SentElsewhere,
    databases_of_run,
    note_run,
    runs_elsewhere,
    sends_elsewhere,
    settle_elsewhere,
    settle_rows,
)
from bulkops.store._scratch import scratch_store
from bulkops.store._store import OUTCOMES, RunInfo, Store, WorkItem, new_run_id

__all__ = [
    "OUTCOMES",
    "RunElsewhere",
    "RunInfo",
    "SentElsewhere",
    "Store",
    "WorkItem",
    "connect",
    "databases_of_run",
    "discard_if_unused",
    "new_run_id",
    "note_run",
    "runs_elsewhere",
    "scratch_store",
    "sends_elsewhere",
    "settle_elsewhere",
    "settle_rows",
]
