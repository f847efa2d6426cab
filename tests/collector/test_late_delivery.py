"""Issue 17's acceptance: real pair logs sent to `serve` store what `analyze` finds in the same
files, however late the lines arrive.

The logs are the lab's own: tests/fixtures/lab/SCENARIO/ holds each server's local log as its
rsyslog wrote it and the config pairwatch ran with (captured by tests/lab with
PAIRWATCH_LAB_CAPTURE=DIR). Each scenario goes to `serve` over TCP as RFC 5424 octet-counted
frames with the header times as logged, in each of these ways:

* paced: both servers merged in time order, each line at (its time - the first line's) / 20;
* burst: merged in time order, all at once (a forwarder's disk queue after a collector outage);
* one server 3 s or 60 s late: the other server's lines in a burst, then the late one's (its
  forwarder was cut off during the trouble, then caught up); the primary late, and the secondary.

Every delivery of every scenario runs at the same time into ONE service, so the file pays the
60 s wait once. Each (delivery, scenario) is its own pair: its hosts and relationship are
renamed in the text (`dhcp1` -> `c7-dhcp1`, also inside Kea's `ha-kea1`), and `analyze` runs on
exactly the renamed text. The correlator keeps every pair apart (its own clock and state), so
sharing a service changes nothing a pair sees.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest
import tomllib

from collector.config import parse_config
from collector.correlator import Correlator
from collector.domain import Incident
from collector.replay import Replay, replay
from parsers import ParseOptions
from tests.lab.harness import incidents_diff, iso_epoch
from tests.serving import ROOT, Serve, rfc5424_frame, serving, start_serve, stop

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lab"
PACE = 20.0
"""Paced delivery: the logs' own time, this many times faster."""
TOLERANCE = 1.0
"""Stored start and end may differ from analyze's by this much (the issue's bound)."""
SETTLE = 3.0
"""Seconds between the last line stored and reading the incidents: the store is written every
second (batch_interval), and a pair's clock runs a little past its last line, as it does live."""
DRAIN_DEADLINE = 60.0
LINE = re.compile(r"(?P<stamp>\S+) (?P<host>\S+) (?P<program>[^\s:\[]+)(?:\[(?P<pid>\d+)\])?:(?P<msg>.*)")
"""A local log line as tests/lab writes it: `STAMP HOST PROGRAM[PID]:MSG` (MSG as rsyslog's
`msg`, with its leading space)."""


@dataclass(frozen=True)
class Scenario:
    """One captured lab scenario: each server's local lines, and pairwatch's config."""

    name: str
    logs: dict[str, list[str]] = field(repr=False)  # host -> lines, in the order its rsyslog wrote them
    config: dict[str, Any] = field(repr=False)  # the lab's pairwatch.toml, parsed

    @classmethod
    def load(cls, directory: Path) -> Scenario:
        config = tomllib.loads((directory / "pairwatch.toml").read_text())
        hosts = [h for pair in config["pair"] for h in pair["hosts"]]
        logs = {h: (directory / f"{h}.log").read_text().splitlines() for h in hosts}
        return cls(directory.name, logs, config)


@dataclass(frozen=True)
class Delivery:
    """How a scenario's lines reach `serve`: `late` is the index (in the config's hosts, the
    primary first) of the server whose lines come `delay` s after the other's burst."""

    name: str
    paced: bool = False
    late: int | None = None
    delay: float = 0.0


SCENARIOS = [Scenario.load(d) for d in sorted(FIXTURES.iterdir()) if (d / "pairwatch.toml").exists()]
DELIVERIES = [
    Delivery("paced", paced=True),
    Delivery("burst"),
    Delivery("primary-3s-late", late=0, delay=3.0),
    Delivery("secondary-3s-late", late=1, delay=3.0),
    Delivery("primary-60s-late", late=0, delay=60.0),
    Delivery("secondary-60s-late", late=1, delay=60.0),
]


