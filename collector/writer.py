"""The store writer: rows -> batches -> the store, and, while the store is down, memory then the spool.

The pipeline adds rows per table (`add_rows`, once per chunk of lines) and calls `flush_due`
after each chunk. Rows are kept by column: each call's rows become one segment, a tuple of
column values, and a batch joins its segments' columns. The row tuples thus live no longer
than a chunk: kept until their batch went, they were most of what Python's young-generation
garbage collections had to examine, and the service stood still while they did.
A table's batch is sent when it has `batch_rows` rows or its oldest row is `flush_interval`
old, on the store's thread, with a fresh deduplication token; at most one batch per table
is in flight.

When an insert fails (or the store could not be opened at start), the writer is
*degraded*: every batch, the failed one first, goes to an in-memory backlog; past
`memory_rows` rows the oldest batches move to the disk spool (`collector.spool`). A
recovery task reopens the store if needed, then writes the spool's batches and then the
backlog's, oldest first, each with the token it was first given, so a batch that did reach
the store before its insert reported a failure is not stored twice. When both are empty the
writer is healthy again. The order is that of the batches, except that a batch whose
insert was still in flight when another table's insert failed joins the backlog when its
own insert fails (rows are ordered by their key in the store anyway).

Backpressure: when a table's pending rows pass `memory_rows` behind an insert still in
flight (a slow store), or the memory bound is reached while degraded and the spool is full
(or unusable), `flush_due` waits for the store or the recovery to make room; the pipeline then takes no more lines from
the queue, so TCP senders are paused and UDP datagrams are dropped and counted. Memory
never grows without bound.

At shutdown (`close`) pending rows are flushed; what cannot be written goes to the spool,
where the next start finds it and writes it first. A batch the store can never take (rows
that do not fit the table, e.g. spooled before a schema change) is set aside in the spool's
`rejected/` with an error, instead of blocking every batch behind it.

Spool I/O runs on its own thread (never the event loop, never the store's thread, which may
be stuck on a store that does not answer).

An embedded store's messages batch is encoded (its columns joined and converted to Arrow) on
the event loop's thread when it is taken, and while the store's thread inserts a batch, a full
batch waiting behind it is taken and encoded: the engine's part of an insert, which lets go of
the GIL, then runs beside the next batch's encoding instead of before it. Not on a thread of
its own: the encoding holds the GIL, and a thread that wants it takes it at every system call
of the event loop's thread (each read, each poll) and keeps it for up to a switch interval. In
line with the loop, the loop's thread blocked a third as often in a burst, and bursts were
stored as fast or faster, with a shorter queue under load (bench/README.md). The encoding
calls `between` after each column: the service reads its UDP sockets there. The store's
thread writes the Arrow stream the engine reads, which pyarrow does without the GIL.

That full batch behind an insert means the store is behind: an embedded engine's background
merges of `messages` are then held (`Store.hold_merges`) until the store has kept up for
`MERGE_LINGER` seconds, for at most `MERGE_HOLD_INSERTS` inserts, so that a burst's inserts do
not share the machine's CPU with them; the merges catch up afterwards.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Final

from collector.metrics import ServiceMetrics
from collector.spool import Spool, SpoolError
from collector.store import MESSAGES, Store, arrow_messages
from collector.store_errors import StoreError
from collector.store_thread import StoreThread

__all__ = ["StoreWriter"]

log = logging.getLogger("pairwatch.writer")

RETRY_MIN: Final = 0.5
RETRY_MAX: Final = 10.0
LOG_INTERVAL: Final = 60.0
REJECTED: Final = "rejected"
MIN_INSERT_TIME: Final = 0.05
"""At shutdown, an insert is not even tried with less time than this left."""
MERGE_HOLD_INSERTS: Final = 60
"""Inserts at most for which an embedded engine's merges are held while the store is behind
(then they run, and are held again only once it has kept up for `MERGE_LINGER`): parts for
the merges to catch up on afterwards, about 600,000 rows at the default batch size."""
MERGE_LINGER: Final = 2.0
"""Seconds the store must have kept up before held merges are let go: within a burst it
catches up for moments, and each hold cancels the merges then running."""


Segment = tuple[Sequence[Any], ...]
"""Rows kept by column: one sequence of values per column, all of one length."""


@dataclass(slots=True)
class _Table:
    columns: Sequence[str]
    segments: deque[Segment] = field(default_factory=deque)
    pending: int = 0  # rows in `segments`
    started: float = 0.0
    inflight: asyncio.Task[None] | None = None
    sending: _Batch | None = None  # the batch `inflight` writes
    next: _Batch | None = None  # the batch `inflight` writes after it, being encoded meanwhile
    following: Encoded | None = None  # `next`'s encoding (None: the store's thread encodes it)


@dataclass(frozen=True, slots=True)
class _Batch:
    table: str
    token: str
    data: Sequence[Any]  # segments; rows when `by_column` is False
    size: int
    by_column: bool = True  # False: read back from the spool (the store checks the rows' shape)

    def rows(self) -> list[Sequence[Any]]:
        """The rows, as the spool keeps them."""
        if not self.by_column:
            return list(self.data)
        return [row for segment in self.data for row in zip(*segment, strict=True)]


Encoded = tuple[list[list[Any]], Any | None]
"""A messages batch made ready for an embedded store: its columns joined, and its Arrow table."""


def _joined(batch: _Batch, between: Callable[[], object] | None = None) -> list[list[Any]]:
    """The batch's columns, each joined from its segments (`between` called after each)."""
    joined = []
    for values in zip(*batch.data, strict=True):
        joined.append(list(chain.from_iterable(values)))
        if between is not None:
            between()
    return joined


