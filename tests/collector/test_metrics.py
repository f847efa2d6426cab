"""Metrics: contract names and labels, the fleet tally, the pair collector, the service's own.

Every test builds its own `CollectorRegistry()`; scenarios are real log lines parsed by the
real parsers and fed to a real `Correlator`, then to a `FleetTally`.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    Info,
    Summary,
    generate_latest,
)
from prometheus_client.openmetrics.exposition import (
    generate_latest as openmetrics_latest,
)
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString

import collector.exposition as exposition_module
from collector.conditions import CONDITIONS
from collector.correlator import Correlator
from collector.exposition import SeriesFamily, exposition, render
from collector.metric_names import CONTRACT, FROM_UNKNOWN, LEASE_TYPES, program_label
from collector.metrics import PairCollector, ServiceMetrics
from collector.tally import FleetTally, TallySnapshot
from collector.udp_drops import UdpDropsCollector
from parsers import Event, LineParser, Record
from parsers.events import DHCPD_STATES, KEA_STATES, LeaseDiscover
from tests.collector.scenario import OPTIONS, REL, ack, at, kea, line

REPO = Path(__file__).parents[2]
DESIGN = REPO.parent / "shared" / "DESIGN.md"  # DESIGN.md's own `../shared/...`, from the repository root
A, B = "dhcp1", "dhcp2"
KA, KB = "kea-a", "kea-b"
KEA_PAIR = "kea-a+kea-b"
MAC = re.compile(r"[0-9A-Fa-f]{1,2}(?:[:-][0-9A-Fa-f]{1,2}){5}")
IPV4 = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.]|/\d)")  # an address, not a network name like 192.0.2.0/24


# --- harness ---------------------------------------------------------------------------


class Fleet:
    """Lines -> LineParser -> Correlator -> FleetTally, time = the lines' own timestamps."""

    def __init__(self) -> None:
        self.correlator = Correlator()
        self.tally = FleetTally()
        self.parser = LineParser(OPTIONS)

    def feed(self, *lines: str) -> Fleet:
        for text in lines:
            event = self.parser.parse(text)
            assert event.record.ts is not None, text
            now = event.record.ts.timestamp()
            changes = self.correlator.feed(event, now, text)
            self.tally.observe(event, changes, now)
        return self

    def registry(self, *, service: bool = True) -> CollectorRegistry:
        registry = CollectorRegistry()
        registry.register(PairCollector(self.correlator.snapshot, self.tally.snapshot))
        if service:
            self.service = ServiceMetrics(registry, "0.1.0", error_reasons=("oversize", "bad_length"),
                                          listeners=("udp:5514",))
            self.service.sender_clock_offsets = {"dhcp1": 0.25}
            registry.register(UdpDropsCollector([("udp:5514", 1)], read=lambda: ""))
        return registry


def parsed(registry: CollectorRegistry) -> list:
    return list(text_string_to_metric_families(generate_latest(registry).decode()))


def samples(registry: CollectorRegistry, name: str) -> list[tuple[dict[str, str], float]]:
    return [(s.labels, s.value) for f in parsed(registry) for s in f.samples if s.name == name]


def peer(host: str, message: str, clock: str) -> str:
    return line(clock, host, f"failover peer {REL}: {message}")


def transition(clock: str, host: str, old: str, new: str, partner: str) -> str:
    return kea(clock, host, f"HA_STATE_TRANSITION {host}: server transitions from {old.upper()} to {new.upper()} state, "
                            f"partner state is {partner.upper()}")


def normal_pair() -> list[str]:
    return [
        peer(A, "I move from startup to normal", "08:00:00"),
        peer(B, "I move from startup to normal", "08:00:00"),
        peer(A, "peer moves from startup to normal", "08:00:00"),
        peer(B, "peer moves from startup to normal", "08:00:00"),
        peer(A, "Both servers normal", "08:00:00"),
    ]


def clients() -> list[str]:
    return [
        line("08:00:05", A, "DHCPDISCOVER from 00:00:5e:00:53:01 via eth0"),
        line("08:00:05", A, "DHCPOFFER on 192.0.2.11 to 00:00:5e:00:53:01 via eth0"),
        line("08:00:06", A, "DHCPREQUEST for 192.0.2.11 (192.0.2.1) from 00:00:5e:00:53:01 via eth0"),
        ack("08:00:06", A, 1),
        line("08:00:07", A, "last message repeated 4 times"),
        ack("08:00:08", B, 2),
        line("08:00:30", A, "balanced pool 55d4a8e0 lab-net  total 100  free 40  backup 50  lts 5  max-misbal 15"),
        line("08:00:31", B, "DHCPDISCOVER from 00:00:5e:00:53:09 via eth0: network 192.0.2.0/24: no free leases"),
    ]


def kea_sync() -> list[str]:
    return [
        transition("08:00:01", KA, "waiting", "syncing", "waiting"),
        kea("08:00:01", KA, f"HA_SYNC_START {KA}: starting lease database synchronization with {KB}"),
        kea("08:00:02", KA, f"HA_SYNC_SUCCESSFUL {KA}: lease database synchronization with {KB} completed successfully in 12.5 ms"),
        transition("08:00:02", KA, "syncing", "ready", "syncing"),
    ]


