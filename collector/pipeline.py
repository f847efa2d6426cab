"""The single consumer: queue -> parse -> line stage -> store batches, and snapshots.

One task (`Pipeline.run`) owns the parser and the line stage (`collector.stage`: event time,
the correlator inside its history, the tally, the rows, as for `ingest` and `analyze`);
nothing else touches them. A line counts at its header time, else at its sending host's
previous line's time, else at its receive time (DESIGN.md "Event time"). Each pair's clock
runs from its newest line (`tick` every second), so live it is the wall clock and a
forwarder's queue flushed late is judged on the lines' own timeline. Lines later than their
pair's newest are replayed into the past by the history (`collector.history`);
the incidents it corrects are written again, those it retracts are written as retracted.

After a chunk of lines that changed a state or an incident (else at most every
`PUBLISH_INTERVAL`) the pipeline publishes, by reference swap,
an immutable correlator snapshot (`pairs`) and the open incidents (`incidents`), so the
HTTP handler and the metrics collector never walk live state.

Store writes: rows go to the `StoreWriter` (`collector.writer`), one batch per table
(`messages`, `events`, `states`, `incidents`); it sends them, keeps them in memory and then
in the disk spool while the store is down, and makes `flush_due` wait when neither has
room (backpressure reaches the queue, and from there TCP senders).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from collector.correlator import Correlator
from collector.domain import INCIDENT_CHANGES, Change, PairView, StateChanged, host_key
from collector.history import Rewound
from collector.listeners import Arrival, Intake, Received
from collector.metric_names import program_label
from collector.metrics import ServiceMetrics
from collector.rows import incident_row, state_row
from collector.stage import MAX_HOSTS_SEEN, EventClock, LineStage
from collector.store import EVENTS, HOSTS, INCIDENTS, MESSAGES, STATES
from collector.tally import FleetTally
from collector.writer import StoreWriter
from parsers import Event, LineParser, ParseOptions
from parsers.fast import FastLine

__all__ = ["PIPELINE_ERRORS", "Pipeline", "Spill"]

log = logging.getLogger("pairwatch.pipeline")

Spill = Callable[[list[Received]], Awaitable[None]]
"""Where unprocessed lines go at shutdown when time runs out (see `Pipeline.stop`)."""

TIMESTAMP_SKEW: Final = "timestamp_skew"
"""`pairwatch_syslog_errors_total` reason: a header time more than a day from the receive
time (a sender's broken clock, or a forged line). Stored all the same; when it lies ahead, the
line's event time is its receive time."""
BAD_HOSTNAME: Final = "bad_hostname"
"""`pairwatch_syslog_errors_total` reason: a host name with control characters (stored
verbatim; counted once per spelling, when it is first seen)."""
PIPELINE_ERRORS: Final = (TIMESTAMP_SKEW, BAD_HOSTNAME)
OFFSET_WINDOW: Final = 300.0
"""Seconds over which a sender's clock offset (receive time minus header time) is the minimum:
the fastest delivery in the last five to ten minutes, so a queue flushed late does not count
as a wrong clock, and a clock that is wrong by hours shows within minutes."""
CHUNK: Final = 1_000
"""Lines taken from the queue before the snapshot is published and the clock checked."""
POLL_EVERY: Final = 100
"""Lines between two reads of the UDP sockets within a chunk (`Intake.poll`): few enough that a
line-rate burst fills only a small part of the receive buffer meanwhile."""
TICK_INTERVAL: Final = 1.0
PUBLISH_INTERVAL: Final = 0.25
"""The snapshot for /metrics and the API is published after every chunk that changed a state
or an incident, else at most this often (it walks every pair; last-seen times can wait)."""
REFERENCE_REFRESH: Final = 3600.0
"""Seconds after which the parser's year-inference reference is moved to the receive clock
(`FUTURE_SLACK` is days, so an hour-old reference is exact enough; rebuilding the parser
forgets its repeat/continuation context, which is why it is not done per line)."""


class Pipeline:
    def __init__(
        self,
        intake: Intake,
        correlator: Correlator,
        tally: FleetTally,
        metrics: ServiceMetrics,
        writer: StoreWriter,
        *,
        strip_domain: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._intake = intake
        self._stage = LineStage(correlator, tally=tally, strip_domain=strip_domain)
        self._history = self._stage.history
        self._times = EventClock()
        self._tally = tally
        self._metrics = metrics
        self._writer = writer
        self._strip_domain = strip_domain
        self._offsets: dict[str, tuple[float, float, float]] = {}  # host -> (window start, min, previous min)
        self._offset_keys: dict[str, str] = {}  # a header's host name -> its `host_key`
        self._late = (0, 0)  # the history's late_applied, late_ignored as last counted
        self._clock = clock
        self._parser_built = 0.0
        self._parser = self._new_parser(clock())
        self._stopping = False
        self._spill_at: float | None = None
        self._spill: Spill | None = None
        self._then: deque[Arrival] = deque()
        self._held = False
        self.processed = 0
        self.failed_lines = 0
        self.pairs: tuple[PairView, ...] = correlator.snapshot()
        self._published_at = clock()
        self._changed = False
        self._versioned = 0.0
        self.incidents: tuple[dict[str, Any], ...] = ()

    # -- public --

    def pairs_snapshot(self) -> tuple[PairView, ...]:
        """The snapshot published last (for `PairCollector` and the API; any thread)."""
        return self.pairs

    @property
    def store_ok(self) -> bool:
        """The store took the last batch (for /readyz)."""
        return self._writer.ok

    def hold(self) -> None:
        """Shutdown, first step: process nothing until `stop`, so the event loop spends its
        time reading what the senders already wrote."""
        self._held = True

    def stop(self, spill_at: float | None = None, spill: Spill | None = None, then: Sequence[Arrival] = ()) -> None:
        """Finish: process what is queued, then the lines `then`, then `run` returns (the
        caller closes the writer).

        With `spill`: at `spill_at` (monotonic) whatever is still queued, held by paused
        connections or left of `then` is handed to `spill` unprocessed (the service keeps it
        in the spool for the next start, `replay_received`), so a burst bigger than the
        shutdown time allows is not lost."""
        self._stopping = True
        self._held = False
        self._spill_at = spill_at
        self._spill = spill
        self._then = deque(then)
        self._writer.release()

    async def replay_received(self, records: Iterator[Sequence[Sequence[Any]]]) -> int:
        """Process lines an earlier run received but spilled at shutdown, before any new one.

        `records` yields lists of (received_at, text, transport, sender) rows, oldest first;
        they count at their event times and arrival times, as they would have then."""
        count = 0
        for rows in records:
            chunk = [Arrival(float(r[0]), [str(r[1])], str(r[2]), str(r[3])) for r in rows]
            for start in range(0, len(chunk), CHUNK):
                self._process(chunk[start:start + CHUNK])
                await self._writer.flush_due(self._clock())
            count += len(chunk)
        self._settle(self._clock(), force=True)
        self._publish(self._clock())
        return count

    async def run(self) -> None:
        intake = self._intake
        next_tick = self._clock() + TICK_INTERVAL
        while True:
            if self._held:
                await asyncio.sleep(0.01)
                continue
            now = self._clock()
            timeout = max(0.0, min(next_tick, self._writer.next_flush(now)) - now)
            if self._stopping and intake.empty() and not intake.has_backlog() and not self._then:
                break
            if self._spill is not None and self._spill_at is not None and time.monotonic() >= self._spill_at:
                left = intake.take(intake.queued) + intake.take_backlog()
                left.extend(self._then)
                self._then.clear()
                if left:
                    await self._spill([line for arrival in left for line in arrival.lines()])
                break
            chunk: list[Arrival] = []
            if intake.empty() and self._then:  # at shutdown, after the queue: what was read meanwhile
                lines = 0
                while self._then and lines < CHUNK:
                    chunk.append(self._then.popleft())
                    lines += chunk[-1].size
            elif intake.empty():  # wait only when there is nothing to do
                await intake.wait(min(timeout, 0.2) if self._stopping else timeout)
            if not chunk:
                chunk = intake.take(CHUNK)
            if chunk:
                self._process(chunk)
            self._metrics.queue_depth.set(intake.queued)
            now = self._clock()
            if now >= next_tick:
                self._apply_tick(now)
                next_tick = now + TICK_INTERVAL
            if self._changed or now - self._published_at >= PUBLISH_INTERVAL:
                self._publish(now)
            await self._writer.flush_due(now)
            intake.resume_when_drained()
            if chunk:
                # Let the loop run between chunks: nothing above suspends while the queue
                # holds lines, so reads, scrapes and the ends of inserts (which send the next
                # batch) waited until the whole queue was processed, seconds under load.
                await asyncio.sleep(0)
        self._apply_tick(self._clock(), force=True)
        self._publish(self._clock())

    # -- processing --

    def _new_parser(self, now: float) -> LineParser:
        self._parser_built = now
        return LineParser(ParseOptions(reference=datetime.fromtimestamp(now, UTC), tz=UTC))

    def _process(self, chunk: list[Arrival]) -> None:
        """Parse the chunk's lines, then place, correlate, tally and row them: two passes, because
        each loop's code and data stay in the CPU's caches while it runs."""
        if chunk[0].received_at - self._parser_built > REFERENCE_REFRESH:
            self._parser = self._new_parser(chunk[0].received_at)
        parsed = iter(self._parse(chunk))
        place = self._times.at
        take = self._stage.take
        mrows: list[tuple[Any, ...]] = []
        erows: list[tuple[Any, ...]] = []
        changed: list[tuple[list[Change], float]] = []
        offsets: dict[str | None, float] = {}  # sender host -> this chunk's smallest receive - header time
        poll = self._intake.poll
        n = 0
        take_values = self._stage.take_values
        read = self._stage.columns.read
        with self._tally.lock:  # (a scrape's snapshot waits for the chunk)
            for received_at, texts, transport, sender in chunk:
                read(received_at, transport, sender)
                for text in texts:
                    line = next(parsed)
                    n += 1
                    if not n % POLL_EVERY:
                        poll()
                    if line is None:  # (the parser failed on it: counted)
                        continue
                    try:
                        host: str | None
                        if isinstance(line, tuple):  # the fast path's values (parsers.fast.FIELDS)
                            host = line[1]
                            ts = None if line[0] is None else line[0] / 1e6
                        else:
                            host = line.record.host
                            stamp = line.record.ts
                            ts = None if stamp is None else stamp.timestamp()
                        if ts is not None:
                            offset = received_at - ts
                            if offset < offsets.get(host, math.inf):
                                offsets[host] = offset
                        at = place(host, ts, received_at)
                        assert at is not None  # (a line with an arrival always has a time)
                        if isinstance(line, tuple):
                            changes = take_values(line, text, at, received_at)
                        else:
                            mrow, erow, changes = take(line, text, at, received_at, transport, sender)
                            mrows.append(mrow)  # type: ignore[arg-type]  # (the stage builds rows)
                            if erow is not None:
                                erows.append(erow)
                        if changes:
                            changed.append((changes, received_at))
                    except Exception:  # a bug for one line must not stop the service (nor cost its neighbours)
                        self._failed(text, transport, sender)
        self._writer.add_columns(MESSAGES, self._stage.columns.take())
        self._writer.add_rows(MESSAGES, mrows)
        self._writer.add_rows(EVENTS, erows)
        for changes, received_at in changed:
            self._changes(changes, received_at)
        self._counts()
        last = chunk[-1].received_at
        self._settle(last)
        if offsets:
            self._clock_offsets(offsets, last)
        self.processed += n

    def _parse(self, chunk: list[Arrival]) -> list[Event | FastLine | None]:
        """Each line's event or fast-path values, None for a line the parser failed on."""
        read = self._parser.read
        poll = self._intake.poll
        parsed: list[Event | FastLine | None] = []
        append = parsed.append
        n = 0
        for arrival in chunk:
            for text in arrival.texts:
                n += 1
                if not n % POLL_EVERY:
                    poll()
                try:
                    append(read(text))
                except Exception:  # (as in `_process`)
                    append(None)
                    self._failed(text, arrival.transport, arrival.sender)
        return parsed

    def _failed(self, text: str, transport: str, sender: str) -> None:
        self.failed_lines += 1
        if self.failed_lines <= 10:
            log.exception("pipeline: line from %s %s failed: %r", transport, sender, text[:200])

    def _counts(self) -> None:
        """Add what the stage counted since the last chunk (once per chunk: a labelled
        counter's inc takes a lock), and write the rows of hosts seen for the first time."""
        stage = self._stage
        if stage.hosts:
            self._writer.add_rows(HOSTS, stage.hosts)
            stage.hosts = []
        for program, count in stage.unrecognized.items():
            self._metrics.parse_unrecognized.labels(program_label(program)).inc(count)
        stage.unrecognized.clear()
        if stage.skewed:
            self._metrics.syslog_errors.labels(TIMESTAMP_SKEW).inc(stage.skewed)
            stage.skewed = 0
        if stage.bad_hosts:
            self._metrics.syslog_errors.labels(BAD_HOSTNAME).inc(stage.bad_hosts)
            stage.bad_hosts = 0
        history = stage.history
        late = (history.late_applied, history.late_ignored)
        if late != self._late:
            self._metrics.late_lines.labels("yes").inc(late[0] - self._late[0])
            self._metrics.late_lines.labels("no").inc(late[1] - self._late[1])
            self._late = late

    def _clock_offsets(self, chunk: dict[str | None, float], now: float) -> None:
        """Fold a chunk's smallest offsets into each sender's window (the minimum over the
        current and the previous `OFFSET_WINDOW`) and publish the result when a window moved.

        Most chunks move nothing (an offset above its window's minimum), and at a steady rate
        in small reads a chunk holds a line of nearly every sender of a fleet: so a sender
        whose window stays costs two lookups, and the dict of every sender is built only when
        one moved (with chunks of 200 lines, 4 % fewer instructions a line for the line path)."""
        windows = self._offsets
        keys = self._offset_keys
        moved = False
        for raw, offset in chunk.items():
            if raw is None:
                continue
            host = keys.get(raw)
            if host is None:
                if len(keys) >= MAX_HOSTS_SEEN:
                    keys.clear()
                host = keys[raw] = host_key(raw, self._strip_domain)
            start, smallest, previous = windows.get(host) or (now, math.inf, math.inf)
            if now - start >= OFFSET_WINDOW:
                start, smallest, previous = now, math.inf, smallest
            elif offset >= smallest:
                continue
            if len(windows) >= MAX_HOSTS_SEEN and host not in windows:
                windows.clear()
            windows[host] = (start, min(smallest, offset), previous)
            moved = True
        if moved:
            self._metrics.sender_clock_offsets = {host: min(s, p) for host, (_, s, p) in windows.items()}

    def _apply_tick(self, now: float, force: bool = False) -> None:
        changes = self._history.tick(now)
        if changes:
            self._changes(changes, now)
        self._settle(now, force)

    def _settle(self, now: float, force: bool = False) -> None:
        """Let the history replay the late lines it holds, and store what that corrected."""
        rewound = self._history.settle(now, force)
        if rewound is not None:
            self._rewound(rewound, now)

    def _rewound(self, rewound: Rewound, now: float) -> None:
        """Store a replay's corrections: new state changes, incidents as they now stand (a row
        with a later `updated_at` replaces the stored one), retractions; count the late
        lines' own transitions."""
        self._changed = True
        for change in rewound.states:
            self._writer.add(STATES, state_row(change))
        for incident in rewound.incidents:
            self._writer.add(INCIDENTS, incident_row(incident, self._version(now)))
        for incident in rewound.retracted:
            self._writer.add(INCIDENTS, incident_row(incident, self._version(now), retracted=True))
        with self._tally.lock:
            for event, changes in rewound.late:
                self._tally.count_changes(event, changes)
        self.incidents = tuple(i.as_dict() for i in self._history.correlator.open_incidents())

    def _changes(self, changes: Sequence[object], now: float) -> None:
        self._changed = True
        incidents_changed = False
        for change in changes:
            if isinstance(change, StateChanged):
                self._writer.add(STATES, state_row(change))
            elif isinstance(change, INCIDENT_CHANGES):
                self._writer.add(INCIDENTS, incident_row(change.incident, self._version(now)))
                incidents_changed = True
        if incidents_changed:
            self.incidents = tuple(i.as_dict() for i in self._history.correlator.open_incidents())

    def _version(self, now: float) -> float:
        """An incident row's `updated_at`: `now`, but always after the previous row's (a line read
        before a tick is processed after it, and the store keeps the row with the latest)."""
        self._versioned = max(now, self._versioned + 1e-6)
        return self._versioned

    def _publish(self, now: float) -> None:
        self.pairs = self._history.correlator.snapshot()
        self._published_at = now
        self._changed = False
