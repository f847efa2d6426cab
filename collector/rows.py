"""Rows for the store's tables, built from parsed lines and the correlator's changes.

Each builder returns a tuple in the column order of `collector.schema`'s `*_COLUMNS` (the
insert sends them as they are), times as integer microseconds since the epoch: clickhouse-connect
writes an int as a `DateTime64(6)` column's raw ticks, without a datetime per value.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from operator import attrgetter
from typing import Any, Final

from collector.domain import Incident, StateChanged
from collector.schema import LEASE_COLUMNS
from parsers.events import Event, Lease, line_code
from parsers.fast import FastLine
from parsers.jsonl import iso_utc, payload_fields

__all__ = [
    "FUTURE_SKEW_US",
    "MessageIds",
    "ValueColumns",
    "event_time_us",
    "from_micros",
    "host_row",
    "incident_id",
    "incident_row",
    "iso_micros",
    "line_rows",
    "micros",
    "state_row",
    "value_rows",
]

FUTURE_SKEW_US: Final = 86_400 * 1_000_000
"""How far ahead of its receive time a line's header time may lie and still be its event time
(DESIGN.md "Event time"); beyond it (a sender's broken clock, a forged line) the receive time
is. The messages table's DEFAULT for `at` says the same in SQL (`INTERVAL 1 DAY`)."""
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def _json_encoder() -> Callable[[Any], str]:
    """Compact JSON text (no spaces, non-ASCII kept), for one `events.fields` value per line.

    `JSONEncoder.encode` builds a new C encoder on every call, which was two thirds of its
    cost on these small dicts; this builds it once (the stdlib's pure-Python encoder where
    the C one is missing)."""
    from json.encoder import encode_basestring

    c_make_encoder = getattr(json.encoder, "c_make_encoder", None)  # (not in the type stubs)
    if c_make_encoder is None:
        return json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    chunks = c_make_encoder(None, None, encode_basestring, None, ":", ",", False, False, True)
    return lambda value: "".join(chunks(value, 0))


_compact_json = _json_encoder()
_lease_values: Final = attrgetter(*LEASE_COLUMNS)
"""A Lease payload's values for the message row's lease columns."""
_NO_LEASE: Final = (None,) * len(LEASE_COLUMNS)
"""The lease columns of a line that is no lease."""


def micros(value: datetime | float) -> int:
    """Microseconds since the epoch from a datetime (naive = UTC) or epoch seconds.

    Rows carry `DateTime64(6)` values this way: clickhouse-connect writes an int as the
    column's raw ticks, skipping a per-value datetime conversion (4x faster inserts).
    """
    if not isinstance(value, datetime):
        return round(value * 1_000_000)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return (value - _EPOCH) // _MICROSECOND


def from_micros(us: int | None) -> datetime | None:
    return None if us is None else _EPOCH + timedelta(microseconds=us)


def iso_micros(us: int | None) -> str | None:
    return iso_utc(from_micros(us))


class MessageIds:
    """Message ids for one collector process: increasing, starting at the current time in µs.

    Ids grow across restarts (as long as fewer than one message per microsecond arrives on
    average) and order lines that share a receive instant in arrival order. A message is
    identified by (host, received_at, id), so two collectors never confuse theirs.
    """

    def __init__(self, start: int | None = None) -> None:
        # `next()`: the next id without a Python frame (the pipeline takes one per line)
        self.next: Callable[[], int] = itertools.count(time.time_ns() // 1000 if start is None else start).__next__

    def __call__(self) -> int:
        return self.next()


def event_time_us(received_us: int, ts_us: int | None) -> int:
    """A line's event time (µs) from its receive and header times: the header time, unless
    there is none or it lies more than `FUTURE_SKEW_US` ahead (then the receive time). A past
    header time is a late line: it keeps its time, however old."""
    if ts_us is None or ts_us - received_us > FUTURE_SKEW_US:
        return received_us
    return ts_us


def line_rows(
    event: Event,
    *,
    id: int,
    received_at: datetime | float,
    raw: str,
    transport: str,
    sender: str = "",
    at: datetime | float | None = None,
) -> tuple[tuple[Any, ...], tuple[Any, ...] | None]:
    """The `messages` row (`MESSAGE_COLUMNS` order) and the `events` row (`EVENT_COLUMNS`
    order, None when the message row holds all of it) of one received line and its event,
    with the times converted once for both.

    `received_at` is the collector's clock when the line arrived; a backfill (`ingest`)
    passes the line's own time instead. `transport` is `udp`, `tcp`, `tls` or `file`;
    `sender` the peer address.

    `at` is the line's event time, the timeline's order: given, it is used (the line stage
    passes, for a line without a header time, its sender's previous line's time); else
    `event_time_us` decides. Either way a time more than `FUTURE_SKEW_US` after `received_at`
    becomes `received_at`, so every stored `at` is at most that far ahead (the timeline's
    `since` relies on it). It follows `kind` in the messages row: `row[0]` is `received_at`
    and `row[2]` the header time `ts`, both in µs.

    A lease line's fields are columns of its message row (`schema.LEASE_COLUMNS`). The events
    row holds the kind's fields (`parsers.jsonl.payload_fields`) as JSON text, with the stream
    markers `continuation`/`repeated`; what the message row already holds (`ts`, `host`,
    `program`, `pid`, `kind`, `message`) is not repeated. Lines of the kinds in
    `parsers.events.LINE_KINDS` (client traffic, lines of no known event) with nothing more
    have none: nearly every line is one row.
    """
    ts = event.record.ts
    received_us = micros(received_at)
    ts_us = None if ts is None else micros(ts)
    at_us = ts_us if at is None else micros(at)
    if at_us is None or at_us - received_us > FUTURE_SKEW_US:  # (`event_time_us`, inline: once per line)
        at_us = received_us
    return (_message_row(event, id, received_us, ts_us, raw, transport, sender, at_us),
            _event_row(event, id, received_us, ts_us))


def value_rows(values: FastLine, id: int, received_at: float, raw: str, transport: str, sender: str,
               at: float) -> tuple[Any, ...]:
    """The message row of a line the parser's fast path took (`parsers.fast.FIELDS`), from its
    values: what `line_rows` makes of its event, without an event or a dict per line (and, like
    every line of the kinds the fast path takes, no events row). Positional and unpacked by
    name: it runs for nearly every line."""
    (ts_us, host, program, pid, facility, severity, msgid, _, message, kind,
     ip, mac, client_name, via, server_id, refused, detail) = values
    received_us = round(received_at * 1_000_000)
    at_us = round(at * 1_000_000)
    if at_us - received_us > FUTURE_SKEW_US:
        at_us = received_us
    return (received_us, id, ts_us, host, program, pid, facility, severity, msgid or "", "", message, raw, transport,
            sender, kind, at_us, ip, mac, client_name, via, server_id, refused, detail)


class ValueColumns:
    """The `messages` rows of the fast path's lines (`value_rows`), kept by column: what the
    store's writer keeps anyway (`collector.writer`), so nothing builds a row tuple a line,
    nor transposes it back. `read` opens a read's lines (their receive time, transport and
    sender are the same), `add` appends a line; `take` hands over the columns and starts
    over. `value_rows` of the same values gives the same rows (tests/collector/test_value_rows.py).

    `Pipeline._process` took 63,470 instructions a line with a row each and the writer's
    transposition, 60,477 with these (bench/README.md)."""

    __slots__ = ("values", "ids", "ats", "raws", "received_us", "_reads")

    def __init__(self) -> None:
        self.values: list[FastLine] = []
        self.ids: list[int] = []
        self.ats: list[int] = []  # event times, µs
        self.raws: list[str] = []
        self.received_us = 0  # the current read's receive time, µs
        self._reads: list[tuple[int, int, str, str]] = []  # (first line's index, received_us, transport, sender)

    def read(self, received_at: float, transport: str, sender: str) -> None:
        """The lines added next arrived together."""
        self.received_us = received_us = round(received_at * 1_000_000)
        self._reads.append((len(self.values), received_us, transport, sender))

    def add(self, values: FastLine, id: int, raw: str, at: float) -> None:
        """A line of the current read, at event time `at` (epoch seconds)."""
        at_us = round(at * 1_000_000)
        if at_us - self.received_us > FUTURE_SKEW_US:
            at_us = self.received_us
        self.values.append(values)
        self.ids.append(id)
        self.ats.append(at_us)
        self.raws.append(raw)

    def take(self) -> tuple[Sequence[Any], ...]:
        """The rows so far as columns, in `MESSAGE_COLUMNS` order (none without rows); then
        empty again."""
        n = len(self.values)
        if not n:
            self._reads = []
            return ()
        received: list[int] = []
        transports: list[str] = []
        senders: list[str] = []
        reads = self._reads
        for i, (start, received_us, transport, sender) in enumerate(reads):
            k = (reads[i + 1][0] if i + 1 < len(reads) else n) - start
            if k:
                received += [received_us] * k
                transports += [transport] * k
                senders += [sender] * k
        (ts, host, program, pid, facility, severity, msgid, _, message, kind,
         ip, mac, client_name, via, server_id, refused, detail) = zip(*self.values, strict=True)
        columns = (received, self.ids, ts, host, program, pid, facility, severity, [m or "" for m in msgid],
                   [""] * n, message, self.raws, transports, senders, kind, self.ats,
                   ip, mac, client_name, via, server_id, refused, detail)
        self.values, self.ids, self.ats, self.raws, self._reads = [], [], [], [], []
        return columns


def _message_row(event: Event, id: int, received_us: int, ts_us: int | None, raw: str, transport: str,
                 sender: str, at_us: int) -> tuple[Any, ...]:
    r = event.record
    p = event.payload
    lease = _lease_values(p) if isinstance(p, Lease) else _NO_LEASE
    return (received_us, id, ts_us, r.host or "", r.program or "", r.pid, r.facility, r.severity, r.msgid or "",
            r.structured_data or "", r.message.lstrip(), raw, transport, sender, p.kind, at_us, *lease)


def _event_row(event: Event, id: int, received_us: int, ts_us: int | None) -> tuple[Any, ...] | None:
    r = event.record
    payload = event.payload
    fields = payload_fields(event)
    fields.pop("message", None)  # the `*.other` kinds' text: the message row holds it
    if (line_code(payload) is not None and not event.continuation and event.repeated is None
            and (isinstance(payload, Lease) or not fields)):
        return None  # the message row holds all of it (a lease's fields in its columns)
    if event.continuation:
        fields["continuation"] = True
    if event.repeated is not None:
        fields["repeated"] = event.repeated
    relationship = getattr(payload, "relationship", None)
    return (received_us, id, ts_us, r.host or "", r.program or "", payload.kind, relationship or "",
            _compact_json(fields) if fields else "{}")


def host_row(key: str, host: str, first_seen: datetime | float) -> tuple[Any, ...]:
    """One `hosts` row: a spelling `host` of the host compared as `key` (see `host_key`)."""
    return (key, host, micros(first_seen))


def state_row(change: StateChanged) -> tuple[Any, ...]:
    """One `states` row (`STATE_COLUMNS` order) for a correlator state change."""
    return (micros(change.ts), change.pair, change.server, change.side, change.state, change.previous)


def incident_id(incident: Incident) -> str:
    """A stable id: the same pair, condition and start always give the same 16 hex digits."""
    key = f"{incident.pair}\x1f{incident.condition}\x1f{micros(incident.start)}"
    return hashlib.blake2b(key.encode(), digest_size=8).hexdigest()


def incident_row(incident: Incident, updated_at: datetime | float, retracted: bool = False) -> tuple[Any, ...]:
    """One `incidents` row (`INCIDENT_COLUMNS` order): the incident as it stands at `updated_at`.

    Write one when it opens and one when it closes (with a later `updated_at`), and again
    when late lines correct it or show it never happened (`retracted`); reads return the latest.
    """
    return (
        incident_id(incident),
        incident.condition,
        incident.pair,
        list(incident.servers),
        micros(incident.start),
        None if incident.end is None else micros(incident.end),
        list(incident.evidence),
        micros(updated_at),
        retracted,
    )
