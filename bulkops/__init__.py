"""bulkops: async, crash-safe bulk operations for the Kandji / Iru Endpoint Management API."""

from bulkops._version import __version__
from bulkops.actions import ACTIONS, Action, Param, ParamKind, get_action
from bulkops.errors import (
    ApiError,
    AuthError,
    BadResponse,
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

__all__ = [
    "ACTIONS",
    "Action",
    "ApiError",
    "AuthError",
    "BadResponse",
    "BulkopsError",
    "CheckpointError",
    "ConfigError",
    "ManifestError",
    "NotFound",
    "Param",
    "ParamKind",
    "PermissionDenied",
    "RateLimited",
    "RunAborted",
    "ServerError",
    "StatusError",
    "TransportError",
    "__version__",
    "get_action",
]
