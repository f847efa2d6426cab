"""The disk spool: store batches that could not be written, kept in order until the store is back.

A spool is a directory of append-only segment files (`000000000001.spool`, ...). Each
record is one batch for one table:

    b"PWS1" | payload length (u32 BE) | CRC-32 of the payload (u32 BE) | payload

and the payload is the JSON array `[table, token, rows]` (rows hold only ints, strings,
None and lists: `collector.store`'s row builders make them so). A record is written with
one `write` and the file is fsync'ed before `append` returns, so after a crash only the last
record of the last segment can be torn; opening the spool cuts such a tail off.

The oldest record not yet written to the store is at `head` (segment, offset), kept in the
`head` file (replaced atomically). `pop()` advances it; a segment whose records are all
popped is deleted. A record whose checksum does not match (a disk error) is skipped and
counted in `corrupt`, with the rest of its segment, since its length cannot be trusted.

`max_bytes` bounds the spool's size on disk: `append` raises `SpoolFull` beyond it and the
caller applies backpressure. Not thread-safe: one thread (the pipeline's spool worker)
uses it.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["DEFAULT_SEGMENT_BYTES", "Spool", "SpoolError", "SpoolFull", "SpoolRecord", "spool_directory"]

MAGIC: Final = b"PWS1"
_HEADER = struct.Struct(">4sII")
DEFAULT_SEGMENT_BYTES: Final = 64 * 1024 * 1024
_SUFFIX: Final = ".spool"
_HEAD_FILE: Final = "head"


class SpoolError(Exception):
    """The spool directory cannot be used (permissions, disk full)."""


class SpoolFull(SpoolError):
    """Appending would exceed `max_bytes`."""


@dataclass(frozen=True, slots=True)
class SpoolRecord:
    table: str
    token: str
    rows: list[list[Any]]


class Spool:
    def __init__(self, directory: str, max_bytes: int, segment_bytes: int = DEFAULT_SEGMENT_BYTES) -> None:
        """Open (creating it if needed) and recover the spool in `directory`."""
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.corrupt = 0  # records skipped because their checksum or header was wrong
        self._peeked: tuple[int, int, int] | None = None  # (segment, offset, length) of the last peek
        try:
            os.makedirs(directory, exist_ok=True)
            self._segments = sorted(int(name[: -len(_SUFFIX)]) for name in os.listdir(directory)
                                    if name.endswith(_SUFFIX) and name[: -len(_SUFFIX)].isdigit())
            self._head = self._read_head()
            self._recover()
        except OSError as exc:
            raise SpoolError(f"spool {directory}: {exc.strerror or exc}") from exc

    # -- state --

    @property
    def bytes(self) -> int:
        """Bytes on disk not yet popped (what `pairwatch_spool_bytes` shows)."""
        total = 0
        for seq in self._segments:
            size = self._size(seq)
            total += size - self._head[1] if seq == self._head[0] else size
        return total

    def __bool__(self) -> bool:
        return self.peek() is not None

    # -- writing --

    def append(self, table: str, token: str, rows: Sequence[Sequence[Any]]) -> int:
        """Add one batch at the tail (durably); returns its size in bytes. SpoolFull, SpoolError."""
        payload = json.dumps([table, token, rows], ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        record = _HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload
        if self.bytes + len(record) > self.max_bytes:
            raise SpoolFull(f"spool {self.directory} is full ({self.max_bytes} bytes)")
        try:
            if not self._segments or self._size(self._segments[-1]) + len(record) > self.segment_bytes:
                self._segments.append(self._segments[-1] + 1 if self._segments else 1)
            fd = os.open(self._path(self._segments[-1]), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, record)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise SpoolError(f"spool {self.directory}: {exc.strerror or exc}") from exc
        return len(record)

    # -- reading --

    def peek(self) -> SpoolRecord | None:
        """The oldest batch not yet popped, or None."""
        while self._segments:
            seq, offset = self._head
            if seq != self._segments[0]:
                seq, offset = self._segments[0], 0
                self._head = (seq, 0)
            record = self._read_at(seq, offset)
            if record is not None:
                self._peeked = (seq, offset, record[1])
                return record[0]
            self._drop_segment(seq)  # consumed (or the rest of it is corrupt)
        return None

    def pop(self) -> None:
        """Forget the oldest batch (it is in the store now)."""
        if (self._peeked is None or self._peeked[:2] != self._head) and self.peek() is None:
            return
        assert self._peeked is not None
        seq, offset, length = self._peeked
        self._peeked = None
        self._head = (seq, offset + length)
        if self._head[1] >= self._size(seq):
            self._drop_segment(seq)
        else:
            self._write_head()

    # -- internals --

    def _path(self, seq: int) -> str:
        return os.path.join(self.directory, f"{seq:012d}{_SUFFIX}")

    def _size(self, seq: int) -> int:
        try:
            return os.stat(self._path(seq)).st_size
        except FileNotFoundError:
            return 0

    def _read_at(self, seq: int, offset: int) -> tuple[SpoolRecord, int] | None:
        """The record at `offset` of segment `seq` and its length; None at the end (or past
        a corrupt record, which is counted and ends the segment)."""
        try:
            with open(self._path(seq), "rb") as f:
                f.seek(offset)
                header = f.read(_HEADER.size)
                if len(header) < _HEADER.size:
                    return None
                magic, length, crc = _HEADER.unpack(header)
                payload = f.read(length) if magic == MAGIC else b""
        except FileNotFoundError:
            return None
        if magic != MAGIC or len(payload) != length or zlib.crc32(payload) != crc:
            self.corrupt += 1
            return None
        table, token, rows = json.loads(payload)
        return SpoolRecord(table, token, rows), _HEADER.size + length

    def _drop_segment(self, seq: int) -> None:
        self._segments.remove(seq)
        try:
            os.remove(self._path(seq))
        except FileNotFoundError:
            pass
        self._head = (self._segments[0], 0) if self._segments else (0, 0)
        self._write_head()

    def _read_head(self) -> tuple[int, int]:
        try:
            with open(os.path.join(self.directory, _HEAD_FILE), encoding="ascii") as f:
                seq_text, _, offset_text = f.read().strip().partition(" ")
            return int(seq_text), int(offset_text)
        except (FileNotFoundError, ValueError):
            return (self._segments[0], 0) if self._segments else (0, 0)

    def _write_head(self) -> None:
        path = os.path.join(self.directory, _HEAD_FILE)
        with open(path + ".tmp", "w", encoding="ascii") as f:
            f.write(f"{self._head[0]} {self._head[1]}\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(path + ".tmp", path)

    def _recover(self) -> None:
        """Drop segments before the head, and cut a torn last record off the last segment."""
        for seq in [s for s in self._segments if s < self._head[0]]:
            self._drop_segment(seq)
        if not self._segments:
            return
        last = self._segments[-1]
        offset = self._head[1] if last == self._head[0] else 0
        size = self._size(last)
        while offset < size:
            record = self._read_at(last, offset)
            if record is None:
                break
            offset += record[1]
        if offset < size:  # a torn or corrupt tail: what a crash mid-append leaves
            with open(self._path(last), "r+b") as f:
                f.truncate(offset)
                os.fsync(f.fileno())


def spool_directory(configured: str | None, store_url: str) -> str:
    """Where the spool lives: `configured` (`[serve] spool_directory`), else beside an embedded
    store (`embedded:/var/lib/pairwatch/data` -> `/var/lib/pairwatch/data.spool`), else
    `./pairwatch-spool`."""
    if configured is not None:
        return configured
    scheme, _, rest = store_url.strip().partition(":")
    if scheme.lower() == "embedded" and rest:
        return rest.rstrip("/") + ".spool"
    return "./pairwatch-spool"
