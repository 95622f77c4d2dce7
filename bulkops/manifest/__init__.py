"""Job manifests: CSV, JSON and JSON Lines files of devices and the action for each.

``open_manifest(path)`` returns a :class:`Manifest`; iterating it streams validated
:class:`Item`\\ s and, at the end, raises :class:`~bulkops.errors.ManifestError` (file, line,
column, and a hint on how to fix it) for a bad row, or :class:`~bulkops.errors.BadRows` naming
each of several. A bad row does not stop the reading; a file that cannot be read on (a quote
never closed, broken JSON) does, and so do 1,000 bad rows. Nothing is loaded whole: a
million-row file is read a chunk at a time, in every format.

**CSV** — a header row, then one row per device::

    serial_number,action,message
    C02XK1JHJG5J,lock,Please call IT on +1 555 0100

- an id column: ``device_id`` (the Kandji UUID) or ``serial_number``; a file may have both, a row
  must fill at least one;
- ``action``, unless the caller gives a default action; a blank action cell takes the default;
- parameter columns named as in the catalogue (``bulkops actions``): ``message``, ``pin``,
  ``device_name``, ``asset_tag``, ``blueprint``, ``blueprint_id``, ``user``, ``tags``…;
- informational columns, read and ignored: ``note``, ``comment``, ``name``, ``platform``, and any
  header starting with ``#``. Any other column is an error. A parameter column that the row's
  action does not take must be blank in that row.

What Excel does to a CSV is accepted: a UTF-8 BOM, UTF-16 ("Unicode Text"), Windows-1252,
``;`` or tab separators (sniffed from the header; an Excel ``sep=;`` first line is honoured), CRLF
or CR line endings, headers in any case with spaces, ``_`` or ``-`` (``Serial Number``), common
aliases (``serial``, ``id``, ``asset tag``), blank lines and ``,,,,`` rows. Every cell is text and
is trimmed, so leading zeros stay. Serial numbers that Excel turned into numbers (``1.23457E+11``,
``123456789012.0``) are refused with the way to fix the sheet.

**JSON** — ``{"defaults": {...}, "items": [{...}, ...]}`` or a bare list of items; **JSON Lines**
— one item per line. See :mod:`bulkops.manifest._json`.

**Values** — a blank cell, an absent key or an empty JSON string leaves a field alone; ``null``
or ``CLEAR!`` (any case), or JSON ``null``, clears it, only where the parameter may be cleared.
Tags in one cell are separated by ``;``. A PIN is exactly 6 digits; in JSON a 6-digit integer is
accepted too. Text that a spreadsheet would run as a formula (``=…``, ``@…``, ``+cmd|…``) is
refused; phone numbers such as ``+1 555 0100`` are fine, and a leading ``'`` that marks such text
as not a formula (as in bulkops' own ``failed.csv``) is dropped. See
:mod:`bulkops.manifest._values` for every rule.

**Limits** — a cell holds at most 64 KiB; a line, a CSV row or a JSON item at most 1 MiB.

Checks across rows (duplicates, conflicting actions for one device) are made by the checkpoint
store when it ingests the items, with :attr:`Item.device_ref` and :attr:`Item.params_digest`.
"""

from bulkops.manifest._item import Item
from bulkops.manifest._manifest import Manifest, open_manifest

__all__ = ["Item", "Manifest", "open_manifest"]
