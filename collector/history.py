"""The correlator's recent past, kept so that a late line re-decides it.

A forwarder cut off from the collector queues its lines and sends them when it is back, so
they arrive minutes after the partner's lines of the same moments: exactly when the pair was
in trouble. Applied at their own time to a correlator that has moved on, they would be judged
against a history that never happened (a split brain's hold passed while one side was still
unheard). So the service keeps checkpoints of the correlator (pickled, one per
`CHECKPOINT_EVERY` seconds of event time) and a journal of the lines it fed since the oldest
one. A line more than `REORDER_SLACK` behind its pair's newest line is held; at most every
`REWIND_INTERVAL` the correlator is rebuilt from the newest checkpoint that precedes the held
lines, and the journal and the held lines are fed to it in event-time order: what `analyze`
does with the files. The incidents that replay decides differently come back as corrections;
those it no longer finds come back as retractions (`Rewound`).

Why checkpoints and not a reorder window: live metrics must move as soon as a line arrives,
and a forwarder's queue can be minutes late; a window that long would delay every alert by as
much. Lines less than `REORDER_SLACK` late (two senders' ordinary jitter, a clock a second
off) are applied at their own time without a replay: the correlator's own tolerance
(`collector.correlator.SKEW`) covers them.

Bounds: the journal keeps at most `JOURNAL_LINES` lines and nothing older than the pairs'
`max_lateness`; checkpoints go, oldest first, with the lines before them. A late line older
than the oldest checkpoint is applied at its own time, like an on-time line.
"""

from __future__ import annotations

import bisect
import math
import pickle
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from collector.correlator import Correlator
from collector.domain import INCIDENT_CHANGES, Change, Incident, StateChanged
from parsers import Event
from parsers.events import LEASE_LINES, LINE_KINDS, Record, line_code

__all__ = ["CHECKPOINT_EVERY", "History", "JOURNAL_LINES", "REORDER_SLACK", "REWIND_INTERVAL", "Rewound",
           "incident_key"]

REORDER_SLACK: Final = 2.0
"""Seconds a line may lie behind its pair's newest line and still be applied directly (the
correlator's `SKEW`: two hosts' clocks and deliveries are never exactly in step)."""
REWIND_INTERVAL: Final = 1.0
"""Wall seconds between two replays: the late lines of a flushing queue are replayed
together, so a sender whose lines are always a little late costs one replay a second."""
CHECKPOINT_EVERY: Final = 30.0
"""Event-time seconds between checkpoints: a replay feeds at most this much more than the
late lines' lateness."""
JOURNAL_LINES: Final = 100_000
"""Lines kept for replays (a lease line about 0.3 KB with its text, see `_Journal`): at 50
lines/s a pair's whole `max_lateness` hour, for a fleet at 10k lines/s ten seconds."""
_NOTED_STATES: Final = 100_000
"""State changes remembered, so a replay does not store one again."""


_Held = tuple[float, int, Event, str, float]
"""A line held for the next replay: (event time, feed order, event, line, arrival)."""


def line_event(host: str | None, program: str | None, pid: int | None, code: int, refused: str | None) -> Event:
    """The event of a line kept by its values (`LINE_KINDS[code]`): what the correlator reads of it."""
    cls = LINE_KINDS[code]
    payload = cls(refused=refused) if code < LEASE_LINES else cls(message="")  # type: ignore[call-arg]
    return Event(Record(host=host, program=program, pid=pid), payload)


class _Journal:
    """The lines fed since the oldest checkpoint, as one flat list of `WIDTH` values a line:
    (event time, feed order, event or None, host, program, PID, kind code, refusal, line,
    arrival).

    Flat, because the service keeps a great many of them: as objects (a tuple per line with
    its parsed event), every line left tracked containers behind for the garbage collector,
    and its young collections, walking them, stopped the service while a state change waited
    on its way to /metrics. One list rather than a list per field: the lean line path appends
    a line with one `extend` (`History.feed_line`); ten appends took 2.4 % more of a line's
    instructions (52,718 against 51,466 under cachegrind). Of a lease or unrecognised line
    (nearly all of them) only what the correlator reads is kept: host, program, PID, kind,
    refusal; other events are kept whole (else None)."""

    __slots__ = ("base", "rows")

    WIDTH: Final = 10

    def __init__(self) -> None:
        self.base = 0  # absolute position (lines fed before it) of the first line
        self.rows: list[Any] = []

    def __len__(self) -> int:
        return len(self.rows) // self.WIDTH

    def append(self, at: float, order: int, event: Event, line: str, arrived: float) -> None:
        """A line by its event (a lease or unrecognised line's only by its values, as the lean
        line path keeps it: see `History.feed_line`, which extends the rows itself)."""
        record = event.record
        code, refused = line_code(event.payload) or (-1, None)
        self.rows.extend((at, order, event if code < 0 else None, record.host, record.program, record.pid, code,
                          refused, line, arrived))

    def cut(self, start: int) -> list[_Held]:
        """Remove the lines from `start` on and return them, as they were fed."""
        rows = self.rows
        taken: list[_Held] = []
        for i in range(start * self.WIDTH, len(rows), self.WIDTH):
            at, order, event, host, program, pid, code, refused, line, arrived = rows[i:i + self.WIDTH]
            if event is None:
                event = line_event(host, program, pid, code, refused)
            taken.append((at, order, event, line, arrived))
        del rows[start * self.WIDTH:]
        return taken

    def drop(self, count: int) -> None:
        """Forget the first `count` lines."""
        del self.rows[:count * self.WIDTH]
        self.base += count


