"""Prometheus metrics: the contract names, the fleet tally, the pair collector, the service's own.

The names and label sets are a contract (DESIGN.md "Metrics"), listed once in `CONTRACT` and
checked against DESIGN.md by tests/collector/test_metrics.py. Three pieces:

* `FleetTally`, owned by the pipeline, keeps what counters need and the correlator does not
  (lease messages, refusals, no-free lines, pools, resyncs, transitions, last-seen times);
  `snapshot()` gives an immutable copy to any thread.
* `PairCollector` yields every `dhcp_*` family (`collector.exposition.SeriesFamily`) at scrape
  time from one correlator snapshot and one tally snapshot, never from live state.
* `ServiceMetrics` holds the service's own counters and gauges as `prometheus_client` objects.

Nothing registers at import time or touches `prometheus_client.REGISTRY`. Choices a reader
needs: the tally keys by server (and dhcpd relationship) and joins the `pair` label at scrape
time, so a pair renamed when its partner is learned keeps its history; a repeat line counts N
in the line counters and once in transitions and resyncs; no `_created` series (stripped
per registry, since `disable_created_metrics()` is process-global); no MAC or IP labels, and
every keyed table is capped (`MAX_SERIES`). How resyncs pair their start and end, and where
a transition's `from_state` comes from: `FleetTally`'s methods.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from functools import partial
from typing import Any, Final, NamedTuple

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.exposition import choose_encoder, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.openmetrics.exposition import UNDERSCORES
from prometheus_client.openmetrics.exposition import (
    generate_latest as openmetrics_latest,
)

from collector.domain import CONDITIONS, TRANSPORTS, Change, PairView, PoolCounts, StateChanged, host_key
from collector.exposition import SeriesFamily, render
from parsers.events import (
    DHCPD_STATES,
    KEA_STATES,
    LEASE_LINES,
    LINE_CODES,
    LINE_KINDS,
    Event,
    FailoverHA,
    FailoverPool,
    FailoverState,
    FailoverUpdate,
    LeaseNoFree,
    SyslogOther,
    line_code,
)

__all__ = [
    "CONTRACT",
    "FROM_UNKNOWN",
    "FleetTally",
    "MetricSpec",
    "PairCollector",
    "ServiceMetrics",
    "TallySnapshot",
    "UdpDropsCollector",
    "exposition",
    "program_label",
    "read_proc_net_udp",
    "udp_drops",
]

# --- names (contract: DESIGN.md "Metrics") -------------------------------------------------

DHCP_FAILOVER_STATE = "dhcp_failover_state"
DHCP_FAILOVER_STATE_CHANGE_TIMESTAMP = "dhcp_failover_state_change_timestamp_seconds"
DHCP_FAILOVER_TRANSITIONS = "dhcp_failover_transitions_total"
DHCP_FAILOVER_CONDITION = "dhcp_failover_condition"
DHCP_FAILOVER_REFUSED = "dhcp_failover_refused_total"
DHCP_FAILOVER_SYNC_DURATION = "dhcp_failover_sync_duration_seconds"
DHCP_FAILOVER_SYNCS = "dhcp_failover_syncs_total"
DHCP_POOL_LEASES = "dhcp_pool_leases"
DHCP_LEASE_MESSAGES = "dhcp_lease_messages_total"
DHCP_NO_FREE_LEASES = "dhcp_no_free_leases_total"
DHCP_SERVER_LAST_MESSAGE_TIMESTAMP = "dhcp_server_last_message_timestamp_seconds"
PAIRWATCH_SYSLOG_MESSAGES = "pairwatch_syslog_messages_total"
PAIRWATCH_SYSLOG_ERRORS = "pairwatch_syslog_errors_total"
PAIRWATCH_PARSE_UNRECOGNIZED = "pairwatch_parse_unrecognized_total"
PAIRWATCH_QUEUE_DEPTH = "pairwatch_queue_depth"
PAIRWATCH_STORE_ROWS = "pairwatch_store_rows_total"
PAIRWATCH_STORE_INSERT_FAILURES = "pairwatch_store_insert_failures_total"
PAIRWATCH_STORE_INSERT_DURATION = "pairwatch_store_insert_duration_seconds"
PAIRWATCH_SPOOL_BYTES = "pairwatch_spool_bytes"
PAIRWATCH_BUILD_INFO = "pairwatch_build_info"
PAIRWATCH_SENDERS_REFUSED = "pairwatch_senders_refused_total"
PAIRWATCH_UDP_RECEIVE_DROPS = "pairwatch_udp_receive_drops_total"
PAIRWATCH_LATE_LINES = "pairwatch_late_lines_total"
PAIRWATCH_SENDER_CLOCK_OFFSET = "pairwatch_sender_clock_offset_seconds"


class MetricSpec(NamedTuple):
    """One contract metric: its exposition name, type and label names (DESIGN's order)."""

    name: str
    type: str  # counter | gauge | histogram | info
    labels: tuple[str, ...]


CONTRACT: tuple[MetricSpec, ...] = (
    MetricSpec(DHCP_FAILOVER_STATE, "gauge", ("pair", "server", "side", "state")),
    MetricSpec(DHCP_FAILOVER_STATE_CHANGE_TIMESTAMP, "gauge", ("pair", "server", "side")),
    MetricSpec(DHCP_FAILOVER_TRANSITIONS, "counter", ("pair", "server", "side", "from_state", "to_state")),
    MetricSpec(DHCP_FAILOVER_CONDITION, "gauge", ("pair", "condition")),
    MetricSpec(DHCP_FAILOVER_REFUSED, "counter", ("pair", "server", "reason")),
    MetricSpec(DHCP_FAILOVER_SYNC_DURATION, "gauge", ("pair", "server")),
    MetricSpec(DHCP_FAILOVER_SYNCS, "counter", ("pair", "server", "result")),
    MetricSpec(DHCP_POOL_LEASES, "gauge", ("pair", "server", "pool", "kind")),
    MetricSpec(DHCP_LEASE_MESSAGES, "counter", ("server", "type")),
    MetricSpec(DHCP_NO_FREE_LEASES, "counter", ("server", "network")),
    MetricSpec(DHCP_SERVER_LAST_MESSAGE_TIMESTAMP, "gauge", ("server",)),
    MetricSpec(PAIRWATCH_SYSLOG_MESSAGES, "counter", ("transport",)),
    MetricSpec(PAIRWATCH_SYSLOG_ERRORS, "counter", ("reason",)),
    MetricSpec(PAIRWATCH_PARSE_UNRECOGNIZED, "counter", ("program",)),
    MetricSpec(PAIRWATCH_QUEUE_DEPTH, "gauge", ()),
    MetricSpec(PAIRWATCH_STORE_ROWS, "counter", ("table",)),
    MetricSpec(PAIRWATCH_STORE_INSERT_FAILURES, "counter", ()),
    MetricSpec(PAIRWATCH_STORE_INSERT_DURATION, "histogram", ()),
    MetricSpec(PAIRWATCH_SPOOL_BYTES, "gauge", ()),
    MetricSpec(PAIRWATCH_BUILD_INFO, "info", ("version",)),
    MetricSpec(PAIRWATCH_SENDERS_REFUSED, "counter", ("listener",)),
    MetricSpec(PAIRWATCH_UDP_RECEIVE_DROPS, "counter", ("listener",)),
    MetricSpec(PAIRWATCH_LATE_LINES, "counter", ("applied",)),
    MetricSpec(PAIRWATCH_SENDER_CLOCK_OFFSET, "gauge", ("host",)),
)
"""Every DESIGN.md metric, in DESIGN's order. `listener` is the transport and port
("udp:5514"), never an address."""

# --- label values ------------------------------------------------------------------------

FROM_UNKNOWN = "unknown"
"""`from_state` when neither the correlator nor the line knows the previous state."""
SYNC_RESULTS = ("ok", "failed")
POOL_KINDS = PoolCounts._fields  # ("total", "free", "backup"): the `kind` label of dhcp_pool_leases
LEASE_TYPES = ("discover", "offer", "request", "ack", "nak", "release", "decline", "inform")
"""The `type` label: the suffix of the eight `lease.*` message kinds (`lease.no_free` lines are
counted in `dhcp_no_free_leases_total`, not here)."""
STORE_TABLES = ("messages", "events", "states", "incidents", "hosts")
STORE_INSERT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
MAX_SERIES = 10_000
"""Per keyed table of the tally: new keys beyond this are dropped (existing ones keep counting)."""

_STATES_OF = {"dhcpd": tuple(sorted(DHCPD_STATES)), "kea": tuple(sorted(KEA_STATES))}
"""Each implementation's state names in series order (sorted once, not per server and scrape)."""
_DHCPD_SYNC_FAILS = frozenset({"startup", "shutdown"})
_DHCPD_SYNC_ENDS = frozenset({"normal", "partner-down", "communications-interrupted"})
_KEA_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(us|µs|ms|s|sec|seconds?)?\b", re.IGNORECASE)
_KEA_UNITS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0}
_MAC = re.compile(r"\b[0-9A-Fa-f]{1,2}(?:[:-][0-9A-Fa-f]{1,2}){5}\b")
_IPV4 = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")
_IPV6 = re.compile(r"\b[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}\b")
_DHCPD_PROGRAM = re.compile(r"dhcpd\d*")
_KEA_PROGRAM = re.compile(r"kea-[a-z0-9-]{1,24}")

