"""`collector.history`: late lines re-decide the correlator's past (issue 17, part 2).

In process, with the real parser and correlator: the lines of a split brain reach the history
with one server's lines late, as a forwarder cut off during the partition delivers them. What
the service would store (the changes applied at once, then each replay's corrections and
retractions) must end as `analyze` of the same lines.
"""

from __future__ import annotations

from datetime import UTC

from collector.config import parse_config
from collector.correlator import Correlator
from collector.domain import INCIDENT_CHANGES, Incident
from collector.history import REWIND_INTERVAL, History
from collector.replay import replay
from parsers import LineParser, ParseOptions
from tests.collector.test_event_time import DAY, frame, servers, split_brain

Stored = dict[tuple[str, str, float], tuple[tuple[str, ...], float | None, bool]]


def texts(rel: str) -> list[tuple[str, str]]:
    """(host, line) of the synthetic split brain, in time order."""
    return [(host, frame(offset, host, message).partition(b" ")[2].decode()) for offset, host, message in split_brain(rel)]


class Store:
    """The incidents table as the pipeline writes it: the latest row per incident wins."""

    def __init__(self) -> None:
        self.rows: Stored = {}

    def write(self, incident: Incident, retracted: bool = False) -> None:
        self.rows[(incident.pair, incident.condition, incident.start)] = (incident.servers, incident.end, retracted)

    def standing(self) -> list[tuple[str, tuple[str, ...], float, float | None]]:
        return sorted((c, servers, start, end) for (_, c, start), (servers, end, gone) in self.rows.items() if not gone)


def deliver(history: History, store: Store, lines: list[tuple[float, str]]) -> None:
    """Feed (arrival, line) in order, settling after each and once more a second after the
    last (as the pipeline's clock does), and write what the pipeline writes."""
    parser = LineParser(ParseOptions(tz=UTC))
    for arrived, text in lines:
        event = parser.parse(text)
        assert event.record.ts is not None
        for change in history.feed(event, event.record.ts.timestamp(), text, arrived) + history.tick(arrived):
            if isinstance(change, INCIDENT_CHANGES):
                store.write(change.incident)
        settle(history, store, arrived)
    settle(history, store, lines[-1][0] + REWIND_INTERVAL)


def settle(history: History, store: Store, wall: float) -> None:
    rewound = history.settle(wall)
    if rewound is not None:
        for incident in rewound.incidents:
            store.write(incident)
        for incident in rewound.retracted:
            store.write(incident, retracted=True)


def analyzed(lines: list[str]) -> list[tuple[str, tuple[str, ...], float, float | None]]:
    found = replay([(lines, ParseOptions())], Correlator(parse_config({}))).incidents
    return sorted((i.condition, i.servers, i.start, i.end) for i in found)


def test_one_server_a_minute_late_ends_as_analyze_with_the_wrong_incidents_retracted() -> None:
    lines = texts("hist1")
    a, b = servers("hist1")
    on_time = [text for host, text in lines if host == a]
    late = [text for host, text in lines if host == b]
    history, store = History(Correlator(parse_config({}))), Store()
    deliver(history, store, [(1000.0, text) for text in on_time] + [(1060.0, late[0])])
    alone = store.standing()  # A's incidents as A alone tells them: no split brain
    assert alone and all(servers == (a,) for _, servers, _, _ in alone)
    deliver(history, store, [(1060.0 + i * 0.01, text) for i, text in enumerate(late[1:])])
    expected = analyzed([text for _, text in lines])
    assert {c for c, *_ in expected} >= {"communications_interrupted", "partner_down", "split_brain"}
    assert store.standing() == expected  # corrected in place: the same incidents, now of both servers
    # late: all of B's lines but its first (it joins the pair) and its last (10:01:25.4, A's newest too)
    assert history.replays >= 1 and history.late_applied == len(late) - 2


def test_a_line_late_by_less_than_the_slack_is_applied_at_once() -> None:
    """A's lines of 10:00:10 come after B's of 10:00:10.4, 0.4 s late: applied as they come
    (A moves to communications-interrupted at once), counted late, nothing held."""
    lines = [(offset, text) for (offset, _, _), (_, text) in zip(split_brain("hist2"), texts("hist2"), strict=True)]
    start = [text for offset, text in lines if offset < 10.0]
    a_then_b = [text for offset, text in lines if offset in (10.0, 10.4)]
    history, store = History(Correlator(parse_config({}))), Store()
    deliver(history, store, [(1000.0, text) for text in start + a_then_b[2:] + a_then_b[:2]])
    assert history.late_applied == 2 and history.replays == 0
    assert history.correlator.snapshot()[0].servers[0].state == "communications-interrupted"


def test_a_line_older_than_the_journal_reaches_is_applied_at_its_own_time() -> None:
    """The journal keeps `journal_lines` lines; a late line before its oldest checkpoint is
    applied as it comes (no replay can place it) and is still counted late."""
    lines = texts("hist3")
    a, b = servers("hist3")
    history, store = History(Correlator(parse_config({})), journal_lines=4), Store()
    on_time = [text for host, text in lines if host == a]
    late = [text for host, text in lines if host == b]
    deliver(history, store, [(1000.0 + i, text) for i, text in enumerate(on_time)] + [(1100.0, late[0])])
    assert history.late_applied == 0  # (B was in no pair yet: its first line is not late)
    deliver(history, store, [(1101.0, late[1])])
    assert history.replays == 0 and history.late_applied == 1


def test_a_queue_flushed_days_later_is_replayed_while_another_pair_is_idle() -> None:
    """A pair that has logged nothing runs on the wall clock. When old lines (a forwarder's
    queue, days late) reach a live service, one server's on time and the other's later, the
    idle pair's clock must not date the checkpoints past every old line, else the late lines
    cannot be replayed and are applied out of order (two incidents of one server each, no split
    brain). Found under load in CI: the tick that runs the idle pair came between chunks."""
    lines = texts("hist4")
    a, b = servers("hist4")
    wall = DAY + 36000 + 2 * 86400  # two days after the lines were logged
    correlator = Correlator(parse_config({"pair": [{"name": "idle", "hosts": ["idle-1", "idle-2"]}]}))
    correlator.restore([], [], wall)  # as `serve` does at its start: every pair is evaluated at the first tick
    history, store = History(correlator), Store()
    parser = LineParser(ParseOptions(tz=UTC))
    for text in [text for host, text in lines if host == a]:  # one chunk of on-time lines, settled as the pipeline does
        event = parser.parse(text)
        assert event.record.ts is not None
        for change in history.feed(event, event.record.ts.timestamp(), text, wall):
            if isinstance(change, INCIDENT_CHANGES):
                store.write(change.incident)
        settle(history, store, wall)
    for change in history.tick(wall):  # the pipeline's clock: the idle pair runs to the wall clock
        if isinstance(change, INCIDENT_CHANGES):
            store.write(change.incident)
    settle(history, store, wall)
    late = [text for host, text in lines if host == b]
    deliver(history, store, [(wall + 60 + i * 0.01, text) for i, text in enumerate(late)])
    assert history.replays >= 1
    assert store.standing() == analyzed([text for _, text in lines])
