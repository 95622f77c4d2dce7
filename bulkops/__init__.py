"""bulkops: async, crash-safe bulk operations for the Kandji / Iru Endpoint Management API.

The pipeline, one module each: ``manifest`` → ``planner``/``resolve`` → ``budget`` → ``client``
→ ``store`` → ``report``, driven by ``engine`` and wrapped for one call by ``job``; the simulator
(``bulkops.sim``) stands beside it and imports none of it.

Names that pull in aiohttp or SQLite are loaded on first use, so ``bulkops --help`` starts fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from bulkops._version import __version__
from bulkops.actions import ACTIONS, Action, Param, ParamKind, Request, get_action
from bulkops.errors import (
    ApiError,
    AuthError,
    BadResponse,
    BadRows,
    BulkopsError,
    CheckpointError,
    ConfigError,
    ManifestError,
    NotFound,
    PermissionDenied,
    RateLimited,
    RunAborted,
    ServerError,
    StatusError,
    TransportError,
)

if TYPE_CHECKING:
    from bulkops.budget import Budget, BudgetConfig, Rate, SendHistory
    from bulkops.client import Connection, KandjiClient
    from bulkops.engine import Engine, Progress, RunOptions
    from bulkops.job import JobConfig, JobResult, drive, start_run
    from bulkops.manifest import Item, Manifest, open_manifest
    from bulkops.planner import Plan
    from bulkops.store import Store

_LAZY = {
    "Budget": "bulkops.budget",
    "BudgetConfig": "bulkops.budget",
    "Connection": "bulkops.client",
    "Engine": "bulkops.engine",
    "Item": "bulkops.manifest",
    "JobConfig": "bulkops.job",
    "JobResult": "bulkops.job",
    "KandjiClient": "bulkops.client",
    "Manifest": "bulkops.manifest",
    "Plan": "bulkops.planner",
    "Progress": "bulkops.engine",
    "Rate": "bulkops.budget",
    "RunOptions": "bulkops.engine",
    "SendHistory": "bulkops.budget",
    "Store": "bulkops.store",
    "drive": "bulkops.job",
    "open_manifest": "bulkops.manifest",
    "start_run": "bulkops.job",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'bulkops' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "ACTIONS",
    "Action",
    "ApiError",
    "AuthError",
    "BadResponse",
    "BadRows",
    "Budget",
    "BudgetConfig",
    "BulkopsError",
    "CheckpointError",
    "ConfigError",
    "Connection",
    "Engine",
    "Item",
    "JobConfig",
    "JobResult",
    "KandjiClient",
    "Manifest",
    "ManifestError",
    "NotFound",
    "Param",
    "ParamKind",
    "PermissionDenied",
    "Plan",
    "Progress",
    "Rate",
    "RateLimited",
    "Request",
    "RunAborted",
    "RunOptions",
    "SendHistory",
    "ServerError",
    "StatusError",
    "Store",
    "TransportError",
    "__version__",
    "drive",
    "get_action",
    "open_manifest",
    "start_run",
]
