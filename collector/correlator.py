"""The correlator: both servers' events in, pair states, conditions and incidents out.

Pure and single-threaded: `feed(event, now, line)` and `tick(now)` take the
time as an argument and return the changes they caused (`StateChanged`,
`IncidentOpened`, `IncidentClosed`); nothing here reads a clock or does I/O, so
`pairwatch analyze` (time = log timestamps) and `pairwatch serve` (time = the
receive clock) run the very same logic.

How it thinks (DESIGN.md "Pairs and conditions", log-messages.md section 4):

* A *pair* is found by the dhcpd relationship name both servers log, by Kea
  servers naming each other in HA messages, or declared in the config. State is
  kept per (pair, host): a dhcpd host in two relationships runs two state
  machines. What a host does for clients (refusals, answers, pool counts, last
  line) is kept once per host and shared by its pairs.
* Per server: its own state and since when, its view of the partner (valid
  only while the failover link is up for dhcpd; for Kea only until the partner
  moves again), and whether it serves clients, from the state machine.
* Each condition is a small function of a pair and the time that says whether
  it holds, since when, for which servers and with which evidence lines.
  Conditions are re-evaluated when an event concerns them and at the instants
  where the passing of time alone can change them (a per-pair deadline kept in
  a heap), so "recover-wait lasted too long" opens without any new line, at the
  exact instant the limit passed.
* An incident opens when its condition has held for the condition's hold time
  (zero for most; `split_brain_hold` for one side partner-down while the other
  serves, because two hosts' clocks and logs are never perfectly in step) and
  starts at the instant the condition became true; it closes when the
  condition no longer holds.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from collector import conditions
from collector.conditions import CONDITIONS
from collector.config import Config, Limits, PairConfig, load_config
from collector.domain import (
    Change,
    Incident,
    IncidentClosed,
    IncidentOpened,
    IncidentWidened,
    PairView,
    PoolCounts,
    ServerView,
    StateChanged,
    host_key,
)
from parsers.events import (
    DHCPD_STATES,
    KEA_STATES,
    LEASE_LINES,
    LINE_CODES,
    DhcpdOther,
    Event,
    FailoverConnection,
    FailoverHA,
    FailoverPool,
    FailoverState,
    FailoverUpdate,
    LeaseAck,
    LeaseNoFree,
    LeaseOffer,
    ServerLifecycle,
    SyslogOther,
    line_code,
)

DHCPD_SERVING = frozenset({"normal", "communications-interrupted", "partner-down"})
"""dhcpd states that answer clients (log-messages.md section 2)."""
PEER_DEMANDS_SILENCE = frozenset({"partner-down", "potential-conflict", "conflict-done", "resolution-interrupted"})
"""Partner states that stop a connected dhcpd server from answering ("peer demands: ...")."""
KEA_SERVING = frozenset(
    {"communication-recovery", "load-balancing", "hot-standby", "partner-down", "partner-in-maintenance",
     "passive-backup", "terminated"}
)
"""Kea HA states with the DHCP service enabled (`HAService::adjustNetworkState`)."""
NORMAL_SERVING = frozenset({"normal", "load-balancing", "hot-standby"})
INTERRUPTED = frozenset({"communications-interrupted", "communication-recovery"})
SKEW = 2.0
"""Seconds by which two hosts' timestamps may disagree about the same moment (NTP, and
syslog delivery order): lines closer than this are not taken as "one spoke after the other"."""
KEA_VIEW_LAG = 15.0
"""Kea reports the partner state it learned from the last heartbeat (every 10 s by default):
a report made less than this after the partner moved may still name the old state."""
COUNT_HOLD = 5.0
"""Seconds a pool with nothing left (free + backup == 0) must stand before it counts."""
SHARE_HOLD = 150.0
"""Seconds one server's share at zero (`free 0` on a primary's pool line, `backup 0` on a
secondary's) must stand: after a fresh start the secondary logs `backup 0` until its next
balancing run, a minute later, although the primary sent it half the pool at once (seen in
the lab with dhcpd 4.4.3)."""

# state -> the Limits attribute that bounds it (recover-wait is MCLT + grace, apart)
_DHCPD_STUCK = {
    "startup": "startup",
    "recover": "recover",
    "recover-done": "recover_done",
    "potential-conflict": "potential_conflict",
    "resolution-interrupted": "resolution_interrupted",
    "conflict-done": "conflict_done",
}
_KEA_STUCK = {"waiting": "kea_waiting", "syncing": "kea_syncing", "ready": "kea_ready"}
# states no server leaves by itself: stuck the moment they are entered
_DHCPD_DEAD_ENDS = frozenset({"shutdown", "paused"})
_KEA_DEAD_ENDS = frozenset({"terminated"})
_UNKNOWN_VIEW = frozenset({"unavailable", "undefined", "unknown-state"})
_START_STATE = {"dhcpd": "startup", "kea": "waiting"}
"""The state a server passes through right after its process starts (dhcpd moves to `startup`,
Kea's HA service begins in `waiting` without logging a transition): while a server is in it,
the lines of the same start (`Server starting service.` after `I move from recover to
startup`) do not reset it again."""
_ANSWERS = frozenset({LINE_CODES[LeaseOffer.kind], LINE_CODES[LeaseAck.kind]})
_PID_BLIND = frozenset({LINE_CODES[DhcpdOther.kind], LINE_CODES[SyslogOther.kind]})
"""Lines whose PID says nothing of the server process: dhcpd's `execute()` children and
`log()` statements write under dhcpd's name with their own PID. (Kea's helpers log under
names of their own, `kea-lfc`; a new kea-dhcp4 PID on any line is a new process.)"""
_KEA_START_EVENTS = frozenset({"init_ok", "configuration_successful", "service_started"})
"""Kea HA lines of a (re)start: the hooks library loaded and configured (also on a config
reload, after which the HA service begins again in `waiting`), and the service started. Kea
2.2 logs the first two before anything else of the HA service."""
_REFUSALS = ("not responding", "ignored")
"""Refusals that mean the server would not answer the client at all (failover state, policy)."""


# --- internal state --------------------------------------------------------------------


@dataclass(slots=True)
class _Activity:
    """Per host, shared by its pairs: what it did for clients and when it last spoke."""

    host: str
    last_seen: float | None = None
    last_line: str = ""
    last_refusal: float | None = None
    refusal_line: str = ""
    last_answer: float | None = None
    last_no_free: float | None = None
    no_free_line: str = ""
    pools: dict[str, tuple[PoolCounts, str]] = field(default_factory=dict)  # network -> counts, their line
    pools_empty_since: float | None = None  # a pool with nothing left for anyone
    share_empty_since: float | None = None  # a pool with one side's share at zero
    ha_name: str | None = None
    program: str | None = None  # the program and PID of its last server line that carried a PID
    pid: int | None = None
    pairs: list[_Pair] = field(default_factory=list)  # every pair the host is in


@dataclass(slots=True)
class _Server:
    activity: _Activity
    state: str | None = None
    since: float | None = None
    state_line: str = ""
    peer_state: str | None = None
    peer_since: float | None = None
    peer_line: str = ""
    peer_valid: bool = False
    ha_interrupted: float | None = None
    ha_line: str = ""
    sync_started: float | None = None
    sync_line: str = ""
    last_sync_duration: float | None = None
    partner_spoke: float | None = None  # first partner line since this server's last one
    starting: bool = False  # reset by a start sign, not yet out of its start state

    @property
    def host(self) -> str:
        return self.activity.host

    def sync_began(self, now: float, line: str) -> None:
        """A bulk resync started; a retry while one runs keeps the first start (a sync loop)."""
        if self.sync_started is None:
            self.sync_started = now
            self.sync_line = line

    def sync_ended(self, now: float) -> None:
        if self.sync_started is not None:
            self.last_sync_duration = now - self.sync_started
            self.sync_started = None


@dataclass(slots=True)
class _Truth:
    since: float
    servers: tuple[str, ...]
    evidence: tuple[str, ...]
    hold: float = 0.0


@dataclass(slots=True)
class _Pair:
    name: str
    implementation: str
    relationship: str | None
    limits: Limits  # the pair's own, MCLT included (config applies pair overrides)
    configured: bool
    servers: dict[str, _Server] = field(default_factory=dict)
    open: dict[str, Incident] = field(default_factory=dict)
    pending: dict[str, _Truth] = field(default_factory=dict)
    deadline: float = math.inf
    newest: float = -math.inf  # the event time of its newest line ...
    newest_arrived: float = 0.0  # ... and when that line arrived: the pair's clock runs from there

    def clock(self, wall: float) -> float:
        """The pair's own time at wall-clock `wall`: its newest line's time plus the wall time
        since that line arrived. Live that is the wall clock; for a burst of old lines it is
        the lines' own timeline, so holds and limits pass as they did when they were logged."""
        return wall if self.newest == -math.inf else self.newest + (wall - self.newest_arrived)


