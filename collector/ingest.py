"""Backfill: old log files through the same parse, correlate and store steps as `serve`.

`pairwatch ingest FILE...` is `analyze` that keeps what it finds: every line becomes a
`messages` and an `events` row (transport `file`, sender the file name), every state change
a `states` row and every incident an `incidents` row, in the store `serve` uses.

Time: a backfilled line is stored at its own time (`received_at` = its timestamp, or the
previous timestamped line's of its file, or the file's mtime before any), so the timeline
shows it where it happened. Files are merged by that time as they are read (each file is
taken in its own order, as a syslog file is written), so memory stays bounded whatever the
input size; the correlator runs on the logs' clock exactly as in `analyze`.

Retention: rows older than the store's TTL would be deleted by ClickHouse as soon as they
are written, so they are skipped and counted instead (`Ingested.expired`). Incidents still
open at the end of the input are stored open: a service started on the store takes them
back and keeps them until the pair's live lines resolve them.

Twice the same input: every batch carries a deduplication token made from its content, so
ingesting the same file again (with the same batch size, within ClickHouse's window of the
last 1000 inserts per table) stores nothing twice.
"""

from __future__ import annotations

import hashlib
import heapq
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Final

from collector.config import DEFAULT_BATCH_ROWS
from collector.correlator import Correlator
from collector.domain import INCIDENT_CHANGES, Incident, StateChanged, host_key
from collector.replay import Observed, run
from collector.rows import MessageIds, host_row, incident_row, line_rows, state_row
from collector.store import (
    COLUMNS,
    EVENTS,
    HOSTS,
    INCIDENTS,
    MESSAGES,
    STATES,
    Store,
    StoreThread,
)
from parsers import Event, LineParser, ParseOptions

__all__ = ["Ingested", "Source", "ingest", "progress_line"]

DAY: Final = 86400.0


@dataclass(slots=True)
class Source:
    """One input: its name (the `sender` column), its lines, how to parse them, and the
    instant that stands for lines before the first timestamp (the file's mtime)."""

    name: str
    lines: Iterable[str]
    options: ParseOptions
    fallback: float


@dataclass(slots=True)
class Ingested:
    """What one ingest did."""

    lines: int = 0
    stored: int = 0  # messages written (each with its event)
    expired: int = 0  # lines older than the messages TTL, skipped
    states: int = 0
    incidents: int = 0
    still_open: int = 0


@dataclass(slots=True)
class _Line:
    ts: float
    line: str
    event: Event
    sender: str
    placed: bool  # has a host and a timestamp of its own or of an earlier line: the correlator takes it


def _lines(source: Source, on_line: Callable[[], None]) -> Iterator[_Line]:
    parser = LineParser(source.options)
    last: float | None = None
    for line in source.lines:
        on_line()
        event = parser.parse(line)
        ts = event.record.ts
        if ts is not None:
            last = ts.timestamp()
        yield _Line(source.fallback if last is None else last, line, event, source.name,
                    last is not None and event.record.host is not None)


class _Writer:
    """One batch per table, at most one insert in flight (on the store's thread), content tokens."""

    def __init__(self, thread: StoreThread, store: Store, batch_rows: int) -> None:
        self._thread = thread
        self._store = store
        self._batch_rows = batch_rows
        self._rows: dict[str, list[Sequence[Any]]] = {table: [] for table in COLUMNS}
        self._keys: dict[str, list[str]] = {table: [] for table in COLUMNS}
        self._inflight: Future[int] | None = None

    def add(self, table: str, row: Sequence[Any], key: str) -> None:
        """`key` is what makes the row this row for the dedup token (its line, not its random id)."""
        self._rows[table].append(row)
        self._keys[table].append(key)
        if len(self._rows[table]) >= self._batch_rows:
            self._send(table)

    def finish(self) -> None:
        for table in COLUMNS:
            if self._rows[table]:
                self._send(table)
        self._wait()

    def _send(self, table: str) -> None:
        rows, keys = self._rows[table], self._keys[table]
        self._rows[table], self._keys[table] = [], []
        digest = hashlib.blake2b(table.encode(), digest_size=16)
        for key in keys:
            digest.update(key.encode("utf-8", "surrogatepass"))
            digest.update(b"\0")
        self._wait()
        self._inflight = self._thread.submit(self._store.insert, table, rows, COLUMNS[table], digest.hexdigest())

    def _wait(self) -> None:
        if self._inflight is not None:
            future, self._inflight = self._inflight, None
            future.result()  # a StoreError stops the ingest: the caller reports it


def ingest(
    sources: Iterable[Source],
    correlator: Correlator,
    thread: StoreThread,
    store: Store,
    *,
    messages_ttl_days: int,
    states_ttl_days: int,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    strip_domain: bool = False,
    now: float | None = None,
    on_line: Callable[[], None] = lambda: None,
) -> Ingested:
    """Parse, correlate and store every line of `sources`; `store` belongs to `thread`.

    Raises `StoreError` when the store fails (batches already written stay written)."""
    now = time.time() if now is None else now
    messages_cutoff = now - messages_ttl_days * DAY
    states_cutoff = now - states_ttl_days * DAY
    writer = _Writer(thread, store, batch_rows)
    ids = MessageIds()
    result = Ingested()
    incidents: dict[int, Incident] = {}
    hosts: set[str] = set()
    end = None
    merged = heapq.merge(*(_lines(source, on_line) for source in sources), key=lambda item: item.ts)
    for order, item in enumerate(merged):
        result.lines += 1
        if item.ts >= messages_cutoff:
            mrow, erow = line_rows(item.event, id=ids(), received_at=item.ts, raw=item.line, transport="file",
                                   sender=item.sender)
            writer.add(MESSAGES, mrow, item.line)
            writer.add(EVENTS, erow, item.line)
            result.stored += 1
            host = item.event.record.host
            if host is not None and host not in hosts:
                hosts.add(host)
                writer.add(HOSTS, host_row(host_key(host, strip_domain), host, item.ts), host)
        else:
            result.expired += 1
        if not item.placed:
            continue
        end = item.ts
        for change in run((Observed(item.ts, order, item.line, item.event),), correlator):
            if isinstance(change, StateChanged):
                if change.ts >= states_cutoff:
                    row = state_row(change)
                    writer.add(STATES, row, repr(row))
                    result.states += 1
            elif isinstance(change, INCIDENT_CHANGES):
                incidents[id(change.incident)] = change.incident
    for incident in incidents.values():
        if incident.start < states_cutoff:
            continue
        # updated_at: deterministic (so a second ingest dedups) and older than any live update
        row = incident_row(incident, incident.end if incident.end is not None else (end or incident.start))
        writer.add(INCIDENTS, row, repr(row))
        result.incidents += 1
        result.still_open += incident.end is None
    writer.finish()
    return result


def progress_line(done: int, total: int | None, lines: int) -> str:
    """`ingest: 42% (1,234,567 lines)`, or without the percentage when the size is unknown."""
    if total:
        return f"ingest: {min(100, done * 100 // total)}% ({lines:,} lines)"
    return f"ingest: {lines:,} lines"
