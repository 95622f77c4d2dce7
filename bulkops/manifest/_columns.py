"""Column names: what each CSV header means, however Excel or a person spelled it.

A header is matched ignoring case, spaces, underscores, hyphens and dots, so ``Serial Number``,
``SERIAL_NUMBER`` and ``serial-number`` are all ``serial_number``. Aliases: ``serial``,
``serial no`` and ``sn`` mean ``serial_number``; ``id`` means ``device_id``; ``email`` and
``user email`` mean ``user``; ``tag`` means ``tags``; ``blueprint name`` means ``blueprint``;
``phone`` means ``phone_number``; ``new name`` means ``device_name``.

Informational columns are read and ignored: ``note``, ``comment``, ``name``, ``platform`` (and their
plurals), ``old name`` and ``current name``, and any column whose header starts with ``#`` —
rename a column ``#model`` to keep it in the sheet. JSON keys are not normalised: they are
written by programs, so they must be exact.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Final

from bulkops.actions import ACTIONS

__all__ = [
    "ACTION",
    "DEVICE_ID",
    "ID_COLUMNS",
    "INFO_COLUMNS",
    "PARAM_NAMES",
    "SERIAL_NUMBER",
    "canonical_column",
    "display",
    "suggest",
]

DEVICE_ID: Final = "device_id"
SERIAL_NUMBER: Final = "serial_number"
ACTION: Final = "action"
ID_COLUMNS: Final = (DEVICE_ID, SERIAL_NUMBER)
INFO_COLUMNS: Final = frozenset(
    {
        *("note", "notes", "comment", "comments", "name", "platform", "platforms"),
        *("old_name", "current_name"),  # a rename sheet's old names: for the reader's eyes
    }
)
PARAM_NAMES: Final = frozenset(p.name for a in ACTIONS.values() for p in a.params)

_ALIASES = {
    "serial": SERIAL_NUMBER,
    "serialno": SERIAL_NUMBER,
    "sn": SERIAL_NUMBER,
    "id": DEVICE_ID,
    "email": "user",
    "useremail": "user",
    "tag": "tags",
    "blueprintname": "blueprint",
    "phone": "phone_number",
    "newname": "device_name",  # a rename sheet's "New Name"
    "newdevicename": "device_name",
}
_SEPARATORS = re.compile(r"[\s_\-.]+")
_SPACES = re.compile(r"\s+")


def _squash(name: str) -> str:
    return _SEPARATORS.sub("", name.strip().strip("\ufeff").lower())


_KNOWN: dict[str, str] = {
    _squash(name): name for name in (*ID_COLUMNS, ACTION, *INFO_COLUMNS, *sorted(PARAM_NAMES))
}
_KNOWN.update(_ALIASES)


def canonical_column(header: str) -> str | None:
    """The name a header stands for, ``""`` for a note column, ``None`` when unknown."""
    text = header.strip().strip("\ufeff").strip()
    if text.startswith("#"):
        return ""
    name = _KNOWN.get(_squash(text))
    return "" if name in INFO_COLUMNS else name


def display(header: str) -> str:
    """A header as the user wrote it, on one line."""
    return _SPACES.sub(" ", header.strip().strip("\ufeff")).strip() or "(blank)"


def suggest(word: str, choices: Iterable[str]) -> str:
    """``"did you mean 'x'? "`` for the closest choice, or ``""``."""
    options = list(choices)
    squashed = {_squash(c): c for c in options}
    close = difflib.get_close_matches(_squash(word), list(squashed), n=1, cutoff=0.6)
    return f"did you mean {squashed[close[0]]!r}? " if close else ""
