"""Bytes to text: encoding detection and binary junk, one chunk at a time.

Encodings, in the order they are tried:

- a byte order mark: UTF-8 (Excel's "CSV UTF-8"), UTF-16 LE or BE (Excel's "Unicode Text");
- UTF-16 without a mark, when the first two characters are ASCII with a zero byte beside each;
- otherwise UTF-8, switching to Windows-1252 (Excel's plain "CSV" on Windows) at the first byte that
  is not UTF-8, provided everything before it was ASCII. A file that has valid non-ASCII UTF-8
  *and* later bytes that are not UTF-8 mixes encodings and is refused rather than guessed at.

Windows-1252 is a guess: an older Mac export (Mac Roman) decodes too, into the wrong letters.
When bytes only Mac Roman makes sense of turn up (``Zo\x91\xd5s``: "Zoë’s" in Mac Roman,
"Zo‘Õs" in Windows-1252), one warning per file shows both readings.

A NUL byte, a byte that no candidate encoding accepts, or the signature of a workbook, PDF or
archive means the file is not a text manifest. Text decoded before the bad byte is still yielded,
so the reader can say on which line the problem sits; then :class:`DecodeProblem` is raised.
"""

from __future__ import annotations

import codecs
import logging
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from bulkops.errors import ManifestError
from bulkops.manifest._limits import CHUNK_BYTES

__all__ = ["DecodeProblem", "iter_text"]

_NOT_TEXT = "not a text manifest"
_SAVE_AS_CSV = "open it in Excel or Numbers and export it as CSV UTF-8"

_SIGNATURES = (
    (b"PK\x03\x04", "an Excel workbook (.xlsx) or another zip archive"),
    (b"\xd0\xcf\x11\xe0", "an old Excel workbook (.xls)"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"bplist", "a binary property list"),
)

Decode = Callable[[bytes, str, bool], tuple[str, int]]

log = logging.getLogger("bulkops")

# Bytes that read as nonsense in Windows-1252 and as text in Mac Roman: a capital Ð-Õ after a
# lowercase letter or a control-range byte (Mac Roman's dashes and quotes: "Dan’s", "Zoë’s"),
# and the rare Windows-1252 symbols ‡ ˆ Ž Ÿ after a lowercase letter (Mac Roman's á à é ü).
_MAC_ROMAN = re.compile(rb"[a-z\x80-\x9f][\xd0-\xd5]|[a-z][\x87\x88\x8e\x9f]")
_warned: set[object] = set()  # a manifest is read more than once: one warning each
_WORD_ENDS = (b" ", b",", b";", b"\t", b"\r", b"\n")