def trouble() -> list[str]:
    """dhcp1 loses its partner; dhcp2 restarts, resyncs in 1 s and waits in recover-wait."""
    return [
        line("10:00:01", A, f"peer {REL}: disconnected"),
        peer(A, "I move from normal to communications-interrupted", "10:00:01"),
        peer(B, "I move from normal to startup", "10:03:00"),
        peer(B, "I move from startup to recover", "10:03:02"),
        line("10:03:02", B, f"Sent update request all message to {REL}"),
        peer(B, "peer update completed.", "10:03:03"),
        peer(B, "I move from recover to recover-wait", "10:03:03"),
        line("10:03:30", B, "DHCPDISCOVER from 00:00:5e:00:53:07 via eth0: not responding (recover wait)"),
        line("10:03:31", B, "last message repeated 2 times"),
    ]


@pytest.fixture
def fleet() -> Fleet:
    return Fleet().feed(*normal_pair(), *clients(), *kea_sync(), *trouble())


# --- the contract ----------------------------------------------------------------------


def design_metrics() -> dict[str, tuple[str, ...]]:
    text = DESIGN.read_text(encoding="utf-8")
    section = text.split("\n## Metrics", 1)[1].split("\n## ", 1)[0]
    out = {}
    for name, labels in re.findall(r"`([a-z_][a-z0-9_]*)(?:\{([^}`]*)\})?`", section):
        if name.startswith(("dhcp_", "pairwatch_")):
            out[name] = tuple(part.partition("=")[0].strip() for part in labels.split(",")) if labels else ()
    return out


def test_contract_matches_design():
    if not DESIGN.exists():
        print(f"skipped: {DESIGN} not found (the contract check needs the shared DESIGN.md)")
        pytest.skip(f"{DESIGN} not found")
    design = design_metrics()
    assert len(design) == 24
    assert {spec.name: spec.labels for spec in CONTRACT} == design
    assert [spec.name for spec in CONTRACT] == list(design)  # same order, so a diff reads easily


def test_contract_names_are_well_formed():
    for spec in CONTRACT:
        assert spec.type in ("counter", "gauge", "histogram", "info"), spec
        assert spec.name.endswith("_total") == (spec.type == "counter"), spec
        assert not spec.name.endswith(("_ms", "_milliseconds", "_bytes_total", "_timestamp")), spec
        if "duration" in spec.name or "timestamp" in spec.name:
            assert spec.name.endswith("_seconds"), spec
        assert not {"mac", "ip", "address"} & set(spec.labels), spec
    assert len({spec.name for spec in CONTRACT}) == len(CONTRACT)


def test_every_contract_metric_is_exported_with_exactly_its_labels(fleet):
    registry = fleet.registry()
    fleet.service.parse_unrecognized.labels("kea-dhcp4").inc()  # the one family without pre-created series
    seen: dict[str, set[frozenset[str]]] = {}
    for family in parsed(registry):
        for s in family.samples:
            seen.setdefault(s.name, set()).add(frozenset(s.labels) - {"le"})
    expected: dict[str, set[frozenset[str]]] = {}
    for spec in CONTRACT:
        names = [spec.name + suffix for suffix in ("_bucket", "_count", "_sum")] if spec.type == "histogram" else [spec.name]
        for name in names:
            expected[name] = {frozenset(spec.labels)}
    assert seen == expected  # every contract series present, nothing else (no *_created)


GOLDEN = [
    ("dhcp_failover_condition", ("condition", "pair")),
    ("dhcp_failover_refused_total", ("pair", "reason", "server")),
    ("dhcp_failover_state", ("pair", "server", "side", "state")),
    ("dhcp_failover_state_change_timestamp_seconds", ("pair", "server", "side")),
    ("dhcp_failover_sync_duration_seconds", ("pair", "server")),
    ("dhcp_failover_syncs_total", ("pair", "result", "server")),
    ("dhcp_failover_transitions_total", ("from_state", "pair", "server", "side", "to_state")),
    ("dhcp_lease_messages_total", ("server", "type")),
    ("dhcp_no_free_leases_total", ("network", "server")),
    ("dhcp_pool_leases", ("kind", "pair", "pool", "server")),
    ("dhcp_server_last_message_timestamp_seconds", ("server",)),
    ("pairwatch_build_info", ("version",)),
    ("pairwatch_late_lines_total", ("applied",)),
    ("pairwatch_parse_unrecognized_total", ("program",)),
    ("pairwatch_queue_depth", ()),
    ("pairwatch_sender_clock_offset_seconds", ("host",)),
    ("pairwatch_senders_refused_total", ("listener",)),
    ("pairwatch_spool_bytes", ()),
    ("pairwatch_store_insert_duration_seconds_bucket", ("le",)),
    ("pairwatch_store_insert_duration_seconds_count", ()),
    ("pairwatch_store_insert_duration_seconds_sum", ()),
    ("pairwatch_store_insert_failures_total", ()),
    ("pairwatch_store_rows_total", ("table",)),
    ("pairwatch_syslog_errors_total", ("reason",)),
    ("pairwatch_syslog_messages_total", ("transport",)),
    ("pairwatch_udp_receive_drops_total", ("listener",)),
]