@dataclass(slots=True, frozen=True)
class _Checkpoint:
    reached: float  # the correlator's `reached` when it was taken
    position: int  # journal lines fed before it (absolute)
    mark: int  # `History._mark` when it was taken: incidents noted later may be re-decided
    state: bytes


@dataclass(slots=True)
class Rewound:
    """What a replay changed: rows to write, and what the late lines did for the tally."""

    states: list[StateChanged] = field(default_factory=list)  # state changes not stored before
    incidents: list[Incident] = field(default_factory=list)  # incidents as they now stand (new or corrected)
    retracted: list[Incident] = field(default_factory=list)  # stored incidents the corrected history lacks
    late: list[tuple[Event, list[Change]]] = field(default_factory=list)  # each held line and its own changes


def incident_key(incident: Incident) -> tuple[str, str, float]:
    """What makes an incident the same one across replays (which make new objects of it)."""
    return (incident.pair, incident.condition, incident.start)


def _as_written(incident: Incident) -> tuple[object, ...]:
    return (incident.servers, incident.end, tuple(incident.evidence))


class History:
    """A correlator with checkpoints and a journal; see the module docstring.

    `feed` and `tick` as the correlator's; `settle` after each chunk of lines (and on the
    clock) replays held late lines and takes checkpoints. `correlator` is the current one: a
    replay replaces it."""

    def __init__(self, correlator: Correlator, *, journal_lines: int = JOURNAL_LINES) -> None:
        self.correlator = correlator
        self._journal_lines = journal_lines
        self._max_lateness = correlator.config.limits.max_lateness
        self._journal = _Journal()
        self._order = 0
        self._checkpoints: list[_Checkpoint] = []  # oldest first, `reached` ascending
        self._held: list[_Held] = []
        self._mark = 0
        self._incidents: dict[tuple[str, str, float], tuple[Incident, tuple[object, ...], int]] = {}
        self._states: dict[tuple[float, str, str, str, str], None] = {}
        self._rewound_at = -math.inf
        self.late_applied = 0  # lines older than their pair's newest, applied or held for a replay
        self.late_ignored = 0  # later than `max_lateness`: stored, never applied
        self.replays = 0
        self._checkpoint()

    # -- the line path ------------------------------------------------------------------

    def feed(self, event: Event, at: float, line: str, arrived: float) -> list[Change]:
        """Apply a line at its event time `at`, or hold it for the next replay when it is
        more than `REORDER_SLACK` late and a checkpoint precedes it (then no changes yet)."""
        lag = self._admit(event.record.host, at)
        if lag is None:
            return []
        if lag > 0.0 and self._hold(lag, at):
            self._held.append((at, self._order, event, line, arrived))
            return []
        changes = self.correlator.feed(event, at, line, arrived)
        self._journal.append(at, self._order, event, line, arrived)
        if changes:
            self._note(changes)
        return changes

    def feed_line(self, host: str | None, program: str | None, pid: int | None, code: int, refused: str | None,
                  at: float, line: str, arrived: float) -> list[Change]:
        """`feed` for a line of the kind `LINE_KINDS[code]`, by its values (the lean line path,
        which nearly every line takes: a line in order goes to the correlator at once, which
        says so when it is not)."""
        if host is None:
            return []
        # (`in_order` given by position: by keyword the call took 270 more instructions a line)
        changes = self.correlator.feed_line(host, program, pid, code, refused, at, line, arrived, True)
        if changes is None:  # behind its pairs: `feed`'s way
            lag = self._admit(host, at)
            if lag is None:
                return []
            if self._hold(lag, at):
                self._held.append((at, self._order, line_event(host, program, pid, code, refused), line, arrived))
                return []
            changes = self.correlator.feed_line(host, program, pid, code, refused, at, line, arrived)
            assert changes is not None
        else:
            self._order += 1
        self._journal.rows.extend((at, self._order, None, host, program, pid, code, refused, line, arrived))
        if changes:
            self._note(changes)
        return changes

    def _admit(self, host: str | None, at: float) -> float | None:
        """How late an admitted line is (it then takes the next feed order); None when the
        correlator has no use for it: no host, or later than `max_lateness`."""
        if host is None:
            return None
        lag = self.correlator.lateness(host, at)
        if lag is None:
            self.late_ignored += 1
            return None
        self._order += 1
        return lag

    def _hold(self, lag: float, at: float) -> bool:
        """Whether a late line waits for the next replay: more than `REORDER_SLACK` late, with
        a checkpoint before it."""
        self.late_applied += 1
        return lag > REORDER_SLACK and self._checkpoints[0].reached <= at

    def tick(self, wall: float) -> list[Change]:
        changes = self.correlator.tick(wall)
        if changes:
            self._note(changes)
        return changes

    def settle(self, wall: float, force: bool = False) -> Rewound | None:
        """Replay the held lines when `REWIND_INTERVAL` has passed since the last replay (or
        `force`), then take a checkpoint when one is due. Returns what a replay changed."""
        rewound = None
        if self._held and (force or wall - self._rewound_at >= REWIND_INTERVAL):
            self._rewound_at = wall
            rewound = self._replay(wall)
        self._keep(wall)
        return rewound

    # -- replay -------------------------------------------------------------------------

    def _replay(self, wall: float) -> Rewound:
        held = sorted(self._held)
        self._held = []
        earliest = held[0][0]
        # the newest checkpoint before the earliest held line (trimmed meanwhile: the oldest one)
        index = max(bisect.bisect_right([c.reached for c in self._checkpoints], earliest) - 1, 0)
        checkpoint = self._checkpoints[index]
        correlator: Correlator = pickle.loads(checkpoint.state)
        before = {incident_key(i): i for i in correlator.open_incidents()}
        journal = self._journal
        lines = sorted(journal.cut(checkpoint.position - journal.base) + held)
        held_orders = {order for _, order, _, _, _ in held}
        changes: list[Change] = []
        result = Rewound()
        for at, order, event, line, arrived in lines:
            made = correlator.feed(event, at, line, arrived)
            changes.extend(made)
            journal.append(at, order, event, line, arrived)
            if order in held_orders:
                result.late.append((event, made))
        changes.extend(correlator.tick(wall))
        del self._checkpoints[index + 1:]
        self.correlator = correlator
        self.replays += 1
        self._diff(checkpoint.mark, before, changes, result)
        return result

    def _diff(self, mark: int, before: dict[tuple[str, str, float], Incident], changes: Sequence[Change],
              result: Rewound) -> None:
        """Fill `result` with what the replay's `changes` decided differently from what was noted
        after the checkpoint (`mark`) and from the incidents open in it (`before`)."""
        noted = self._incidents
        old = {key for key, (_, _, at) in noted.items() if at > mark} | before.keys()
        now: dict[tuple[str, str, float], Incident] = {}
        for change in changes:
            if isinstance(change, INCIDENT_CHANGES):
                now[incident_key(change.incident)] = change.incident
            elif isinstance(change, StateChanged):
                if (change.ts, change.pair, change.server, change.side, change.state) not in self._states:
                    result.states.append(change)
        for incident in self.correlator.open_incidents():
            now[incident_key(incident)] = incident
        for key in old - now.keys():
            entry = noted.pop(key, None)
            result.retracted.append(entry[0] if entry is not None else before[key])
        for key, incident in now.items():
            entry = noted.get(key)
            if entry is None or entry[1] != _as_written(incident):
                result.incidents.append(incident)
        self._note(changes)
        for key, incident in now.items():  # (open ones the replay only carried on, too)
            self._mark += 1
            noted[key] = (incident, _as_written(incident), self._mark)

    def _note(self, changes: Iterable[Change]) -> None:
        """Remember what was stored: state changes (a replay must not store them twice) and
        each incident as written, with when (a replay from an earlier checkpoint re-decides it)."""
        for change in changes:
            if isinstance(change, StateChanged):
                states = self._states
                if len(states) >= _NOTED_STATES:
                    del states[next(iter(states))]
                states[(change.ts, change.pair, change.server, change.side, change.state)] = None
            elif isinstance(change, INCIDENT_CHANGES):
                self._mark += 1
                incident = change.incident
                self._incidents[incident_key(incident)] = (incident, _as_written(incident), self._mark)

    # -- checkpoints and bounds -------------------------------------------------------------

    def _checkpoint(self) -> None:
        self._mark += 1
        journal = self._journal
        self._checkpoints.append(_Checkpoint(self.correlator.reached, journal.base + len(journal), self._mark,
                                             pickle.dumps(self.correlator, protocol=pickle.HIGHEST_PROTOCOL)))

    def _keep(self, wall: float) -> None:
        """Take a checkpoint when the correlator has moved `CHECKPOINT_EVERY` past the last one
        (or a quarter of the journal's lines were fed since), then drop what no late line may
        reach any more. (A checkpoint per chunk once the journal was full pickled the whole
        correlator every thousand lines.)"""
        reached = self.correlator.reached
        last = self._checkpoints[-1]
        journal = self._journal
        fed = journal.base + len(journal) - last.position
        if reached >= last.reached + CHECKPOINT_EVERY or fed >= max(1, self._journal_lines // 4):
            self._checkpoint()
        checkpoints = self._checkpoints
        drop = 0
        while drop + 1 < len(checkpoints) and (
            checkpoints[drop + 1].reached <= reached - self._max_lateness
            or journal.base + len(journal) - checkpoints[drop].position > self._journal_lines
        ):
            drop += 1
        if drop:
            del checkpoints[:drop]
            oldest = checkpoints[0]
            journal.drop(oldest.position - journal.base)
            for key in [k for k, (i, _, mark) in self._incidents.items() if mark < oldest.mark and i.end is not None]:
                del self._incidents[key]