# Relationship key of a Kea server (its lines name no relationship).
_NO_RELATIONSHIP = ""
_LEASE_LABELS: Final = tuple(cls.kind.partition(".")[2] for cls in LINE_KINDS[:LEASE_LINES])
"""`dhcp_leases_total`'s `kind` of each lease line code (`lease.ack` -> `ack`)."""
_SYSLOG_OTHER: Final = LINE_CODES[SyslogOther.kind]

ServerKey = tuple[str, str]  # (server, relationship or "")


# --- the tally ---------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class TallySnapshot:
    """An immutable copy of a `FleetTally`, every table sorted by key.

    Keys name servers by host key (as `ServerView.host`) and dhcpd relationships ("" for
    Kea); `PairCollector` maps them to pairs.
    """

    last_message: tuple[tuple[str, float], ...] = ()  # server -> seconds
    lease_messages: tuple[tuple[tuple[str, str], int], ...] = ()  # (server, type)
    refused: tuple[tuple[tuple[str, str], int], ...] = ()  # (server, reason)
    no_free: tuple[tuple[tuple[str, str], int], ...] = ()  # (server, network)
    pools: tuple[tuple[tuple[str, str], PoolCounts], ...] = ()  # (server, network) -> counts
    transitions: tuple[tuple[tuple[str, str, str, str, str], int], ...] = ()  # (server, rel, side, from, to)
    sync_durations: tuple[tuple[ServerKey, float], ...] = ()  # (server, rel) -> seconds
    syncs: tuple[tuple[tuple[str, str, str], int], ...] = ()  # (server, rel, result)