def test_golden_names_and_label_sets(fleet):
    registry = fleet.registry()
    fleet.service.parse_unrecognized.labels(program_label("dhcpd")).inc()  # no pre-created program
    found = sorted({(s.name, tuple(sorted(s.labels))) for f in parsed(registry) for s in f.samples})
    assert found == GOLDEN


# --- pair state and conditions ---------------------------------------------------------


def test_every_dhcpd_and_kea_state_is_exported_one_hot(fleet):
    registry = fleet.registry()
    series: dict[tuple[str, str, str], dict[str, float]] = {}
    for labels, value in samples(registry, "dhcp_failover_state"):
        series.setdefault((labels["pair"], labels["server"], labels["side"]), {})[labels["state"]] = value
    views = {(v.name, s.host): (v, s) for v in fleet.correlator.snapshot() for s in v.servers}
    assert {(p, h) for p, h, _ in series} == set(views)
    for (pair, host, side), states in series.items():
        view, server = views[(pair, host)]
        vocabulary = DHCPD_STATES if view.implementation == "dhcpd" else KEA_STATES
        assert set(states) == vocabulary, (pair, host, side)
        assert set(states.values()) <= {0.0, 1.0}
        current = server.state if side == "self" else server.peer_state
        assert [s for s, v in states.items() if v == 1.0] == ([current] if current else [])
    assert series[(REL, A, "self")]["communications-interrupted"] == 1.0
    assert series[(REL, B, "self")]["recover-wait"] == 1.0
    assert (REL, A, "peer") not in series  # the link is down: dhcp1's view of dhcp2 is not valid
    assert series[(KEA_PAIR, KA, "self")]["ready"] == 1.0
    assert set(series[(KEA_PAIR, KB, "self")].values()) == {0.0}  # named by its partner, no state of its own yet
    assert registry.get_sample_value("dhcp_failover_state_change_timestamp_seconds",
                                     {"pair": REL, "server": A, "side": "self"}) == at("10:00:01")


def test_a_server_without_a_state_yet_exports_all_zero():
    registry = Fleet().feed(kea("08:00:01", KA, f"HA_SYNC_START {KA}: starting lease database synchronization with {KB}")).registry()
    states = {labels["state"]: v for labels, v in samples(registry, "dhcp_failover_state") if labels["server"] == KB}
    assert set(states) == KEA_STATES and set(states.values()) == {0.0}


def test_conditions_exist_as_zero_before_any_incident_and_one_while_open():
    fleet = Fleet().feed(*normal_pair())
    registry = fleet.registry()
    before = {labels["condition"]: v for labels, v in samples(registry, "dhcp_failover_condition") if labels["pair"] == REL}
    assert before == {c: 0.0 for c in CONDITIONS}
    fleet.feed(*trouble())
    after = {labels["condition"]: v for labels, v in samples(registry, "dhcp_failover_condition") if labels["pair"] == REL}
    open_now = {i.condition for i in fleet.correlator.open_incidents() if i.pair == REL}
    assert "communications_interrupted" in open_now
    assert after == {c: 1.0 if c in open_now else 0.0 for c in CONDITIONS}


# --- tally-derived families --------------------------------------------------------------


def test_repeated_lines_count_n(fleet):
    registry = fleet.registry()
    assert registry.get_sample_value("dhcp_lease_messages_total", {"server": A, "type": "ack"}) == 5  # 1 + repeated 4
    assert registry.get_sample_value("dhcp_lease_messages_total", {"server": B, "type": "ack"}) == 1
    assert registry.get_sample_value(
        "dhcp_failover_refused_total", {"pair": REL, "server": B, "reason": "not responding (recover wait)"}) == 3


def test_lease_messages_by_type_with_zeros(fleet):
    registry = fleet.registry()
    counts = {(labels["server"], labels["type"]): v for labels, v in samples(registry, "dhcp_lease_messages_total")}
    assert {t for s, t in counts if s == A} == set(LEASE_TYPES)
    assert counts[(A, "discover")] == 1 and counts[(A, "offer")] == 1 and counts[(A, "request")] == 1
    assert counts[(B, "discover")] == 3  # the refused DISCOVER, repeated twice; the no-free one counts apart
    assert counts[(A, "nak")] == 0
    assert registry.get_sample_value("dhcp_no_free_leases_total", {"server": B, "network": "192.0.2.0/24"}) == 1