# --- the correlator --------------------------------------------------------------------


class Correlator:
    """Pair state machine over events from many hosts; see the module docstring."""

    def __init__(self, config: Config | None = None) -> None:
        self.config = config or load_config(None)
        self._strip = self.config.hosts.strip_domain
        self._activity: dict[str, _Activity] = {}  # by host_key
        self._logged_as: dict[str, _Activity] = {}  # by the host name as logged (hot path)
        self._pairs: dict[str, _Pair] = {}  # by name
        self._dhcpd_pairs: dict[tuple[str, str], _Pair] = {}  # (host, relationship) -> pair
        self._kea_pair: dict[str, _Pair] = {}  # host -> its Kea pair
        self._ha_hosts: dict[str, str] = {}  # Kea this-server-name -> host
        self._deadlines: list[tuple[float, int, str]] = []
        self._seq = 0
        self.reached = -math.inf
        """The latest instant anything was decided at (a line's time, or a deadline a tick ran
        a pair that has logged to): a copy of this correlator holds only what happened up to it
        (`collector.history`). A pair that has logged nothing runs on the wall clock and does not
        move it."""
        for pc in self.config.pairs:
            self._declare(pc)

    # -- public -----------------------------------------------------------------------

    def feed(self, event: Event, now: float, line: str = "", arrived: float | None = None) -> list[Change]:
        """Apply one event that happened at `now` (its event time); `line` is the raw text kept
        as evidence; `arrived` is when the service read it (None: at `now`, as a file replay).

        Before the line, its pairs' deadlines up to `now` are run at their exact instants, so
        a burst of old lines is judged as `analyze` judges the file. A line older than its
        pair's newest is applied at its own time (`collector.history` decides whether it
        re-decides the past instead, see `lateness`)."""
        record = event.record
        code, refused = line_code(event.payload) or (-1, None)
        changes = self.feed_line(record.host, record.program, record.pid, code, refused, now, line, arrived,
                                 event=event.payload)
        assert changes is not None  # (not `in_order`)
        return changes

    def feed_line(self, host_name: str | None, program: str | None, pid: int | None, code: int, refused: str | None,
                  now: float, line: str = "", arrived: float | None = None, in_order: bool = False,
                  event: object = None) -> list[Change] | None:
        """`feed` for a line of the kind `LINE_KINDS[code]`, from its values (`refused`: a lease
        line's refusal): what the lean line path hands over, without an event per line; code
        -1 for `feed`'s other kinds, whose payload is `event`. `in_order`: None, and nothing
        done, when the line lies behind the newest line of one of its host's pairs (`lateness`
        is then the caller's to ask): the one look at the host's pairs that a line in order
        needs.

        Nearly every line comes this way, so what every line does is written out here rather
        than called: first its pairs' deadlines up to `now` run and the host is seen; last it is
        its pairs' newest line, if it is, and tells them the host spoke (`_after_line`). The two
        calls it saved were 2 % of a line's instructions (bench/README.md)."""
        if host_name is None:
            return []
        activity = self._logged_as.get(host_name) or self._activity_logged_as(host_name)
        pairs = activity.pairs
        if in_order:
            for pair in pairs:
                if pair.newest > now:
                    return None
        out: list[Change] = []
        if now > self.reached:
            self.reached = now
        for pair in pairs:
            if pair.deadline <= now:
                self._advance(pair, now, out)
        if activity.last_seen is None or now > activity.last_seen:
            activity.last_seen = now
            activity.last_line = line
        if pid is not None and code not in _PID_BLIND and (pid != activity.pid or program != activity.program):
            self._process(activity.host, activity, program, pid, now, line, out)
        answered = False
        if code < 0:
            self._apply(activity, event, now, line, out)
        elif code < LEASE_LINES:
            if refused is not None:
                if refused.startswith(_REFUSALS):
                    activity.last_refusal = now
                    activity.refusal_line = line
                    self._reevaluate(activity.host, now, line, (conditions.NOT_SERVING.name,), out)
            elif code in _ANSWERS:
                activity.last_answer = now
                answered = True
        for pair in pairs:
            self._after_line(pair, activity, answered, now, line, out)
            if now > pair.newest:
                pair.newest, pair.newest_arrived = now, (now if arrived is None else arrived)
        return out

    def _apply(self, activity: _Activity, payload: object, now: float, line: str, out: list[Change]) -> None:
        """What an event of a kind that is no line kind (`feed`) tells the host's pairs."""
        host = activity.host
        if isinstance(payload, LeaseNoFree):
            activity.last_no_free = now
            activity.no_free_line = line
            self._reevaluate(host, now, line, (conditions.POOL_EXHAUSTED.name, conditions.NOT_SERVING.name), out)
        elif isinstance(payload, FailoverState):
            self._state(host, activity, payload, now, line, out)
        elif isinstance(payload, FailoverConnection):
            self._connection(host, payload, now, line, out)
        elif isinstance(payload, FailoverUpdate):
            self._update(host, payload, now, line, out)
        elif isinstance(payload, FailoverHA):
            self._ha(host, activity, payload, now, line, out)
        elif isinstance(payload, FailoverPool):
            self._pool(host, activity, payload, now, line, out)
        elif isinstance(payload, ServerLifecycle):
            if payload.event == "exit":
                self._exited(activity, now, line, out)
            else:  # the banner, `Server starting service.`, Kea's DHCP4_STARTING / DHCP4_STARTED
                self._started(host, activity, now, line, out)

    def _process(self, host: str, activity: _Activity, program: str | None, pid: int, now: float, line: str,
                 out: list[Change]) -> None:
        """A server line's (program, PID) other than the host's last (`feed_line` compares them):
        another PID of the same program is a restart."""
        if activity.pid is not None and activity.program == program:
            self._started(host, activity, now, line, out)  # a new process: the server restarted
        activity.program, activity.pid = program, pid

    def lateness(self, host_name: str | None, now: float) -> float | None:
        """How far (seconds) a line of `host_name` at `now` lies behind the newest line of the
        host's pairs: 0 when it is not late, None when it is later than a pair's
        `max_lateness` (stored, but it must not change the pair)."""
        if host_name is None:
            return 0.0
        behind = 0.0
        for pair in (self._logged_as.get(host_name) or self._activity_logged_as(host_name)).pairs:
            lag = pair.newest - now
            if lag > pair.limits.max_lateness:
                return None
            behind = max(behind, lag)
        return behind

    def _activity_logged_as(self, host_name: str) -> _Activity:
        activity = self._logged_as.get(host_name)
        if activity is None:
            if len(self._logged_as) > 65536:  # spelling variants are bounded, not the hosts
                self._logged_as.clear()
            activity = self._logged_as[host_name] = self._activity_of(host_key(host_name, self._strip))
        return activity

    def tick(self, wall: float) -> list[Change]:
        """Run every pair's deadlines up to the pair's own clock at wall-clock `wall` (time alone
        changes conditions), each at its exact instant. A replay passes its event time as `wall`."""
        out: list[Change] = []
        for pair in list(self._pairs.values()):
            if pair.deadline < math.inf:
                self._advance(pair, pair.clock(wall), out)
        return out

    def _advance(self, pair: _Pair, until: float, out: list[Change]) -> None:
        if until > self.reached and pair.newest > -math.inf:
            # (a pair that has logged nothing runs on the wall clock: its time says nothing of
            # where the lines are, and a checkpoint dated by it would come after every late
            # line of a queue flushed days later, which then could not be replayed)
            self.reached = until
        while pair.deadline <= until:
            due, pair.deadline = pair.deadline, math.inf
            self._evaluate(pair, due, "", CONDITIONS, out)

    def next_deadline(self) -> float | None:
        """The earliest instant at which `tick` could change something."""
        heap = self._deadlines
        while heap:
            due, _, name = heap[0]
            pair = self._pairs.get(name)
            if pair is not None and pair.deadline == due:
                return due
            heapq.heappop(heap)
        return None

    def restore(self, states: Iterable[Mapping[str, Any]], incidents: Iterable[Mapping[str, Any]], now: float) -> None:
        """Take back what an earlier run stored, so a restart does not forget that a server
        is in partner-down: the last state per (pair, server, side) (`ts`, `pair`, `server`,
        `side`, `state`, ISO 8601 `ts`) and the incidents still open (`condition`, `pair`,
        `servers`, `start`, `evidence`). Call it before the first `feed`. States count from
        when they were entered; every pair is re-evaluated at the first `tick`, so a state
        that outlived its limit while the service was down opens its incident then. Every
        restored server counts as heard at `now` (the restart): silence is measured from
        there, not from a past the service did not watch."""
        for row in sorted(states, key=lambda r: r["ts"]):
            pair = self._restored_pair(row["pair"], row["state"])
            server = self._join(pair, host_key(row["server"], self._strip))
            if server.activity.last_seen is None:
                server.activity.last_seen = now
            ts = datetime.fromisoformat(row["ts"]).timestamp()
            if row["side"] == "self":
                server.state, server.since = row["state"], ts
            else:
                server.peer_state, server.peer_since, server.peer_valid = row["state"], ts, True
        for pair in self._pairs.values():
            for host in pair.servers:
                if pair.implementation == "kea":
                    self._kea_pair.setdefault(host, pair)
                elif pair.relationship is not None:
                    self._dhcpd_pairs.setdefault((host, pair.relationship), pair)
        for row in incidents:
            found = self._pairs.get(row["pair"])
            if found is None or row["condition"] not in _CHECKS:
                continue
            found.open[row["condition"]] = Incident(
                condition=row["condition"],
                pair=found.name,
                servers=tuple(row["servers"]),
                start=datetime.fromisoformat(row["start"]).timestamp(),
                evidence=list(row["evidence"]),
            )
        for pair in self._pairs.values():
            pair.deadline = now
            self._seq += 1
            heapq.heappush(self._deadlines, (now, self._seq, pair.name))

    def _restored_pair(self, name: str, state: str) -> _Pair:
        """The pair a stored row names: configured, already restored, or made anew
        (Kea if any of its states is Kea's own, else dhcpd with the name as relationship)."""
        pair = self._pairs.get(name)
        if pair is None:
            pair = self._new_pair(name, "dhcpd", name)
        if not pair.configured and state in KEA_STATES - DHCPD_STATES:
            pair.implementation, pair.relationship = "kea", None
        return pair

    def open_incidents(self) -> list[Incident]:
        return [i for pair in self._pairs.values() for i in pair.open.values()]

    def snapshot(self) -> tuple[PairView, ...]:
        """An immutable picture of every pair, for metrics and the API."""
        views = []
        for pair in self._pairs.values():
            servers = tuple(
                ServerView(
                    host=s.host,
                    state=s.state,
                    since=s.since,
                    peer_state=s.peer_state if s.peer_valid else None,
                    peer_since=s.peer_since if s.peer_valid else None,
                    serving=_serving(pair, s),
                    last_seen=s.activity.last_seen,
                    ha_name=s.activity.ha_name,
                )
                for s in pair.servers.values()
            )
            conditions = tuple((c, c in pair.open) for c in CONDITIONS)
            views.append(PairView(name=pair.name, implementation=pair.implementation, relationship=pair.relationship,
                                  servers=servers, conditions=conditions))
        return tuple(views)

    # -- pairs ------------------------------------------------------------------------

    def _declare(self, pc: PairConfig) -> _Pair:
        implementation = pc.implementation or ("dhcpd" if pc.relationship else "unknown")
        pair = _Pair(
            name=pc.name,
            implementation=implementation,
            relationship=pc.relationship,
            limits=pc.limits,
            configured=True,
        )
        self._pairs[pair.name] = pair
        for raw in pc.hosts:
            host = host_key(raw, self._strip)
            self._join(pair, host)
            if pc.relationship is not None:
                self._dhcpd_pairs[(host, pc.relationship)] = pair
            if implementation != "dhcpd":
                self._kea_pair.setdefault(host, pair)
        return pair

    def _activity_of(self, host: str) -> _Activity:
        activity = self._activity.get(host)
        if activity is None:
            activity = self._activity[host] = _Activity(host)
        return activity

    def _join(self, pair: _Pair, host: str) -> _Server:
        server = pair.servers.get(host)
        if server is None:
            activity = self._activity_of(host)
            server = pair.servers[host] = _Server(activity)
            activity.pairs.append(pair)
        return server

    def _new_pair(self, name: str, implementation: str, relationship: str | None) -> _Pair:
        base, n = name, 1
        while name in self._pairs:  # a configured pair already uses the name
            n += 1
            name = f"{base}~{n}"
        pair = _Pair(name=name, implementation=implementation, relationship=relationship, limits=self.config.limits,
                     configured=False)
        self._pairs[name] = pair
        return pair

    def _dhcpd_pair(self, host: str, relationship: str) -> _Pair:
        pair = self._dhcpd_pairs.get((host, relationship))
        if pair is not None:
            return pair
        for pc_pair in self._activity_of(host).pairs:
            if pc_pair.configured and pc_pair.relationship is None and pc_pair.implementation in ("dhcpd", "unknown"):
                pair = pc_pair
                pair.relationship = relationship
                pair.implementation = "dhcpd"
                break
        else:
            pair = next((p for p in self._pairs.values() if p.relationship == relationship and not p.configured), None)
            if pair is None:
                pair = self._new_pair(relationship, "dhcpd", relationship)
        self._dhcpd_pairs[(host, relationship)] = pair
        self._join(pair, host)
        return pair

    def _kea(self, host: str) -> _Pair:
        """The Kea pair of `host`, alone in it until a partner is learned."""
        pair = self._kea_pair.get(host)
        if pair is None:
            for candidate in self._activity_of(host).pairs:
                if candidate.configured and candidate.implementation in ("kea", "unknown"):
                    pair = candidate
                    break
            else:
                pair = self._new_pair(host, "kea", None)
            pair.implementation = "kea"
            self._kea_pair[host] = pair
            self._join(pair, host)
        return pair

    def _kea_partner(self, host: str, partner_name: str, now: float, out: list[Change]) -> _Pair:
        """`host` named its partner: make them one pair (named `a+b` unless configured)."""
        partner = self._host_of_ha_name(partner_name)
        pair = self._kea(host)
        if partner == host or partner in pair.servers:
            return pair
        other = self._kea_pair.get(partner)
        if pair.configured or (other is not None and other.configured):
            return pair
        if len(pair.servers) >= 2:  # partner changed: keep the pair, last word wins
            return pair
        if other is not None and other is not pair:
            # the partner ran alone so far: its server (state and all) joins this pair
            moved = other.servers.get(partner)
            self._retire(other, now, out)
            if moved is not None:
                pair.servers[partner] = moved
                moved.activity.pairs.append(pair)
        self._join(pair, partner)
        self._kea_pair[partner] = pair
        del self._pairs[pair.name]
        pair.name = "+".join(sorted(pair.servers))
        self._pairs[pair.name] = pair
        pair.deadline = math.inf  # its heap entries carry the old name: schedule anew
        self._evaluate(pair, now, "", CONDITIONS, out)
        return pair

    def _retire(self, pair: _Pair, now: float, out: list[Change]) -> None:
        """Drop a provisional pair; what it had open ends here (the merged pair takes over)."""
        for incident in pair.open.values():
            incident.end = now
            out.append(IncidentClosed(incident))
        del self._pairs[pair.name]
        for host in pair.servers:
            pairs = self._activity_of(host).pairs
            if pair in pairs:
                pairs.remove(pair)
            if self._kea_pair.get(host) is pair:
                del self._kea_pair[host]

    def _host_of_ha_name(self, name: str) -> str:
        """A partner named by its this-server-name: the host that logs under it, else
        the name itself as a host name (the two are usually the same)."""
        return self._ha_hosts.get(name) or host_key(name, self._strip)

    def _learn_ha_name(self, activity: _Activity, name: str | None) -> None:
        if name and activity.ha_name != name:
            activity.ha_name = name
            self._ha_hosts[name] = activity.host

    # -- event handlers -----------------------------------------------------------------

    def _state(self, host: str, activity: _Activity, p: FailoverState, now: float, line: str,
               out: list[Change]) -> None:
        if p.relationship is not None:
            pair = self._dhcpd_pair(host, p.relationship)
        else:
            self._learn_ha_name(activity, p.ha_name)
            pair = self._kea(host)
        server = pair.servers[host]
        if p.side == "self":
            if p.to_state != _START_STATE.get(pair.implementation):
                server.starting = False
            self._set_state(pair, server, p.to_state, now, line, out)
            if pair.implementation == "kea":
                server.ha_interrupted = None
                if p.to_state != "syncing":
                    server.sync_started = None
                partner = p.partner_state
                if partner is not None and partner not in _UNKNOWN_VIEW:
                    self._set_view(pair, server, partner, now, line, out)
                elif partner is not None:
                    server.peer_valid = False
            elif p.to_state in ("communications-interrupted", "startup"):
                server.peer_valid = False  # the link is down: the last view is stale
            if p.to_state in ("normal", "partner-down", "communications-interrupted", "shutdown"):
                server.sync_started = None
        else:
            self._set_view(pair, server, p.to_state, now, line, out)
        self._evaluate(pair, now, line, CONDITIONS, out)

    def _set_state(self, pair: _Pair, server: _Server, state: str, now: float, line: str, out: list[Change]) -> None:
        previous = server.state
        if previous != state or server.since is None:
            out.append(StateChanged(ts=now, pair=pair.name, server=server.host, side="self", state=state,
                                    previous=previous))
            server.state = state
            server.since = now
        server.state_line = line

    def _set_view(self, pair: _Pair, server: _Server, state: str, now: float, line: str, out: list[Change]) -> None:
        if server.peer_state != state or not server.peer_valid:
            out.append(StateChanged(ts=now, pair=pair.name, server=server.host, side="peer", state=state,
                                    previous=server.peer_state))
            server.peer_since = now
        server.peer_state = state
        server.peer_line = line
        server.peer_valid = True

    def _started(self, host: str, activity: _Activity, now: float, line: str, out: list[Change],
                 pairs: Iterable[_Pair] | None = None) -> None:
        """A start sign: what was known of the server belongs to its previous process.

        Its own state becomes unknown (or stays, when it is already the state a start passes
        through), its view of the partner unknown, a resync or interruption it had running
        ends. Until it leaves its start state, further signs of the same start change nothing:
        dhcpd logs `I move from recover to startup` before `Server starting service.`."""
        for pair in activity.pairs if pairs is None else pairs:
            server = pair.servers[host]
            if server.starting:
                continue
            server.starting = True
            server.peer_valid = False
            server.ha_interrupted = None
            server.sync_started = None
            if server.state is not None and server.state != _START_STATE.get(pair.implementation):
                server.state = None
                server.since = now
                server.state_line = line
            self._evaluate(pair, now, line, CONDITIONS, out)

    def _exited(self, activity: _Activity, now: float, line: str, out: list[Change]) -> None:
        """An exit line: the server is down, so its last state and view stop counting."""
        for pair in activity.pairs:
            server = pair.servers[activity.host]
            server.starting = False
            server.peer_valid = False
            server.ha_interrupted = None
            server.sync_started = None
            if server.state is not None:
                server.state = None
                server.since = now
                server.state_line = line
            self._evaluate(pair, now, line, CONDITIONS, out)

    def _connection(self, host: str, p: FailoverConnection, now: float, line: str, out: list[Change]) -> None:
        if p.relationship is None:
            return
        pair = self._dhcpd_pair(host, p.relationship)
        if p.status in ("disconnected", "timeout"):
            pair.servers[host].peer_valid = False
        self._evaluate(pair, now, line, CONDITIONS, out)

    def _update(self, host: str, p: FailoverUpdate, now: float, line: str, out: list[Change]) -> None:
        if p.relationship is None:
            return
        pair = self._dhcpd_pair(host, p.relationship)
        server = pair.servers[host]
        if p.phase == "request_all_sent":
            server.sync_began(now, line)
        elif p.phase == "completed":
            server.sync_ended(now)
        self._evaluate(pair, now, line, CONDITIONS, out)

    def _ha(self, host: str, activity: _Activity, p: FailoverHA, now: float, line: str, out: list[Change]) -> None:
        self._learn_ha_name(activity, p.ha_name)
        pair = self._kea_partner(host, p.partner, now, out) if p.partner else self._kea(host)
        server = pair.servers[host]
        if p.event in _KEA_START_EVENTS:
            self._started(host, activity, now, line, out, (pair,))
        elif p.event in ("dhcp_disabled", "dhcp_enabled") and p.detail:
            self._service_state(pair, server, activity, p.detail, now, line, out)
        elif p.event == "communication_interrupted":
            if server.ha_interrupted is None:
                server.ha_interrupted = now
            server.ha_line = line
        elif p.event == "sync_started":
            server.sync_began(now, line)
        elif p.event == "sync_done":
            server.sync_ended(now)
        self._evaluate(pair, now, line, CONDITIONS, out)

    def _service_state(self, pair: _Pair, server: _Server, activity: _Activity, state: str, now: float, line: str,
                       out: list[Change]) -> None:
        """`HA_LOCAL_DHCP_DISABLE/ENABLE ... is in the X state` names the server's state.

        Kea logs it just after the HA_STATE_TRANSITION into X, which already set the state;
        it is news only when the server starts: its HA service begins in `waiting` without a
        transition line. So it sets the state of a server that is starting or of unknown
        state, and `waiting` named while another state is held is a start."""
        if state == _START_STATE["kea"] and server.state != state and not server.starting:
            self._started(server.host, activity, now, line, out, (pair,))
        if server.starting or server.state is None:
            self._set_state(pair, server, state, now, line, out)

    def _pool(self, host: str, activity: _Activity, p: FailoverPool, now: float, line: str, out: list[Change]) -> None:
        activity.pools[p.network or p.pool] = (PoolCounts(p.total, p.free, p.backup), line)
        pools = activity.pools.values()
        if not any(counts.empty for counts, _ in pools):
            activity.pools_empty_since = None
        elif activity.pools_empty_since is None:
            activity.pools_empty_since = now
        if not any(counts.one_share_empty for counts, _ in pools):
            activity.share_empty_since = None
        elif activity.share_empty_since is None:
            activity.share_empty_since = now
        self._reevaluate(host, now, line, (conditions.POOL_EXHAUSTED.name,), out)

    def _after_line(
        self, pair: _Pair, activity: _Activity, answered: bool, now: float, line: str, out: list[Change]
    ) -> None:
        """What any line tells its host's pair: the host is alive. That ends its own
        silence and confirms views it holds; for its partner, it starts or extends the
        partner's silence (the first line clearly after the partner's last one is kept).
        An OFFER/ACK (`answered`) also ends a pair's not-serving. This runs for every
        line, so it stays cheap when nothing is open."""
        check_silent = False
        for other in pair.servers.values():
            if other.activity is activity:
                other.partner_spoke = None
            elif other.partner_spoke is None:
                last = other.activity.last_seen
                if last is None or now > last + SKEW:
                    other.partner_spoke = now
            elif now > (other.activity.last_seen or other.partner_spoke) + pair.limits.server_silent:
                check_silent = True
        opened, pending = pair.open, pair.pending
        if not (opened or pending or check_silent):
            return
        names = []
        silent, views = conditions.SERVER_SILENT.name, conditions.VIEWS_DISAGREE.name
        serving = conditions.NOT_SERVING.name
        if check_silent or silent in opened:  # server_silent has no hold: never pending
            names.append(silent)
        if views in opened or views in pending:
            names.append(views)
        if answered and (serving in opened or serving in pending):
            names.append(serving)
        if names:
            self._evaluate(pair, now, line, names, out)

    # -- evaluation ---------------------------------------------------------------------

    def _reevaluate(self, host: str, now: float, line: str, names: tuple[str, ...], out: list[Change]) -> None:
        for pair in self._activity_of(host).pairs:
            self._evaluate(pair, now, line, names, out)

    def _evaluate(self, pair: _Pair, now: float, line: str, names: Iterable[str], out: list[Change]) -> None:
        if pair.deadline <= now:  # a time-driven change is due: look at everything
            names, pair.deadline = CONDITIONS, math.inf
        deadline = math.inf
        for name in names:
            truth, upcoming = _CHECKS[name](pair, now)
            deadline = min(deadline, upcoming)
            incident = pair.open.get(name)
            if truth is None:
                pair.pending.pop(name, None)
                if incident is not None:
                    incident.end = now
                    if line:
                        incident.evidence.append(line)
                    del pair.open[name]
                    out.append(IncidentClosed(incident))
                continue
            if incident is not None:
                if truth.servers != incident.servers and not set(truth.servers) <= set(incident.servers):
                    incident.servers = tuple(sorted(set(incident.servers) | set(truth.servers)))
                    out.append(IncidentWidened(incident))
                continue
            if now - truth.since >= truth.hold:
                pair.pending.pop(name, None)
                incident = Incident(condition=name, pair=pair.name, servers=truth.servers, start=truth.since,
                                    evidence=list(dict.fromkeys(e for e in truth.evidence if e)))
                pair.open[name] = incident
                out.append(IncidentOpened(incident))
            else:
                pair.pending[name] = truth
                deadline = min(deadline, truth.since + truth.hold)
        if deadline < pair.deadline or (pair.deadline <= now and deadline < math.inf):
            pair.deadline = deadline
            self._seq += 1
            heapq.heappush(self._deadlines, (deadline, self._seq, pair.name))


