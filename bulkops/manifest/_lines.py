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

_LINE = re.compile(r"[^\r\n]*+(?:\r\n|\r|\n)|[^\r\n]++\Z")


class LineTooLong(Exception):
    """The next line is longer than the limit; the reader knows its number."""


def iter_lines(chunks: Iterable[str], *, max_chars: int = MAX_LINE_CHARS) -> Iterator[str]:
    """The lines of the text made of ``chunks``, each with its line ending."""
    carry = ""
    for chunk in chunks:
        text = carry + chunk if carry else chunk
        lines = text.splitlines(keepends=True)
        if len(lines) != _count_lines(text):  # an odd break split a line
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


def _count_lines(text: str) -> int:
    """How many lines ``text`` holds when only CR, LF and CR LF break lines.

    :meth:`str.splitlines` also breaks at form feed, U+2028 and the like. Counting is much faster
    than searching for those: when the counts agree, splitlines found no odd break, except perhaps
    as the very last character, where it ends the last line just as here.
    """
    breaks = text.count("\n") + text.count("\r") - text.count("\r\n")
    return breaks + 1 if text and text[-1] not in "\r\n" else breaks
