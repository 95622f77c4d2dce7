"""Big files stream: memory stays flat however many rows, and every row is still read right.

Memory is measured two ways: tracemalloc (every Python allocation, exact but slow, so on 30,000
rows, each checked for its line and values) and the peak RSS of a child process that reads
200,000 items (coarse, but at full size).
"""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from collections import deque
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from bulkops.manifest import Item, open_manifest

BIG = 200_000
TRACED = 30_000
TRACED_CSV = 15_000


def _item(i: int) -> str:
    if i % 2:
        return (
            f'{{"serial_number": "C02{i:09d}", "action": "lock", "params": {{"message": "m{i}"}}}}'
        )
    return f'{{"device_id": "00000000-0000-4000-8000-{i:012d}", "tags": ["a", "t{i % 7}"]}}'


def _write_json(path: Path, rows: int) -> Path:
    """Items one per line, except every 1000th, which spans three lines."""
    with path.open("w", encoding="utf-8") as out:
        out.write('{"defaults": {"action": "update"},\n "items": [\n')
        for i in range(rows):
            text = _item(i)
            if i % 1000 == 0:
                text = text.replace(", ", ",\n", 2)
            out.write(("" if i == 0 else ",\n") + text)
        out.write("\n]}\n")
    return path


def _line_of(i: int) -> int:
    """The line where item ``i`` starts in a file from :func:`_write_json`."""
    return 3 + i + 2 * ((i + 999) // 1000)


def _check_json(path: Path) -> int:
    count = 0
    for i, it in enumerate(open_manifest(path)):
        assert it.line == _line_of(i), (i, it.line)
        if i % 2:
            assert (it.serial_number, it.action) == (f"C02{i:09d}", "lock")
            assert it.params == {"message": f"m{i}"}
        else:
            assert it.device_id == f"00000000-0000-4000-8000-{i:012d}" and it.action == "update"
            assert it.params == {"tags": ("a", f"t{i % 7}")}
        count += 1
    return count


def _traced_peak(work: Callable[[], object]) -> tuple[object, int]:
    """``work()``'s result and the peak of memory traced while it ran."""
    tracemalloc.start()
    try:
        result = work()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


@pytest.fixture(scope="module")
def big_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_json(tmp_path_factory.mktemp("big") / "big.json", BIG)


@pytest.fixture(scope="module")
def traced_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_json(tmp_path_factory.mktemp("traced") / "m.json", TRACED)


def _count(path: Path) -> int:
    return sum(1 for _ in open_manifest(path))


def test_json_items_keep_their_lines_and_values_across_chunks(traced_json: Path) -> None:
    assert traced_json.stat().st_size > 8 * 2**20 // 4  # several 256 KiB chunks
    assert _check_json(traced_json) == TRACED


def test_json_peak_memory_is_far_below_loading_the_list(traced_json: Path) -> None:
    count, stream_peak = _traced_peak(lambda: _count(traced_json))
    assert count == TRACED
    whole, whole_peak = _traced_peak(lambda: len(orjson.loads(traced_json.read_bytes())["items"]))
    assert whole == TRACED
    print(f"streamed peak {stream_peak:,} B, whole list {whole_peak:,} B")
    assert stream_peak < 3 * 2**20, stream_peak
    assert stream_peak * 5 < whole_peak, (stream_peak, whole_peak)


def test_csv_peak_memory_stays_flat(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("serial_number,action,message,asset_tag,note\r\n")
        note = "n" * 200
        for i in range(TRACED_CSV):
            if i % 2:
                out.write(f'C02{i:09d},lock,"Call IT, ext {i}",,{note}\r\n')
            else:
                out.write(f"C02{i:09d},update,,{i:06d},{note}\r\n")
    size = path.stat().st_size
    last, peak = _traced_peak(lambda: deque(open_manifest(path), maxlen=1)[0])
    assert isinstance(last, Item)
    assert (last.line, last.params) == (
        TRACED_CSV + 1,
        {"message": f"Call IT, ext {TRACED_CSV - 1}"},
    )
    print(f"CSV of {size:,} B streamed with a peak of {peak:,} B")
    assert peak < 3 * 2**20 < size, (peak, size)


_CHILD = """
import resource, sys
from bulkops.manifest import open_manifest
path = sys.argv[2]
count = sum(1 for _ in open_manifest(path)) if sys.argv[1] == "stream" else 0
print(count, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _child(mode: str, path: Path) -> tuple[int, int]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, mode, str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    scale = 1 if sys.platform == "darwin" else 1024
    return int(out[0]), int(out[1]) * scale


@pytest.mark.skipif(sys.platform == "win32", reason="resource is POSIX-only")
def test_peak_rss_of_streaming_200k_items_stays_near_an_idle_process(big_json: Path) -> None:
    _, idle = _child("idle", big_json)
    count, streamed = _child("stream", big_json)
    assert count == BIG
    size = big_json.stat().st_size
    assert size > 12 * 2**20
    # Loading the list would take several times the file's size; streaming takes a few MiB.
    assert streamed - idle < min(8 * 2**20, size // 2), (idle, streamed, size)
