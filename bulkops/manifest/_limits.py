"""Size limits that keep memory bounded whatever a manifest holds."""

from __future__ import annotations

MAX_CELL_CHARS = 64 * 1024
"""A CSV cell (any column, even an ignored one) may hold at most this many characters."""

MAX_LINE_CHARS = 1024 * 1024
"""A physical line, a CSV record or one JSON item may hold at most this many characters."""

CHUNK_BYTES = 128 * 1024
"""Files are read in chunks of this many bytes."""

MAX_BAD_ROWS = 1000
"""Reading stops at this many bad rows: a file this broken is fixed as a whole, not row by row."""
