"""A streaming scanner for JSON manifests: each item, parsed, one at a time.

The file is never held whole. A small lexer walks the top level (``{"defaults": …, "items": […]}``
or a bare ``[…]``) and cuts out one item at a time for orjson to parse:

- fast path: an object ends at one of the next few ``}``; orjson is tried on the text up to the
  first ``}`` that balances the braces. A proper prefix of a JSON object is never valid JSON, so
  when orjson accepts the text, it is the whole item;
- otherwise (a ``}`` inside a string, deep nesting, an item split across chunks, invalid JSON) the
  item is skipped by bracket matching, jumping over strings and escapes with one regular expression
  per run, and its text is parsed, so a syntax error is reported on the right line.

``defaults`` may come before or after ``items``: when ``items`` comes first and the file mentions
``"defaults"`` at all, one extra pass finds them before the first item is yielded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import orjson

from bulkops.errors import ManifestError
from bulkops.manifest._limits import MAX_LINE_CHARS
from bulkops.manifest._text import DecodeProblem, iter_text

__all__ = ["JsonScan"]

_WS = re.compile(r"[ \t\r\n]*+")
_STRING = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.DOTALL)
_RUN = re.compile(r'(?:[^"\[\]{}]++|"[^"\\]*+(?:\\.[^"\\]*+)*+")*+', re.DOTALL)
_SCALAR = re.compile(r'[^\s,:\[\]{}"]++')
_SHAPE = 'a JSON manifest is {"defaults": {...}, "items": [{...}, ...]} or a list of items'
_IGNORED_KEYS = frozenset({"$schema", "comment", "note"})
_MIB = MAX_LINE_CHARS // (1024 * 1024)
_FAST_TRIES = 4
_NEXT_OBJECT = re.compile(r"[ \t\r\n]*+,[ \t\r\n]*+(?=\{)")


Found = tuple[int, Any]
"""A value and the line where it starts."""


class JsonScan:
    """The items of one JSON file as ``(line, value)``; ``defaults`` is set before the first."""

    def __init__(self, path: Path, label: str) -> None:
        self.path = path
        self.label = label
        self.defaults: Found | None = None
        self.defaults_text = ""  # as it is in the file: a key given twice is refused

    @property
    def last_text(self) -> str:
        """The text of the item yielded last, as it is in the file."""
        return self._lex.last_text

    def __iter__(self) -> Iterator[Found]:
        self.defaults, self.defaults_text = None, ""
        lex = self._lex = _Lexer(iter_text(self.path, self.label), self.label)
        first = lex.peek()
        if first == "":
            raise ManifestError("empty manifest", path=self.label, hint="the file holds no JSON")
        if first == "[":
            yield from _array(lex)
        elif first == "{":
            yield from self._object(lex)
        else:
            lex.fail("the file does not start with { or [", lex.line_at(lex.pos), _SHAPE)
        if lex.peek() != "":
            lex.fail("text after the end of the JSON document", lex.line_at(lex.pos))

    def _object(self, lex: _Lexer) -> Iterator[Found]:
        lex.pos += 1
        keys: set[str] = set()
        prescanned = False
        closing = lex.closes("}")
        while not closing:
            lex.peek()
            line = lex.line_at(lex.pos)
            key = lex.key()
            if key in keys:
                lex.fail(f"the key {key!r} appears twice", line)
            keys.add(key)
            if key == "items":
                if lex.peek() != "[":
                    lex.fail('"items" must be a list', lex.line_at(lex.pos), _SHAPE)
                if "defaults" not in keys and _mentions_defaults(self.path, self.label):
                    self.defaults, self.defaults_text = _find_defaults(self.path, self.label)
                    prescanned = True
                yield from _array(lex)
            elif key == "defaults":
                found = lex.parsed()
                if "items" in keys and not prescanned:
                    lex.fail('"defaults" must come before "items"', line)
                if not prescanned:
                    self.defaults, self.defaults_text = found, lex.last_text
            elif key in _IGNORED_KEYS:
                lex.skip()
            else:
                lex.fail(f"unknown top-level key {key!r}", line, _SHAPE)
            closing = lex.separator("}") == "}"
        if "items" not in keys:
            lex.fail('no "items" list', 1, _SHAPE)


def _array(lex: _Lexer) -> Iterator[Found]:
    """Yield each element of the array that starts at ``lex.pos``."""
    opened = lex.line_at(lex.pos)
    lex.pos += 1
    if lex.closes("]"):
        return
    inside = f"the list opened on line {opened}"
    yield lex.item()
    while True:
        found = lex.next_object()
        if found is not None:
            yield found
            continue
        if lex.separator("]", inside) == "]":
            return
        yield lex.item()


def _mentions_defaults(path: Path, label: str) -> bool:
    """Whether the text ``"defaults"`` appears anywhere: a cheap test before a second pass."""
    needle = '"defaults"'
    tail = ""
    try:
        for chunk in iter_text(path, label):
            window = tail + chunk
            if needle in window:
                return True
            tail = window[-len(needle) :]
    except DecodeProblem:
        return False
    return False


def _find_defaults(path: Path, label: str) -> tuple[Found | None, str]:
    """The top-level ``defaults`` of a JSON object document, skipping everything else, and
    its text."""
    lex = _Lexer(iter_text(path, label), label)
    if lex.peek() != "{":
        return None, ""
    lex.pos += 1
    closing = lex.closes("}")
    while not closing:
        key = lex.key()
        if key == "defaults":
            return lex.parsed(), lex.last_text
        lex.skip()
        closing = lex.separator("}") == "}"
    return None, ""


class _Lexer:
    """A window on the decoded text: ``buf[pos:]`` is unread; earlier text is dropped on refill."""

    def __init__(self, chunks: Iterator[str], label: str) -> None:
        self._chunks = chunks
        self._label = label
        self.buf = ""
        self.pos = 0
        self._line = 1
        self._mark = 0
        self._eof = False
        self.last_text = ""  # the text of the value read last (an item's: its duplicate keys)

    def fail(self, message: str, line: int | None, hint: str = "") -> NoReturn:
        raise ManifestError(message, path=self._label, line=line, hint=hint)

    def truncated(self, inside: str) -> NoReturn:
        self.fail(f"the file ends inside {inside}", self.line_at(len(self.buf)), "is it truncated?")

    def line_at(self, index: int) -> int:
        """The line number of ``buf[index]``."""
        if index >= self._mark:
            self._line += self.buf.count("\n", self._mark, index)
            self._mark = index
            return self._line
        return self._line - self.buf.count("\n", index, self._mark)

    def _more(self, keep: int) -> int | None:
        """Append one chunk, dropping ``buf[:keep]``; the shift, or ``None`` at the end."""
        if self._eof:
            return None
        try:
            chunk = next(self._chunks, None)
        except DecodeProblem as problem:
            self.fail(problem.message, self.line_at(len(self.buf)), problem.hint)
        if chunk is None:
            self._eof = True
            return None
        if self._mark < keep:
            self.line_at(keep)
        self._mark -= keep
        self.buf = self.buf[keep:] + chunk
        self.pos -= keep
        return keep

    def peek(self) -> str:
        """The next character that is not white space, ``""`` at the end."""
        if self.pos < len(self.buf) and (char := self.buf[self.pos]) not in " \t\r\n":
            return char
        while True:
            match = _WS.match(self.buf, self.pos)
            self.pos = match.end() if match else self.pos
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if self._more(self.pos) is None:
                return ""

    def closes(self, closer: str) -> bool:
        """Consume ``closer`` if it comes next."""
        if self.peek() == closer:
            self.pos += 1
            return True
        return False

    def separator(self, closer: str, inside: str = "the top-level object") -> str:
        """Consume and return the ``,`` or ``closer`` after a value."""
        char = self.peek()
        if char == "":
            self.truncated(inside)
        if char not in ("," + closer):
            self.fail(f"expected ',' or {closer!r}, found {char!r}", self.line_at(self.pos))
        self.pos += 1
        return char

    def key(self) -> str:
        """Read ``"key":`` and return the key."""
        if self.peek() != '"':
            self.fail("expected a key in double quotes", self.line_at(self.pos))
        start = self.pos
        while (match := _STRING.match(self.buf, self.pos)) is None:
            if len(self.buf) - self.pos > MAX_LINE_CHARS:
                self.fail("a key longer than 1 MiB", self.line_at(self.pos))
            shift = self._more(self.pos)
            if shift is None:
                self.truncated("a key")
            start -= shift
        self.pos = match.end()
        key = orjson.loads(match.group())
        if self.peek() != ":":
            self.fail(f"expected ':' after the key {key!r}", self.line_at(start))
        self.pos += 1
        return str(key)

    def item(self) -> Found:
        """Read one element of the items list, parsed; the fast path first (see above)."""
        if self.peek() == "{" and (found := self._fast(self.pos)) is not None:
            return found
        return self.parsed()

    def next_object(self) -> Found | None:
        """``, {…}`` read by the fast path, or ``None`` (nothing consumed)."""
        match = _NEXT_OBJECT.match(self.buf, self.pos)
        return None if match is None else self._fast(match.end())

    def _fast(self, start: int) -> Found | None:
        """The object at ``buf[start]`` when it ends at one of the next few ``}``."""
        buf = self.buf
        end = buf.find("}", start)
        for _ in range(_FAST_TRIES):
            if end < 0:
                return None
            text = buf[start : end + 1]
            if text.count("{") > text.count("}"):
                end = buf.find("}", end + 1)
                continue
            try:
                value = orjson.loads(text)
            except orjson.JSONDecodeError:
                return None
            line = self.line_at(start)
            self.pos = end + 1
            self.last_text = text
            return line, value
        return None

    def parsed(self) -> Found:
        """Read one value, parsed: its first line and its value."""
        line, end = self._value(capture=True)
        start, self.pos = self.pos, end
        self.last_text = self.buf[start:end]
        try:
            return line, orjson.loads(self.last_text)
        except orjson.JSONDecodeError as exc:
            self.fail(f"invalid JSON: {exc.msg}", line + exc.lineno - 1)

    def skip(self) -> None:
        """Skip one value, holding at most one chunk of it in memory."""
        _, self.pos = self._value(capture=False)

    def _value(self, *, capture: bool) -> tuple[int, int]:
        """Find the end of the value at ``pos``: its first line and its end index.

        When ``capture``, the text from ``pos`` is kept and ``pos`` stays at the value's start;
        otherwise text is dropped as the scan goes, and ``pos`` is meaningless until reset.
        """
        char = self.peek()
        start = self.pos
        line = self.line_at(start)
        if char in ("{", "["):
            end = self._container(capture, line)
        elif char == '"':
            while (match := _STRING.match(self.buf, self.pos)) is None:
                self._grow(self.pos, line, "a string")
            end = match.end()
        elif char and (match := _SCALAR.match(self.buf, self.pos)) is not None:
            while match.end() == len(self.buf) and not self._eof:
                self._grow(self.pos, line, "a value")
                match = _SCALAR.match(self.buf, self.pos)
                assert match is not None
            end = match.end()
        elif char == "":
            self.truncated("a value")
        elif char in "]}":
            self.fail(f"expected a value, found {char!r}", line, "remove the comma before it")
        else:
            self.fail(f"expected a value, found {char!r}", line)
        return line, end

    def _grow(self, keep: int, line: int, what: str) -> None:
        """Read on, keeping ``buf[keep:]``, for a value of at most 1 MiB that starts on ``line``."""
        if len(self.buf) - keep > MAX_LINE_CHARS:
            self.fail(f"{what} larger than {_MIB} MiB", line)
        if self._more(keep) is None:
            self.truncated(what + f" that starts on line {line}")

    def _container(self, capture: bool, line: int) -> int:
        """Skip the object or array at ``pos`` by bracket matching; its end index."""
        depth = 0
        scan = self.pos
        kind = "object" if self.buf[scan] == "{" else "list"
        while True:
            buf = self.buf
            size = len(buf)
            while scan < size:
                char = buf[scan]
                if char in "{[":
                    depth += 1
                    scan += 1
                elif char in "}]":
                    depth -= 1
                    scan += 1
                    if depth == 0:
                        return scan
                else:
                    end = _RUN.match(buf, scan).end()  # type: ignore[union-attr]
                    if end == scan:
                        break
                    scan = end
            keep = self.pos if capture else scan
            if capture and size - self.pos > MAX_LINE_CHARS:
                self.fail(f"the item is larger than {_MIB} MiB", line)
            if not capture and size - scan > MAX_LINE_CHARS:
                self.fail(f"a string longer than {_MIB} MiB", self.line_at(scan))
            shift = self._more(keep)
            if shift is None:
                self.truncated(f"the {kind} that starts on line {line}")
            scan -= shift
