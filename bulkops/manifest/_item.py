"""One validated manifest row."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["Item"]


@dataclass(frozen=True, slots=True)
class Item:
    """One row or JSON item: a device, an action and its validated parameters.

    ``params`` holds only the parameters the row gave, typed by kind (text, ``bool``, 6-digit
    ``str``, lower-case UUID ``str``, ``tuple`` of tag names); ``None`` means *clear this field*.
    Treat it as read-only. It takes no part in ``hash()``; equality compares it.
    """

    line: int
    device_id: str | None
    serial_number: str | None
    action: str
    params: Mapping[str, Any] = field(hash=False)

    @property
    def device_ref(self) -> str:
        """``"id:<uuid>"`` when the row gave a device id, else ``"sn:<SERIAL>"``."""
        if self.device_id is not None:
            return "id:" + self.device_id
        return f"sn:{self.serial_number}"

    @property
    def params_digest(self) -> str:
        """16 hex digits that are equal exactly when two rows give the same parameters."""
        data = orjson.dumps(dict(self.params), option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(data).hexdigest()[:16]