def test_no_free_without_network_and_unpaired_hosts():
    fleet = Fleet().feed(
        line("08:00:00", "solo", "DHCPDISCOVER from 00:00:5e:00:53:01 via eth0: peer holds all free leases"),
        line("08:00:01", "mailhost", "connection from 192.0.2.8", program="postfix"),
    )
    registry = fleet.registry()
    assert registry.get_sample_value("dhcp_no_free_leases_total", {"server": "solo", "network": ""}) == 1
    servers = {labels["server"] for labels, _ in samples(registry, "dhcp_server_last_message_timestamp_seconds")}
    assert servers == {"solo"}  # a host that never logged as a DHCP server gets no series


def test_pool_leases_from_the_last_pool_line(fleet):
    fleet.feed(line("09:00:00", A, "balancing pool 55d4a8e0 lab-net  total 100  free 30  backup 60  lts -15  max-own (+/-)10"))
    registry = fleet.registry()
    got = {labels["kind"]: v for labels, v in samples(registry, "dhcp_pool_leases")
           if labels == {**labels, "pair": REL, "server": A, "pool": "lab-net"}}
    assert got == {"total": 100, "free": 30, "backup": 60}


def test_transitions_use_the_lines_from_state_when_the_correlator_has_none(fleet):
    registry = fleet.registry()
    got = {(l["server"], l["side"], l["from_state"], l["to_state"]): v
           for l, v in samples(registry, "dhcp_failover_transitions_total") if l["pair"] == REL}
    assert got[(A, "self", "startup", "normal")] == 1  # first state seen: the line says "from startup"
    assert got[(A, "peer", "startup", "normal")] == 1
    assert got[(A, "self", "normal", "communications-interrupted")] == 1
    assert got[(B, "self", "normal", "startup")] == 1  # the correlator's previous state wins once known
    assert got[(B, "self", "recover", "recover-wait")] == 1
    kea_got = {(l["server"], l["side"], l["from_state"], l["to_state"])
               for l, _ in samples(registry, "dhcp_failover_transitions_total") if l["pair"] == KEA_PAIR}
    # kea-a's first transitions were seen before its partner was named: they follow the renamed pair
    assert (KA, "self", "waiting", "syncing") in kea_got
    assert (KA, "peer", FROM_UNKNOWN, "waiting") in kea_got  # Kea's partner-state report has no "from"
    assert (KA, "peer", "waiting", "syncing") in kea_got


def test_syncs_dhcpd_and_kea(fleet):
    registry = fleet.registry()
    value = registry.get_sample_value
    assert value("dhcp_failover_sync_duration_seconds", {"pair": REL, "server": B}) == 1.0
    assert value("dhcp_failover_syncs_total", {"pair": REL, "server": B, "result": "ok"}) == 1
    assert value("dhcp_failover_syncs_total", {"pair": REL, "server": A, "result": "ok"}) == 0
    assert value("dhcp_failover_syncs_total", {"pair": REL, "server": A, "result": "failed"}) == 0
    assert value("dhcp_failover_sync_duration_seconds", {"pair": REL, "server": A}) is None
    assert value("dhcp_failover_sync_duration_seconds", {"pair": KEA_PAIR, "server": KA}) == pytest.approx(0.0125)
    assert value("dhcp_failover_syncs_total", {"pair": KEA_PAIR, "server": KA, "result": "ok"}) == 1


def test_kea_failed_attempt_counts_once_and_the_retry_succeeds():
    start = f"HA_SYNC_START {KA}: starting lease database synchronization with {KB}"
    fleet = Fleet().feed(
        kea("08:00:00", KA, start),
        kea("08:00:05", KA, f"HA_LEASES_SYNC_COMMUNICATIONS_FAILED {KA}: failed to communicate with {KB} while syncing leases: timeout", "ERROR"),
        kea("08:00:05", KA, f"HA_SYNC_FAILED {KA}: lease database synchronization with {KB} failed: timeout", "ERROR"),
        kea("08:00:10", KA, start),
        kea("08:00:13", KA, f"HA_SYNC_SUCCESSFUL {KA}: lease database synchronization with {KB} completed successfully in 2999.5 ms"),
    )
    value = fleet.registry().get_sample_value
    assert value("dhcp_failover_syncs_total", {"pair": KEA_PAIR, "server": KA, "result": "failed"}) == 1
    assert value("dhcp_failover_syncs_total", {"pair": KEA_PAIR, "server": KA, "result": "ok"}) == 1
    assert value("dhcp_failover_sync_duration_seconds", {"pair": KEA_PAIR, "server": KA}) == pytest.approx(2.9995)


def test_dhcpd_restart_mid_resync_fails_it_and_plain_updates_do_not_count():
    fleet = Fleet().feed(
        *normal_pair(),
        line("09:00:00", A, f"Sent update request message to {REL}"),
        peer(A, "peer update completed.", "09:00:01"),  # an ordinary update request: not a bulk resync
        peer(B, "I move from normal to recover", "10:00:00"),
        line("10:00:00", B, f"Sent update request all message to {REL}"),
        line("10:00:30", B, f"Sent update request all message to {REL}"),  # a retry keeps the first start
        peer(B, "I move from recover to startup", "10:05:00"),
        peer(B, "I move from startup to recover", "10:05:01"),
        line("10:05:01", B, f"Sent update request all message to {REL}"),
        peer(B, "peer update completed.", "10:05:04"),
    )
    value = fleet.registry().get_sample_value
    assert value("dhcp_failover_syncs_total", {"pair": REL, "server": A, "result": "ok"}) == 0
    assert value("dhcp_failover_syncs_total", {"pair": REL, "server": B, "result": "failed"}) == 1
    assert value("dhcp_failover_syncs_total", {"pair": REL, "server": B, "result": "ok"}) == 1
    assert value("dhcp_failover_sync_duration_seconds", {"pair": REL, "server": B}) == 3.0


