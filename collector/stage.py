"""The line stage: `serve`, `ingest` and `analyze` all take a parsed line through it.

A line's event time (`EventClock`), then the correlator (inside its `History`, so a late
line re-decides the past), the fleet tally, and the line's rows: one place, so the three
commands cannot tell different stories about the same lines, and a faster path lands once.

What differs is around it. `serve` (`collector.pipeline`) parses lines in arrival order and
ticks the pairs on the wall clock; the files of `ingest` and `analyze` (`collector.replay`)
are parsed one by one, merged by event time and ticked at the deadlines between their lines.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Final

from collector.correlator import Correlator
from collector.domain import Change, host_key
from collector.history import History
from collector.rows import FUTURE_SKEW_US, MessageIds, ValueColumns, host_row, line_rows, value_rows
from collector.schema import MESSAGE_COLUMNS
from collector.tally import FleetTally
from parsers import Event
from parsers.events import LINE_CODES, DhcpdOther, KeaOther
from parsers.fast import FastLine

__all__ = ["EventClock", "LineStage", "MAX_HOSTS_SEEN"]

FUTURE_SKEW: Final = FUTURE_SKEW_US / 1e6
_UNRECOGNIZED: Final = frozenset({DhcpdOther.kind, KeaOther.kind})
"""Kinds counted in `pairwatch_parse_unrecognized_total`: dhcpd's or Kea's, of no known event."""
_NAMES: Final = [name for name, _ in MESSAGE_COLUMNS]
_RECEIVED_AT, _TS = _NAMES.index("received_at"), _NAMES.index("ts")
"""Where a messages row holds its receive and header times."""
MAX_HOSTS_SEEN: Final = 100_000
"""Host spellings (and event clock sources) remembered; forgotten all at once beyond this,
so forged host names cannot grow memory (a `hosts` row written again is harmless)."""


class EventClock:
    """The instant each line counts at (DESIGN.md "Event time"): its header time; else the
    time of its source's previous line, moved on by the time elapsed since that one arrived;
    else its arrival time.

    A source is what a line without a time belongs to: a sending host live, a file for
    `ingest` and `analyze`. A file's lines have no arrival (`arrived` None): a line without a
    time takes the previous one's exactly, and before the file's first time it has none.
    Live, a header time more than a day ahead of the arrival is a broken clock: the arrival
    counts instead. A past header time is a late line and keeps its time.
    """

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: dict[Hashable, tuple[float, float | None]] = {}

    def at(self, source: Hashable, ts: float | None, arrived: float | None) -> float | None:
        """`ts`: the header time, epoch seconds."""
        last = self._last
        if ts is not None:
            at = ts
            if arrived is not None and at - arrived > FUTURE_SKEW:
                at = arrived
            if len(last) >= MAX_HOSTS_SEEN:
                last.clear()
            last[source] = (at, arrived)
            return at
        previous = last.get(source)
        if previous is None:
            return arrived
        then, then_arrived = previous
        return then if arrived is None or then_arrived is None else then + (arrived - then_arrived)


class LineStage:
    """Correlate, tally and build the rows of one placed line at a time.

    `take` feeds the line to the history at its event time, counts it in `tally` (live), and
    returns its `messages` and `events` rows (None without `rows`, as for `analyze`; the
    events row also None for most lines, see `rows.line_rows`) with the changes it made.
    `take_values` does the same live for a line the fast path took, its row kept by column
    in `columns` (`rows.ValueColumns`) for the caller to hand to the writer.
    What the caller flushes now and then: `hosts` (rows of host spellings seen for the first
    time), `unrecognized` (lines of dhcpd or Kea of no known kind, by program), `skewed`
    (header times more than a day from the arrival) and `bad_hosts` (spellings with control
    characters).
    """

    def __init__(self, correlator: Correlator, *, tally: FleetTally | None = None, rows: bool = True,
                 strip_domain: bool = False) -> None:
        self.history = History(correlator)
        self._tally = tally
        self._rows = rows
        self._strip = strip_domain
        self._ids = MessageIds()
        self.columns = ValueColumns()
        self._add_columns = self.columns.add
        self._hosts_seen: set[str] = set()
        self.hosts: list[tuple[Any, ...]] = []
        self.unrecognized: dict[str | None, int] = {}
        self.skewed = 0
        self.bad_hosts = 0

    @property
    def correlator(self) -> Correlator:
        """The current correlator (a replay of late lines replaces it)."""
        return self.history.correlator

    def take(self, parsed: Event | FastLine, text: str, at: float, arrived: float, transport: str, sender: str, *,
             placed: bool = True) -> tuple[tuple[Any, ...] | None, tuple[Any, ...] | None, list[Change]]:
        """`parsed` is what `LineParser.read` gave: an event, or the fast path's values (their
        rows are built from the values). `placed` False: a file line before the file's first
        time, stored at the file's time but kept from the correlator (its true time is unknown)."""
        host: str | None
        program: str | None
        if isinstance(parsed, tuple):  # its kind is one of LINE_KINDS: the values are all the correlator needs
            values: FastLine | None = parsed
            event = None
            host, program, kind = parsed[1], parsed[2], parsed[9]
            code, refused = LINE_CODES[kind], parsed[15]
            changes = (self.history.feed_line(host, program, parsed[3], code, refused, at, text, arrived)
                       if placed else [])
            if self._tally is not None:
                self._tally.observe_line(host, code, refused, at, changes)
        else:
            values, event = None, parsed
            record = event.record
            host, program, kind = record.host, record.program, event.payload.kind
            changes = self.history.feed(event, at, text, arrived) if placed else []
            if self._tally is not None:
                self._tally.observe(event, changes, at)
        if kind in _UNRECOGNIZED:
            self.unrecognized[program] = self.unrecognized.get(program, 0) + 1
        if host is not None and host not in self._hosts_seen:
            self._new_host(host, arrived)
        if not self._rows:
            return None, None, changes
        if values is not None:
            mrow, erow = value_rows(values, self._ids.next(), arrived, text, transport, sender, at), None
        else:
            assert event is not None
            mrow, erow = line_rows(event, id=self._ids.next(), received_at=arrived, raw=text, transport=transport,
                                   sender=sender, at=at)
        ts_us = mrow[_TS]  # (the row's times, converted once)
        if ts_us is not None and abs(ts_us - mrow[_RECEIVED_AT]) > FUTURE_SKEW_US:
            self.skewed += 1
        return mrow, erow, changes

    def take_values(self, values: FastLine, text: str, at: float, arrived: float) -> list[Change]:
        """`take` for the fast path's values of a line, live (placed, with rows): its row goes
        to `columns`, the read's (`columns.read`) receive time, transport and sender. For
        nearly every line `serve` reads: no row tuple."""
        host, kind = values[1], values[9]
        code, refused = LINE_CODES[kind], values[15]
        changes = self.history.feed_line(host, values[2], values[3], code, refused, at, text, arrived)
        if self._tally is not None:
            self._tally.observe_line(host, code, refused, at, changes)
        if kind in _UNRECOGNIZED:
            program = values[2]
            self.unrecognized[program] = self.unrecognized.get(program, 0) + 1
        if host not in self._hosts_seen:
            self._new_host(host, arrived)
        self._add_columns(values, self._ids.next(), text, at)
        ts_us = values[0]
        if ts_us is not None and abs(ts_us - self.columns.received_us) > FUTURE_SKEW_US:
            self.skewed += 1
        return changes

    def _new_host(self, host: str, now: float) -> None:
        if len(self._hosts_seen) >= MAX_HOSTS_SEEN:
            self._hosts_seen.clear()
        self._hosts_seen.add(host)
        if not host.isprintable():
            self.bad_hosts += 1
        if self._rows:
            self.hosts.append(host_row(host_key(host, self._strip), host, now))