# --- conditions: (pair, now) -> (truth or None, next instant this could change) -------------

Check = Callable[[_Pair, float], tuple[_Truth | None, float]]
_CHECKS: dict[str, Check] = {}


def _check(condition: conditions.Condition) -> Callable[[Check], Check]:
    """Register the decorated function as `condition`'s check."""
    def register(check: Check) -> Check:
        _CHECKS[condition.name] = check
        return check
    return register


def _serving(pair: _Pair, s: _Server) -> bool | None:
    if s.state is None:
        return None
    if pair.implementation == "kea":
        return s.state in KEA_SERVING
    if s.state not in DHCPD_SERVING:
        return False
    return not (s.peer_valid and s.peer_state in PEER_DEMANDS_SILENCE)


def _in_states(pair: _Pair, states: frozenset[str]) -> _Truth | None:
    hit = [s for s in pair.servers.values() if s.state in states]
    if not hit:
        return None
    return _Truth(max(s.since or 0.0 for s in hit), tuple(sorted(s.host for s in hit)),
                  tuple(s.state_line for s in hit))


@_check(conditions.PARTNER_DOWN)
def _partner_down(pair: _Pair, now: float) -> tuple[_Truth | None, float]:
    return _in_states(pair, frozenset({"partner-down"})), math.inf


