"""Helpers for the manifest tests: write a file, read it whole, catch its error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bulkops.errors import ManifestError
from bulkops.manifest import Item, open_manifest

SERIAL = "C02XK1JHJG5J"
SERIAL2 = "C02XK1JHJG5K"
UUID1 = "0a1b2c3d-0000-4000-8000-00112233aabb"


def write(folder: Path, name: str, data: str | bytes, encoding: str = "utf-8") -> Path:
    """Write ``data`` (text in ``encoding``, or bytes as they are) to ``folder/name``."""
    path = folder / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode(encoding))
    return path


def read(path: Path, **options: Any) -> list[Item]:
    """Every item of the manifest at ``path``."""
    return list(open_manifest(path, **options))


def error(path: Path, **options: Any) -> ManifestError:
    """The error that iterating the manifest raises."""
    with pytest.raises(ManifestError) as caught:
        read(path, **options)
    return caught.value


def item(line: int, action: str, serial: str | None = SERIAL, **params: Any) -> Item:
    """An expected item for a serial number."""
    return Item(line, None, serial, action, params)
