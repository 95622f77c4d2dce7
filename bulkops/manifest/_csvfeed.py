"""Physical lines to :func:`csv.reader`, counted and bounded, and CSV errors as one line each."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from bulkops.errors import ManifestError
from bulkops.manifest._limits import MAX_CELL_CHARS, MAX_LINE_CHARS
from bulkops.manifest._lines import LineTooLong
from bulkops.manifest._text import DecodeProblem

__all__ = ["Feed"]

_MIB = MAX_LINE_CHARS // (1024 * 1024)


class Feed:
    """Feeds physical lines to :func:`csv.reader`, counting them and bounding each record.

    Iterating a feed gives its lines through one generator, which the C reader resumes cheaply;
    the lines of the record being read are kept in :attr:`record` for error messages.
    """

    def __init__(self, lines: Iterator[str], label: str) -> None:
        self._label = label
        self.done = 0  # lines of the records already read
        self.record: list[str] = []
        self.line = 0  # where the record that next_record returned starts
        self.size = 0  # and its length in characters, at least that of its longest cell
        self.separator = ","
        self.exhausted = False
        self._lines = self._feed(lines)

    def __iter__(self) -> Iterator[str]:
        return self._lines

    def _feed(self, lines: Iterator[str]) -> Iterator[str]:
        record = self.record
        append = record.append
        chars = 0
        try:
            for line in lines:
                chars = chars + len(line) if record else len(line)
                append(line)
                if chars > MAX_LINE_CHARS:
                    message = f"row is longer than {_MIB} MiB"
                    raise self._error(message, self.start(), quote=True)
                yield line
        except LineTooLong:
            message = f"line is longer than {_MIB} MiB"
            raise self._error(message, self.done + len(record) + 1, quote=True) from None
        except DecodeProblem as problem:
            number = self.done + len(record) + 1
            raise self._error(problem.message, number, problem.hint) from None
        self.exhausted = True

    def start(self) -> int:
        """The line where the current record starts."""
        return self.done + 1

    def reset(self) -> None:
        """The current record is done."""
        self.done += len(self.record)
        self.record.clear()

    def next_record(self, reader: Iterator[list[str]]) -> list[str] | None:
        """The next record's cells, ``None`` at the end; it starts on :attr:`line`.

        Raises :class:`ManifestError`. The record is done when this returns.
        """
        try:
            cells = next(reader)
        except StopIteration:
            return None
        except csv.Error as exc:
            raise self._unreadable(str(exc)) from None
        if self.exhausted and self._open_quote() is not None:
            raise self._error("the file ends inside a quoted value", self.start(), quote=True)
        record = self.record
        lines = len(record)
        self.line = self.done + 1
        self.size = len(record[0]) if lines == 1 else sum(map(len, record))
        self.done += lines
        record.clear()
        return cells

    def _unreadable(self, text: str) -> ManifestError:
        if "field limit" in text:
            limit = f"{MAX_CELL_CHARS // 1024} KiB"
            opened = self._open_quote() if len(self.record) > 1 else None
            if opened is not None:
                message = f"a quote opened on this line is not closed within {limit}"
                return self._error(message, opened, "is the closing quote missing?")
            return self._error(f"cell is longer than {limit}", self.start())
        return self._error(f"cannot read this row: {text}", self.start(), quote=True)

    def _error(
        self, message: str, line: int, hint: str = "", *, quote: bool = False
    ) -> ManifestError:
        opened = self._open_quote() if quote else None
        if opened is not None:
            message = "a quote opened on this line is never closed"
            line = opened
            hint = 'close the quote; write a quote inside a quoted value as ""'
        return ManifestError(message, path=self._label, line=line, hint=hint)

    def _open_quote(self) -> int | None:
        """The line of a quote still open at the end of the current record, if any."""
        start, state, opened = self.start(), 0, 0  # 0 field start, 1 bare, 2 quoted, 3 quote seen
        for number, line in enumerate(self.record, start):
            for char in line:
                if state == 2:
                    if char == '"':
                        state = 3
                    continue
                if state == 3:
                    if char == '"':
                        state = 2
                        continue
                    state = 1
                if char == self.separator or char in "\r\n":
                    state = 0
                elif state == 0 and char == '"':
                    state, opened = 2, number
                elif state != 0 or char != " ":
                    state = 1
        return opened if state == 2 else None
