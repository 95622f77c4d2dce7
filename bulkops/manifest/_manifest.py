"""Opening a manifest: its format, its default action, its hash, and iteration."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import orjson

from bulkops.actions import Action
from bulkops.errors import ManifestError
from bulkops.manifest._csv import iter_csv
from bulkops.manifest._item import Item
from bulkops.manifest._json import iter_json, iter_jsonl
from bulkops.manifest._limits import CHUNK_BYTES
from bulkops.manifest._row import find_action
from bulkops.manifest._text import DecodeProblem, iter_text
from bulkops.manifest._values import Invalid

__all__ = ["FORMATS", "Manifest", "open_manifest"]

FORMATS = ("csv", "json", "jsonl")
_BY_EXTENSION = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
MANIFEST_SUFFIXES = frozenset(_BY_EXTENSION)  # what a --db must not end with
_FORMAT_NAMES = {**{f: f for f in FORMATS}, "tsv": "csv", "ndjson": "jsonl"}


class Manifest:
    """A manifest file, validated row by row as it is iterated (each time from the start)."""

    __slots__ = ("_default_action", "_label", "_tab", "format", "path")

    def __init__(
        self, path: Path, format: str, *, default_action: Action | None, tab: bool = False
    ) -> None:
        self.path = path
        self.format = format
        self._default_action = default_action
        self._label = str(path)
        self._tab = tab

    def __repr__(self) -> str:
        return f"Manifest({self._label!r}, format={self.format!r})"

    def __iter__(self) -> Iterator[Item]:
        """Items in file order; at the end, :class:`ManifestError` for the bad rows read."""
        if self.format == "json":
            return iter_json(self.path, self._label, default_action=self._default_action)
        if self.format == "jsonl":
            return iter_jsonl(self.path, self._label, default_action=self._default_action)
        return iter_csv(self.path, self._label, default_action=self._default_action, tab=self._tab)

    def sha256(self) -> str:
        """The SHA-256 of the file's bytes, in hex."""
        digest = hashlib.sha256()
        try:
            with self.path.open("rb") as handle:
                while block := handle.read(CHUNK_BYTES):
                    digest.update(block)
        except OSError as exc:
            raise ManifestError(
                f"cannot read the manifest: {exc.strerror}", path=self._label
            ) from exc
        return digest.hexdigest()


def open_manifest(
    path: str | Path, *, format: str | None = None, default_action: str | None = None
) -> Manifest:
    """Open a CSV, JSON or JSON Lines manifest; rows are read and checked when it is iterated.

    ``format`` (``csv``, ``tsv``, ``json``, ``jsonl``, ``ndjson``) overrides the file extension;
    an unknown extension is sniffed from the content. ``default_action`` is the action of rows that
    name none (``bulkops run jobs/x.csv --action blankpush``).
    """
    where = Path(path)
    label = str(path)
    action = None
    if default_action is not None:
        try:
            action = find_action(default_action)
        except Invalid as exc:
            raise ManifestError(exc.message, path=label, column="--action", hint=exc.hint) from None
    if where.is_dir():
        raise ManifestError("is a directory, not a manifest file", path=label)
    if not where.exists():
        raise ManifestError("no such file", path=label)
    tab = where.suffix.lower() == ".tsv"
    if format is not None:
        tab = format.strip().lower() == "tsv"
        name = _FORMAT_NAMES.get(format.strip().lower())
        if name is None:
            raise ManifestError(
                f"unknown manifest format {format!r}",
                path=label,
                hint="use csv, tsv, json, jsonl or ndjson",
            )
    else:
        name = _BY_EXTENSION.get(where.suffix.lower()) or _sniff(where, label)
    return Manifest(where, name, default_action=action, tab=tab)


def _sniff(path: Path, label: str) -> str:
    """``json`` for ``[`` or a ``{`` document, ``jsonl`` when line 1 is a whole item, else CSV."""
    try:
        head = next(iter_text(path, label), "")
    except DecodeProblem:
        return "csv"
    text = head.lstrip()
    if text.startswith("["):
        return "json"
    if not text.startswith("{"):
        return "csv"
    first = text.split("\n", 1)[0]
    try:
        value = orjson.loads(first)
    except orjson.JSONDecodeError:
        return "json"
    return "jsonl" if isinstance(value, dict) and "items" not in value else "json"
