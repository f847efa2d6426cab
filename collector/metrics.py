"""Prometheus collectors: the pairs' `dhcp_*` families and the service's own metrics.

* `PairCollector` yields every `dhcp_*` family (`collector.exposition.SeriesFamily`) at scrape
  time from one correlator snapshot and one tally snapshot (`collector.tally`), never from
  live state.
* `ServiceMetrics` holds the service's own counters and gauges as `prometheus_client` objects.

The names come from `collector.metric_names`. Nothing registers at import time or touches
`prometheus_client.REGISTRY`. No `_created` series: stripped per registry, since
`disable_created_metrics()` is process-global.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from collector.conditions import CONDITIONS
from collector.domain import TRANSPORTS, PairView
from collector.exposition import SeriesFamily
from collector.metric_names import (
    CONTRACT,
    DHCP_FAILOVER_CONDITION,
    DHCP_FAILOVER_REFUSED,
    DHCP_FAILOVER_STATE,
    DHCP_FAILOVER_STATE_CHANGE_TIMESTAMP,
    DHCP_FAILOVER_SYNC_DURATION,
    DHCP_FAILOVER_SYNCS,
    DHCP_FAILOVER_TRANSITIONS,
    DHCP_LEASE_MESSAGES,
    DHCP_NO_FREE_LEASES,
    DHCP_POOL_LEASES,
    DHCP_SERVER_LAST_MESSAGE_TIMESTAMP,
    LEASE_TYPES,
    PAIRWATCH_BUILD_INFO,
    PAIRWATCH_LATE_LINES,
    PAIRWATCH_PARSE_UNRECOGNIZED,
    PAIRWATCH_QUEUE_DEPTH,
    PAIRWATCH_SENDER_CLOCK_OFFSET,
    PAIRWATCH_SENDERS_REFUSED,
    PAIRWATCH_SPOOL_BYTES,
    PAIRWATCH_STORE_INSERT_DURATION,
    PAIRWATCH_STORE_INSERT_FAILURES,
    PAIRWATCH_STORE_ROWS,
    PAIRWATCH_SYSLOG_ERRORS,
    PAIRWATCH_SYSLOG_MESSAGES,
    POOL_KINDS,
    STORE_INSERT_BUCKETS,
    STORE_TABLES,
    SYNC_RESULTS,
)
from collector.tally import NO_RELATIONSHIP, ServerKey, TallySnapshot
from parsers.events import DHCPD_STATES, KEA_STATES

__all__ = ["PairCollector", "ServiceMetrics"]

_STATES_OF = {"dhcpd": tuple(sorted(DHCPD_STATES)), "kea": tuple(sorted(KEA_STATES))}
"""Each implementation's state names in series order (sorted once, not per server and scrape)."""


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
            relationship = (view.relationship or "") if view.implementation == "dhcpd" else NO_RELATIONSHIP
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