@_check(conditions.COMMUNICATIONS_INTERRUPTED)
def _communications_interrupted(pair: _Pair, now: float) -> tuple[_Truth | None, float]:
    hit = [s for s in pair.servers.values() if s.state in INTERRUPTED or s.ha_interrupted is not None]
    if not hit:
        return None, math.inf
    since = max((s.since if s.state in INTERRUPTED else s.ha_interrupted) or 0.0 for s in hit)
    lines = tuple(s.state_line if s.state in INTERRUPTED else s.ha_line for s in hit)
    return _Truth(since, tuple(sorted(s.host for s in hit)), lines), math.inf


def _stuck_limit(pair: _Pair, state: str | None) -> float | None:
    if state is None:
        return None
    if state in (_KEA_DEAD_ENDS if pair.implementation == "kea" else _DHCPD_DEAD_ENDS):
        return 0.0
    if pair.implementation == "kea":
        attr = _KEA_STUCK.get(state)
    elif state == "recover-wait":
        return pair.limits.mclt + pair.limits.recover_wait_grace
    else:
        attr = _DHCPD_STUCK.get(state)
    return None if attr is None else float(getattr(pair.limits, attr))


@_check(conditions.STUCK)
def _stuck(pair: _Pair, now: float) -> tuple[_Truth | None, float]:
    hit, upcoming, starts = [], math.inf, []
    for s in pair.servers.values():
        limit = _stuck_limit(pair, s.state)
        if limit is None or s.since is None:
            continue
        due = s.since + limit
        if now >= due:
            hit.append(s)
            starts.append(due)
        else:
            upcoming = min(upcoming, due)
    if not hit:
        return None, upcoming
    return _Truth(max(starts), tuple(sorted(s.host for s in hit)), tuple(s.state_line for s in hit)), upcoming


