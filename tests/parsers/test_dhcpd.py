"""dhcpd message bodies, one table per family of log-messages.md sections 3 and 5.

Lines are built from the reference's format strings with synthetic values.
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from parsers import parse_line
from parsers.dhcpd import is_continuation, parse_dhcpd
from parsers.events import (
    DHCPD_STATES,
    DhcpdOther,
    FailoverBindRejected,
    FailoverConnection,
    FailoverPairNormal,
    FailoverPool,
    FailoverState,
    FailoverUpdate,
    Lease,
    LeaseAck,
    LeaseDecline,
    LeaseDiscover,
    LeaseInform,
    LeaseNak,
    LeaseNoFree,
    LeaseOffer,
    LeaseRelease,
    LeaseRequest,
    Payload,
    ServerLifecycle,
)

REL = "failover-ab"
MAC = "00:00:5e:00:53:01"


def case(message, expected, id):
    return pytest.param(message, expected, id=id)


STATE_CASES = [
    case(f"failover peer {REL}: I move from {a} to {b}", FailoverState(relationship=REL, side="self", from_state=a, to_state=b), f"self-{a}-{b}")
    for a, b in zip(sorted(DHCPD_STATES), sorted(DHCPD_STATES)[1:] + sorted(DHCPD_STATES)[:1])
] + [
    case(f"failover peer {REL}: peer moves from {a} to {b}", FailoverState(relationship=REL, side="peer", from_state=a, to_state=b), f"peer-{a}-{b}")
    for a, b in zip(sorted(DHCPD_STATES), sorted(DHCPD_STATES)[2:] + sorted(DHCPD_STATES)[:2])
] + [
    case("failover peer dhcp pair 1: I move from normal to communications-interrupted",
         FailoverState(relationship="dhcp pair 1", side="self", from_state="normal", to_state="communications-interrupted"),
         "relationship-with-spaces"),
    case(f"failover peer {REL}: peer moves from normal to normal",
         FailoverState(relationship=REL, side="peer", from_state="normal", to_state="normal"), "peer-reannounce"),
    case(f"failover peer {REL}: Both servers normal", FailoverPairNormal(relationship=REL), "both-normal"),
]

CONNECTION_CASES = [
    case(f"peer {REL}: disconnected", FailoverConnection(relationship=REL, status="disconnected"), "disconnected"),
    case(f"timeout waiting for failover peer {REL}",
         FailoverConnection(relationship=REL, status="timeout", reason="no message within max-response-delay"), "timeout-waiting"),
    case("failover: link startup timeout", FailoverConnection(relationship=None, status="timeout", reason="link startup timeout"), "link-startup-timeout"),
    case(f"failover peer {REL}: connection refused", FailoverConnection(relationship=REL, status="refused", reason="connection refused"), "refused"),
    case(f"failover peer {REL}: host unreachable", FailoverConnection(relationship=REL, status="unreachable", reason="host unreachable"), "host-unreachable"),
    case(f"failover peer {REL}: network unreachable", FailoverConnection(relationship=REL, status="unreachable", reason="network unreachable"), "net-unreachable"),
    case(f"failover peer {REL}: timed out", FailoverConnection(relationship=REL, status="timeout", reason="timed out"), "timed-out"),
    case(f"failover peer {REL}: unexpected error", FailoverConnection(relationship=REL, status="error", reason="unexpected error"), "unexpected-error"),
    case(f"failover peer {REL}: address in use", FailoverConnection(relationship=REL, status="error", reason="address in use"), "address-in-use"),
    case(f"failover peer {REL}: no local address.", FailoverConnection(relationship=REL, status="error", reason="no local address"), "no-local-address"),
    case(f"Failover CONNECT from {REL}: unknown failover relationship name",
         FailoverConnection(relationship=REL, status="rejected", reason="unknown failover relationship name"), "connect-from-rejected"),
    case("Failover CONNECT from unknown: missing relationship-name",
         FailoverConnection(relationship=None, status="rejected", reason="missing relationship-name"), "connect-from-unknown"),
    case("failover: disconnect: time offset too large",
         FailoverConnection(relationship=None, status="disconnected", reason="time offset too large"), "disconnect-reason"),
    case(f"Failover CONNECT to {REL} rejected: Connection rejected, time mismatch too great.",
         FailoverConnection(relationship=REL, status="rejected", reason="Connection rejected, time mismatch too great"), "connect-to-rejected"),
    case(f"Failover CONNECTACK from {REL}: already connected",
         FailoverConnection(relationship=REL, status="rejected", reason="already connected"), "connectack"),
    case(f"Failover DISCONNECT from {REL}: Connection rejected, invalid failover partner.",
         FailoverConnection(relationship=REL, status="disconnected", reason="Connection rejected, invalid failover partner"), "disconnect-from"),
    case("failover: listener: no matching state", FailoverConnection(relationship=None, status="rejected", reason="no matching state"), "listener-no-match"),
    case("failover: connect: no matching state.", FailoverConnection(relationship=None, status="rejected", reason="no matching state"), "connect-no-match"),
    case("dhcp_failover_send_connect: connection refused",
         FailoverConnection(relationship=None, status="error", reason="dhcp_failover_send_connect: connection refused"), "send-connect"),
    case("message length wait: end of file",
         FailoverConnection(relationship=None, status="error", reason="message length wait: end of file"), "length-wait"),
    case("dhcp_failover_put_message: something went wrong.",
         FailoverConnection(relationship=None, status="error", reason="something went wrong"), "put-message"),
]

UPDATE_CASES = [
    case(f"Sent update request message to {REL}", FailoverUpdate(relationship=REL, phase="request_sent"), "request-sent"),
    case(f"Sent update request all message to {REL}", FailoverUpdate(relationship=REL, phase="request_all_sent"), "request-all-sent"),
    case(f"Failed to send update request all message to {REL}: connection reset",
         FailoverUpdate(relationship=REL, phase="request_failed"), "request-failed"),
    case(f"Sent update done message to {REL}", FailoverUpdate(relationship=REL, phase="done_sent"), "done-sent"),
    case(f"Update request from {REL}: sending update", FailoverUpdate(relationship=REL, phase="sending"), "request-from-sending"),
    case(f"Update request from {REL}: nothing pending", FailoverUpdate(relationship=REL, phase="nothing_pending"), "request-from-nothing"),
    case(f"Update request all from {REL}: sending update", FailoverUpdate(relationship=REL, phase="sending_all"), "request-all-from"),
    case(f"Update request all from {REL}: nothing pending", FailoverUpdate(relationship=REL, phase="nothing_pending"), "request-all-nothing"),
    case("Received update request while old update still flying!  Silently discarding old request.",
         FailoverUpdate(relationship=None, phase="request_superseded"), "still-flying"),
    case(f"failover peer {REL}: requesting full update from peer", FailoverUpdate(relationship=REL, phase="requesting"), "requesting"),
    case(f"failover peer {REL}: peer update completed.", FailoverUpdate(relationship=REL, phase="completed"), "completed"),
    case(f"Sending updates to {REL}.", FailoverUpdate(relationship=REL, phase="sending_pending"), "sending-updates"),
]

BIND_CASES = [
    case(f"bind update on 192.0.2.10 from {REL} rejected: {reason}",
         FailoverBindRejected(ip="192.0.2.10", relationship=REL, reason=reason), reason[:30])
    for reason in (
        "incoming update is less critical than outgoing update",
        "unknown IP address",
        "192.0.2.10: invalid state transition: active to free",
        "Illegal IP address (not part of any address pool).",
    )
]

POOL_CASES = [
    case("balancing pool 5612a0c3e0a0 192.0.2.0/24  total 240  free 0  backup 120  lts -60  max-own (+/-)12",
         FailoverPool(pool="5612a0c3e0a0", network="192.0.2.0/24", total=240, free=0, backup=120, lts=-60, balanced=None), "balancing"),
    case("balancing pool 5612a0c3e0a0 192.0.2.0/24  total 240  free 200  backup 0  lts 100  max-own (+/-)20  (requesting peer rebalance!)",
         FailoverPool(pool="5612a0c3e0a0", network="192.0.2.0/24", total=240, free=200, backup=0, lts=100, balanced=None), "balancing-rebalance"),
    case("balanced pool 5612a0c3e0a0 192.0.2.0/24  total 240  free 120  backup 119  lts 0  max-misbal 18",
         FailoverPool(pool="5612a0c3e0a0", network="192.0.2.0/24", total=240, free=120, backup=119, lts=0, balanced=True), "balanced"),
    case("IMBALANCED pool 5612a0c3e0a0 campus net  total 240  free 10  backup 200  lts 95  max-misbal 18",
         FailoverPool(pool="5612a0c3e0a0", network="campus net", total=240, free=10, backup=200, lts=95, balanced=False), "imbalanced-named"),
    case("balanced pool 5612a0c3e0a0 192.0.2.0/24 total 240 free 120 backup 119 lts 0 max-misbal 18",
         FailoverPool(pool="5612a0c3e0a0", network="192.0.2.0/24", total=240, free=120, backup=119, lts=0, balanced=True), "collapsed-spaces"),
    case("balancing pool 5612a0c3e0a0   total 240  free 120  backup 120  lts 0  max-own (+/-)24",
         FailoverPool(pool="5612a0c3e0a0", network="", total=240, free=120, backup=120, lts=0, balanced=None), "empty-network"),
    case("pool 80f3a28 198.51.100/24  total 100  free 50  backup 48  lts 1",
         FailoverPool(pool="80f3a28", network="198.51.100/24", total=100, free=50, backup=48, lts=1, balanced=None), "v3.0-balance"),
    case("pool 80f3a28 198.51.100/24 total 100  free 50  backup 48  lts 1",
         FailoverPool(pool="80f3a28", network="198.51.100/24", total=100, free=50, backup=48, lts=1, balanced=None), "v3.0-pool-check"),
]

LEASE_CASES = [
    case(f"DHCPDISCOVER from {MAC} via eth0", LeaseDiscover(mac=MAC, via="eth0"), "discover"),
    case(f"DHCPDISCOVER from {MAC} (host-a) via 198.51.100.1", LeaseDiscover(mac=MAC, client_name="host-a", via="198.51.100.1"), "discover-name-relay"),
    case(f"DHCPDISCOVER from {MAC} (Hostname Unsuitable for Printing) via eth0",
         LeaseDiscover(mac=MAC, client_name="Hostname Unsuitable for Printing", via="eth0"), "discover-unprintable"),
    case(f"DHCPDISCOVER from {MAC} via eth0: peer holds all free leases",
         LeaseNoFree(network=None, reason="peer holds all free leases"), "peer-holds-all"),
    case(f"DHCPDISCOVER from {MAC} via eth0: network 203.0.113.0/24: no free leases",
         LeaseNoFree(network="203.0.113.0/24", reason="no free leases"), "no-free-leases"),
    case(f"DHCPDISCOVER from {MAC} via eth0: not responding (recover wait)",
         LeaseDiscover(mac=MAC, via="eth0", refused="not responding (recover wait)"), "not-responding-recover-wait"),
    case(f"DHCPDISCOVER from {MAC} via eth0: not responding (peer demands: resolving conflicts)",
         LeaseDiscover(mac=MAC, via="eth0", refused="not responding (peer demands: resolving conflicts)"), "not-responding-peer-demands"),
    case(f"DHCPDISCOVER from {MAC} via eth0: load balance to peer {REL}",
         LeaseDiscover(mac=MAC, via="eth0", refused="load balance to peer"), "load-balance"),
    case(f"DHCPDISCOVER from {MAC} via eth0: cancel load balance to peer {REL} - no free leases",
         LeaseDiscover(mac=MAC, via="eth0", detail=f"cancel load balance to peer {REL} - no free leases"), "cancel-load-balance"),
    case(f"DHCPDISCOVER from {MAC} via eth1: unknown network segment",
         LeaseDiscover(mac=MAC, via="eth1", detail="unknown network segment"), "unknown-segment"),
    case("DHCPDISCOVER from xx:xx:xx:xx:xx:xx via eth0", LeaseDiscover(mac="xx:xx:xx:xx:xx:xx", via="eth0"), "obfuscated-mac"),
    case(f"DHCPREQUEST for 192.0.2.10 (192.0.2.1) from {MAC} (host-a) via eth0",
         LeaseRequest(ip="192.0.2.10", server_id="192.0.2.1", mac=MAC, client_name="host-a", via="eth0"), "request-selecting"),
    case(f"DHCPREQUEST for 192.0.2.10 from {MAC} via eth0", LeaseRequest(ip="192.0.2.10", mac=MAC, via="eth0"), "request-renew"),
    case(f"DHCPREQUEST for 192.0.2.10 from {MAC} via eth0: lease owned by peer",
         LeaseRequest(ip="192.0.2.10", mac=MAC, via="eth0", refused="lease owned by peer"), "request-owned-by-peer"),
    case(f"DHCPREQUEST for 192.0.2.10 from {MAC} via eth0: not responding (startup)",
         LeaseRequest(ip="192.0.2.10", mac=MAC, via="eth0", refused="not responding (startup)"), "request-not-responding"),
    case(f"DHCPREQUEST for 192.0.2.10 (192.0.2.2) from {MAC} via eth0: not our server id",
         LeaseRequest(ip="192.0.2.10", server_id="192.0.2.2", mac=MAC, via="eth0", refused="not our server id"), "request-not-our-sid"),
    case(f"DHCPREQUEST for 192.0.2.10 from {MAC} via eth0: lease in transition state released",
         LeaseRequest(ip="192.0.2.10", mac=MAC, via="eth0", refused="lease in transition state released"), "request-transition"),
    case(f"DHCPREQUEST for 192.0.2.10 from {MAC} via eth0: wrong network.",
         LeaseRequest(ip="192.0.2.10", mac=MAC, via="eth0", detail="wrong network"), "request-wrong-network"),
    case(f"DHCPREQUEST for 192.0.2.10 from {MAC} via eth0: ignored (not authoritative).",
         LeaseRequest(ip="192.0.2.10", mac=MAC, via="eth0", refused="ignored (not authoritative)"), "request-not-authoritative"),
    case(f"DHCPREQUEST for 192.0.2.10 from {MAC} via eth0: lease 192.0.2.10 unavailable.",
         LeaseRequest(ip="192.0.2.10", mac=MAC, via="eth0", detail="lease 192.0.2.10 unavailable"), "request-unavailable"),
    case(f"DHCPREQUEST for 192.0.2.10 from {MAC} via eth0: unknown lease 192.0.2.10.",
         LeaseRequest(ip="192.0.2.10", mac=MAC, via="eth0", detail="unknown lease 192.0.2.10"), "request-unknown-lease"),
    case(f"DHCPOFFER on 192.0.2.10 to {MAC} (host-a) via eth0", LeaseOffer(ip="192.0.2.10", mac=MAC, client_name="host-a", via="eth0"), "offer"),
    case(f"DHCPACK on 192.0.2.10 to {MAC} via 198.51.100.1", LeaseAck(ip="192.0.2.10", mac=MAC, via="198.51.100.1"), "ack-relay"),
    case(f"DHCPACK on 198.51.100.22 to {MAC} (host-e) via eth1 relay eth1 lease-duration 3600 (RENEW) uid 01:00:00:5e:00:53:06",
         LeaseAck(ip="198.51.100.22", mac=MAC, client_name="host-e", via="eth1",
                  detail="relay eth1 lease-duration 3600 (RENEW) uid 01:00:00:5e:00:53:06"), "ack-infoblox"),
    case(f"DHCPACK to 192.0.2.30 ({MAC}) via eth0", LeaseAck(ip="192.0.2.30", mac=MAC, via="eth0", detail="inform"), "ack-inform"),
    case(f"BOOTREPLY on 192.0.2.31 to {MAC} via eth0", LeaseAck(ip="192.0.2.31", mac=MAC, via="eth0", detail="bootp"), "bootreply-on"),
    case(f"BOOTREPLY for 192.0.2.31 to host-b ({MAC}) via eth0",
         LeaseAck(ip="192.0.2.31", mac=MAC, client_name="host-b", via="eth0", detail="bootp"), "bootreply-for"),
    case(f"BOOTREQUEST from {MAC} via eth0", LeaseRequest(mac=MAC, via="eth0", detail="bootp"), "bootrequest"),
    case(f"BOOTREQUEST from {MAC} via eth0: BOOTP from dynamic client and no dynamic leases",
         LeaseRequest(mac=MAC, via="eth0", detail="BOOTP from dynamic client and no dynamic leases"), "bootrequest-no-dynamic"),
    case(f"DHCPNAK on 192.0.2.10 to {MAC} via eth0", LeaseNak(ip="192.0.2.10", mac=MAC, via="eth0"), "nak"),
    case(f"DHCPRELEASE of 198.51.100.20 from {MAC} (host-c) via eth0 (found)",
         LeaseRelease(ip="198.51.100.20", mac=MAC, client_name="host-c", via="eth0", detail="found"), "release-found"),
    case(f"DHCPRELEASE of 0.0.0.0 from {MAC} via eth0 (not found)",
         LeaseRelease(ip="0.0.0.0", mac=MAC, via="eth0", detail="not found"), "release-not-found"),
    case(f"DHCPRELEASE from {MAC} specified requested-address.",
         LeaseRelease(mac=MAC, detail="specified requested-address"), "release-opt50"),
    case(f"DHCPDECLINE of 192.0.2.10 from {MAC} (host-a) via eth0: abandoned",
         LeaseDecline(ip="192.0.2.10", mac=MAC, client_name="host-a", via="eth0", detail="abandoned"), "decline"),
    case(f"DHCPDECLINE of 192.0.2.10 from {MAC} via eth0: not found",
         LeaseDecline(ip="192.0.2.10", mac=MAC, via="eth0", detail="not found"), "decline-not-found"),
    case("DHCPINFORM from 192.0.2.40 via eth0", LeaseInform(ip="192.0.2.40", via="eth0"), "inform"),
    case("DHCPINFORM from 192.0.2.40 via eth0: not authoritative for subnet 192.0.2.0",
         LeaseInform(ip="192.0.2.40", via="eth0", detail="not authoritative for subnet 192.0.2.0"), "inform-not-authoritative"),
    case(f"DHCPDISCOVER from {MAC} via eth0: unknown client",
         LeaseDiscover(mac=MAC, via="eth0", refused="unknown client"), "unknown-client"),
]

LIFECYCLE_CASES = [
    case("Internet Systems Consortium DHCP Server 4.4.3-P1", ServerLifecycle(event="start", version="4.4.3-P1"), "banner-4.4"),
    case("Internet Systems Consortium DHCP Server V3.0.7", ServerLifecycle(event="start", version="3.0.7"), "banner-3.0"),
    case("Server starting service.", ServerLifecycle(event="serving"), "serving"),
    case("exiting.", ServerLifecycle(event="exit"), "exiting"),
    case("Received signal 15, initiating shutdown.", ServerLifecycle(event="exit"), "signal"),
]

OTHER_CASES = [
    case(m, DhcpdOther(message=m), m[:40])
    for m in (
        "Copyright 2004-2022 Internet Systems Consortium.",
        "All rights reserved.",
        "Config file: /etc/dhcp/dhcpd.conf",
        "Wrote 12 leases to leases file.",
        "Listening on LPF/eth0/00:00:5e:00:53:aa/192.0.2.0/24",
        "Sending on   Socket/fallback/fallback-net",
        f"uid lease 192.0.2.51 for client {MAC} is duplicate on vlan10",
        f"peer {REL}: Got POOLREQ, answering negatively!  Peer may be out of leases or database inconsistent.",
        "Both servers have entered recover-done!",
        f"Peer {REL}: Invalid state transition normal to potential-conflict.",
        f"failover peer {REL}: Invalid state: 99",
        f"{REL}: ignored (recovering)",
        "Abandoning IP address 192.0.2.10: declined.",
        "FAILOVER: message overflow at option code.",
        "execute: /usr/local/sbin/ddns-hook exit status 512",
        "pool response: 20 leases",
        "lease imbalance - lts = 12",
        f"bind update on 192.0.2.10 got ack from {REL}: xid mismatch.",
        "Unable to record current failover state for failover-ab",
        "DHCP4o6 DHCPDISCOVER from 00:00:5e:00:53:01 via eth0",
    )
]


@pytest.mark.parametrize(
    "message,expected",
    STATE_CASES + CONNECTION_CASES + UPDATE_CASES + BIND_CASES + POOL_CASES + LEASE_CASES + LIFECYCLE_CASES + OTHER_CASES,
)
def test_dhcpd_message(message, expected):
    assert parse_dhcpd(message) == expected


def test_every_state_name_is_parsed_on_both_sides():
    states = [p.values[1] for p in STATE_CASES if isinstance(p.values[1], FailoverState)]
    seen = {(e.side, s) for e in states for s in (e.from_state, e.to_state)}
    assert {s for side, s in seen if side == "self"} >= DHCPD_STATES
    assert {s for side, s in seen if side == "peer"} >= DHCPD_STATES


@pytest.mark.parametrize(
    "message",
    ["commit 192.0.2.10", "ddns-hook: record for host-a already up to date", "random words", ""],
)
def test_unknown_text_is_none(message):
    """Text from dhcpd.conf log() statements or execute() children: the caller decides."""
    assert parse_dhcpd(message) is None


@pytest.mark.parametrize(
    "message",
    [
        "If you think you have received this message due to a bug rather",
        "process and the information we find helpful for debugging.",
        "please write an `authoritative;' directive either in the",
        "subnet declaration or in some scope thatencloses the",
        "** Ignoring requests on d0.  If this is not what",
        "   you want, please write a subnet declaration",
        "   to which interface d0 is attached. **",
        "Remove host declaration host-d or remove 192.0.2.50",
        "from the dynamic address pool for 192.0.2.0/24",
        "in each pool declaration.   You MUST NOT use range declarations outside",
        "                                                                ^",
    ],
)
def test_continuation_lines(message):
    assert is_continuation(message)
    assert parse_dhcpd(message) == DhcpdOther(message=message)


@pytest.mark.parametrize("message", ["exiting.", "failover peer x: I move from a to b", "^ not a caret line"])
def test_not_continuation(message):
    assert not is_continuation(message)


# --- garbled lease lines (issue 16) ----------------------------------------------------
# A refusal or exhaustion text always ends the line dhcpd prints (`<client> via X: <text>`).
# Lines that lost part of that (copied from a web page, mangled by a relay) still end in it.

REPORTED = "DHCPDISCOVER from 40:61:86:e3:f7:7f via peer holds all free leases"
"""Posted as is by a user: the interface and the colon are gone."""


def test_reported_garbled_line_is_the_exhaustion_the_well_formed_one_is():
    well_formed = parse_dhcpd("DHCPDISCOVER from 40:61:86:e3:f7:7f via eth0: peer holds all free leases")
    assert well_formed == LeaseNoFree(network=None, reason="peer holds all free leases")
    # lease.no_free has no `via`: nothing wrong ("peer") can leak into it
    assert parse_dhcpd(REPORTED) == well_formed


@pytest.mark.parametrize("line", [f"Nov 25 18:54:23 edge1 dhcpd[24533]: {REPORTED}", REPORTED], ids=["tagged", "header-less"])
def test_reported_garbled_line_through_the_line_parser(line):
    assert parse_line(line).kind == "lease.no_free"


REFUSED_LINES = {
    "peer-holds-all": f"DHCPDISCOVER from {MAC} via eth0: peer holds all free leases",
    "no-free-leases": f"DHCPDISCOVER from {MAC} via eth0: network 203.0.113.0/24: no free leases",
    "not-responding": f"DHCPDISCOVER from {MAC} (host-a) via eth0: not responding (recover wait)",
    "not-responding-relay": f"DHCPDISCOVER from {MAC} via 198.51.100.1: not responding (peer demands: resolving conflicts)",
    "load-balance": f"DHCPDISCOVER from {MAC} via eth0: load balance to peer {REL}",
    "unknown-client": f"DHCPDISCOVER from {MAC} via eth0: unknown client",
    "owned-by-peer": f"DHCPREQUEST for 192.0.2.10 from {MAC} via eth0: lease owned by peer",
    "not-our-sid": f"DHCPREQUEST for 192.0.2.10 (192.0.2.2) from {MAC} (host-a) via eth0: not our server id",
    "request-not-responding": f"DHCPREQUEST for 192.0.2.10 from {MAC} via eth0: not responding (startup)",
    "transition": f"DHCPREQUEST for 192.0.2.10 from {MAC} via eth0: lease in transition state released",
    "reset": f"DHCPREQUEST for 192.0.2.10 from {MAC} via eth0: lease reset by administrator",
    "not-authoritative": f"DHCPREQUEST for 192.0.2.10 from {MAC} via eth0: ignored (not authoritative).",
    "inform-ignored": "DHCPINFORM from 192.0.2.40 via eth0: ignored (null source address).",
    "bootp-disallowed": f"BOOTREQUEST from {MAC} via eth0: bootp disallowed",
}

GARBLES = {
    "colon-lost": (r"\1 via \2 \3", True),
    "interface-lost": (r"\1 via: \3", False),
    "interface-and-colon-lost": (r"\1 via \3", False),
    "via-lost": (r"\1 \3", False),
}
_VIA = re.compile(r"(.*?) via (\S+): (.*)")


def _without_via(payload: Payload | None) -> Payload | None:
    return replace(payload, via=None) if isinstance(payload, Lease) else payload


@pytest.mark.parametrize("garble", GARBLES)
@pytest.mark.parametrize("refusal", REFUSED_LINES)
def test_refusal_text_is_recognised_wherever_it_stands(refusal, garble):
    """The garbled line gives the well-formed line's kind and fields; `via` only if it survived."""
    line, (template, keeps_via) = REFUSED_LINES[refusal], GARBLES[garble]
    well_formed = parse_dhcpd(line)
    assert isinstance(well_formed, LeaseNoFree) or well_formed.refused  # type: ignore[union-attr]
    expected = well_formed if keeps_via else _without_via(well_formed)
    assert parse_dhcpd(_VIA.sub(template, line)) == expected