class FleetTally:
    """What the counters need from the event stream, per server; see the module docstring.

    Owned by the pipeline: `observe` is called for every line, after the correlator fed it,
    with the changes the correlator returned. `lock` guards the tables, so `snapshot()` may
    be called from another thread (a scrape) at any time; whoever calls `observe` while
    scrapes may run holds `lock` around it (the pipeline takes it once per chunk of lines:
    per line it cost as much as a counter update, and a scrape waits for one chunk at most).
    """

    def __init__(self, *, strip_domain: bool = False, max_series: int = MAX_SERIES) -> None:
        self._strip = strip_domain
        self._max = max_series
        self.lock = threading.Lock()
        self._hosts: dict[str, str] = {}  # host as logged -> host key
        self._reasons: dict[str, str] = {}  # refusal text -> label value
        self._last_seen: dict[str, float] = {}
        self._leases: dict[tuple[str, str], int] = {}
        self._refused: dict[tuple[str, str], int] = {}
        self._no_free: dict[tuple[str, str], int] = {}
        self._pools: dict[tuple[str, str], PoolCounts] = {}
        self._transitions: dict[tuple[str, str, str, str, str], int] = {}
        self._sync_running: dict[ServerKey, float] = {}
        self._sync_last: dict[ServerKey, float] = {}
        self._syncs: dict[tuple[str, str, str], int] = {}
        self._order: list[list[Any]] = [[] for _ in fields(TallySnapshot)]  # each snapshot table's keys, sorted

    def observe(self, event: Event, changes: Sequence[Change], now: float) -> None:
        """Count one line (`event`, seen at `now`) and the changes the correlator made of it."""
        payload = event.payload
        lean = line_code(payload)
        if lean is not None:
            self.observe_line(event.record.host, *lean, now, changes, event.repeated or 1)
            return
        raw = event.record.host
        if raw is None:
            return
        host = self._host(raw)
        n = event.repeated or 1
        if now > self._last_seen.get(host, -math.inf):
            self._set(self._last_seen, host, now)  # (a late line does not move it back)
        if isinstance(payload, LeaseNoFree):
            self._add(self._no_free, (host, payload.network or ""), n)
        elif isinstance(payload, FailoverPool):
            self._set(self._pools, (host, payload.network), PoolCounts(payload.total, payload.free, payload.backup))
        elif isinstance(payload, FailoverUpdate):
            self._dhcpd_update(host, payload, now)
        elif isinstance(payload, FailoverHA):
            self._kea_ha(host, payload, now)
        if changes:
            self.count_changes(event, changes)

    def observe_line(self, raw: str | None, code: int, refused: str | None, now: float, changes: Sequence[Change],
                     n: int = 1) -> None:
        """`observe` for a line of the kind `LINE_KINDS[code]`, by its values (the lean line
        path's lines, most of them)."""
        if raw is None:
            return
        host = self._hosts.get(raw) or self._host(raw)
        last_seen = self._last_seen
        seen = last_seen.get(host)
        if seen is None:  # (`_set`, inline: this runs for nearly every line)
            if code != _SYSLOG_OTHER and len(last_seen) < self._max:
                last_seen[host] = now
        elif now > seen:  # (a late line does not move it back)
            last_seen[host] = now
        if code < LEASE_LINES:
            key = (host, _LEASE_LABELS[code])
            leases = self._leases
            if key in leases:  # (`_add`, inline: this runs for nearly every line)
                leases[key] += n
            elif len(leases) < self._max:
                leases[key] = n
            if refused is not None:
                self._add(self._refused, (host, self._reason(refused)), n)
        if changes:
            self._count(changes, None, None)

    def count_changes(self, event: Event, changes: Sequence[Change]) -> None:
        """Count the transitions among `changes`, which `event`'s line caused (`observe` does it
        for a line applied at once; the pipeline for a late line when its replay ran)."""
        payload = event.payload
        self._count(changes, payload, payload.relationship if isinstance(payload, FailoverState) else None)

    def _count(self, changes: Sequence[Change], payload: object, relationship: str | None) -> None:
        for change in changes:
            if isinstance(change, StateChanged):
                self._transition(change, payload, relationship or _NO_RELATIONSHIP)

    def snapshot(self) -> TallySnapshot:
        """An immutable copy; the tables are copied under the lock, ordered outside it.

        These tables only ever gain keys, so each one's sorted keys are kept from one
        snapshot to the next and sorted again only when the table grew (sorting them on every
        scrape was a large part of a scrape's work). Each call
        orders its own copy by keys it holds itself, so scrapes on two threads cannot mix them."""
        with self.lock:
            tables: tuple[dict[Any, Any], ...] = (
                dict(self._last_seen),
                dict(self._leases),
                dict(self._refused),
                dict(self._no_free),
                dict(self._pools),
                dict(self._transitions),
                dict(self._sync_last),
                dict(self._syncs),
            )
        ordered = []
        for i, table in enumerate(tables):
            keys = self._order[i]
            if len(keys) != len(table):  # (equal length: the same keys, as none is ever removed)
                keys = self._order[i] = sorted(table)
            ordered.append(tuple([(key, table[key]) for key in keys]))
        return TallySnapshot(*ordered)

    # -- internals --------------------------------------------------------------------

    def _host(self, raw: str) -> str:
        key = self._hosts.get(raw)
        if key is None:
            if len(self._hosts) > 65536:  # spellings are bounded, not the hosts
                self._hosts.clear()
            key = self._hosts[raw] = host_key(raw, self._strip)
        return key

    def _reason(self, text: str) -> str:
        label = self._reasons.get(text)
        if label is None:
            label = _scrub(text)
            if len(self._reasons) < self._max:
                self._reasons[text] = label
        return label

    def _add(self, table: dict, key: tuple, n: int) -> None:
        if key in table:
            table[key] += n
        elif len(table) < self._max:
            table[key] = n

    def _set(self, table: dict, key: object, value: object) -> None:
        if key in table or len(table) < self._max:
            table[key] = value

    def _dhcpd_update(self, host: str, p: FailoverUpdate, now: float) -> None:
        """A dhcpd bulk resync runs from `Sent update request all message` (`request_all_sent`)
        to `peer update completed.` (`completed`, result `ok`); a `completed` with none running
        ends an ordinary update request (or one whose start was not seen) and is not counted.
        How a state change ends one: `_transition`."""
        if p.relationship is None:
            return
        key = (host, p.relationship)
        if p.phase == "request_all_sent":
            if key not in self._sync_running:  # a retry while one runs keeps the first start
                self._set(self._sync_running, key, now)
        elif p.phase == "completed":
            start = self._sync_running.pop(key, None)
            if start is not None:
                self._sync_done(key, "ok", now - start)

    def _kea_ha(self, host: str, p: FailoverHA, now: float) -> None:
        """A Kea sync runs from `HA_SYNC_START` to `HA_SYNC_SUCCESSFUL` (`ok`; the duration Kea
        states wins over the two lines' times, and it counts even when the start was not seen)
        or to a failure (`failed`, only when it ends a running sync: one failed attempt can log
        two failure lines). A retry while one runs keeps the first start."""
        key = (host, _NO_RELATIONSHIP)
        if p.event == "sync_started":
            if key not in self._sync_running:
                self._set(self._sync_running, key, now)
        elif p.event == "sync_done":
            start = self._sync_running.pop(key, None)
            stated = _kea_duration(p.detail)
            self._sync_done(key, "ok", stated if stated is not None else None if start is None else now - start)
        elif p.event == "sync_failed":
            if self._sync_running.pop(key, None) is not None:
                self._sync_done(key, "failed", None)

    def _sync_done(self, key: ServerKey, result: str, duration: float | None) -> None:
        self._add(self._syncs, (*key, result), 1)
        if duration is not None:
            self._set(self._sync_last, key, max(duration, 0.0))

    def _transition(self, change: StateChanged, payload: object, relationship: str) -> None:
        """Count a state change. `from_state` is the correlator's previous state; for a server's
        first state, the line's own `from` when it states one for that side (dhcpd `I move from
        X to Y`, Kea `server transitions from X`), else `FROM_UNKNOWN` (no state of either is
        called that). A dhcpd resync running when the server moves to `startup` or `shutdown`
        failed; one running into `normal`, `partner-down` or `communications-interrupted` ends
        uncounted, as in the correlator; a Kea sync ends when the server leaves `syncing`."""
        previous = change.previous
        if previous is None:
            if isinstance(payload, FailoverState) and payload.side == change.side and payload.to_state == change.state:
                previous = payload.from_state
            previous = previous or FROM_UNKNOWN
        key = (change.server, relationship)
        self._add(self._transitions, (*key, change.side, previous, change.state), 1)
        if change.side != "self" or key not in self._sync_running:
            return
        if relationship == _NO_RELATIONSHIP:  # Kea: leaving syncing ends an attempt
            if change.state != "syncing":
                del self._sync_running[key]
        elif change.state in _DHCPD_SYNC_FAILS:
            del self._sync_running[key]
            self._sync_done(key, "failed", None)
        elif change.state in _DHCPD_SYNC_ENDS:
            del self._sync_running[key]