class DecodeProblem(Exception):
    """The bytes at ``offset`` cannot be read as text; the reader adds the line number."""

    def __init__(self, message: str, *, offset: int, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.hint = hint


def iter_text(path: Path, label: str, *, chunk_bytes: int = CHUNK_BYTES) -> Iterator[str]:
    """Decoded text of ``path`` in chunks; :class:`DecodeProblem` after the last good text."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise ManifestError(f"cannot read the manifest: {exc.strerror}", path=label) from exc
    with handle:
        head = handle.read(max(chunk_bytes, 4))
        for magic, what in _SIGNATURES:
            if head.startswith(magic):
                message = f"{_NOT_TEXT}: this is {what}"
                raise DecodeProblem(message, offset=0, hint=_SAVE_AS_CSV)
        st = os.fstat(handle.fileno())
        reader = _Reader(head, label, key=(label, st.st_ino, st.st_mtime_ns, st.st_size))
        chunk = head[reader.bom :] if reader.bom else head
        del head
        offset = reader.bom
        while True:
            final = not chunk
            text, problem = reader.step(chunk, offset, final=final)
            if text:
                yield text
            if problem is not None:
                raise problem
            if final:
                return
            offset += len(chunk)
            del text, chunk  # hold one chunk at a time
            chunk = handle.read(chunk_bytes)


class _Reader:
    """The decoding state of one file: its encoding, undecoded bytes, and the fallback switch."""

    def __init__(self, head: bytes, label: str, *, key: object) -> None:
        self.label = label
        self.key = key  # this file as it is now: the Mac Roman warning is said once for it
        self.bom = 0
        self.wide = False
        self.strict_utf8 = False
        self.cp1252 = False
        self.non_ascii_seen = False
        self.pending = b""
        self.decode: Decode = codecs.utf_8_decode
        if head.startswith(codecs.BOM_UTF8):
            self.bom, self.strict_utf8 = 3, True
        elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            little = head.startswith(codecs.BOM_UTF16_LE)
            self._wide(little)
            self.bom = 2
        elif len(head) >= 4 and _ascii_with_zeros(head[0:4:2], head[1:4:2]):
            self._wide(little=True)
        elif len(head) >= 4 and _ascii_with_zeros(head[1:4:2], head[0:4:2]):
            self._wide(little=False)

    def _wide(self, little: bool) -> None:
        self.wide = True
        self.decode = codecs.utf_16_le_decode if little else codecs.utf_16_be_decode

    def step(self, chunk: bytes, offset: int, *, final: bool) -> tuple[str, DecodeProblem | None]:
        """Decode ``chunk`` (at file ``offset``); the good text and the problem, if any."""
        if self.wide:
            return self._step_wide(chunk, offset, final)
        nul = chunk.find(b"\x00")
        data = chunk if nul < 0 else chunk[:nul]
        text, problem = self._step_8bit(data, offset, final or nul >= 0)
        if problem is None and nul >= 0:
            where = offset + nul
            message = f"{_NOT_TEXT}: a NUL byte at byte offset {where}"
            problem = DecodeProblem(message, offset=where, hint=_SAVE_AS_CSV)
        return text, problem

    def _step_wide(
        self, chunk: bytes, offset: int, final: bool
    ) -> tuple[str, DecodeProblem | None]:
        whole = self.pending + chunk
        start = offset - len(self.pending)
        problem = None
        try:
            text, used = self.decode(whole, "strict", final)
            self.pending = whole[used:]
        except UnicodeDecodeError as exc:
            text, _ = self.decode(whole[: exc.start], "strict", True)
            where = start + exc.start
            message = f"{_NOT_TEXT}: invalid UTF-16 at byte offset {where}"
            problem = DecodeProblem(message, offset=where)
        nul = text.find("\x00")
        if nul >= 0:
            where = start + 2 * nul
            message = f"{_NOT_TEXT}: a NUL character at byte offset {where}"
            return text[:nul], DecodeProblem(message, offset=where, hint=_SAVE_AS_CSV)
        return text, problem

    def _step_8bit(self, data: bytes, offset: int, final: bool) -> tuple[str, DecodeProblem | None]:
        if self.cp1252:
            self._mac_roman(data)
            return _cp1252(data, offset)
        if not self.pending and data.isascii():
            return data.decode("ascii"), None
        whole = self.pending + data
        start = offset - len(self.pending)
        try:
            text, used = codecs.utf_8_decode(whole, "strict", final)
        except UnicodeDecodeError as exc:
            good = whole[: exc.start].decode("utf-8")
            where = start + exc.start
            byte = f"0x{whole[exc.start]:02X} at byte offset {where}"
            if self.strict_utf8:
                message = f"byte {byte} is not UTF-8, although the file starts with a UTF-8 mark"
                return good, DecodeProblem(message, offset=where, hint=_SAVE_AS_CSV)
            if self.non_ascii_seen or not good.isascii():
                message = f"byte {byte} is not UTF-8, but earlier text is: the file mixes encodings"
                return good, DecodeProblem(message, offset=where, hint=_SAVE_AS_CSV)
            self.cp1252 = True
            self.pending = b""
            self._mac_roman(whole)
            return _cp1252(whole, start)
        self.pending = whole[used:]
        if not self.non_ascii_seen and not text.isascii():
            self.non_ascii_seen = True
        return text, None

    def _mac_roman(self, data: bytes) -> None:
        """Warn, once per file, when these Windows-1252 bytes look like Mac Roman."""
        if self.key in _warned or not (found := _MAC_ROMAN.search(data)):
            return
        _warned.add(self.key)
        start = max(data.rfind(c, 0, found.start()) for c in _WORD_ENDS) + 1
        end = min(
            (i for i in (data.find(c, found.end()) for c in _WORD_ENDS) if i >= 0),
            default=len(data),
        )
        word = data[start:end]
        log.warning(
            "%s is not UTF-8 and was read as Windows-1252, but %r may be %r in Mac Roman (an "
            "older Mac export): check the values in the plan, or export the file as CSV UTF-8",
            self.label,
            word.decode("cp1252", "replace"),
            word.decode("mac_roman"),
        )


def _cp1252(data: bytes, offset: int) -> tuple[str, DecodeProblem | None]:
    try:
        return data.decode("cp1252"), None
    except UnicodeDecodeError as exc:
        where = offset + exc.start
        byte = f"0x{data[exc.start]:02X} at byte offset {where}"
        message = f"{_NOT_TEXT}: byte {byte} is neither UTF-8 nor Windows-1252"
        problem = DecodeProblem(message, offset=where, hint=_SAVE_AS_CSV)
        return data[: exc.start].decode("cp1252"), problem


def _ascii_with_zeros(chars: bytes, zeros: bytes) -> bool:
    """``True`` when ``chars`` are printable ASCII (or tab/CR/LF) and ``zeros`` are all 0."""
    return zeros == b"\x00\x00" and all(32 <= c < 127 or c in (9, 10, 13) for c in chars)