def _encode(batch: _Batch, columns: Sequence[str], between: Callable[[], object] | None) -> Encoded:
    """On the event loop's thread, when the batch is taken (see the module docstring)."""
    joined = _joined(batch, between)
    return joined, arrow_messages(joined, columns, between)


def _hold_failed(what: str, done: Future[None]) -> None:
    """A `Store.hold_merges` call's failure, for the debug log (the merges stay as they were)."""
    if not done.cancelled() and done.exception() is not None:
        log.debug("store: merges not %s: %s", what, done.exception())


def _insert(store: Store, batch: _Batch, columns: Sequence[str], encoded: Encoded | None) -> int:
    """One batch into the store, on the store's thread: joining the segments' columns there
    (unless `encoded` did) keeps that work off the event loop."""
    if not batch.by_column:
        return store.insert(batch.table, batch.data, columns, batch.token)
    joined, arrow = encoded or (_joined(batch), None)
    return store.insert(batch.table, joined, columns, batch.token, column_oriented=True, arrow=arrow)


class StoreWriter:
    def __init__(
        self,
        tables: Mapping[str, Sequence[str]],
        thread: StoreThread,
        store: Store | None,
        open_store: Callable[[], Store],
        spool: Spool,
        metrics: ServiceMetrics,
        *,
        batch_rows: int,
        flush_interval: float,
        memory_rows: int,
        clock: Callable[[], float] = time.time,
        between: Callable[[], object] | None = None,
    ) -> None:
        """`tables`: each table's insert columns. `store` None: the store could not be
        opened yet; `open_store` (run on `thread`) opens and migrates it. A non-empty
        `spool` starts the writer degraded. `between`: called between the columns of an
        encoding, which holds up the event loop for a few milliseconds a column (the service
        reads its UDP sockets there, as the pipeline does between lines)."""
        self._tables = {name: _Table(columns) for name, columns in tables.items()}
        self._thread = thread
        self._store = store
        self._open_store = open_store
        self._spool = spool
        self._metrics = metrics
        self._batch_rows = batch_rows
        self._flush_interval = flush_interval
        self._memory_rows = max(memory_rows, batch_rows)
        self._clock = clock
        self._between = between
        self._backlog: deque[_Batch] = deque()
        self._backlog_rows = 0
        self._spool_io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pairwatch-spool")
        self._recovery: asyncio.Task[None] | None = None
        self._room = asyncio.Event()  # set whenever the recovery made progress
        self._closing = False
        self._rejected: Spool | None = None
        self._logged_at = -LOG_INTERVAL
        self._spooled_at_start = bool(spool)  # (no other thread uses the spool yet)
        self._merges_held = False
        self._held_inserts = 0  # inserts since the merges were held
        self._hold_spent = False  # held for MERGE_HOLD_INSERTS: not again until the store kept up
        self._kept_up_since: float | None = None  # when an insert last ended with nothing due
        self.ok = store is not None and not self._spooled_at_start
        self._metrics.spool_bytes.set(spool.bytes)

    @property
    def store(self) -> Store | None:
        return self._store

    @property
    def degraded(self) -> bool:
        return self._recovery is not None

    # -- rows in --

    def add(self, table: str, row: Sequence[Any]) -> None:
        self.add_rows(table, [row])

    def add_rows(self, table: str, rows: Sequence[Sequence[Any]]) -> None:
        """Rows in the table's column order, kept as one segment (the pipeline adds a chunk's)."""
        if rows:
            self.add_columns(table, tuple(zip(*rows, strict=True)))

    def add_columns(self, table: str, columns: Segment) -> None:
        """Rows already kept by column, in the table's column order, as one segment (none
        without columns)."""
        if not columns or not columns[0]:
            return
        t = self._tables[table]
        if not t.pending:
            t.started = self._clock()
        t.segments.append(columns)
        t.pending += len(columns[0])

    def next_flush(self, now: float) -> float:
        """When `flush_due` next has something to send. A table whose insert is in flight is
        left out: that insert sends what fell due meanwhile when it ends (`_insert_live`), and
        counting it made the pipeline wake at once, again and again, until the insert ended."""
        starts = [t.started for t in self._tables.values() if t.pending and t.inflight is None]
        return min(starts) + self._flush_interval if starts else now + self._flush_interval

    def start(self) -> None:
        """Begin recovering when the store is missing or the spool holds batches (call on the loop)."""
        if self._store is None or self._spooled_at_start:
            self._degrade()

    # -- batches out --

    async def flush_due(self, now: float) -> None:
        if self._kept_up_since is not None and now - self._kept_up_since >= MERGE_LINGER:
            self._kept_up_since = None
            self._hold_spent = False
            self._let_merges_go()
        for name, t in self._tables.items():
            if self._due(t, now):
                if self.degraded:
                    self._to_backlog(self._take(name, t))
                elif t.inflight is None:
                    t.inflight = asyncio.create_task(self._insert_live(name, t, self._take(name, t)))
                else:
                    self._take_next(name, t)
        while self.degraded and self._backlog_rows > self._memory_rows and not self._closing:
            await self._spill_or_wait()
        for t in self._tables.values():  # a slow store: rows pile up behind an insert still in flight
            while t.inflight is not None and t.pending > self._memory_rows and not self._closing:
                await asyncio.wait({t.inflight}, timeout=1.0)

    def release(self) -> None:
        """Shutdown begins: stop waiting for room (what cannot be kept is counted at `close`)."""
        self._closing = True
        self._room.set()

    async def close(self, deadline: float) -> int:
        """Flush everything; what the store has not taken by `deadline` (monotonic) goes to
        the spool. Returns the rows that could be kept nowhere (0 unless the spool failed)."""
        def left() -> float:
            return max(0.0, deadline - time.monotonic())

        for t in self._tables.values():
            if t.inflight is not None:
                done, _ = await asyncio.wait({t.inflight}, timeout=left())
                if not done and t.sending is not None:  # a store that does not answer: keep the batch
                    self._degrade()  # (if the insert lands after all, the replay's token dedups it)
                    self._to_backlog(t.sending)
                    if t.next is not None:  # (and the one taken to follow it)
                        self._to_backlog(t.next)
                        t.next = t.following = None
        for name, t in self._tables.items():
            while t.pending:
                batch = self._take(name, t)
                if self.degraded or left() < MIN_INSERT_TIME:  # no time to try: keep it for the next start
                    self._degrade()
                    self._to_backlog(batch)
                elif not await self._try_insert(batch, timeout=left()):
                    self._degrade()
                    self._to_backlog(batch)
        if self._recovery is not None:
            try:  # the store may be back: give the recovery the time that is left
                await asyncio.wait_for(asyncio.shield(self._recovery), left())
            except TimeoutError:
                pass
        lost = 0
        if self._recovery is not None:
            self._recovery.cancel()
            await asyncio.gather(self._recovery, return_exceptions=True)
            self._recovery = None
            while self._backlog:
                batch = self._from_backlog()
                try:
                    await self._spool_call(self._spool.append, batch.table, batch.token, batch.rows())
                except SpoolError as exc:
                    lost += batch.size
                    log.error("spool: cannot keep %d %s rows at shutdown: %s", batch.size, batch.table, exc)
            spooled = await self._spool_bytes()
            self._metrics.spool_bytes.set(spooled)
            if spooled:
                log.warning("store did not take every batch by the shutdown time: %d bytes wait in the spool %s "
                            "for the next start", spooled, self._spool.directory)
        self._spool_io.shutdown(wait=True)
        return lost

    # -- internals --

    def _due(self, t: _Table, now: float) -> bool:
        """Whether `t` has a batch to send: a full one, or rows older than the flush interval."""
        return t.pending >= self._batch_rows or (t.pending > 0 and now - t.started >= self._flush_interval)

    def _take(self, name: str, t: _Table) -> _Batch:
        """The oldest `batch_rows` pending rows (all, when fewer), as one batch."""
        taken: list[Segment] = []
        size = 0
        while t.segments and size < self._batch_rows:
            segment = t.segments.popleft()
            n = len(segment[0])
            if size + n > self._batch_rows:  # split: the rest stays first in line
                k = self._batch_rows - size
                t.segments.appendleft(tuple(values[k:] for values in segment))
                segment, n = tuple(values[:k] for values in segment), k
            taken.append(segment)
            size += n
        t.pending -= size
        if t.pending:
            t.started = self._clock()
        return _Batch(name, uuid.uuid4().hex, taken, size)

    async def _insert_live(self, name: str, t: _Table, batch: _Batch) -> None:
        """Send `batch`; then, while the table has a batch due (rows that piled up behind this
        insert), send it at once: left to the pipeline's next `flush_due`, it waited up to a
        flush interval whenever the pipeline had caught up, the store idle meanwhile. A full
        batch is taken as soon as there is one behind an insert begun, and encoded meanwhile
        (`t.next`, `_take_next`)."""
        encoded = self._encode(batch)
        try:
            while True:
                t.sending = batch
                insert = asyncio.ensure_future(self._try_insert(batch, encoded=encoded))
                await asyncio.sleep(0)  # (the insert begins: the store's thread has it before a next batch is encoded)
                self._take_next(name, t)
                if not await insert:
                    self._degrade()
                    self._to_backlog(batch)
                    if t.next is not None:
                        self._to_backlog(t.next)
                        t.next = t.following = None
                    return
                t.sending = None
                if self._merges_held:
                    self._held_inserts += 1
                    if self._held_inserts >= MERGE_HOLD_INSERTS:
                        self._hold_spent = True
                        self._let_merges_go()
                if t.next is not None:
                    batch, encoded, t.next, t.following = t.next, t.following, None, None
                    continue
                now = self._clock()
                due = self._due(t, now)
                if not due and name == MESSAGES and self._kept_up_since is None:
                    self._kept_up_since = now
                if not due or self.degraded or self._closing:
                    return
                batch = self._take(name, t)
                encoded = self._encode(batch)
        finally:
            if t.next is not None:  # (cancelled: it was never sent, so it goes back where it was)
                t.segments.extendleft(reversed(t.next.data))
                t.pending += t.next.size
                t.next = t.following = None
            t.inflight = t.sending = None
            if self.degraded or self._closing:
                self._let_merges_go()

    def _take_next(self, name: str, t: _Table) -> None:
        """While an insert of an encoded table runs, take a full batch waiting behind it and
        encode it: as soon as the rows are there, not when that insert ends, so that the
        encoding (which needs the GIL) runs beside the engine's part of the insert (which does
        not), and the next insert can begin as this one ends. Such a batch means the store is
        behind: the engine's merges are held (see the module docstring)."""
        if (t.sending is None or t.next is not None or t.pending < self._batch_rows or self.degraded
                or self._closing or not self._encodes(name)):
            return
        t.next = self._take(name, t)
        t.following = self._encode(t.next)
        self._kept_up_since = None
        if not (self._merges_held or self._hold_spent):
            self._merges_held, self._held_inserts = True, 0
            self._hold_merges(True)

    def _let_merges_go(self) -> None:
        if self._merges_held:
            self._merges_held = False
            self._hold_merges(False)

    def _hold_merges(self, held: bool) -> None:
        """`Store.hold_merges` on the store's thread, in line with the inserts (not waited for:
        a failure only leaves the merges as they were, and a recovered store lets them go)."""
        store = self._store
        if store is None:
            return
        try:
            done = self._thread.submit(store.hold_merges, held)
        except StoreError:
            return
        done.add_done_callback(functools.partial(_hold_failed, "held" if held else "let go"))

    def _encodes(self, table: str) -> bool:
        """Whether `table`'s batches are encoded before their insert: an embedded store's messages."""
        store = self._store
        return table == MESSAGES and store is not None and store.target.kind == "embedded"

    def _encode(self, batch: _Batch) -> Encoded | None:
        """An embedded store's messages batch, encoded now (None: the store's thread does all
        of an insert, as for rows that cannot be joined or a bug here, which it then reports)."""
        if not batch.by_column or not self._encodes(batch.table):
            return None
        try:
            return _encode(batch, self._tables[batch.table].columns, self._between)
        except Exception:
            return None

    async def _try_insert(self, batch: _Batch, timeout: float | None = None,
                          encoded: Encoded | None = None) -> bool:
        """One insert on the store's thread (of the batch `encoded`, when it is given); False
        (counted, logged once a minute) on failure or after `timeout` seconds (the insert may
        still land: its token dedups a replay)."""
        store = self._store
        if store is None:
            return False
        started = time.perf_counter()
        call = self._thread.call(_insert, store, batch, self._tables[batch.table].columns, encoded)
        try:
            await asyncio.wait_for(call, timeout)
        except ValueError as exc:  # rows that can never be written (e.g. spooled before a schema change)
            await self._set_aside(batch, exc)
            return True
        except (StoreError, TimeoutError) as exc:
            self._metrics.store_insert_failures.inc()
            self.ok = False
            self._log(f"store: insert into {batch.table} failed, keeping the batch: {exc}")
            return False
        self._metrics.store_insert_duration.observe(time.perf_counter() - started)
        self._metrics.store_rows.labels(batch.table).inc(batch.size)
        if not self.ok:
            log.info("store: inserts succeed again")
        self.ok = True
        return True

    async def _set_aside(self, batch: _Batch, exc: Exception) -> None:
        """Keep a batch the store refuses as malformed in `rejected/` beside the spool, so it
        does not block every later one; an error each time (it should never happen)."""
        self._metrics.store_insert_failures.inc()
        directory = os.path.join(self._spool.directory, REJECTED)
        log.error("store: %d %s rows cannot be written (%s); set aside in %s", batch.size, batch.table, exc,
                  directory)
        if self._rejected is None:
            self._rejected = await self._spool_call(Spool, directory, self._spool.max_bytes)
        await self._spool_call(self._rejected.append, batch.table, batch.token, batch.rows())

    def _degrade(self) -> None:
        if self._recovery is None:
            self.ok = False
            self._recovery = asyncio.create_task(self._recover(), name="pairwatch-store-recovery")

    def _to_backlog(self, batch: _Batch) -> None:
        self._backlog.append(batch)
        self._backlog_rows += batch.size

    def _from_backlog(self) -> _Batch:
        batch = self._backlog.popleft()
        self._backlog_rows -= batch.size
        return batch

    def _back_to_front(self, batch: _Batch) -> None:
        self._backlog.appendleft(batch)
        self._backlog_rows += batch.size

    async def _spill_or_wait(self) -> None:
        """Move the oldest in-memory batch to the spool; when the spool cannot take it, wait
        (at most a second, then the caller checks again) for the recovery to make room."""
        batch = self._from_backlog()
        try:
            await self._spool_call(self._spool.append, batch.table, batch.token, batch.rows())
        except SpoolError as exc:
            self._back_to_front(batch)
            self._log(f"spool: {exc}; waiting for the store before taking more lines")
            self._room.clear()
            try:
                await asyncio.wait_for(self._room.wait(), 1.0)
            except TimeoutError:
                pass
            return
        self._metrics.spool_bytes.set(await self._spool_bytes())

    async def _recover(self) -> None:
        """Reopen the store if needed, then write the spool and the backlog, oldest first."""
        delay = RETRY_MIN
        while True:
            try:
                progress = await self._recover_one()
            except Exception:  # a bug must not end the recovery silently: the writer would stay degraded
                log.exception("store: recovery step failed; retrying")
                progress = False
            if progress is None:
                return
            if progress:
                delay = RETRY_MIN
                continue
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)

    async def _recover_one(self) -> bool | None:
        """One step: True when a batch was written, False when the store failed, None when
        caught up (the writer is healthy again)."""
        if self._store is None:
            try:
                self._store = await self._thread.call(self._open_store)
                log.info("store: connected")
            except StoreError as exc:  # counted as a failed insert: batches wait for it
                self._metrics.store_insert_failures.inc()
                self._log(f"store: still unavailable, retrying: {exc}")
                return False
        record = await self._spool_call(self._spool.peek)
        if record is not None:
            if not await self._try_insert(_Batch(record.table, record.token, record.rows, len(record.rows), False)):
                return False
            await self._spool_call(self._spool.pop)
            self._metrics.spool_bytes.set(await self._spool_bytes())
        elif self._backlog:
            batch = self._from_backlog()  # held here, so a spill cannot take it meanwhile
            written = False
            try:
                written = await self._try_insert(batch)
            finally:  # also when cancelled at shutdown: the batch goes back, to the spool
                if not written:
                    self._back_to_front(batch)
            if not written:
                return False
        else:
            self._recovery = None
            self._room.set()
            self._hold_merges(False)  # (in case letting them go failed with the store)
            log.info("store: caught up; the spool is empty")
            return None
        self._room.set()
        return True

    async def _spool_bytes(self) -> int:
        return await self._spool_call(lambda: self._spool.bytes)

    async def _spool_call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._spool_io, fn, *args)

    def _log(self, message: str) -> None:
        now = time.monotonic()
        if now - self._logged_at >= LOG_INTERVAL:
            self._logged_at = now
            log.error("%s (repeats are counted, logged once a minute)", message)