def test_a_host_in_two_relationships_counts_each_resync_under_its_pair():
    fleet = Fleet().feed(
        *normal_pair(),
        line("08:00:00", A, "failover peer other-rel: I move from startup to recover"),
        line("08:00:00", A, "Sent update request all message to other-rel"),
        line("08:00:07", A, "failover peer other-rel: peer update completed."),
    )
    value = fleet.registry().get_sample_value
    assert value("dhcp_failover_sync_duration_seconds", {"pair": "other-rel", "server": A}) == 7.0
    assert value("dhcp_failover_sync_duration_seconds", {"pair": REL, "server": A}) is None
    assert value("dhcp_failover_syncs_total", {"pair": REL, "server": A, "result": "ok"}) == 0


def test_server_label_follows_the_correlators_host_key():
    fleet = Fleet()
    fleet.tally = FleetTally(strip_domain=False)
    fleet.feed(ack("08:00:00", "DHCP1", 1), peer("DHCP1", "I move from startup to normal", "08:00:00"))
    registry = fleet.registry()
    assert registry.get_sample_value("dhcp_lease_messages_total", {"server": "dhcp1", "type": "ack"}) == 1
    assert {l["server"] for l, _ in samples(registry, "dhcp_failover_state")} == {"dhcp1"}
    stripped = FleetTally(strip_domain=True)
    event = LineParser(OPTIONS).parse(ack("08:00:00", "dhcp1.example.net", 1))
    stripped.observe(event, [], 1.0)
    assert stripped.snapshot().lease_messages == ((("dhcp1", "ack"), 1),)


# --- no client identities in labels ----------------------------------------------------


def test_no_label_value_looks_like_a_mac_or_an_ip_address(fleet):
    registry = fleet.registry()
    text = generate_latest(registry).decode()
    assert "00:00:5e" not in text.lower() and "192.0.2.11" not in text
    values = [v for f in parsed(registry) for s in f.samples for v in s.labels.values()]
    assert values
    for value in values:
        assert not MAC.search(value), value
        assert not IPV4.search(value), value
    label_text = "".join(re.findall(r"\{[^}]*\}", text))
    assert not MAC.search(label_text) and not IPV4.search(label_text)


def test_a_refusal_reason_is_scrubbed_of_addresses():
    tally = FleetTally()
    record = Record(host="dhcp1", program="dhcpd", message="")
    payload = LeaseDiscover(mac="00:00:5e:00:53:01", via="eth0", refused="not our server id 192.0.2.1 for 00:00:5e:00:53:01")
    tally.observe(Event(record, payload), [], 1.0)
    assert tally.snapshot().refused == ((("dhcp1", "not our server id <ip> for <mac>"), 1),)


# --- collector mechanics ---------------------------------------------------------------


def test_describe_never_calls_the_snapshots():
    calls = []

    def pairs():
        calls.append("pairs")
        return ()

    def tally():
        calls.append("tally")
        return TallySnapshot()

    collector = PairCollector(pairs, tally)
    CollectorRegistry().register(collector)
    CollectorRegistry(auto_describe=True).register(collector)
    names = {family.name for family in collector.describe()}
    assert calls == []
    assert all(not family.samples for family in collector.describe())
    assert {spec.name.removesuffix("_total") for spec in CONTRACT if spec.name.startswith("dhcp_")} == names
    list(collector.collect())
    assert calls == ["pairs", "tally"]  # once each per scrape


def test_each_scrape_builds_fresh_families_from_fresh_snapshots(fleet):
    collector = PairCollector(fleet.correlator.snapshot, fleet.tally.snapshot)
    first = list(collector.collect())
    fleet.feed(ack("11:00:00", A, 3))
    second = list(collector.collect())
    assert not {id(f) for f in first} & {id(f) for f in second}
    by_name = {f.name: f for f in second}
    acks = [s.value for s in by_name["dhcp_lease_messages"].samples if s.labels == {"server": A, "type": "ack"}]
    assert acks == [6]


def test_tally_snapshot_is_an_immutable_copy(fleet):
    snap = fleet.tally.snapshot()
    assert dataclasses.is_dataclass(snap)
    assert all(isinstance(getattr(snap, f.name), tuple) for f in dataclasses.fields(snap))
    before = snap.lease_messages
    fleet.feed(ack("11:00:00", A, 3))
    assert snap.lease_messages == before != fleet.tally.snapshot().lease_messages


