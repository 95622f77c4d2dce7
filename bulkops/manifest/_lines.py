"""Text chunks to physical lines, with bounded memory.

A line ends at ``\\r\\n``, ``\\n`` or a lone ``\\r`` (old "CSV (Macintosh)" exports); the ending is
kept, as :mod:`csv` wants. Other characters that :meth:`str.splitlines` treats as breaks (form feed,
U+2028…) stay inside the line. A line longer than the limit raises :class:`LineTooLong` before it is
held whole in memory.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from bulkops.manifest._limits import MAX_LINE_CHARS

__all__ = ["LineTooLong", "iter_lines"]

_ODD_BREAKS = re.compile("[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_LINE = re.compile(r"[^\r\n]*+(?:\r\n|\r|\n)|[^\r\n]++\Z")


class LineTooLong(Exception):
    """The next line is longer than the limit; the reader knows its number."""


def iter_lines(chunks: Iterable[str], *, max_chars: int = MAX_LINE_CHARS) -> Iterator[str]:
    """The lines of the text made of ``chunks``, each with its line ending."""
    carry = ""
    for chunk in chunks:
        text = carry + chunk if carry else chunk
        if _ODD_BREAKS.search(text) is None:
            lines = text.splitlines(keepends=True)
        else:
            lines = _LINE.findall(text)
        carry = lines.pop() if lines and lines[-1][-1] != "\n" else ""
        if len(text) > max_chars:
            for line in lines:
                if len(line) > max_chars:
                    raise LineTooLong
                yield line
        else:
            yield from lines
        if len(carry) > max_chars:
            raise LineTooLong
        del text, lines  # hold one chunk at a time
    if carry:
        yield carry