def _kea_duration(detail: str | None) -> float | None:
    """Seconds from the duration HA_SYNC_SUCCESSFUL states (Kea prints e.g. `12.500 ms`)."""
    if not detail:
        return None
    m = _KEA_DURATION.match(detail)
    if m is None:
        return None
    unit = (m.group(2) or "s").lower()
    return float(m.group(1)) * _KEA_UNITS.get(unit, 1.0)


def _scrub(text: str) -> str:
    """A free-text label value without anything that looks like a MAC or an IP address."""
    text = _MAC.sub("<mac>", text)
    text = _IPV4.sub("<ip>", text)
    return _IPV6.sub("<ip>", text)


def program_label(program: str | None) -> str:
    """A bounded `program` label for `pairwatch_parse_unrecognized_total` (the syslog tag is
    sender-controlled): `dhcpd` for dhcpd and its numbered variants, Kea's `kea-*` daemon
    names as they are, `kea` for any other Kea spelling, else `other`."""
    if program is None:
        return "other"
    if _DHCPD_PROGRAM.fullmatch(program):
        return "dhcpd"
    if _KEA_PROGRAM.fullmatch(program):
        return program
    return "kea" if program.startswith("kea") else "other"


# --- the pair collector ------------------------------------------------------------------


def _families() -> dict[str, SeriesFamily]:
    """Every `dhcp_*` family, empty: describe() yields these, collect() fills fresh ones."""
    specs = {spec.name: spec for spec in CONTRACT if spec.name.startswith("dhcp_")}
    docs = {
        DHCP_FAILOVER_STATE: "Failover state of a server (side=self) or as it sees its partner (side=peer): 1 for "
        "the current state, 0 for every other known state.",
        DHCP_FAILOVER_STATE_CHANGE_TIMESTAMP: "Unix time of the last change of dhcp_failover_state.",
        DHCP_FAILOVER_TRANSITIONS: "Failover state transitions seen.",
        DHCP_FAILOVER_CONDITION: "1 while the condition holds for the pair (an incident is open), else 0.",
        DHCP_FAILOVER_REFUSED: "Client messages the server did not answer, by reason.",
        DHCP_FAILOVER_SYNC_DURATION: "Duration of the last successful bulk lease resync.",
        DHCP_FAILOVER_SYNCS: "Bulk lease resyncs ended, by result.",
        DHCP_POOL_LEASES: "Leases of a failover pool from its last balancing line (total, free = primary's, "
        "backup = secondary's).",
        DHCP_LEASE_MESSAGES: "DHCP messages logged by the server, by type.",
        DHCP_NO_FREE_LEASES: "Clients refused for lack of free leases (network empty when the line names none).",
        DHCP_SERVER_LAST_MESSAGE_TIMESTAMP: "Unix time of the last DHCP-server line from the host.",
    }
    out: dict[str, SeriesFamily] = {}
    for name, spec in specs.items():
        out[name] = SeriesFamily(name, docs[name], "counter" if spec.type == "counter" else "gauge", spec.labels)
    return out