@dataclass(frozen=True)
class Copy:
    """A scenario under its own names (hosts and relationship prefixed with `tag`, the pair
    named `label.SCENARIO`), so many copies share one service and one store."""

    scenario: Scenario = field(repr=False)
    label: str
    tag: str

    @cached_property
    def _names(self) -> re.Pattern[str]:
        names = {h for h in self.scenario.logs} | {p["relationship"] for p in self.scenario.config["pair"]
                                                   if "relationship" in p}
        alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
        return re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])")

    def rename(self, text: str) -> str:
        return self._names.sub(lambda m: f"{self.tag}-{m.group(0)}", text)

    @property
    def pair(self) -> str:
        return f"{self.label}.{self.scenario.name}"

    @cached_property
    def logs(self) -> dict[str, list[str]]:
        """Renamed host -> renamed lines, the primary first."""
        return {self.rename(h): [self.rename(line) for line in lines] for h, lines in self.scenario.logs.items()}

    @cached_property
    def config(self) -> dict[str, Any]:
        """The scenario's config, its one pair renamed."""
        (pair,) = self.scenario.config["pair"]
        renamed = {**pair, "name": self.pair, "hosts": [self.rename(h) for h in pair["hosts"]]}
        if "relationship" in pair:
            renamed["relationship"] = self.rename(pair["relationship"])
        return {**self.scenario.config, "pair": [renamed]}

    @cached_property
    def analyzed(self) -> Replay:
        """What `analyze` finds in the renamed files (sources in the config's host order, as
        the merged deliveries send them)."""
        return replay([(lines, ParseOptions()) for lines in self.logs.values()],
                      Correlator(parse_config(self.config)))

    @property
    def expected(self) -> list[Incident]:
        return self.analyzed.incidents

    def write(self, directory: Path, late: int | None = None) -> list[Path]:
        """The renamed logs as files for `ingest`: one per host (`HOST.log`), or with `late`
        (a host's index) one central log in arrival order, that host's lines after all of its
        partner's (its forwarder was cut off, then caught up)."""
        logs = list(self.logs.items())
        if late is not None:
            logs = [(f"{self.tag}-central", logs[1 - late][1] + logs[late][1])]
        files: list[Path] = []
        for name, lines in logs:
            path = directory / f"{name}.log"
            path.write_text("".join(f"{line}\n" for line in lines))
            files.append(path)
        return files


def config_text(copies: Sequence[Copy]) -> str:
    """One serve/ingest config holding every copy's pair, each with its scenario's [limits] as
    its own; retention long enough that the fixtures never expire."""
    out = ["[store]", 'messages_ttl = "3650d"', 'states_ttl = "3650d"']
    for copy in copies:
        limits = dict(copy.config.get("limits", {}))
        mclt = limits.pop("mclt", None)
        for pair in copy.config["pair"]:
            own = {**limits, **pair.get("limits", {})}
            fields = {k: v for k, v in pair.items() if k != "limits"}
            if mclt is not None:
                fields.setdefault("mclt", mclt)
            out += ["", "[[pair]]", *(f"{k} = {json.dumps(v)}" for k, v in fields.items())]
            if own:
                out += ["[pair.limits]", *(f"{k} = {json.dumps(v)}" for k, v in own.items())]
    text = "\n".join(out) + "\n"
    shared = {p.name: p.limits for p in parse_config(tomllib.loads(text)).pairs}
    for copy in copies:  # the shared config limits each pair exactly as its own config did
        (own,) = parse_config(copy.config).pairs
        assert shared[own.name] == own.limits, (own.name, shared[own.name], own.limits)
    return text


@dataclass(frozen=True)
class Sent:
    """One line on the wire: its header time and its frame."""

    ts: float
    frame: bytes


def frames(copy: Copy) -> list[list[Sent]]:
    """Each host's lines as RFC 5424 frames, as rsyslog's RSYSLOG_SyslogProtocol23Format sends
    them (the message with its leading space, a LF inside the count), header time as logged."""
    out: list[list[Sent]] = []
    for lines in copy.logs.values():
        sent: list[Sent] = []
        for line in lines:
            m = LINE.fullmatch(line)
            assert m is not None, f"{copy.scenario.name}: not a local log line: {line!r}"
            frame = rfc5424_frame(m["stamp"], m["host"], m["program"], m["pid"] or "-", m["msg"] + "\n")
            sent.append(Sent(iso_epoch(m["stamp"]), frame))
        out.append(sent)
    return out


