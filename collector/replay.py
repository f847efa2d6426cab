"""Log files through the line stage, on the logs' own clock (`analyze` and `ingest`).

Files of any mix of hosts and formats, in any order: each file is parsed with its own
reference instant and placed by its own event clock (a line without a time takes its file's
previous one), then the files are merged by event time as they are read (a file's own order
on ties; memory stays bounded whatever the input size). Between two lines the correlator is
ticked at exactly the instants it asks for, so a state that lasts too long opens its incident
at the right time even when no line marks it. For `ingest`, a line that lies behind the merge
(a central log written in arrival order, where a forwarder flushed late) is a late line,
re-decided by the history as `serve` does; `analyze` sorts what it read. At the end of the
input the clock stops: incidents still open stay open.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from collector.correlator import Correlator
from collector.domain import INCIDENT_CHANGES, Change, Incident, StateChanged
from collector.history import Rewound, incident_key
from collector.stage import EventClock, LineStage
from parsers import Event, LineParser, ParseOptions

__all__ = ["Observed", "Replay", "Source", "observed", "replay", "run"]


@dataclass(slots=True)
class Source:
    """One input: its name (the `sender` column), its lines, how to parse them, and the
    instant that stands for lines before the file's first time (`ingest` stores them at the
    file's mtime; None: `analyze` only counts them)."""

    name: str
    lines: Iterable[str]
    options: ParseOptions
    fallback: float | None = None


class Observed(NamedTuple):
    """One input line with its parsed event and the instant it counts at."""

    ts: float
    line: str
    event: Event
    sender: str
    placed: bool  # a time of its own or of an earlier line of its file, and a host: the correlator takes it


@dataclass(slots=True)
class Replay:
    """What a replay found: every state change, and every incident (open ones with end None)."""

    states: list[StateChanged]
    incidents: list[Incident]
    lines: int
    unplaced: int  # lines without a timestamp before any timestamped line of their file, or without a host
    end: float | None = None  # the instant of the last line: where the replay's clock stopped


SETTLE_EVERY: Final = 1000
"""Lines between two calls of the history's `settle` (replays and checkpoints), as `serve`
settles after each chunk of at most that many lines."""

Keep = Callable[[Observed, tuple[Any, ...], tuple[Any, ...] | None], None]
"""Takes each line's `messages` row and its `events` row, if any (`ingest` stores them)."""


def _placed(source: Source) -> Iterator[Observed]:
    parser = LineParser(source.options)
    clock = EventClock()
    fallback = -float("inf") if source.fallback is None else source.fallback
    for line in source.lines:
        event = parser.parse(line)
        ts = event.record.ts
        at = clock.at(None, None if ts is None else ts.timestamp(), None)
        yield Observed(fallback if at is None else at, line, event, source.name,
                       at is not None and event.record.host is not None)


def observed(sources: Iterable[Source]) -> Iterator[Observed]:
    """Every line of `sources`, parsed, placed and merged by event time."""
    return iter(heapq.merge(*(_placed(source) for source in sources), key=lambda o: o.ts))


def run(lines: Iterable[Observed], stage: LineStage, keep: Keep | None = None) -> Replay:
    """Take `lines` through `stage`, ticking the correlator at each deadline before a line."""
    history = stage.history
    result = Replay(states=[], incidents=[], lines=0, unplaced=0)
    incidents: dict[tuple[str, str, float], Incident] = {}

    def changed(changes: Iterable[Change]) -> None:
        for change in changes:
            if isinstance(change, StateChanged):
                result.states.append(change)
            elif isinstance(change, INCIDENT_CHANGES):
                incidents[incident_key(change.incident)] = change.incident

    def rewound(rewound: Rewound | None) -> None:
        if rewound is not None:
            result.states.extend(rewound.states)
            incidents.update((incident_key(i), i) for i in rewound.incidents)
            for incident in rewound.retracted:
                incidents.pop(incident_key(incident), None)

    end: float | None = None
    for item in lines:
        result.lines += 1
        at = item.ts
        if item.placed:
            while (due := history.correlator.next_deadline()) is not None and due <= at:
                changed(history.tick(due))
            end = at if end is None else max(end, at)
        else:
            result.unplaced += 1
        mrow, erow, changes = stage.take(item.event, item.line, at, at, "file", item.sender, placed=item.placed)
        changed(changes)
        if keep is not None and mrow is not None:
            keep(item, mrow, erow)
        if item.placed and result.lines % SETTLE_EVERY == 0:
            rewound(history.settle(at))
    if end is not None:
        rewound(history.settle(end, force=True))
    result.incidents = sorted(incidents.values(), key=lambda i: (i.start, i.pair, i.condition))
    result.end = end
    return result


def replay(sources: Iterable[Source | tuple[Iterable[str], ParseOptions]], correlator: Correlator) -> Replay:
    """`analyze`: what the correlator finds in the files (`(lines, options)` for a nameless one).

    It holds every line anyway, so it takes them in event-time order: a file written out of
    order (however far) is judged as if it had not been. `ingest` streams, so a line behind
    the merge is a late line to it, as to `serve`."""
    named = (s if isinstance(s, Source) else Source("", s[0], s[1]) for s in sources)
    return run(sorted(observed(named), key=lambda o: o.ts), LineStage(correlator, rows=False))