class PairCollector:
    """The `dhcp_*` families, built afresh on every scrape from two immutable snapshots.

    `pairs_snapshot` returns the correlator's picture (`Correlator.snapshot()`, or the one the
    pipeline published last); `tally_snapshot` a `FleetTally.snapshot()`. Each is called once
    per scrape, by `collect()` only.
    """

    def __init__(
        self,
        pairs_snapshot: Callable[[], Sequence[PairView]],
        tally_snapshot: Callable[[], TallySnapshot],
    ) -> None:
        self._pairs = pairs_snapshot
        self._tally = tally_snapshot

    def describe(self) -> Iterable[Metric]:
        return list(_families().values())

    def collect(self) -> Iterable[Metric]:
        pairs = tuple(self._pairs())
        tally = self._tally()
        f = _families()
        self._pair_families(pairs, f)
        self._tally_families(pairs, tally, f)
        return list(f.values())

    @staticmethod
    def _pair_families(pairs: Sequence[PairView], f: dict[str, SeriesFamily]) -> None:
        # the families with most series take rows by `rows.append`: `add`'s call was 5 % of a scrape
        add_state = f[DHCP_FAILOVER_STATE].rows.append
        since, condition = f[DHCP_FAILOVER_STATE_CHANGE_TIMESTAMP], f[DHCP_FAILOVER_CONDITION]
        for view in pairs:
            known = _STATES_OF.get(view.implementation)
            for s in view.servers:
                sides = (("self", s.state, s.since), ("peer", s.peer_state, s.peer_since))
                for side, current, at in sides:
                    if side == "peer" and current is None:  # no valid view of the partner
                        continue
                    if known is not None:
                        names = known if current is None or current in known else sorted({*known, current})
                        for name in names:
                            add_state(((view.name, s.host, side, name), 1 if name == current else 0))
                    elif current is not None:
                        add_state(((view.name, s.host, side, current), 1))
                    if at is not None:
                        since.add((view.name, s.host, side), at)
            holds = dict(view.conditions)
            for name in CONDITIONS:
                condition.add((view.name, name), 1 if holds.get(name) else 0)

    @staticmethod
    def _tally_families(pairs: Sequence[PairView], t: TallySnapshot, f: dict[str, SeriesFamily]) -> None:
        # (server, relationship) -> pair names, and server -> pair names
        by_key: dict[ServerKey, list[str]] = {}
        by_host: dict[str, list[str]] = {}
        for view in pairs:
            relationship = (view.relationship or "") if view.implementation == "dhcpd" else _NO_RELATIONSHIP
            for s in view.servers:
                by_key.setdefault((s.host, relationship), []).append(view.name)
                by_host.setdefault(s.host, []).append(view.name)

        transitions = f[DHCP_FAILOVER_TRANSITIONS]
        for (host, rel, side, old, new), n in t.transitions:
            for pair in by_key.get((host, rel), ()):
                transitions.add((pair, host, side, old, new), n)
        durations = f[DHCP_FAILOVER_SYNC_DURATION]
        for (host, rel), seconds in t.sync_durations:
            for pair in by_key.get((host, rel), ()):
                durations.add((pair, host), seconds)
        # every server of every pair has both results from the start, so that
        # increase(...{result="failed"}) has a series before the first failure
        sync_counts = {(pair, host, result): 0 for (host, _), names in by_key.items() for pair in names
                       for result in SYNC_RESULTS}
        for (host, rel, result), n in t.syncs:
            for pair in by_key.get((host, rel), ()):
                sync_counts[(pair, host, result)] = n
        syncs = f[DHCP_FAILOVER_SYNCS]
        for labels, n in sorted(sync_counts.items()):
            syncs.add(labels, n)
        refused = f[DHCP_FAILOVER_REFUSED]
        for (host, reason), n in t.refused:
            for pair in by_host.get(host, ()):
                refused.add((pair, host, reason), n)
        pools = f[DHCP_POOL_LEASES]
        for (host, network), counts in t.pools:
            for pair in by_host.get(host, ()):
                for kind, value in zip(POOL_KINDS, counts, strict=True):
                    pools.add((pair, host, network, kind), value)

        add_lease = f[DHCP_LEASE_MESSAGES].rows.append  # (see _pair_families)
        counted = dict(t.lease_messages)
        for host in sorted(set(by_host) | {h for h, _ in counted}):
            for kind in LEASE_TYPES:
                key = (host, kind)
                add_lease((key, counted.get(key, 0)))
        no_free = f[DHCP_NO_FREE_LEASES]
        for (host, network), n in t.no_free:
            no_free.add((host, network), n)
        last = f[DHCP_SERVER_LAST_MESSAGE_TIMESTAMP]
        for host, seconds in t.last_message:
            last.add((host,), seconds)