def test_scraping_while_another_thread_feeds_does_not_raise():
    fleet = Fleet().feed(*normal_pair())
    published = [fleet.correlator.snapshot()]  # the pipeline swaps in a new correlator snapshot
    lines = [
        line(f"09:{i // 60 % 60:02d}:{i % 60:02d}", f"dhcp{i % 40}",
             f"DHCPDISCOVER from 00:00:5e:00:53:01 via eth0: network net-{i}: no free leases") if i % 2 else ack(
            f"09:{i // 60 % 60:02d}:{i % 60:02d}", A if i % 3 else B, i)
        for i in range(2000)
    ]
    errors: list[BaseException] = []

    def feeder() -> None:
        try:
            for i, text in enumerate(lines):
                fleet.feed(text)
                if i % 20 == 0:
                    published[0] = fleet.correlator.snapshot()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    registry = CollectorRegistry()
    registry.register(PairCollector(lambda: published[0], fleet.tally.snapshot))
    thread = threading.Thread(target=feeder)
    thread.start()
    totals = []
    try:
        for _ in range(200):
            text = generate_latest(registry).decode()
            totals.append(sum(float(v) for v in re.findall(r"^dhcp_no_free_leases_total\{.*\} (\S+)$", text, re.M)))
    finally:
        thread.join(timeout=60)
    assert not thread.is_alive()
    assert errors == []
    assert totals == sorted(totals)  # counters never go back
    assert fleet.tally.snapshot().no_free[-1][1] == 1 and len(fleet.tally.snapshot().no_free) == 1000


def test_snapshots_stay_sorted_by_key_as_tables_grow_and_counts_move():
    """The sorted keys are kept between snapshots: a server that sorts between two known
    ones, and counts that move on known keys, show in the next snapshot as in a fresh sort."""
    tally = FleetTally()
    parser = LineParser(OPTIONS)

    def feed(host: str, count: int) -> None:
        for n in range(count):
            tally.observe(parser.parse(ack("08:00:00", host, n)), [], 1.0)

    feed("dhcp-c", 1)
    feed("dhcp-a", 2)
    assert tally.snapshot().lease_messages == ((("dhcp-a", "ack"), 2), (("dhcp-c", "ack"), 1))
    feed("dhcp-b", 4)
    feed("dhcp-c", 2)
    snap = tally.snapshot()
    assert snap.lease_messages == ((("dhcp-a", "ack"), 2), (("dhcp-b", "ack"), 4), (("dhcp-c", "ack"), 3))
    assert [host for host, _ in snap.last_message] == ["dhcp-a", "dhcp-b", "dhcp-c"]
    feed("dhcp-a", 1)
    assert tally.snapshot().lease_messages[0] == (("dhcp-a", "ack"), 3)


def test_tables_are_capped():
    tally = FleetTally(max_series=3)
    parser = LineParser(OPTIONS)
    for i in range(10):
        event = parser.parse(line("08:00:00", A, f"DHCPDISCOVER from 00:00:5e:00:53:01 via eth0: network net-{i}: no free leases"))
        tally.observe(event, [], 1.0)
    assert [key for key, _ in tally.snapshot().no_free] == [(A, "net-0"), (A, "net-1"), (A, "net-2")]


def test_lease_counts_are_capped_at_the_first_keys():
    """The lease lines' table keeps its first `max_series` (server, type) keys, in line order;
    a kept key still counts."""
    tally = FleetTally(max_series=3)
    parser = LineParser(OPTIONS)
    texts = [(host, "DHCPACK on 192.0.2.10 to 00:00:5e:00:53:01 via eth0") for host in ("h0", "h1", "h2", "h3")]
    texts += [("h0", "DHCPDISCOVER from 00:00:5e:00:53:01 via eth0"), ("h1", texts[0][1])]
    for host, message in texts:
        tally.observe(parser.parse(line("08:00:00", host, message)), [], 1.0)
    assert tally.snapshot().lease_messages == ((("h0", "ack"), 1), (("h1", "ack"), 2), (("h2", "ack"), 1))


# --- service metrics and exposition ------------------------------------------------------


def test_service_metrics_exist_from_the_start_without_created_series():
    registry = CollectorRegistry()
    metrics = ServiceMetrics(registry, "1.2.3", error_reasons=("oversize", "bad_length", "invalid_utf8"))
    value = registry.get_sample_value
    for transport in ("udp", "tcp", "tls", "file"):
        assert value("pairwatch_syslog_messages_total", {"transport": transport}) == 0
    for table in ("messages", "events", "states", "incidents"):
        assert value("pairwatch_store_rows_total", {"table": table}) == 0
    for reason in ("oversize", "bad_length", "invalid_utf8"):
        assert value("pairwatch_syslog_errors_total", {"reason": reason}) == 0
    assert value("pairwatch_build_info", {"version": "1.2.3"}) == 1
    metrics.syslog_messages.labels("udp").inc(3)
    metrics.store_insert_duration.observe(0.02)
    metrics.queue_depth.set(7)
    metrics.spool_bytes.set(4096)
    metrics.store_insert_failures.inc()
    assert value("pairwatch_syslog_messages_total", {"transport": "udp"}) == 3
    assert value("pairwatch_store_insert_duration_seconds_count") == 1
    assert value("pairwatch_store_insert_duration_seconds_bucket", {"le": "0.025"}) == 1
    assert value("pairwatch_queue_depth") == 7 and value("pairwatch_spool_bytes") == 4096
    assert value("pairwatch_store_insert_failures_total") == 1
    for body, _ in (exposition(registry, None), exposition(registry, "application/openmetrics-text; version=1.0.0")):
        assert b"_created" not in body


