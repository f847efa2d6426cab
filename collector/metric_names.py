"""The metric names and label values pairwatch exports: a contract (DESIGN.md "Metrics"), listed
once in `CONTRACT` and checked against DESIGN.md by tests/collector/test_metrics.py."""

from __future__ import annotations

import re
from typing import NamedTuple

from collector.domain import PoolCounts

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

_DHCPD_PROGRAM = re.compile(r"dhcpd\d*")
_KEA_PROGRAM = re.compile(r"kea-[a-z0-9-]{1,24}")


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