# --- the service's own metrics -----------------------------------------------------------


class _WithoutCreated:
    """Collects prometheus_client metric objects, minus their `*_created` samples."""

    def __init__(self, metrics: Sequence[Counter | Gauge | Histogram | Info]) -> None:
        self._metrics = tuple(metrics)

    def describe(self) -> Iterable[Metric]:
        return [family for m in self._metrics for family in m.describe()]

    def collect(self) -> Iterator[Metric]:
        for m in self._metrics:
            for family in m.collect():  # a fresh Metric per call: ours to trim
                created = family.name + "_created"
                family.samples = [s for s in family.samples if s.name != created]
                yield family


class ServiceMetrics:
    """pairwatch's own metrics, registered on `registry` (never the global one).

    Known label values exist from the start with value 0: every transport, every store
    table, and every framing error reason given in `error_reasons` (the framing module owns
    that closed set). Attributes are ordinary prometheus_client objects:
    `syslog_messages.labels("udp").inc()`, `store_insert_duration.observe(s)`, ...
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        version: str,
        *,
        error_reasons: Iterable[str] = (),
        transports: Iterable[str] = TRANSPORTS,
        tables: Iterable[str] = STORE_TABLES,
        listeners: Iterable[str] = (),
    ) -> None:
        self.syslog_messages = Counter(PAIRWATCH_SYSLOG_MESSAGES, "Syslog messages received, by transport.",
                                       ["transport"], registry=None)
        self.syslog_errors = Counter(PAIRWATCH_SYSLOG_ERRORS, "Syslog frames or datagrams rejected, by reason.",
                                     ["reason"], registry=None)
        self.parse_unrecognized = Counter(PAIRWATCH_PARSE_UNRECOGNIZED,
                                          "dhcpd/Kea lines whose message is not (yet) in the vocabulary, by program "
                                          "(see program_label).", ["program"], registry=None)
        self.queue_depth = Gauge(PAIRWATCH_QUEUE_DEPTH, "Messages waiting in the pipeline queue.", registry=None)
        self.store_rows = Counter(PAIRWATCH_STORE_ROWS, "Rows written to the store, by table.", ["table"],
                                  registry=None)
        self.store_insert_failures = Counter(PAIRWATCH_STORE_INSERT_FAILURES, "Store inserts that failed.",
                                             registry=None)
        self.store_insert_duration = Histogram(PAIRWATCH_STORE_INSERT_DURATION, "Duration of one store insert.",
                                               buckets=STORE_INSERT_BUCKETS, registry=None)
        self.spool_bytes = Gauge(PAIRWATCH_SPOOL_BYTES, "Bytes of failed batches spooled to disk.", registry=None)
        self.build_info = Info(PAIRWATCH_BUILD_INFO.removesuffix("_info"), "pairwatch build.", registry=None)
        self.build_info.info({"version": version})
        self.senders_refused = Counter(PAIRWATCH_SENDERS_REFUSED, "Connections and datagrams refused because "
                                       "the sender is not in the listener's allowlist.", ["listener"], registry=None)
        self.late_lines = Counter(PAIRWATCH_LATE_LINES, "Lines older than their pair's newest line: applied at "
                                  "their own time (yes), or later than max_lateness and not applied (no).",
                                  ["applied"], registry=None)
        self.late_lines.labels("yes")
        self.late_lines.labels("no")
        self.sender_clock_offsets: Mapping[str, float] = {}
        """Host -> receive time minus header time, the minimum over a recent window; the
        pipeline replaces the mapping, a scrape reads the one it finds."""
        for listener in listeners:
            self.senders_refused.labels(listener)
        for transport in transports:
            self.syslog_messages.labels(transport)
        for reason in error_reasons:
            self.syslog_errors.labels(reason)
        for table in tables:
            self.store_rows.labels(table)
        registry.register(_WithoutCreated((
            self.syslog_messages,
            self.syslog_errors,
            self.parse_unrecognized,
            self.queue_depth,
            self.store_rows,
            self.store_insert_failures,
            self.store_insert_duration,
            self.spool_bytes,
            self.build_info,
            self.senders_refused,
            self.late_lines,
        )))
        registry.register(_ClockOffsets(self))


class _ClockOffsets:
    """`pairwatch_sender_clock_offset_seconds{host}` from the mapping the pipeline published
    last (a server with a wrong clock misplaces its lines against its partner's; Kea ends HA
    at 60 s of skew)."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self._metrics = metrics

    def describe(self) -> Iterable[Metric]:
        return [self._family()]

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        for host, offset in sorted(self._metrics.sender_clock_offsets.items()):
            family.add_metric([host], offset)
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(PAIRWATCH_SENDER_CLOCK_OFFSET, "Receive time minus header time of a sender's "
                                 "lines, the smallest in the last 5-10 minutes: delivery delay plus clock error.",
                                 labels=["host"])


