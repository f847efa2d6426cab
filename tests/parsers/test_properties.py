"""Property tests: the parser is total, and generated valid lines round-trip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from parsers import Event, LineParser, ParseOptions, event_to_dict, parse_line
from parsers.events import (
    DHCPD_STATES,
    KEA_STATES,
    FailoverState,
    LeaseAck,
    LeaseRequest,
)

OPTS = ParseOptions(reference=datetime(2025, 3, 5, tzinfo=UTC))

SEEDS = [
    "Mar  3 08:15:02 dhcp-a dhcpd: DHCPDISCOVER from 00:00:5e:00:53:01 via eth0",
    "<30>1 2025-03-03T08:15:02.076Z dhcp-a dhcpd 321 - - peer failover-ab: disconnected",
    '<134>1 2025-03-03T08:15:02+00:00 kea-a kea-dhcp4 1234 - [meta sequenceId="42"] INFO  [kea-dhcp4.leases.0x8a1c3e000] '
    "DHCP4_LEASE_ALLOC [hwtype=1 00:00:5e:00:53:01], cid=[no info], tid=0x1a2b3c4d: lease 192.0.2.10 has been allocated for 3600 seconds",
    "Mar  3 08:15:02 kea-a kea-dhcp4[1234]: 2025-03-03 08:15:02.076 INFO  [kea-dhcp4.ha-hooks/1234.139887825118784] "
    "HA_STATE_TRANSITION kea-a: server transitions from WAITING to SYNCING state, partner state is READY",
    "balancing pool 5612a0c3e0a0 192.0.2.0/24  total 240  free 0  backup 120  lts -60  max-own (+/-)12",
    "Mar  3 08:15:02 dhcpd: [ID 123456 local5.error] uid lease 192.0.2.51 for client 00:00:5e:00:53:01 is duplicate on vlan10",
    "2025-03-03T08:15:02\tWarning\tkea-dhcp4\tWARN [kea-dhcp4.ha-hooks.0x8a1c3e000] HA_COMMUNICATION_INTERRUPTED x\t",
    "Mar  3 08:16:10  dhcpd: last message repeated 4 times",
    "failover peer failover-ab: I move from recover to startup",
    "DHCPREQUEST for 192.0.2.10 (192.0.2.1) from 00:00:5e:00:53:01 (host-a) via eth0: not responding (recover wait)",
]


def _check(text: str) -> Event:
    event = parse_line(text, OPTS)
    assert isinstance(event, Event)
    event_to_dict(event)  # printable too
    return event


@settings(max_examples=400)
@given(st.binary(max_size=400))
def test_random_bytes_never_raise(data: bytes):
    _check(data.decode("utf-8", errors="replace"))


@settings(max_examples=400)
@given(st.text(max_size=300))
def test_random_text_never_raises(text: str):
    _check(text)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    line = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(line)))
        action = draw(st.sampled_from(("delete", "insert", "replace")))
        piece = draw(st.text(alphabet=st.sampled_from(" :[]<>()-.0123456789aZ\t\x00\ufffd"), min_size=1, max_size=3))
        if action == "delete":
            line = line[:pos] + line[pos + len(piece) :]
        elif action == "insert":
            line = line[:pos] + piece + line[pos:]
        else:
            line = line[:pos] + piece + line[pos + len(piece) :]
    return line


@settings(max_examples=600)
@given(mutated())
def test_mutated_lines_never_raise(line: str):
    _check(line)


@settings(max_examples=200)
@given(st.lists(mutated(), max_size=20))
def test_stream_gives_one_event_per_line(lines: list[str]):
    parser = LineParser(OPTS)
    assert len([parser.parse(line) for line in lines]) == len(lines)


def test_one_megabyte_lines():
    for line in ("x" * 1_000_000, "Mar  3 08:15:02 h dhcpd: " + "DHCPACK on " * 100_000, "<" * 1_000_000, " " * 1_000_000):
        _check(line)


hosts = st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z]{2,5})?", fullmatch=True)
names = st.from_regex(r"[a-z][a-z0-9-]{0,15}", fullmatch=True)
# yearless forms are unambiguous only between reference - 1 year + slack and the reference
instants = st.datetimes(min_value=datetime(2024, 3, 9), max_value=datetime(2025, 3, 5), timezones=st.just(UTC)).map(
    lambda d: d.replace(microsecond=0)
)
octet = st.integers(0, 255)
ips = st.tuples(octet, octet, octet, octet).map(lambda t: ".".join(map(str, t)))
macs = st.lists(octet, min_size=6, max_size=6).map(lambda b: ":".join(f"{x:02x}" for x in b))


def _header(form: int, ts: datetime, host: str, pid: int) -> str:
    if form == 0:
        return f"{ts:%b} {ts.day:2d} {ts:%H:%M:%S} {host} dhcpd[{pid}]: "
    if form == 1:
        return f"<30>{ts:%b} {ts.day} {ts:%H:%M:%S} {host} dhcpd: "
    if form == 2:
        return f"<30>1 {ts:%Y-%m-%dT%H:%M:%S}+00:00 {host} dhcpd {pid} - - "
    return f"{ts:%Y-%m-%dT%H:%M:%S}.000000+00:00 {host} dhcpd[{pid}]: "


@settings(max_examples=300)
@given(st.integers(0, 3), instants, hosts, st.integers(1, 99999), names, st.sampled_from(sorted(DHCPD_STATES)),
       st.sampled_from(sorted(DHCPD_STATES)), st.booleans())
def test_round_trip_failover_state(form, ts, host, pid, rel, old, new, mine):
    verb = "I move" if mine else "peer moves"
    event = _check(_header(form, ts, host, pid) + f"failover peer {rel}: {verb} from {old} to {new}")
    assert event.record.ts == ts and event.record.host == host and event.record.program == "dhcpd"
    assert event.record.pid == (None if form == 1 else pid)
    assert event.payload == FailoverState(relationship=rel, side="self" if mine else "peer", from_state=old, to_state=new)


@settings(max_examples=300)
@given(st.integers(0, 3), instants, hosts, ips, macs, st.one_of(st.none(), names), st.one_of(ips, names), st.one_of(st.none(), ips))
def test_round_trip_lease(form, ts, host, ip, mac, client, via, sid):
    name = f"({client}) " if client else ""
    ack = _check(_header(form, ts, host, 7) + f"DHCPACK on {ip} to {mac} {name}via {via}")
    assert ack.payload == LeaseAck(ip=ip, mac=mac, client_name=client, via=via)
    server = f" ({sid})" if sid else ""
    req = _check(_header(form, ts, host, 7) + f"DHCPREQUEST for {ip}{server} from {mac} {name}via {via}")
    assert req.payload == LeaseRequest(ip=ip, server_id=sid, mac=mac, client_name=client, via=via)
    assert req.record.ts == ts


@settings(max_examples=200)
@given(instants, names, st.sampled_from(sorted(KEA_STATES - {"undefined", "unavailable"})),
       st.sampled_from(sorted(KEA_STATES - {"undefined", "unavailable"})), st.sampled_from(sorted(KEA_STATES)),
       st.booleans(), st.integers(1, 99999))
def test_round_trip_kea_transition(ts, name, old, new, partner, prefixed, pid):
    local = ts + timedelta(0)
    prefix = f"{name}: " if prefixed else ""
    line = (
        f"{local:%Y-%m-%d %H:%M:%S}.000 INFO  [kea-dhcp4.ha-hooks/{pid}.139887825118784] HA_STATE_TRANSITION "
        f"{prefix}server transitions from {old.upper()} to {new.upper()} state, partner state is {partner.upper()}"
    )
    event = _check(line)
    assert event.record.ts == ts and event.record.pid == pid and event.record.program == "kea-dhcp4"
    assert event.payload == FailoverState(
        relationship=None, side="self", from_state=old, to_state=new, ha_name=name if prefixed else None, partner_state=partner
    )