def plan(copy: Copy, delivery: Delivery) -> list[tuple[float, int, bytes]]:
    """(seconds after the start, connection, bytes) in sending order."""
    hosts = frames(copy)
    if delivery.late is None:  # merged in time order, the order `analyze` reads them in
        merged = sorted((s for sent in hosts for s in sent), key=lambda s: s.ts)  # stable: host order on ties
        if not delivery.paced:
            return [(0.0, 0, b"".join(s.frame for s in merged))]
        first = merged[0].ts
        return [((s.ts - first) / PACE, 0, s.frame) for s in merged]
    on_time = 1 - delivery.late
    return [(0.0, on_time, b"".join(s.frame for s in hosts[on_time])),
            (delivery.delay, delivery.late, b"".join(s.frame for s in hosts[delivery.late]))]


def send(port: int, steps: list[tuple[float, int, bytes]], start: float, errors: list[BaseException]) -> None:
    """Send `steps` at their times, each connection opened at its first send (a forwarder
    that reconnects); runs in its own thread."""
    connections: dict[int, socket.socket] = {}
    try:
        for at, key, data in steps:
            time.sleep(max(0.0, start + at - time.monotonic()))
            if key not in connections:
                connections[key] = socket.create_connection(("127.0.0.1", port), timeout=10)
            connections[key].sendall(data)
    except BaseException as exc:  # reported by the fixture, in the main thread
        errors.append(exc)
    finally:
        for conn in connections.values():
            conn.close()


def wait_stored(serve: Serve, count: int, since: dict[str, float]) -> None:
    """Every one of `count` more lines received and stored."""

    def done() -> bool:
        if serve.proc.poll() is not None:
            pytest.fail(f"serve exited with {serve.proc.returncode}:\n{serve.logs()}")
        try:
            now = counters(serve)
        except OSError:  # reported with the service's log when the deadline passes
            return False
        return now["received"] - since["received"] >= count and now["stored"] - since["stored"] >= count

    serve.poll(done, f"{count} lines received and stored", DRAIN_DEADLINE)


def counters(serve: Serve) -> dict[str, float]:
    samples = serve.samples()
    return {"received": samples.get(("pairwatch_syslog_messages_total", (("transport", "tcp"),)), 0.0),
            "stored": samples.get(("pairwatch_store_rows_total", (("table", "messages"),)), 0.0)}


def not_retracted(rows: list[dict[str, Any]], pair: str) -> list[dict[str, Any]]:
    """The pair's stored incidents that stand (a retracted one is kept, marked, and does not)."""
    return [r for r in rows if r["pair"] == pair and not r.get("retracted", False)]


def origin(copy: Copy) -> float:
    """The copy's first line: diffs show times after it."""
    return min(s.ts for sent in frames(copy) for s in sent[:1])


def describe(copy: Copy) -> str:
    lines = {host: len(lines) for host, lines in copy.logs.items()}
    return f"{copy.pair} ({copy.scenario.name} as {', '.join(copy.logs)}; lines {lines})"


@dataclass(frozen=True)
class Delivered:
    copies: dict[tuple[str, str], Copy] = field(repr=False)
    incidents: list[dict[str, Any]] = field(repr=False)  # /api/v1/incidents?all=1 once all was stored


def selected_deliveries(request: pytest.FixtureRequest) -> list[Delivery]:
    """The deliveries the session's tests of this module ask for."""
    names: set[str] = set()
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        if getattr(item, "module", None) is sys.modules[__name__] and callspec and "delivery" in callspec.params:
            names.add(callspec.params["delivery"].name)
    return [d for d in DELIVERIES if d.name in names]


