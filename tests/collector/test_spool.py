"""The disk spool: order, durability across reopen, the size bound, torn and corrupt records."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from collector.spool import Spool, SpoolError, SpoolFull, SpoolRecord


def rows(n: int, tag: str = "") -> list[list[object]]:
    return [[1_700_000_000_000_000 + i, f"dhcp1 {tag}{i} é", None, ["a", "b"]] for i in range(n)]


def drain(spool: Spool) -> list[SpoolRecord]:
    out = []
    while (record := spool.peek()) is not None:
        out.append(record)
        spool.pop()
    return out


def test_batches_come_back_in_order_across_segments_and_reopens(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path), max_bytes=10**7, segment_bytes=600)
    for i in range(10):
        spool.append("messages" if i % 2 else "events", f"token{i}", rows(3, f"b{i}-"))
    assert len(list(tmp_path.glob("*.spool"))) > 2  # small segments: several files
    assert spool.peek() == SpoolRecord("events", "token0", rows(3, "b0-"))
    spool.pop()
    spool.pop()
    assert spool.peek() is not None and spool.peek().token == "token2"  # type: ignore[union-attr]
    again = Spool(str(tmp_path), max_bytes=10**7, segment_bytes=600)  # a restart keeps the head
    got = drain(again)
    assert [r.token for r in got] == [f"token{i}" for i in range(2, 10)]
    assert got[-1].rows == rows(3, "b9-")
    assert again.bytes == 0 and not again and list(tmp_path.glob("*.spool")) == []


def test_bytes_counts_what_is_not_popped(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path), max_bytes=10**6)
    sizes = [spool.append("states", f"t{i}", rows(2)) for i in range(3)]
    assert spool.bytes == sum(sizes)
    spool.peek()
    spool.pop()
    assert spool.bytes == sum(sizes[1:])


def test_full_spool_refuses_and_makes_room_when_popped(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path), max_bytes=2_000)
    while True:
        try:
            spool.append("messages", "t", rows(5))
        except SpoolFull:
            break
    assert spool.bytes <= 2_000
    spool.peek()
    spool.pop()
    spool.append("messages", "after", rows(5))
    assert drain(spool)[-1].token == "after"


def test_a_torn_tail_is_cut_at_reopen(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path), max_bytes=10**6)
    spool.append("messages", "whole", rows(2))
    (segment,) = tmp_path.glob("*.spool")
    with open(segment, "ab") as f:  # what a crash in the middle of a write leaves
        f.write(b"PWS1\x00\x00\x10\x00\x00\x00\x00\x00{\"half")
    again = Spool(str(tmp_path), max_bytes=10**6)
    again.append("messages", "next", rows(1))
    assert [r.token for r in drain(again)] == ["whole", "next"]


def test_a_corrupt_record_is_skipped_counted_with_the_rest_of_its_segment(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path), max_bytes=10**6, segment_bytes=300)
    for i in range(4):
        spool.append("messages", f"t{i}", rows(2))
    first = sorted(tmp_path.glob("*.spool"))[0]
    data = bytearray(first.read_bytes())
    data[20] ^= 0xFF  # a flipped bit inside the first record's payload
    first.write_bytes(bytes(data))
    again = Spool(str(tmp_path), max_bytes=10**6, segment_bytes=300)
    tokens = [r.token for r in drain(again)]
    assert tokens and tokens[-1] == "t3" and "t0" not in tokens
    assert again.corrupt >= 1


def test_an_unusable_directory_is_a_spool_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SpoolError, match="spool"):
        Spool(str(blocker / "spool"), max_bytes=10**6)


def test_records_are_durable_files(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path), max_bytes=10**6)
    spool.append("incidents", "t", [["id", "split_brain", "pair", ["a", "b"], 1, None, ["evidence"], 2]])
    (segment,) = tmp_path.glob("*.spool")
    assert segment.read_bytes().startswith(b"PWS1")
    assert oct(os.stat(segment).st_mode & 0o777) == "0o600"