@_check(conditions.SPLIT_BRAIN)
def _split_brain(pair: _Pair, now: float) -> tuple[_Truth | None, float]:
    """Both partner-down, or one partner-down while the other still serves normally.

    A dead server keeps its last state forever, so a state only counts while its
    server shows signs of life: partner-down servers must all have spoken since
    (or within the hold before) the last of them entered it, and a "normal" one
    must have spoken after its partner entered partner-down.
    """
    hold = pair.limits.split_brain_hold
    down = [s for s in pair.servers.values() if s.state == "partner-down"]
    if not down:
        return None, math.inf
    if len(down) >= 2:
        latest = max(s.since or 0.0 for s in down)
        if all((s.activity.last_seen or 0.0) >= latest - hold for s in down):
            return _Truth(latest, tuple(sorted(s.host for s in down)), tuple(s.state_line for s in down)), math.inf
        return None, math.inf
    entered = down[0].since or 0.0
    serving = [s for s in pair.servers.values()
               if s.state in NORMAL_SERVING and (s.activity.last_seen or 0.0) > entered]
    if not serving:
        return None, math.inf
    both = down + serving
    return _Truth(max(s.since or 0.0 for s in both), tuple(sorted(s.host for s in both)),
                  tuple(s.state_line for s in both), hold=hold), math.inf