def test_created_series_are_dropped_without_touching_process_wide_settings():
    ServiceMetrics(CollectorRegistry(), "0.1.0")
    other = CollectorRegistry()
    Counter("unrelated_total", "a counter of somebody else's", registry=other).inc()
    if os.environ.get("PROMETHEUS_DISABLE_CREATED_SERIES", "").lower() in ("true", "1", "t"):
        pytest.skip("created series disabled for the whole process by the environment")
    assert other.get_sample_value("unrelated_created") is not None


def test_nothing_is_registered_globally():
    from prometheus_client import REGISTRY

    Fleet().feed(*normal_pair()).registry()
    text = generate_latest(REGISTRY).decode()
    assert "dhcp_" not in text and "pairwatch_" not in text


def test_our_writer_gives_prometheus_client_output_byte_for_byte():
    """`collector.exposition.render` against prometheus_client's own writers, both formats, on
    a fleet's families plus every family type a registry can hold: `_created` samples (moved
    to their own gauge family in the 0.0.4 format), histograms, summaries, info, enum
    (stateset), units, and label values and help texts that need escaping."""
    fleet = Fleet().feed(*normal_pair(), *clients())
    registry = fleet.registry()
    fleet.service.store_insert_duration.observe(0.02)
    fleet.service.syslog_messages.labels("tcp").inc(5)
    Counter("plain_events", 'a counter with "quotes", a \\ and a\nnewline', ["where"], registry=registry).labels(
        'a"b\\c\nd').inc(2)
    Histogram("plain_seconds", "a histogram", unit="seconds", registry=registry).observe(0.3)
    Summary("plain_size", "a summary", registry=registry).observe(7)
    Info("plain_build", "an info", registry=registry).info({"version": "1.0", "flavour": "x\"y"})
    Enum("plain_mode", "an enum", states=["on", "off"], registry=registry).state("off")
    Gauge("plain_big", "a large value", registry=registry).set(1.5e17)
    for openmetrics_format, library in ((False, generate_latest), (True, openmetrics_latest)):
        ours = render(registry, openmetrics_format=openmetrics_format)
        assert ours is not None
        assert ours == library(registry)
    text = render(registry, openmetrics_format=False)
    assert b'dhcp_lease_messages_total{server="dhcp1"' in text and b'where="a\\"b\\\\c\\nd"' in text
    assert b"# TYPE plain_events_created gauge" in text


def test_a_name_query_renders_only_those_series_as_prometheus_client_does():
    """`/metrics?name[]=...` (prometheus_client's filter): only the series named, in both
    formats exactly as the library writes them for its restricted registry, a `SeriesFamily`
    included; the other collectors are not asked (a pipeline poll must stay cheap)."""
    fleet = Fleet().feed(*normal_pair(), *clients())
    registry = fleet.registry()
    fleet.service.syslog_messages.labels("tcp").inc(5)
    names = ["pairwatch_syslog_messages_total", "dhcp_lease_messages_total"]
    for accept, library in ((None, generate_latest),
                            ("application/openmetrics-text; version=1.0.0", openmetrics_latest)):
        body, _ = exposition(registry, accept, names)
        assert body == library(registry.restricted_registry(names))
    text = exposition(registry, None, names)[0].decode()
    series = {line.split("{")[0].split()[0] for line in text.splitlines() if not line.startswith("#")}
    assert series == set(names)
    assert 'pairwatch_syslog_messages_total{transport="tcp"} 5.0' in text
    assert exposition(registry, None, ["pairwatch_store_rows_total"])[0].startswith(b"# HELP pairwatch_store_rows_total")
    assert exposition(registry, None, ["no_such_series"])[0] == b""

    calls = []
    lonely = CollectorRegistry()
    ServiceMetrics(lonely, "0.1.0")
    lonely.register(PairCollector(lambda: calls.append("pairs") or (), lambda: calls.append("tally") or TallySnapshot()))
    assert b"pairwatch_syslog_messages_total" in exposition(lonely, None, ["pairwatch_syslog_messages_total"])[0]
    assert calls == []


