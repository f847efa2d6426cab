"""Routing by program, the stream markers (continuation, repeated) and `expand`."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from parsers import LineParser, ParseOptions, expand, parse_line
from parsers.events import (
    DhcpdOther,
    FailoverState,
    KeaOther,
    LeaseDiscover,
    SyslogOther,
)

OPTS = ParseOptions(reference=datetime(2025, 3, 5, tzinfo=UTC))


@pytest.mark.parametrize(
    "line,kind",
    [
        ("Mar  3 08:15:02 dhcp-a dhcpd: DHCPDISCOVER from 00:00:5e:00:53:01 via eth0", "lease.discover"),
        ("Mar  3 08:15:02 dhcp-a dhcpd3: DHCPDISCOVER from 00:00:5e:00:53:01 via eth0", "lease.discover"),
        ("Mar  3 08:15:02 dhcp-a dhcpd[1234]: commit 192.0.2.10", "dhcpd.other"),
        ("Mar  3 08:15:03 dhcp-a dhcpd[1301]: ddns-hook: record for host-a already up to date", "dhcpd.other"),
        ("Mar  3 08:15:02 dhcp-a dhclient: DHCPREQUEST of 198.51.100.20 on eth1 to 198.51.100.1 port 67", "syslog.other"),
        ("Mar  3 08:15:02 dhcp-a dhclient[88]: DHCPREQUEST for 198.51.100.20 on eth1 to 198.51.100.1 port 67", "syslog.other"),
        ("Mar  3 08:15:00 dhcp-a systemd[1]: Started dhcpd.service.", "syslog.other"),
        ("Mar  3 08:15:02 kea-a kea-dhcp4[1234]: INFO  [kea-dhcp4.dhcpsrv.1] DHCPSRV_MEMFILE_LFC_START starting Lease File Cleanup", "kea.other"),
        ("failover peer failover-ab: I move from recover to startup", "failover.state"),
        ("Copyright 2004-2022 Internet Systems Consortium.", "dhcpd.other"),
        ("HA_STATE_TRANSITION server transitions from WAITING to SYNCING state, partner state is WAITING", "failover.state"),
        ("some unrelated text", "syslog.other"),
        ("", "syslog.other"),
    ],
)
def test_routing(line, kind):
    assert parse_line(line, OPTS).kind == kind


def test_blank_line_is_syslog_other_with_empty_message():
    event = parse_line("", OPTS)
    assert event.payload == SyslogOther(message="")
    assert not event.continuation and event.repeated is None


def test_fatal_trailer_is_continuation():
    lines = [
        "Mar  3 08:15:09 dhcp-a dhcpd[1234]: Configuration file errors encountered -- exiting",
        "Mar  3 08:15:09 dhcp-a dhcpd[1234]: ",
        "Mar  3 08:15:09 dhcp-a dhcpd[1234]: If you think you have received this message due to a bug rather",
        "Mar  3 08:15:09 dhcp-a dhcpd[1234]: process and the information we find helpful for debugging.",
        "Mar  3 08:15:09 dhcp-a dhcpd[1234]: exiting.",
    ]
    events = [parse_line(line, OPTS) for line in lines]
    assert [e.continuation for e in events] == [False, False, True, True, False]
    assert events[-1].kind == "server.lifecycle"


def test_parse_error_source_line_is_continuation_in_a_stream():
    parser = LineParser(OPTS)
    lines = [
        "Mar  3 08:15:09 dhcp-a dhcpd[1234]: /var/lib/dhcp/dhcpd.leases line 12: unknown failover peer: failover-ab",
        "Mar  3 08:15:09 dhcp-b dhcpd[77]: DHCPDISCOVER from 00:00:5e:00:53:01 via eth0",
        'Mar  3 08:15:09 dhcp-a dhcpd[1234]: failover peer "failover-ab"',
        "Mar  3 08:15:09 dhcp-a dhcpd[1234]:                ^",
        "Mar  3 08:15:10 dhcp-a dhcpd[1234]: commit 192.0.2.10",
    ]
    events = [parser.parse(line) for line in lines]
    assert [e.continuation for e in events] == [False, False, True, True, False]
    assert events[2].payload == DhcpdOther(message='failover peer "failover-ab"')
    assert events[1].kind == "lease.discover"


def test_last_message_repeated_takes_the_senders_previous_payload():
    parser = LineParser(OPTS)
    first = parser.parse("Mar  3 08:16:00 dhcp-a dhcpd: DHCPDISCOVER from 00:00:5e:00:53:01 via eth0")
    other = parser.parse("Mar  3 08:16:01 dhcp-b dhcpd: DHCPDISCOVER from 00:00:5e:00:53:02 via eth1")
    repeat = parser.parse("Mar  3 08:16:10 dhcp-a last message repeated 4 times")
    assert repeat.repeated == 4
    assert repeat.payload == first.payload != other.payload
    assert repeat.record.ts == datetime(2025, 3, 3, 8, 16, 10, tzinfo=UTC)
    assert repeat.record.message == "last message repeated 4 times"


def test_repeat_with_program_and_empty_host():
    parser = LineParser(OPTS)
    parser.parse("Mar  3 08:16:00 dhcpd: DHCPDISCOVER from 00:00:5e:00:53:01 via eth0")
    repeat = parser.parse("Mar  3 08:16:10  dhcpd: last message repeated 2 times")
    assert (repeat.kind, repeat.repeated) == ("lease.discover", 2)


def test_repeat_without_previous_line_stays_other():
    stateless = parse_line("Mar  3 08:16:10 dhcp-a dhclient: last message repeated 2 times", OPTS)
    assert (stateless.kind, stateless.repeated) == ("syslog.other", 2)
    streamed = LineParser(OPTS).parse("Mar  3 08:16:10  dhcpd: last message repeated 3 times")
    assert (streamed.payload, streamed.repeated) == (DhcpdOther(message="last message repeated 3 times"), 3)


def test_rsyslog_repeat_reduction_carries_the_message():
    event = parse_line(
        "Mar  3 08:16:10 dhcp-a dhcpd: message repeated 3 times: [ DHCPDISCOVER from 00:00:5e:00:53:01 via eth0]", OPTS
    )
    assert event.repeated == 3
    assert event.payload == LeaseDiscover(mac="00:00:5e:00:53:01", via="eth0")


@pytest.mark.parametrize("method", ["parse", "read"])
def test_sender_memory_is_bounded(method: str):
    """`max_senders` bounds what the parser remembers: within it, a repeat of the first sender
    takes that sender's previous payload; after more distinct senders than that it no longer
    does (by host and program, nor by host alone), while the newest sender's still does. The
    lines are fed through `parse` or through `read` (the fast path takes them)."""

    def repeats_after(senders: int, host: str = "host0") -> list[tuple[object, int | None]]:
        parser = LineParser(OPTS, max_senders=8)
        feed = getattr(parser, method)
        for i in range(senders):
            feed(f"<30>Mar  3 08:16:00 host{i} dhcpd: DHCPDISCOVER from 00:00:5e:00:53:{i:02x} via eth0")
        repeats = [parser.parse(f"<30>Mar  3 08:16:10 {host} dhcpd: last message repeated 2 times"),  # (host, program)
                   parser.parse(f"<30>Mar  3 08:16:10 {host} last message repeated 2 times")]  # no tag: by host
        return [(event.payload, event.repeated) for event in repeats]

    first = LeaseDiscover(mac="00:00:5e:00:53:00", via="eth0")
    assert repeats_after(1) == repeats_after(8) == [(first, 2), (first, 2)]
    forgotten = [(DhcpdOther(message="last message repeated 2 times"), 2),
                 (SyslogOther(message="last message repeated 2 times"), 2)]
    assert repeats_after(9) == repeats_after(100) == forgotten
    newest = LeaseDiscover(mac="00:00:5e:00:53:63", via="eth0")
    assert repeats_after(100, host="host99") == [(newest, 2), (newest, 2)]


def test_expand_kea_transition_into_self_and_peer():
    event = parse_line(
        "2025-03-03 08:15:02.076 INFO  [kea-dhcp4.ha-hooks/1234.1] HA_STATE_TRANSITION kea-a: server transitions "
        "from WAITING to SYNCING state, partner state is READY",
        OPTS,
    )
    own, peer = expand(event)
    assert own is event
    assert own.payload == FailoverState(
        relationship=None, side="self", from_state="waiting", to_state="syncing", ha_name="kea-a", partner_state="ready"
    )
    assert peer.payload == FailoverState(relationship=None, side="peer", from_state=None, to_state="ready")
    assert peer.record is event.record


def test_expand_leaves_other_events_alone():
    event = parse_line("failover peer failover-ab: I move from recover to startup", OPTS)
    assert expand(event) == (event,)
    kea_other = parse_line("Mar  3 08:15:02 kea-a kea-dhcp4[1]: INFO  [kea-dhcp4.x.1] DHCP4_X y", OPTS)
    assert isinstance(kea_other.payload, KeaOther) and expand(kea_other) == (kea_other,)


def test_rsyslog_protocol23_frame_with_two_spaces_before_the_text():
    """Seen in the lab (dhcpd 4.4.3 -> rsyslog 8.2302, RSYSLOG_SyslogProtocol23Format): `%msg%`
    keeps the space after the tag, so the text follows the SD after two spaces."""
    line = ("<190>1 2026-11-25T22:16:35.067789+00:00 dhcp1 dhcpd 9873 - -  "
            "failover peer pw-lab: I move from recover-done to normal")
    event = parse_line(line, OPTS)
    assert isinstance(event.payload, FailoverState)
    assert (event.payload.relationship, event.payload.from_state, event.payload.to_state) == (
        "pw-lab", "recover-done", "normal")
    kea = parse_line("<134>1 2026-11-25T22:16:35+00:00 kea1 kea-dhcp4 77 - -  INFO  [kea-dhcp4.ha-hooks.1] "
                     "HA_STATE_TRANSITION server transitions from WAITING to SYNCING state, partner state is WAITING",
                     OPTS)
    assert kea.kind == "failover.state"
