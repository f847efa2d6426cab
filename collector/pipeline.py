"""The single consumer: queue -> parse -> correlate -> tally -> store batches, and snapshots.

One task (`Pipeline.run`) owns the parser, the correlator and the tally; nothing else
touches them. Live serving uses the receive clock: every line is fed to the correlator
with its receive time as `now`, and `Correlator.tick(now)` runs every second.

After each chunk of lines taken from the queue the pipeline publishes, by reference swap,
an immutable correlator snapshot (`pairs`) and the open incidents (`incidents`), so the
HTTP handler and the metrics collector never walk live state.

Store writes: rows go to one batch per table (`messages`, `events`, `states`,
`incidents`), flushed when a batch reaches `batch_rows` or is `flush_interval` seconds
old, through `StoreThread.call(store.insert, ...)` with a fresh dedup token (uuid4) per
batch. At most one batch is in flight per table. A failed batch is kept and retried with
the same token (so a retry is stored once); while it waits, new rows accumulate up to
`max_buffered_rows` per table, after which the pipeline waits for the store before it takes
more lines from the queue (backpressure reaches the queue, and from there TCP senders).
No disk spool yet.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from collector.config import DEFAULT_BATCH_INTERVAL, DEFAULT_BATCH_ROWS
from collector.correlator import Correlator, IncidentClosed, IncidentOpened, PairView, StateChanged
from collector.listeners import Intake, Received
from collector.metrics import FleetTally, ServiceMetrics, program_label
from collector.store import (
    EVENT_COLUMNS,
    EVENTS,
    INCIDENT_COLUMNS,
    INCIDENTS,
    MESSAGE_COLUMNS,
    MESSAGES,
    STATE_COLUMNS,
    STATES,
    MessageIds,
    Store,
    StoreError,
    StoreThread,
    event_row,
    incident_row,
    message_row,
    state_row,
)
from parsers import LineParser, ParseOptions
from parsers.events import DhcpdOther, KeaOther

__all__ = ["Pipeline"]

log = logging.getLogger("pairwatch.pipeline")

DEFAULT_MAX_BUFFERED_ROWS: Final = 200_000
CHUNK: Final = 1_000
"""Lines taken from the queue before the snapshot is published and the clock checked."""
TICK_INTERVAL: Final = 1.0
REFERENCE_REFRESH: Final = 3600.0
"""Seconds after which the parser's year-inference reference is moved to the receive clock
(`FUTURE_SLACK` is days, so an hour-old reference is exact enough; rebuilding the parser
forgets its repeat/continuation context, which is why it is not done per line)."""

_COLUMNS = {MESSAGES: MESSAGE_COLUMNS, EVENTS: EVENT_COLUMNS, STATES: STATE_COLUMNS, INCIDENTS: INCIDENT_COLUMNS}


@dataclass(slots=True)
class _Batch:
    rows: list[Sequence[Any]] = field(default_factory=list)
    started: float = 0.0  # clock when the first row came
    retry: tuple[list[Sequence[Any]], str] | None = None  # a failed batch and its token
    inflight: asyncio.Task[None] | None = None


class Pipeline:
    def __init__(
        self,
        intake: Intake,
        correlator: Correlator,
        tally: FleetTally,
        metrics: ServiceMetrics,
        store_thread: StoreThread,
        store: Store,
        *,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        flush_interval: float = DEFAULT_BATCH_INTERVAL,
        max_buffered_rows: int = DEFAULT_MAX_BUFFERED_ROWS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._intake = intake
        self._queue = intake.queue
        self._correlator = correlator
        self._tally = tally
        self._metrics = metrics
        self._thread = store_thread
        self._store = store
        self._batch_rows = batch_rows
        self._flush_interval = flush_interval
        self._max_buffered = max(max_buffered_rows, batch_rows)
        self._clock = clock
        self._ids = MessageIds()
        self._batches = {table: _Batch() for table in _COLUMNS}
        self._parser_built = 0.0
        self._parser = self._new_parser(clock())
        self._stopping = False
        self.store_ok = True
        self.processed = 0
        self.failed_lines = 0
        self.pairs: tuple[PairView, ...] = correlator.snapshot()
        self.incidents: tuple[dict[str, Any], ...] = ()

    # -- public --

    def pairs_snapshot(self) -> tuple[PairView, ...]:
        """The snapshot published last (for `PairCollector` and the API; any thread)."""
        return self.pairs

    def stop(self) -> None:
        """Finish: process what is queued, flush every batch, then `run` returns."""
        self._stopping = True

    async def run(self) -> None:
        queue = self._queue
        next_tick = self._clock() + TICK_INTERVAL
        while True:
            now = self._clock()
            timeout = max(0.0, min(next_tick, self._next_flush(now)) - now)
            if self._stopping and queue.empty() and not self._intake.has_backlog():
                break
            try:
                first = await asyncio.wait_for(queue.get(), timeout=min(timeout, 0.2) if self._stopping else timeout)
            except TimeoutError:
                first = None
            chunk: list[Received] = [] if first is None else [first]
            while len(chunk) < CHUNK:
                try:
                    chunk.append(queue.get_nowait())
                except asyncio.QueueEmpty:
                    break
            if chunk:
                self._process(chunk)
            self._metrics.queue_depth.set(queue.qsize())
            now = self._clock()
            if now >= next_tick:
                self._apply_tick(now)
                next_tick = now + TICK_INTERVAL
            self._publish()
            await self._flush_due(now)
            self._intake.resume_when_drained()
        self._apply_tick(self._clock())
        self._publish()
        await self.flush_all()

    async def flush_all(self) -> None:
        """Send every buffered row and wait for the store (one retry of a failed batch)."""
        for attempt in range(2):
            for table, batch in self._batches.items():
                if batch.inflight is not None:
                    await asyncio.shield(batch.inflight)
                if batch.retry is not None or batch.rows:
                    self._start_insert(table, batch)
            for batch in self._batches.values():
                if batch.inflight is not None:
                    await asyncio.shield(batch.inflight)
            if not any(b.retry or b.rows for b in self._batches.values()):
                return
        left = sum(len(b.rows) + (len(b.retry[0]) if b.retry else 0) for b in self._batches.values())
        log.error("store: %d rows could not be written at shutdown", left)

    # -- processing --

    def _new_parser(self, now: float) -> LineParser:
        self._parser_built = now
        return LineParser(ParseOptions(reference=datetime.fromtimestamp(now, UTC), tz=UTC))

    def _process(self, chunk: list[Received]) -> None:
        if chunk[0].received_at - self._parser_built > REFERENCE_REFRESH:
            self._parser = self._new_parser(chunk[0].received_at)
        parse = self._parser.parse
        feed = self._correlator.feed
        observe = self._tally.observe
        ids = self._ids
        messages = self._batches[MESSAGES]
        events = self._batches[EVENTS]
        unrecognized = self._metrics.parse_unrecognized
        if not messages.rows:
            messages.started = self._clock()
        if not events.rows:
            events.started = self._clock()
        mrows, erows = messages.rows, events.rows
        for received_at, text, transport, sender in chunk:
            try:
                event = parse(text)
                changes = feed(event, received_at, text)
                observe(event, changes, received_at)
                ident = ids()
                mrows.append(message_row(event, id=ident, received_at=received_at, raw=text, transport=transport,
                                         sender=sender))
                erows.append(event_row(event, id=ident, received_at=received_at))
                if isinstance(event.payload, DhcpdOther | KeaOther):
                    unrecognized.labels(program_label(event.record.program)).inc()
                if changes:
                    self._changes(changes, received_at)
            except Exception:  # a bug for one line must not stop the service (nor cost its neighbours)
                self.failed_lines += 1
                if self.failed_lines <= 10:
                    log.exception("pipeline: line from %s %s failed: %r", transport, sender, text[:200])
        self.processed += len(chunk)

    def _apply_tick(self, now: float) -> None:
        changes = self._correlator.tick(now)
        if changes:
            self._changes(changes, now)

    def _changes(self, changes: Sequence[object], now: float) -> None:
        incidents_changed = False
        for change in changes:
            if isinstance(change, StateChanged):
                self._add(STATES, state_row(change))
            elif isinstance(change, IncidentOpened | IncidentClosed):
                self._add(INCIDENTS, incident_row(change.incident, now))
                incidents_changed = True
        if incidents_changed:
            self.incidents = tuple(i.as_dict() for i in self._correlator.open_incidents())

    def _add(self, table: str, row: Sequence[Any]) -> None:
        batch = self._batches[table]
        if not batch.rows:
            batch.started = self._clock()
        batch.rows.append(row)

    def _publish(self) -> None:
        self.pairs = self._correlator.snapshot()

    # -- store batches --

    def _next_flush(self, now: float) -> float:
        starts = [b.started for b in self._batches.values() if b.rows or b.retry]
        return min(starts) + self._flush_interval if starts else now + self._flush_interval

    async def _flush_due(self, now: float) -> None:
        for table, batch in self._batches.items():
            due = batch.retry is not None or len(batch.rows) >= self._batch_rows or (
                batch.rows and now - batch.started >= self._flush_interval
            )
            if due and batch.inflight is None:
                self._start_insert(table, batch)
            # backpressure: too much waiting for the store -> stop taking lines
            while batch.inflight is not None and len(batch.rows) >= self._max_buffered:
                await asyncio.shield(batch.inflight)
                if batch.retry is not None and batch.inflight is None:
                    if len(batch.rows) >= self._max_buffered:
                        await asyncio.sleep(1.0)  # store still failing: retry at most once a second
                    self._start_insert(table, batch)

    def _start_insert(self, table: str, batch: _Batch) -> None:
        if batch.retry is not None:
            rows, token = batch.retry
            batch.retry = None
        else:
            rows = batch.rows[: self._batch_rows]
            del batch.rows[: self._batch_rows]
            token = uuid.uuid4().hex
            batch.started = self._clock()
        if not rows:
            return
        batch.inflight = asyncio.create_task(self._insert(table, batch, rows, token))

    async def _insert(self, table: str, batch: _Batch, rows: list[Sequence[Any]], token: str) -> None:
        started = time.perf_counter()
        try:
            await self._thread.call(self._store.insert, table, rows, _COLUMNS[table], token)
        except StoreError as exc:
            self._metrics.store_insert_failures.inc()
            if self.store_ok:
                log.error("store: insert into %s failed, will retry: %s", table, exc)
            self.store_ok = False
            batch.retry = (rows, token)
        else:
            self._metrics.store_insert_duration.observe(time.perf_counter() - started)
            self._metrics.store_rows.labels(table).inc(len(rows))
            if not self.store_ok:
                log.info("store: inserts succeed again")
            self.store_ok = True
        finally:
            batch.inflight = None