@pytest.fixture(scope="module")
def delivered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Delivered]:
    """Every selected delivery of every scenario sent at once into one `serve`, then the stored
    incidents read once (only the deliveries of the selected tests are sent: `-k burst` does
    not wait 60 s)."""
    deliveries = selected_deliveries(request)
    copies = {(d.name, s.name): Copy(s, d.name, f"c{i * len(SCENARIOS) + j}")
              for i, d in enumerate(deliveries) for j, s in enumerate(SCENARIOS)}
    config = tmp_path_factory.mktemp("late-delivery") / "pairwatch.toml"
    config.write_text(config_text(list(copies.values())))
    for copy in copies.values():
        assert copy.expected, f"analyze finds no incident in {copy.scenario.name}: nothing to compare"
    with serving(tmp_path_factory, ["--config", str(config)]) as serve:
        before = counters(serve)
        errors: list[BaseException] = []
        start = time.monotonic() + 0.5
        by_name = {d.name: d for d in deliveries}
        threads = [threading.Thread(target=send, args=(serve.tcp, plan(copy, by_name[name]), start, errors), daemon=True)
                   for (name, _), copy in copies.items()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(max(d.delay for d in deliveries) + 60)
        if errors:
            pytest.fail(f"sending failed: {errors!r}\n--- serve log ---\n{serve.logs()}")
        total = sum(len(lines) for copy in copies.values() for lines in copy.logs.values())
        wait_stored(serve, total, before)
        time.sleep(SETTLE)
        rows = serve.json("/api/v1/incidents?all=1")["incidents"]  # type: ignore[index]
        yield Delivered(copies, rows)


@pytest.mark.integration
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
@pytest.mark.parametrize("delivery", DELIVERIES, ids=lambda d: d.name)
def test_serve_stores_what_analyze_finds(delivered: Delivered, delivery: Delivery, scenario: Scenario) -> None:
    """Same condition, pair and servers, start and end within 1 s, nothing extra or missing
    (a retracted incident does not count: it is stored to say it did not happen)."""
    copy = delivered.copies[(delivery.name, scenario.name)]
    diff = incidents_diff(copy.expected, not_retracted(delivered.incidents, copy.pair), TOLERANCE, origin(copy))
    assert not diff, f"{describe(copy)} delivered {delivery.name}:\n{diff}"


def test_the_fixtures_end_settled() -> None:
    """Every scenario ends with its pair settled: an hour on the pair's clock past the last
    line changes nothing. `analyze` stops its clock at the last line while `serve` keeps its
    pair clocks running, so only settled logs can be compared."""
    for scenario in SCENARIOS:
        copy = Copy(scenario, "settled", "s")
        correlator = Correlator(parse_config(copy.config))
        found = replay([(lines, ParseOptions()) for lines in copy.logs.values()], correlator)
        assert found.end is not None
        later: list[object] = []
        while (due := correlator.next_deadline()) is not None and due <= found.end + 3600:
            later += correlator.tick(due)
        later += correlator.tick(found.end + 3600)
        assert not later, f"{scenario.name}: after its last line: {later}"


@pytest.mark.integration
@pytest.mark.parametrize("late", [None, 0, 1], ids=["host-files", "central-primary-late", "central-secondary-late"])
def test_ingest_then_serve_shows_what_analyze_finds(tmp_path: Path, late: int | None) -> None:
    """`ingest` of the files, then `serve` on the same store: the stored incidents and the
    pairs' current states (rebuilt from the store at start) are what `analyze` found in each
    server's own log. The files are each server's log, or one central log written in arrival
    order, where one server's lines all come after its partner's (late lines to `ingest`)."""
    copies = [Copy(s, "ingest", f"i{j}") for j, s in enumerate(SCENARIOS)]
    assert all(copy.expected for copy in copies), "every scenario has incidents to compare"
    config = tmp_path / "pairwatch.toml"
    config.write_text(config_text(copies))
    files = [path for copy in copies for path in copy.write(tmp_path, late)]
    store = tmp_path / "store"
    done = subprocess.run([sys.executable, "-m", "collector.cli", "ingest", "--config", str(config),
                           "--store", f"embedded:{store}", *map(str, files)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    serve = start_serve(tmp_path, store=store, args=["--config", str(config)])
    try:
        assert serve.proc.poll() is None, serve.logs()
        rows = serve.json("/api/v1/incidents?all=1")["incidents"]  # type: ignore[index]
        pairs = {p["name"]: p for p in serve.json("/api/v1/pairs")["pairs"]}  # type: ignore[index]
    finally:
        stop(serve.proc)
    problems: list[str] = []
    for copy in copies:
        diff = incidents_diff(copy.expected, not_retracted(rows, copy.pair), TOLERANCE, origin(copy))
        if diff:
            problems.append(f"{describe(copy)} incidents:\n{diff}")
        last: dict[tuple[str, str], str] = {}
        for change in copy.analyzed.states:
            last[(change.server, change.side)] = change.state
        want = {host: (last.get((host, "self")), last.get((host, "peer"))) for host in copy.logs}
        view = pairs.get(copy.pair)
        have = {s["host"]: (s["state"], s["peer_state"]) for s in view["servers"]} if view else None
        if have != want:
            problems.append(f"{describe(copy)} states (self, peer): serve {have}, analyze {want}")
    assert not problems, "\n".join(problems)