@_check(conditions.VIEWS_DISAGREE)
def _views_disagree(pair: _Pair, now: float) -> tuple[_Truth | None, float]:
    """A's view of B differs from B's own state for longer than the grace.

    A view counts only while its holder shows it holds it: dhcpd drops it when the
    link goes down, Kea's is superseded by the partner's next transition (and may
    lag the partner by a heartbeat, `KEA_VIEW_LAG`), and the
    holder must have logged something after the two diverged (a dead server's last
    view is not an opinion). Past the grace but not yet confirmed that way, the
    condition waits (pending) for the holder's next line.
    """
    if len(pair.servers) != 2:
        return None, math.inf
    a, b = pair.servers.values()
    hits, upcoming = [], math.inf
    grace = pair.limits.views_disagree
    for viewer, viewed in ((a, b), (b, a)):
        if not viewer.peer_valid or viewed.state is None or viewer.peer_state is None:
            continue
        if pair.implementation == "kea" and (viewed.since or 0.0) > (viewer.peer_since or 0.0) - KEA_VIEW_LAG:
            continue  # the report predates the partner's move, or may (it lags by a heartbeat)
        if viewer.peer_state == viewed.state:
            continue
        since = max(viewer.peer_since or 0.0, viewed.since or 0.0)
        if now - since >= grace:
            hits.append((since + grace, viewer, viewed, (viewer.activity.last_seen or 0.0) > since))
        else:
            upcoming = min(upcoming, since + grace)
    if not hits:
        return None, upcoming
    confirmed = [h for h in hits if h[3]]
    chosen = confirmed or hits
    start = min(h[0] for h in chosen)
    hosts = tuple(sorted({h[1].host for h in chosen} | {h[2].host for h in chosen}))
    evidence = tuple(line for _, viewer, viewed, _ in chosen for line in (viewer.peer_line, viewed.state_line))
    return _Truth(start, hosts, evidence, hold=0.0 if confirmed else math.inf), upcoming