@pytest.mark.parametrize("message,expected", [
    case(f"DHCPDISCOVER from {MAC} (host-a) peer holds all free leases",
         LeaseNoFree(network=None, reason="peer holds all free leases"), "after-hostname"),
    case(f"DHCPDISCOVER from {MAC}: peer holds all free leases",
         LeaseNoFree(network=None, reason="peer holds all free leases"), "colon-after-mac"),
    case(f"DHCPDISCOVER from {MAC} via eth0: no free leases",
         LeaseNoFree(network=None, reason="no free leases"), "network-lost"),
    case(f"DHCPDISCOVER from {MAC} via network 203.0.113.0/24: no free leases",
         LeaseNoFree(network="203.0.113.0/24", reason="no free leases"), "network-after-via"),
    case(f"DHCPREQUEST for 192.0.2.10 from {MAC} (host-a) via not responding (recover wait)",
         LeaseRequest(ip="192.0.2.10", mac=MAC, client_name="host-a", refused="not responding (recover wait)"),
         "request-interface-lost"),
])
def test_more_garbled_refusals(message, expected):
    assert parse_dhcpd(message) == expected


@pytest.mark.parametrize("message,expected", [
    case(f"DHCPDISCOVER from {MAC} via eth0 cancel load balance to peer {REL} - no free leases",
         LeaseDiscover(mac=MAC, via="eth0", detail=f"cancel load balance to peer {REL} - no free leases"),
         "cancel-load-balance-colon-lost"),
    case(f"DHCPDISCOVER from {MAC} via eth1 relay eth1 lease-duration 3600",
         LeaseDiscover(mac=MAC, via="eth1", detail="relay eth1 lease-duration 3600"), "infoblox"),
    case(f"DHCPREQUEST for 192.0.2.10 from {MAC} via eth0 wrong network.",
         LeaseRequest(ip="192.0.2.10", mac=MAC, via="eth0", detail="wrong network."), "not-a-refusal"),
])
def test_lines_that_only_mention_a_refusal_keep_their_reading(message, expected):
    assert parse_dhcpd(message) == expected
