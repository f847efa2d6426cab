"""Rows of a line the parser's fast path took are the rows of the full parser's event: the
same `messages` and `events` values, for every line of the bench corpus the fast path takes."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

from collector.rows import ValueColumns, line_rows, value_rows
from collector.schema import LEASE_COLUMNS
from parsers import Event, LineParser, ParseOptions
from parsers.fast import LEASE_FIELDS

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from corpus import make_corpus  # noqa: E402


def test_the_fast_paths_lease_fields_are_the_lease_columns_in_order() -> None:
    """`value_rows` puts the fast values' lease fields in the message row's lease columns."""
    assert LEASE_FIELDS == LEASE_COLUMNS


def test_value_rows_are_the_events_rows() -> None:
    options = ParseOptions(reference=datetime(2025, 3, 4, tzinfo=UTC))
    reader, full = LineParser(options), LineParser(options)
    compared = 0
    for n, line in enumerate(make_corpus(100_000).lines):
        got, event = reader.read(line), full.parse(line)
        if isinstance(got, Event):
            continue
        # a receive time a year after, and an event time a day after, to reach the future-skew rule too
        received = 1_772_000_000.25 + n
        at = event.record.ts.timestamp() if n % 2 and event.record.ts else received + 86_401
        args = {"id": n, "received_at": received, "raw": line, "transport": "tcp", "sender": "198.18.0.1:514", "at": at}
        assert (value_rows(got, **args), None) == line_rows(event, **args), line
        compared += 1
    assert compared > 75_000


def test_value_columns_hold_the_value_rows() -> None:
    """The columns `serve` keeps for fast lines are `value_rows`' rows, read by read: each
    read's receive time, transport and sender on its own lines, a read without a fast line
    holding none, and the future-skew rule for the event time."""
    options = ParseOptions(reference=datetime(2025, 3, 4, tzinfo=UTC))
    reader = LineParser(options)
    columns = ValueColumns()
    expected = []
    values = [v for v in map(reader.read, make_corpus(3_000).lines) if not isinstance(v, Event)]
    for n, got in enumerate(values):
        if n % 7 == 0:  # a new read, every seventh line; some reads take no line at all
            received, transport, sender = 1_772_000_000.125 + n, ("tcp", "udp")[n % 2], f"198.18.0.{n % 5}:514"
            columns.read(received, transport, sender)
            if n % 3 == 0:
                columns.read(received + 0.5, "tls", "198.18.1.1:6514")
                received, transport, sender = received + 0.5, "tls", "198.18.1.1:6514"
        at = received + (86_401 if n % 4 == 0 else -3.0)
        columns.add(got, n, f"raw {n}", at)
        expected.append(value_rows(got, n, received, f"raw {n}", transport, sender, at))
    assert len(columns.values) == len(values) > 2_000
    taken = columns.take()
    assert [tuple(row) for row in zip(*taken, strict=True)] == expected
    assert not columns.values and columns.take() == ()