def udp_drops(proc_net_udp: str) -> dict[int, int]:
    """Socket inode -> datagrams the kernel dropped, from the text of /proc/net/udp(6).

    The kernel counts a datagram as dropped when the socket's receive buffer is full: the
    loss that no counter of ours can see. Columns: `sl local rem st queues tr when retr uid
    timeout inode ref pointer drops`."""
    out: dict[int, int] = {}
    for line in proc_net_udp.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 13 and fields[9].isdigit() and fields[-1].isdigit():
            out[int(fields[9])] = int(fields[-1])
    return out


def read_proc_net_udp() -> str:
    """/proc/self/net/udp and udp6 (this process's network namespace), "" where absent."""
    parts = []
    for name in ("udp", "udp6"):
        try:
            with open(f"/proc/self/net/{name}", encoding="ascii", errors="replace") as f:
                parts.append(f.read())
        except OSError:
            pass
    return "".join(parts)


class UdpDropsCollector:
    """`pairwatch_udp_receive_drops_total{listener}`: the kernel's drop count of each UDP
    listener's socket, read at scrape time (`read` returns /proc/net/udp text; injectable).

    `sockets` holds (listener label, socket inode) pairs; listeners sharing a label add up."""

    def __init__(self, sockets: Sequence[tuple[str, int]], read: Callable[[], str] = read_proc_net_udp) -> None:
        self._sockets = tuple(sockets)
        self._read = read

    def describe(self) -> Iterable[Metric]:
        return [self._family()]

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        drops = udp_drops(self._read()) if self._sockets else {}
        totals: dict[str, int] = {}
        for label, inode in self._sockets:
            totals[label] = totals.get(label, 0) + drops.get(inode, 0)
        for label, total in totals.items():
            family.add_metric([label], total)
        yield family

    @staticmethod
    def _family() -> CounterMetricFamily:
        return CounterMetricFamily(PAIRWATCH_UDP_RECEIVE_DROPS.removesuffix("_total"), _UDP_DROPS_HELP,
                                   labels=["listener"])


_UDP_DROPS_HELP = "Datagrams the kernel dropped on a UDP listener's socket (receive buffer full)."


# --- exposition --------------------------------------------------------------------------


def exposition(registry: CollectorRegistry, accept_header: str | None) -> tuple[bytes, str]:
    """The /metrics body and its Content-Type for a request's Accept header (text format
    0.0.4 unless the scraper asks for OpenMetrics), written by `collector.exposition.render`
    when it can, else by prometheus_client."""
    encoder, content_type = choose_encoder(accept_header or "")
    body = None
    if encoder is generate_latest:
        body = render(registry, openmetrics_format=False)
    elif (isinstance(encoder, partial) and encoder.func is openmetrics_latest
          and encoder.keywords == {"escaping": UNDERSCORES, "version": "1.0.0"}):
        body = render(registry, openmetrics_format=True)
    return encoder(registry) if body is None else body, content_type
