"""The public surface: open_manifest, Manifest and Item, as the engine and the store use them."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import orjson
import pytest

import bulkops.manifest
from bulkops.errors import ManifestError
from bulkops.manifest import Item, Manifest, open_manifest

from .util import SERIAL, SERIAL2, UUID1, item, read, write

CSV = f"serial_number,action\n{SERIAL},blankpush\n"
JSONL = json.dumps({"serial_number": SERIAL, "action": "blankpush"}) + "\n"
JSON_DOC = json.dumps({"items": [{"serial_number": SERIAL, "action": "blankpush"}]})


def test_public_names() -> None:
    assert bulkops.manifest.__all__ == ["Item", "Manifest", "open_manifest"]
    assert [f.name for f in dataclasses.fields(Item)] == [
        "line",
        "device_id",
        "serial_number",
        "action",
        "params",
    ]
    assert Item.__slots__ == ("line", "device_id", "serial_number", "action", "params")


@pytest.mark.parametrize(
    ("name", "text", "fmt", "count"),
    [
        ("m.csv", CSV, "csv", 1),
        ("m.CSV", CSV, "csv", 1),
        ("m.txt", CSV, "csv", 1),
        ("m.tsv", CSV.replace(",", "\t"), "csv", 1),
        ("m.json", JSON_DOC, "json", 1),
        ("m.jsonl", JSONL, "jsonl", 1),
        ("m.ndjson", JSONL, "jsonl", 1),
        ("m.dat", JSONL + JSONL, "jsonl", 2),
        ("m.dat", JSON_DOC, "json", 1),
        ("m.dat", "[\n" + JSONL + "]", "json", 1),
        ("m.dat", '{\n  "items": [\n' + JSONL + "]}", "json", 1),
        ("m", "  " + CSV, "csv", 1),
    ],
)
def test_format_from_extension_or_content(
    tmp_path: Path, name: str, text: str, fmt: str, count: int
) -> None:
    manifest = open_manifest(write(tmp_path, name, text))
    assert manifest.format == fmt
    assert [it.action for it in manifest] == ["blankpush"] * count


@pytest.mark.parametrize(
    ("fmt", "expected"), [("jsonl", "jsonl"), ("NDJSON", "jsonl"), ("tsv", "csv"), ("json", "json")]
)
def test_format_override(tmp_path: Path, fmt: str, expected: str) -> None:
    assert open_manifest(write(tmp_path, "m.csv", JSONL), format=fmt).format == expected


def test_jsonl_content_in_a_txt_file_with_override(tmp_path: Path) -> None:
    path = write(tmp_path, "m.txt", JSONL)
    assert read(path, format="jsonl") == [item(1, "blankpush")]


def test_open_errors_name_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "missing.csv"
    with pytest.raises(ManifestError) as caught:
        open_manifest(missing)
    assert caught.value.one_line() == f"{missing}: no such file"
    with pytest.raises(ManifestError, match="is a directory"):
        open_manifest(tmp_path)
    with pytest.raises(ManifestError, match="unknown manifest format 'xlsx'"):
        open_manifest(write(tmp_path, "m.csv", CSV), format="xlsx")


def test_default_action_is_checked_at_open(tmp_path: Path) -> None:
    path = write(tmp_path, "m.csv", CSV)
    with pytest.raises(ManifestError) as caught:
        open_manifest(path, default_action="blankpsh")
    assert caught.value.column == "--action"
    assert "unknown action 'blankpsh'" in caught.value.message
    assert "did you mean 'blankpush'?" in caught.value.hint
    assert read(path, default_action=" Blank-Push ") == [item(2, "blankpush")]


def test_a_file_removed_after_open(tmp_path: Path) -> None:
    path = write(tmp_path, "m.csv", CSV)
    manifest = open_manifest(path)
    path.unlink()
    with pytest.raises(ManifestError, match="cannot read the manifest"):
        list(manifest)
    with pytest.raises(ManifestError, match="cannot read the manifest"):
        manifest.sha256()


def test_sha256_is_of_the_bytes(tmp_path: Path) -> None:
    data = b"\xef\xbb\xbf" + CSV.encode() * 50_000
    path = write(tmp_path, "m.csv", data)
    manifest = open_manifest(path)
    assert manifest.sha256() == hashlib.sha256(data).hexdigest()
    path.write_bytes(data + b"\n")
    assert manifest.sha256() == hashlib.sha256(data + b"\n").hexdigest()


def test_iterating_again_reads_the_file_again(tmp_path: Path) -> None:
    path = write(tmp_path, "m.csv", CSV)
    manifest = open_manifest(path)
    assert isinstance(manifest, Manifest)
    assert list(manifest) == list(manifest) == [item(2, "blankpush")]
    path.write_text(CSV + f"{SERIAL2},updateinventory\n", encoding="utf-8")
    assert [it.action for it in manifest] == ["blankpush", "updateinventory"]
    first, second = iter(manifest), iter(manifest)
    assert next(first) == next(second)
    assert repr(manifest) == f"Manifest({str(path)!r}, format='csv')"


def test_item_is_frozen_hashable_and_compared_by_value() -> None:
    one = Item(2, None, SERIAL, "update", {"tags": ("a", "b")})
    same = Item(2, None, SERIAL, "update", {"tags": ("a", "b")})
    other = Item(2, None, SERIAL, "update", {"tags": ("b", "a")})
    with pytest.raises(dataclasses.FrozenInstanceError):
        one.line = 3  # type: ignore[misc]
    assert one == same and hash(one) == hash(same)
    assert one != other
    assert len({one, same, other}) == 2


def test_device_ref() -> None:
    assert Item(1, UUID1, SERIAL, "lock", {}).device_ref == f"id:{UUID1}"
    assert Item(1, None, SERIAL, "lock", {}).device_ref == f"sn:{SERIAL}"


def test_params_digest_is_stable_and_tells_params_apart() -> None:
    digest = Item(1, None, SERIAL, "lock", {"message": "a", "phone_number": "1"}).params_digest
    expected = hashlib.sha256(orjson.dumps({"message": "a", "phone_number": "1"})).hexdigest()[:16]
    assert digest == expected and len(digest) == 16
    reordered = Item(9, UUID1, None, "erase", {"phone_number": "1", "message": "a"})
    assert reordered.params_digest == digest
    assert (
        Item(1, None, SERIAL, "lock", {"message": "b", "phone_number": "1"}).params_digest != digest
    )
    cleared = Item(1, None, SERIAL, "update", {"asset_tag": None}).params_digest
    assert cleared != Item(1, None, SERIAL, "update", {}).params_digest
    as_tuple = Item(1, None, SERIAL, "update", {"tags": ("a",)}).params_digest
    assert as_tuple == Item(1, None, SERIAL, "update", {"tags": ["a"]}).params_digest


def test_the_same_row_in_every_format_gives_the_same_item(tmp_path: Path) -> None:
    csv_text = f"serial_number,action,tags,asset_tag\n{SERIAL},update,Finance;London,null\n"
    obj = {
        "serial_number": SERIAL,
        "action": "update",
        "tags": ["Finance", "London"],
        "asset_tag": None,
    }
    found = [
        read(write(tmp_path, "m.csv", csv_text))[0],
        read(write(tmp_path, "m.jsonl", json.dumps(obj)))[0],
        read(write(tmp_path, "m.json", json.dumps({"items": [obj]})))[0],
    ]
    expected = item(found[0].line, "update", tags=("Finance", "London"), asset_tag=None)
    assert found[0] == expected
    assert {(it.device_ref, it.action, it.params_digest) for it in found} == {
        (expected.device_ref, "update", expected.params_digest)
    }
