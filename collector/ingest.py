"""Backfill: old log files through the same parse, correlate and store steps as `serve`.

`pairwatch ingest FILE...` is `analyze` that keeps what it finds: every line becomes a
`messages` and an `events` row (transport `file`, sender the file name), every state change
a `states` row and every incident an `incidents` row, in the store `serve` uses.

Time: a backfilled line is stored at its own time (`received_at` = its timestamp, or the
previous timestamped line's of its file, or the file's mtime before any), so the timeline
shows it where it happened. The lines go through the line stage exactly as in `analyze`
(`collector.replay`): files merged by event time as they are read, the correlator on the
logs' clock, late lines re-deciding the past.

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
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Final

from collector.config import DEFAULT_BATCH_ROWS
from collector.correlator import Correlator
from collector.replay import Observed, Source, observed, run
from collector.rows import incident_row, state_row
from collector.stage import LineStage
from collector.store import COLUMNS, EVENTS, HOSTS, INCIDENTS, MESSAGES, STATES, Store
from collector.store_thread import StoreThread

__all__ = ["Ingested", "Source", "ingest", "progress_line"]

DAY: Final = 86400.0


@dataclass(slots=True)
class Ingested:
    """What one ingest did."""

    lines: int = 0
    stored: int = 0  # messages written (each with its event)
    expired: int = 0  # lines older than the messages TTL, skipped
    states: int = 0
    incidents: int = 0
    still_open: int = 0


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


def _counted(lines: Iterable[str], on_line: Callable[[], None]) -> Iterator[str]:
    for line in lines:
        on_line()
        yield line


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
    stage = LineStage(correlator, strip_domain=strip_domain)
    result = Ingested()

    def keep(item: Observed, mrow: tuple[Any, ...], erow: tuple[Any, ...] | None) -> None:
        if stage.hosts:
            for row in stage.hosts:
                writer.add(HOSTS, row, row[1])
            stage.hosts.clear()
        if item.ts >= messages_cutoff:
            writer.add(MESSAGES, mrow, item.line)
            if erow is not None:
                writer.add(EVENTS, erow, item.line)
            result.stored += 1
        else:
            result.expired += 1

    counted = (Source(s.name, _counted(s.lines, on_line), s.options, s.fallback) for s in sources)
    found = run(observed(counted), stage, keep)
    result.lines = found.lines
    for change in found.states:
        if change.ts >= states_cutoff:
            row = state_row(change)
            writer.add(STATES, row, repr(row))
            result.states += 1
    for incident in found.incidents:
        if incident.start < states_cutoff:
            continue
        # updated_at: deterministic (so a second ingest dedups) and older than any live update
        row = incident_row(incident, incident.end if incident.end is not None else (found.end or incident.start))
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
