"""Replay log files through the parsers and the correlator, with the logs' own clock.

`pairwatch analyze` (and later `ingest`) read files of any mix of hosts and
formats, in any order: every line is parsed with the file's own reference
instant, the lines are merged by timestamp (stable, so a file's own order wins
on ties), and the correlator runs with time following the timestamps. Between
two lines the correlator is ticked at exactly the instants it asks for, so a
state that lasts too long opens its incident at the right time even when no
line marks it. At the end of the input the clock stops: incidents still open
stay open.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from collector.correlator import Correlator
from collector.domain import INCIDENT_CHANGES, Change, Incident, StateChanged
from parsers import Event, LineParser, ParseOptions


@dataclass(slots=True, frozen=True)
class Observed:
    """One input line with its parsed event and the instant it counts at."""

    ts: float
    order: int
    line: str
    event: Event


@dataclass(slots=True)
class Replay:
    """What a replay found: every state change, and every incident (open ones with end None)."""

    states: list[StateChanged]
    incidents: list[Incident]
    lines: int
    unplaced: int  # lines without a timestamp before any timestamped line of their file, or without a host
    end: float | None = None  # the instant of the last line: where the replay's clock stopped


def observe(sources: Iterable[tuple[Iterable[str], ParseOptions]]) -> tuple[list[Observed], int]:
    """Parse every source; a line without a timestamp takes its file's previous one."""
    observed: list[Observed] = []
    unplaced = 0
    order = 0
    for lines, options in sources:
        parser = LineParser(options)
        last_ts: float | None = None
        for line in lines:
            event = parser.parse(line)
            ts = event.record.ts
            if ts is not None:
                last_ts = ts.timestamp()
            if last_ts is None or event.record.host is None:
                unplaced += 1
                continue
            observed.append(Observed(last_ts, order, line, event))
            order += 1
    observed.sort(key=lambda o: (o.ts, o.order))
    return observed, unplaced


def run(observed: Iterable[Observed], correlator: Correlator) -> Iterator[Change]:
    """Feed events in order, ticking the correlator at each deadline that comes before them."""
    for obs in observed:
        while (due := correlator.next_deadline()) is not None and due <= obs.ts:
            yield from correlator.tick(due)
        yield from correlator.feed(obs.event, obs.ts, obs.line)


def replay(sources: Iterable[tuple[Iterable[str], ParseOptions]], correlator: Correlator) -> Replay:
    observed, unplaced = observe(sources)
    states: list[StateChanged] = []
    incidents: dict[int, Incident] = {}
    for change in run(observed, correlator):
        if isinstance(change, StateChanged):
            states.append(change)
        elif isinstance(change, INCIDENT_CHANGES):
            incidents[id(change.incident)] = change.incident
    ordered = sorted(incidents.values(), key=lambda i: (i.start, i.pair, i.condition))
    end = observed[-1].ts if observed else None
    return Replay(states=states, incidents=ordered, lines=len(observed) + unplaced, unplaced=unplaced, end=end)