@_check(conditions.NOT_SERVING)
def _not_serving(pair: _Pair, now: float) -> tuple[_Truth | None, float]:
    """No server of the pair answers clients: each one refused a client within the
    window, or sits in a state that answers nobody for the whole window, or has
    fallen silent (never heard counts as silent); and no OFFER/ACK in the window."""
    window = pair.limits.not_serving_window
    silent_after = pair.limits.server_silent
    upcoming = math.inf
    starts, evidence, actual = [], [], False
    for s in pair.servers.values():
        a = s.activity
        if a.last_answer is not None and now - a.last_answer < window:
            return None, a.last_answer + window
        reasons = []
        if a.last_refusal is not None and now - a.last_refusal < window:
            reasons.append(a.last_refusal)
            upcoming = min(upcoming, a.last_refusal + window)
            evidence.append(a.refusal_line)
        if _serving(pair, s) is False and s.since is not None:
            due = s.since + window
            if now >= due:
                reasons.append(due)
                evidence.append(s.state_line)
            else:
                upcoming = min(upcoming, due)
        if reasons:
            actual = True
            starts.append(min(reasons))
            continue
        silent_due = (a.last_seen + silent_after) if a.last_seen is not None else -math.inf
        if now >= silent_due:
            starts.append(silent_due)
        else:
            return None, min(upcoming, silent_due)
    if not actual:
        return None, upcoming
    return _Truth(max(starts), tuple(sorted(pair.servers)), tuple(evidence)), upcoming