def test_remembered_series_follow_the_registry_from_scrape_to_scrape(monkeypatch: pytest.MonkeyPatch):
    """The writer keeps each series' rendered name between scrapes: later scrapes, with new
    values, new series, label values that differ only in a name/value split, and the memory
    bound reached (everything forgotten at once), still match prometheus_client byte for byte."""
    fleet = Fleet().feed(*normal_pair())
    registry = fleet.registry()
    pairs = Counter("split_events", "label names and values in other places", ["a", "b"], registry=registry)
    pairs.labels("b", "a").inc()

    def same() -> None:
        for openmetrics_format, library in ((False, generate_latest), (True, openmetrics_latest)):
            assert render(registry, openmetrics_format=openmetrics_format) == library(registry)

    same()
    fleet.feed(*clients())
    fleet.service.syslog_messages.labels("udp").inc(7)
    pairs.labels("a", "b").inc(3)
    same()
    monkeypatch.setattr(exposition_module, "MAX_SERIES_REMEMBERED", 5)
    pairs.labels("c", "d").inc()
    same()
    same()


_VALUE_FAMILIES = itertools.count()


@given(st.one_of(st.integers(-10**8, 10**8), st.floats(allow_nan=True, allow_infinity=True), st.booleans()))
def test_series_values_are_written_as_prometheus_client_writes_them(value: float) -> None:
    """A `SeriesFamily` row's value, which `render` writes itself, reads as prometheus_client
    writes it, in both formats. Each example has a family of its own: a
    family's lines are kept from scrape to scrape, so -0.0 after 0 would reuse the line of 0."""
    family = SeriesFamily(f"value_{next(_VALUE_FAMILIES)}", "one row", "gauge", ["host"])
    family.add(("a",), value)

    class Rows:
        def collect(self) -> list[SeriesFamily]:
            return [family]

    registry = CollectorRegistry()
    registry.register(Rows())
    text = render(registry, openmetrics_format=False)
    assert text == generate_latest(registry)
    assert render(registry, openmetrics_format=True) == openmetrics_latest(registry)
    assert text is not None and text.endswith(f' {floatToGoString(value)}\n'.encode())


def test_a_line_is_written_again_exactly_when_its_value_changed():
    """Each series' line is kept with its value; a scrape reuses it only while the value is
    the same, so values that move, stay, come back, and turn from int to float all read as
    prometheus_client writes them."""

    class Rows:
        def __init__(self) -> None:
            self.values: dict[str, float] = {}

        def collect(self):  # noqa: ANN202
            family = SeriesFamily("moving_total", "rows whose values move", "counter", ["host"])
            for host, value in self.values.items():
                family.add((host,), value)
            return [family]

    rows = Rows()
    registry = CollectorRegistry()
    registry.register(rows)
    for values in ({"a": 1, "b": 5}, {"a": 1, "b": 6}, {"a": 2, "b": 6}, {"a": 1, "b": 6.5}, {"a": 1.0, "b": 2e6},
                   {"a": 1, "b": 2e6, "c": 0}):
        rows.values = values
        bodies = render(registry, openmetrics_format=False), render(registry, openmetrics_format=True)
        assert bodies == (generate_latest(registry), openmetrics_latest(registry)), values
        for host, value in values.items():
            assert f'moving_total{{host="{host}"}} {floatToGoString(value)}\n'.encode() in bodies[0]


def test_a_series_family_is_filled_by_rows_only():
    family = SeriesFamily("rows_total", "rows", "counter", ["a"])
    family.add(("x",), 3)
    assert family.name == "rows" and [(s.name, s.labels, s.value) for s in family.samples] == [("rows_total", {"a": "x"}, 3)]
    with pytest.raises(TypeError):
        family.samples = [family.samples[0]]


def test_the_library_writes_what_ours_does_not():
    """An Accept header asking for another escaping, and a sample with an exemplar, go to
    prometheus_client's writers (same bodies as calling them directly)."""
    registry = CollectorRegistry()
    Counter("with_exemplar", "x", registry=registry).inc(1, exemplar={"trace_id": "abc"})
    assert render(registry, openmetrics_format=True) is None
    body, content_type = exposition(registry, "application/openmetrics-text; version=1.0.0")
    assert b'# {trace_id="abc"}' in body and body == openmetrics_latest(registry)
    body, content_type = exposition(registry, "application/openmetrics-text; version=1.0.0; escaping=values")
    assert "escaping=values" in content_type


def test_exposition_chooses_the_format_from_accept():
    registry = CollectorRegistry()
    ServiceMetrics(registry, "0.1.0")
    body, content_type = exposition(registry, None)
    assert content_type.startswith("text/plain; version=0.0.4")
    assert body == generate_latest(registry)
    body, content_type = exposition(registry, "application/openmetrics-text; version=1.0.0; charset=utf-8")
    assert content_type.startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")
    assert exposition(registry, "text/html")[1].startswith("text/plain; version=0.0.4")


@pytest.mark.parametrize(
    ("program", "label"),
    [("dhcpd", "dhcpd"), ("dhcpd3", "dhcpd"), ("kea-dhcp4", "kea-dhcp4"), ("kea-dhcp6", "kea-dhcp6"),
     ("kea" + "x" * 80, "kea"), (None, "other"), ("sshd", "other")],
)
def test_program_label_is_bounded(program, label):
    assert program_label(program) == label
