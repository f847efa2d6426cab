"""The lean line path decides what the full one decides.

Lines the parser's fast path took reach the correlator and the tally as values
(`History.feed_line`, `FleetTally.observe_line`: host, program, PID, kind, refusal), every
other line as an event. Two line stages take the same lines, one through `LineParser.read`
(the service's path), one with every line parsed in full: each line's changes, each replay's
result, the open incidents, the pairs and the tally must be the same. The lines are
bench/corpus.py's fleet (failures included), with some hosts' lines delivered late so that
replays run too.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

from collector.config import parse_config
from collector.correlator import Correlator
from collector.tally import FleetTally
from collector.stage import EventClock, LineStage
from parsers import Event, LineParser, ParseOptions
from parsers.events import LEASE_LINES, LINE_CODES, LINE_KINDS, Lease

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from corpus import make_corpus  # noqa: E402

LATE_EVERY = 7_000
"""Every so many lines, one host's next lines are held back ..."""
LATE_LINES = 300
"""... this many of them, and delivered after the rest of the block: a flushed queue."""


def deliveries(lines: list[str]) -> list[str]:
    """The corpus in arrival order: mostly as written, some blocks with one host's lines late."""
    out: list[str] = []
    for start in range(0, len(lines), LATE_EVERY):
        block = lines[start:start + LATE_EVERY]
        host = block[0].split()[3] if len(block[0].split()) > 3 else ""
        late = [line for line in block[:LATE_LINES * 4] if f" {host} " in line][:LATE_LINES]
        out.extend(line for line in block if line not in late)
        out.extend(late)
    return out


class Side:
    """A line stage with its own parser, clock, correlator and tally."""

    def __init__(self, full: bool) -> None:
        options = ParseOptions(reference=datetime(2025, 3, 4, tzinfo=UTC), tz=UTC)
        self.parser = LineParser(options)
        self.read = self.parser.parse if full else self.parser.read
        self.tally = FleetTally()
        self.stage = LineStage(Correlator(parse_config({})), tally=self.tally, rows=False)
        self.clock = EventClock()
        self.fast = 0

    def take(self, line: str, arrived: float) -> list[object]:
        parsed = self.read(line)
        if isinstance(parsed, Event):
            host, stamp = parsed.record.host, parsed.record.ts
            ts = None if stamp is None else stamp.timestamp()
        else:
            self.fast += 1
            host, ts = parsed[1], None if parsed[0] is None else parsed[0] / 1e6
        at = self.clock.at(host, ts, arrived)
        assert at is not None
        return list(self.stage.take(parsed, line, at, arrived, "tcp", "198.18.0.1")[2])

    def settle(self, wall: float, force: bool = False) -> object:
        rewound = self.stage.history.settle(wall, force)
        return None if rewound is None else (rewound.states, rewound.incidents, rewound.retracted,
                                             [(event.record.host, changes) for event, changes in rewound.late])


def test_fast_and_full_lines_decide_the_same() -> None:
    corpus = make_corpus(60_000)
    lines = deliveries(list(corpus.lines))
    lean, full = Side(full=False), Side(full=True)
    arrived = 1_741_000_000.0  # 2025-03-03T11:06Z, among the corpus's times
    for n, line in enumerate(lines):
        arrived += 0.01
        assert lean.take(line, arrived) == full.take(line, arrived), line
        if n % 1000 == 999:
            assert lean.settle(arrived) == full.settle(arrived)
    assert lean.settle(arrived, force=True) == full.settle(arrived, force=True)
    ticked = arrived + 3600
    assert lean.stage.history.tick(ticked) == full.stage.history.tick(ticked)
    assert lean.stage.correlator.open_incidents() == full.stage.correlator.open_incidents()
    assert lean.stage.correlator.snapshot() == full.stage.correlator.snapshot()
    assert lean.tally.snapshot() == full.tally.snapshot()
    assert lean.fast > 0.8 * len(lines) and full.fast == 0
    assert lean.stage.history.replays > 0 and lean.stage.history.replays == full.stage.history.replays


def test_the_fast_paths_kinds_are_line_kinds_leases_first() -> None:
    """What the lean path hands over by code covers every kind the fast path yields, and the
    codes below `LEASE_LINES` are exactly the lease kinds (they carry a refusal)."""
    parser = LineParser(ParseOptions(reference=datetime(2025, 3, 4, tzinfo=UTC), tz=UTC))
    kinds = {values[9] for line in make_corpus(20_000).lines if type(values := parser.read(line)) is tuple}
    assert kinds and kinds <= LINE_CODES.keys()
    assert [issubclass(cls, Lease) for cls in LINE_KINDS] == [True] * LEASE_LINES + [False] * (len(LINE_KINDS) - LEASE_LINES)