@_check(conditions.SERVER_SILENT)
def _server_silent(pair: _Pair, now: float) -> tuple[_Truth | None, float]:
    """A server said nothing while its partner kept talking.

    "Kept talking" means the partner spoke after the server fell quiet (more than
    `SKEW` later) and again after the limit: either its first line came within the limit
    of the silence and it still spoke past the limit (silent from last line + limit),
    or its lines themselves span the limit (silent from its first line + limit).
    Both servers quiet and then one speaking first is a quiet night, not a silent
    server. It lasts until the silent server speaks.
    """
    limit = pair.limits.server_silent
    hits = []
    for s in pair.servers.values():
        first = s.partner_spoke
        if first is None:
            continue
        partner_last = max((o.activity.last_seen or 0.0) for o in pair.servers.values() if o is not s)
        quiet_since = s.activity.last_seen
        if quiet_since is not None and first <= quiet_since + limit < partner_last:
            hits.append((quiet_since + limit, s))
        elif partner_last > first + limit:
            hits.append((first + limit, s))
    if not hits:
        return None, math.inf
    return (
        _Truth(max(d for d, _ in hits), tuple(sorted(s.host for _, s in hits)),
               tuple(s.activity.last_line for _, s in hits)),
        math.inf,
    )


@_check(conditions.SYNC_SLOW)
def _sync_slow(pair: _Pair, now: float) -> tuple[_Truth | None, float]:
    limit = pair.limits.sync_slow
    hits, upcoming = [], math.inf
    for s in pair.servers.values():
        if s.sync_started is None:
            continue
        due = s.sync_started + limit
        if now >= due:
            hits.append((due, s))
        else:
            upcoming = min(upcoming, due)
    if not hits:
        return None, upcoming
    truth = _Truth(max(d for d, _ in hits), tuple(sorted(s.host for _, s in hits)), tuple(s.sync_line for _, s in hits))
    return truth, upcoming


@_check(conditions.POOL_EXHAUSTED)
def _pool_exhausted(pair: _Pair, now: float) -> tuple[_Truth | None, float]:
    window = pair.limits.pool_exhausted_window
    hits: list[tuple[float, str, str, float]] = []  # since, host, line, hold
    upcoming = math.inf
    for s in pair.servers.values():
        a = s.activity
        if a.last_no_free is not None and now - a.last_no_free < window:
            hits.append((a.last_no_free, a.host, a.no_free_line, 0.0))
            upcoming = min(upcoming, a.last_no_free + window)
        if a.pools_empty_since is not None:
            line = next(seen for counts, seen in a.pools.values() if counts.empty)
            hits.append((a.pools_empty_since, a.host, line, COUNT_HOLD))
        elif a.share_empty_since is not None:
            line = next(seen for counts, seen in a.pools.values() if counts.one_share_empty)
            hits.append((a.share_empty_since, a.host, line, SHARE_HOLD))
    if not hits:
        return None, upcoming
    hold = min(h[3] for h in hits)
    since = min(h[0] for h in hits)
    return _Truth(since, tuple(sorted({h[1] for h in hits})), tuple(h[2] for h in hits), hold), upcoming


if _CHECKS.keys() != set(CONDITIONS):  # (a condition added to the registry needs its check here)
    raise ImportError(f"conditions without a check: {sorted(set(CONDITIONS) - _CHECKS.keys())}")
