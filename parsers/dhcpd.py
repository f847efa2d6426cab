"""ISC dhcpd (3.0 - 4.4.3) message bodies -> payloads.

Formats come from log-messages.md sections 3 and 5 (read from dhcpd's sources).
The first word of a message picks a short list of anchored patterns, so a line
costs one dict lookup and one or two regex matches instead of a pass over a
giant alternation. Three answers are possible, and the caller needs all three:

* a vocabulary payload (`FailoverState`, `LeaseAck`, ...);
* `DhcpdOther`: a message dhcpd is known to print, outside the vocabulary;
* `None`: not a dhcpd message we know. On a line tagged `dhcpd` that still
  becomes `dhcpd.other` (dhcpd.conf `log()` statements and `execute()` children
  log under dhcpd's ident); on a header-less line it decides `syslog.other`.

`is_continuation` recognises the fixed follow-up lines of dhcpd's multi-line
messages without any state.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from parsers.events import (
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

Builder = Callable[[re.Match[str], str], Payload]

# --- lease transactions (section 5) -------------------------------------------------
# "<client> [(<hostname>) ]via <relay-or-interface>" then ": <suffix>" (refusals,
# exhaustion) or, from Infoblox NIOS and RELEASE, " <more>".
# (an interface name or a relay's IPv4 address never holds a colon, so the via token
# ends at one: no backtracking over the suffix)
_CLIENT_TAIL = r"(\S+) (?:\((.*?)\) )?via ([^\s:]++)(?:: (.*)| (.*))?"
_DISCOVER = re.compile(r"DHCPDISCOVER from " + _CLIENT_TAIL + r"$", re.DOTALL)
_REQUEST = re.compile(r"DHCPREQUEST for (\S+)(?: \((\S+)\))? from " + _CLIENT_TAIL + r"$", re.DOTALL)
_REPLY_ON = re.compile(r"(DHCPOFFER|DHCPACK|BOOTREPLY) on (\S+) to " + _CLIENT_TAIL + r"$", re.DOTALL)
_ACK_INFORM = re.compile(r"DHCPACK to (\S+) \((.*?)\) via (\S+)$")
_NAK = re.compile(r"DHCPNAK on (\S+) to (\S+) via (\S+)$")
_RELEASE = re.compile(r"DHCPRELEASE of (\S+) from " + _CLIENT_TAIL + r"$", re.DOTALL)
_RELEASE_OPT50 = re.compile(r"DHCPRELEASE from (\S+) specified requested-address\.$")
_DECLINE = re.compile(r"DHCPDECLINE of (\S+) from " + _CLIENT_TAIL + r"$", re.DOTALL)
_INFORM = re.compile(r"DHCPINFORM from (\S+) via (\S+?)(?:: (.*))?$", re.DOTALL)
_BOOTREQUEST = re.compile(r"BOOTREQUEST from (\S+) via (\S+?)(?:: (.*))?$", re.DOTALL)
_BOOTREPLY_FOR = re.compile(r"BOOTREPLY for (\S+) to (.*?) \((\S+)\) via (\S+)$")

# Texts after "via X: " that mean "this server did not answer", with the stable part
# kept as the reason so it can label a counter (peer names are cut off).
_REFUSAL_PREFIXES = (
    "load balance to peer",
    "not responding",
    "lease owned by peer",
    "lease in transition state",
    "lease reset by administrator",
    "not our server id",
    "ignored",
    "unknown client",
    "bootp disallowed",
    "booting disallowed",
)
# A refusal or exhaustion text as it ends a lease line (dhcpd always prints it last).
# Exhaustion becomes `lease.no_free`; "no free leases" without its network is that text
# with the network lost (dhcpd always names one).
_REFUSAL_TEXT = (
    r"(?:(?P<held>peer holds all free leases)"
    r"|(?:network (?P<network>.+): )?(?P<exhausted>no free leases)"
    r"|(?P<refused>(?:" + "|".join(map(re.escape, _REFUSAL_PREFIXES)) + r").*))$"
)
_REFUSAL = re.compile(_REFUSAL_TEXT, re.DOTALL)
# The same text after a client whose "[(<hostname>) ]via <X>: " lost pieces on the way
# (pasted into a forum, a relay that drops fields): the colon, the interface, or "via"
# itself. Seen as is: "DHCPDISCOVER from 40:61:86:e3:f7:7f via peer holds all free leases".
# Only the messages dhcpd refuses carry these texts (DISCOVER, REQUEST, INFORM,
# BOOTREQUEST). Tried only on lines the well-formed patterns reject, or that have
# " <more>" where ": <suffix>" belongs: an ordinary line never pays for it. The via token is tried first,
# then given up to the text ("via peer holds ..." has no interface).
_GARBLED_TAIL = (
    r"(?P<client>\S+?):? (?:\((?P<name>[^()]*+)\) )?(?:via(?: (?P<via>[^\s:]++))?:? )?" + _REFUSAL_TEXT
)
_GARBLED_DISCOVER = re.compile(r"DHCPDISCOVER from " + _GARBLED_TAIL, re.DOTALL)
_GARBLED_REQUEST = re.compile(r"DHCPREQUEST for (?P<ip>\S+)(?: \((?P<sid>\S+)\))? from " + _GARBLED_TAIL, re.DOTALL)
_GARBLED_INFORM = re.compile(r"DHCPINFORM from " + _GARBLED_TAIL, re.DOTALL)
_GARBLED_BOOTREQUEST = re.compile(r"BOOTREQUEST from " + _GARBLED_TAIL, re.DOTALL)


def refusal_of(suffix: str) -> str | None:
    """What a lease line's ": <suffix>" says: the refusal (as `Lease.refused`), "" when it
    says the pool is empty (the line is `lease.no_free`), None when it is only a detail."""
    m = _REFUSAL.match(suffix)
    if m is None:
        return None
    return "" if m["refused"] is None else _reason(m["refused"])


def _reason(refused: str) -> str:
    """A refusal text -> the stable part that labels a counter (the peer's name is cut off)."""
    text = refused.rstrip(".")
    return "load balance to peer" if text.startswith("load balance to peer") else text


def _refusal(
    cls: type[Lease],
    m: re.Match[str],
    ip: str | None = None,
    mac: str | None = None,
    name: str | None = None,
    via: str | None = None,
    server_id: str | None = None,
    detail: str | None = None,
) -> Payload:
    """A lease line ending in a refusal or exhaustion text (`m` matched `_REFUSAL_TEXT`)."""
    if m["held"] is not None:
        return LeaseNoFree(network=None, reason="peer holds all free leases")
    if m["exhausted"] is not None:
        return LeaseNoFree(network=m["network"], reason="no free leases")
    return cls(ip=ip, mac=mac, client_name=name, via=via, server_id=server_id, refused=_reason(m["refused"]),
               detail=detail)


def _lease(
    cls: type[Lease],
    ip: str | None,
    mac: str | None,
    name: str | None,
    via: str,
    suffix: str | None,
    extra: str | None,
    server_id: str | None = None,
    default_detail: str | None = None,
) -> Payload:
    """A well-formed `... via X[: suffix| more]` line -> its kind (`lease.no_free` when the
    suffix says the pool is empty), with the refusal or the detail its suffix gives."""
    if extra is not None:  # " <more>": Infoblox's fields, a RELEASE's "(found)"
        return cls(ip=ip, mac=mac, client_name=name, via=via, server_id=server_id, detail=extra.strip("()"))
    if suffix is None:  # the common case: a plain transaction
        return cls(ip=ip, mac=mac, client_name=name, via=via, server_id=server_id, detail=default_detail)
    m = _REFUSAL.match(suffix)
    if m is not None:
        return _refusal(cls, m, ip, mac, name, via, server_id, default_detail)
    detail = suffix.rstrip(".") if suffix else default_detail
    return cls(ip=ip, mac=mac, client_name=name, via=via, server_id=server_id, detail=detail)


def _discover(m: re.Match[str], message: str) -> Payload:
    mac, name, via, suffix, extra = m.groups()
    if extra is not None and (garbled := _GARBLED_DISCOVER.match(message)):
        return _garbled_discover(garbled, message)
    return _lease(LeaseDiscover, None, mac, name, via, suffix, extra)


def _garbled_discover(m: re.Match[str], _: str) -> Payload:
    return _refusal(LeaseDiscover, m, mac=m["client"], name=m["name"], via=m["via"])


def _request(m: re.Match[str], message: str) -> Payload:
    ip, sid, mac, name, via, suffix, extra = m.groups()
    if extra is not None and (garbled := _GARBLED_REQUEST.match(message)):
        return _garbled_request(garbled, message)
    return _lease(LeaseRequest, ip, mac, name, via, suffix, extra, sid)


def _garbled_request(m: re.Match[str], _: str) -> Payload:
    return _refusal(LeaseRequest, m, ip=m["ip"], mac=m["client"], name=m["name"], via=m["via"], server_id=m["sid"])


_REPLY_KIND: dict[str, type[Lease]] = {"DHCPOFFER": LeaseOffer, "DHCPACK": LeaseAck, "BOOTREPLY": LeaseAck}


def _reply_on(m: re.Match[str], _: str) -> Payload:
    word, ip, mac, name, via, suffix, extra = m.groups()
    bootp = "bootp" if word == "BOOTREPLY" else None
    return _lease(_REPLY_KIND[word], ip, mac, name, via, suffix, extra, default_detail=bootp)


def _ack_inform(m: re.Match[str], _: str) -> Payload:
    ip, hw, via = m.groups()
    return LeaseAck(ip=ip, mac=hw, via=via, detail="inform")


def _nak(m: re.Match[str], _: str) -> Payload:
    ip, mac, via = m.groups()
    return LeaseNak(ip=ip, mac=mac, via=via)


def _release(m: re.Match[str], _: str) -> Payload:
    ip, mac, name, via, suffix, extra = m.groups()
    return _lease(LeaseRelease, ip, mac, name, via, suffix, extra)


def _release_opt50(m: re.Match[str], _: str) -> Payload:
    return LeaseRelease(mac=m.group(1), detail="specified requested-address")


def _decline(m: re.Match[str], _: str) -> Payload:
    ip, mac, name, via, suffix, extra = m.groups()
    # the DECLINE suffix is the outcome (abandoned / not found / ignored), not a refusal
    return LeaseDecline(ip=ip, mac=mac, client_name=name, via=via, detail=suffix if extra is None else extra)


def _inform(m: re.Match[str], _: str) -> Payload:
    ip, via, suffix = m.groups()
    return _lease(LeaseInform, ip, None, None, via, suffix, None)


def _garbled_inform(m: re.Match[str], _: str) -> Payload:
    return _refusal(LeaseInform, m, ip=m["client"], via=m["via"])


def _bootrequest(m: re.Match[str], _: str) -> Payload:
    mac, via, suffix = m.groups()
    return _lease(LeaseRequest, None, mac, None, via, suffix, None, default_detail="bootp")


def _garbled_bootrequest(m: re.Match[str], _: str) -> Payload:
    return _refusal(LeaseRequest, m, mac=m["client"], via=m["via"], detail="bootp")


def _bootreply_for(m: re.Match[str], _: str) -> Payload:
    ip, name, hw, via = m.groups()
    return LeaseAck(ip=ip, mac=hw, client_name=None if name == "unknown" else name, via=via, detail="bootp")


# --- failover (section 3) ------------------------------------------------------------
_PEER_LINE = re.compile(r"failover peer (.+?): (.*)$", re.DOTALL)
_MOVE = re.compile(r"(?:(I) move|peer moves) from (\S+) to (\S+)$")
_PEER_DISCONNECTED = re.compile(r"peer (.+): disconnected$")
_TIMEOUT_WAITING = re.compile(r"timeout waiting for failover peer (.+)$")
_FAILOVER_COLON = re.compile(
    r"failover: (link startup timeout|disconnect: (.*)|connect: (no matching state)\.?|listener: (no matching state))$"
)
_FAILOVER_CAP = re.compile(
    r"Failover (CONNECT from|CONNECT to|CONNECTACK from|DISCONNECT from) (.+?)(?: rejected)?: (.*)$"
)
_LINK_ERROR = re.compile(r"(dhcp_failover_send_connect|dhcp_failover_send_connectack|message length wait): (.*)$")
_PUT_MESSAGE = re.compile(r"dhcp_failover_put_message: (something went wrong)\.$")
_SENT = re.compile(r"Sent update (request|request all|done) message to (.+)$")
_FAILED_SEND = re.compile(r"Failed to send update request all message to (.+?): .*$")
_UPDATE_FROM = re.compile(r"Update request (all )?from (.+?): (sending update|nothing pending)$")
_SENDING_UPDATES = re.compile(r"Sending updates to (.+)\.$")
_RECEIVED = re.compile(
    r"Received (?:(update request while old update still flying!)|signal \d+, initiating shutdown\.)"
)
_BIND_REJECTED = re.compile(r"bind update on (\S+) from (.+?) rejected: (.*)$", re.DOTALL)
_POOL = re.compile(
    r"(?:(balancing|balanced|IMBALANCED) )?pool ([0-9a-fA-F]+) (.*?) +total (\d+) +free (\d+) +backup (\d+)"
    r" +lts (-?\d+)"
)
_BANNER = re.compile(r"Internet Systems Consortium DHCP Server V?(\S+)$")

_CONNECT_RESULTS = {
    "connection refused": "refused",
    "host unreachable": "unreachable",
    "network unreachable": "unreachable",
    "timed out": "timeout",
}


def _peer_line(m: re.Match[str], msg: str) -> Payload:
    """``failover peer NAME: ...``: transitions, resync steps and link errors."""
    name, rest = m.groups()
    mv = _MOVE.match(rest)
    if mv:
        me, old, new = mv.groups()
        return FailoverState(relationship=name, side="self" if me else "peer", from_state=old, to_state=new)
    if rest == "Both servers normal":
        return FailoverPairNormal(relationship=name)
    if rest == "peer update completed.":
        return FailoverUpdate(relationship=name, phase="completed")
    if rest.startswith("requesting "):
        return FailoverUpdate(relationship=name, phase="requesting")
    if rest.startswith("Invalid state: "):
        return DhcpdOther(message=msg)
    status = _CONNECT_RESULTS.get(rest, "error")
    return FailoverConnection(relationship=name, status=status, reason=rest.rstrip("."))


def _peer_disconnected(m: re.Match[str], _: str) -> Payload:
    return FailoverConnection(relationship=m.group(1), status="disconnected")


def _timeout_waiting(m: re.Match[str], _: str) -> Payload:
    return FailoverConnection(relationship=m.group(1), status="timeout", reason="no message within max-response-delay")


def _failover_colon(m: re.Match[str], _: str) -> Payload:
    whole, disconnect, connect, listener = m.groups()
    if disconnect is not None:
        return FailoverConnection(relationship=None, status="disconnected", reason=disconnect)
    if whole == "link startup timeout":
        return FailoverConnection(relationship=None, status="timeout", reason=whole)
    return FailoverConnection(relationship=None, status="rejected", reason=connect or listener)


def _failover_cap(m: re.Match[str], _: str) -> Payload:
    what, name, reason = m.groups()
    status = "disconnected" if what == "DISCONNECT from" else "rejected"
    return FailoverConnection(relationship=None if name == "unknown" else name, status=status,
                              reason=reason.rstrip("."))


def _link_error(m: re.Match[str], _: str) -> Payload:
    return FailoverConnection(relationship=None, status="error", reason=f"{m.group(1)}: {m.group(2)}")


_SENT_PHASE = {"request": "request_sent", "request all": "request_all_sent", "done": "done_sent"}


def _sent(m: re.Match[str], _: str) -> Payload:
    return FailoverUpdate(relationship=m.group(2), phase=_SENT_PHASE[m.group(1)])


def _failed_send(m: re.Match[str], _: str) -> Payload:
    return FailoverUpdate(relationship=m.group(1), phase="request_failed")


def _update_from(m: re.Match[str], _: str) -> Payload:
    everything, name, what = m.groups()
    if what == "nothing pending":
        phase = "nothing_pending"
    else:
        phase = "sending_all" if everything else "sending"
    return FailoverUpdate(relationship=name, phase=phase)


def _sending_updates(m: re.Match[str], _: str) -> Payload:
    return FailoverUpdate(relationship=m.group(1), phase="sending_pending")


def _received(m: re.Match[str], _: str) -> Payload:
    if m.group(1) is not None:
        return FailoverUpdate(relationship=None, phase="request_superseded")
    return ServerLifecycle(event="exit")


def _bind_rejected(m: re.Match[str], _: str) -> Payload:
    ip, name, reason = m.groups()
    return FailoverBindRejected(ip=ip, relationship=name, reason=reason)


_BALANCED = {"balanced": True, "IMBALANCED": False}


def _pool(m: re.Match[str], _: str) -> Payload:
    word, pool, network, total, free, backup, lts = m.groups()
    return FailoverPool(
        pool=pool,
        network=network.strip(),
        total=int(total),
        free=int(free),
        backup=int(backup),
        lts=int(lts),
        balanced=_BALANCED.get(word) if word else None,
    )


def _banner(m: re.Match[str], _: str) -> Payload:
    return ServerLifecycle(event="start", version=m.group(1))


# First word -> ordered (pattern, builder) pairs; the first pattern that matches wins.
_DISPATCH: dict[str, tuple[tuple[re.Pattern[str], Builder], ...]] = {
    "DHCPDISCOVER": ((_DISCOVER, _discover), (_GARBLED_DISCOVER, _garbled_discover)),
    "DHCPREQUEST": ((_REQUEST, _request), (_GARBLED_REQUEST, _garbled_request)),
    "DHCPOFFER": ((_REPLY_ON, _reply_on),),
    "DHCPACK": ((_REPLY_ON, _reply_on), (_ACK_INFORM, _ack_inform)),
    "BOOTREPLY": ((_REPLY_ON, _reply_on), (_BOOTREPLY_FOR, _bootreply_for)),
    "DHCPNAK": ((_NAK, _nak),),
    "DHCPRELEASE": ((_RELEASE, _release), (_RELEASE_OPT50, _release_opt50)),
    "DHCPDECLINE": ((_DECLINE, _decline),),
    "DHCPINFORM": ((_INFORM, _inform), (_GARBLED_INFORM, _garbled_inform)),
    "BOOTREQUEST": ((_BOOTREQUEST, _bootrequest), (_GARBLED_BOOTREQUEST, _garbled_bootrequest)),
    "failover": ((_PEER_LINE, _peer_line), (_FAILOVER_COLON, _failover_colon)),
    "failover:": ((_FAILOVER_COLON, _failover_colon),),
    "peer": ((_PEER_DISCONNECTED, _peer_disconnected),),
    "timeout": ((_TIMEOUT_WAITING, _timeout_waiting),),
    "Failover": ((_FAILOVER_CAP, _failover_cap),),
    "dhcp_failover_send_connect:": ((_LINK_ERROR, _link_error),),
    "dhcp_failover_send_connectack:": ((_LINK_ERROR, _link_error),),
    "message": ((_LINK_ERROR, _link_error),),
    "dhcp_failover_put_message:": (
        (_PUT_MESSAGE, lambda m, _: FailoverConnection(relationship=None, status="error", reason=m.group(1))),
    ),
    "Sent": ((_SENT, _sent),),
    "Failed": ((_FAILED_SEND, _failed_send),),
    "Update": ((_UPDATE_FROM, _update_from),),
    "Sending": ((_SENDING_UPDATES, _sending_updates),),
    "Received": ((_RECEIVED, _received),),
    "bind": ((_BIND_REJECTED, _bind_rejected),),
    "balancing": ((_POOL, _pool),),
    "balanced": ((_POOL, _pool),),
    "IMBALANCED": ((_POOL, _pool),),
    "pool": ((_POOL, _pool),),
    "Internet": ((_BANNER, _banner),),
}

_EXACT: dict[str, str] = {"Server starting service.": "serving", "exiting.": "exit"}
"""Whole messages that mark the server's life-cycle -> the `server.lifecycle` event."""

# Messages dhcpd prints that are outside the vocabulary: enough to tell a
# header-less line (foreground output, pasted text) as dhcpd's.
_KNOWN_PREFIXES = (
    "Copyright ",
    "All rights reserved.",
    "For info, please visit ",
    "Config file: ",
    "Database file: ",
    "PID file: ",
    "Listening on ",
    "Sending on ",
    "Wrote ",
    "No subnet declaration for ",
    "No subnet6 declaration for ",
    "Not configured to listen on any interfaces!",
    "Configuration file errors encountered",
    "There's already a DHCP server running.",
    "Can't open ",
    "Can't create new lease file",
    "Unable to record current failover state",
    "write_failover_state: ",
    "commit_leases: ",
    "execute_statement argv[",
    "execute: ",
    "Unable to execute ",
    "uid lease ",
    "client ",
    "Dynamic and static leases present for ",
    "Abandoning IP address ",
    "Lease conflict at ",
    "ICMP Echo ",
    "unexpected ICMP Echo Reply from ",
    "Reclaiming ",
    "reuse_lease: ",
    "Pool threshold ",
    "Pool over threshold",
    "delayed ack for ",
    "Packet from unknown subnet: ",
    "FAILOVER: ",
    "Peer ",
    "peer ",
    "Both servers have entered recover-done!",
    "Spurious update-done message.",
    "Secondary is in conflict_done state",
    "ERROR: Failover peer",
    "WARNING: ",
    "Failover configuration sanity check failed",
    "failover peer declaration with no referring pools.",
    "lease imbalance - lts = ",
    "can't commit lease ",
    "Unknown IP-flags set in BNDUPD",
    "processing state transition for ",
    "bind update on ",
    "pool response: ",
    "Unsupported device type ",
    "Unable to set up timer",
    "Internet Systems Consortium",
    "Received ",
    "Sending ",
    "DHCP4o6 ",
    "Solicit ",
    "Reply ",
    "Advertise ",
)

_CONTINUATIONS = (
    # log_fatal()'s trailer, 4.2+ and earlier wordings
    "If you think you have received this message due to a bug rather",
    "than a configuration issue please read the section on submitting",
    "bugs on either our web page at www.isc.org or in the README file",
    "before submitting a bug.  These pages explain the proper",
    "process and the information we find helpful for debugging.",
    "If you did not get this software from ftp.isc.org, please",
    "get the latest from ftp.isc.org and install that before",
    "requesting help.",
    "If you did get this software from ftp.isc.org and have not",
    "yet read the README, please read it before requesting help.",
    "If you intend to request help from the dhcp-bugs at isc.org",
    "mailing list, please read the section on the README about",
    "submitting bug reports and requests for help.",
    "Please do not under any circumstances send requests for",
    "help directly to the authors of this software - please",
    "send them to the appropriate mailing list as described in",
    "the README file.",
    # DHCPINFORM "not authoritative" help text
    "If this DHCP server is authoritative for",
    "please write an `authoritative;' directive",
    "subnet declaration or in some scope that",
    "subnet declaration - for example, write",
    "of the dhcpd.conf file.",
    # "No subnet declaration for <if>" block
    "** Ignoring requests on ",
    "you want, please write a subnet declaration",
    "in your dhcpd.conf file for the network segment",
    "to which interface ",
    # Dynamic and static leases present trio
    "Remove host declaration ",
    "from the dynamic address pool for ",
    # 3.0.x failover peer without referring pools
    "In order to use failover, you MUST refer to your main failover declaration",
    "in each pool declaration.   You MUST NOT use range declarations outside",
    "of pool declarations.",
)
_CARET = re.compile(r" *\^$")
# parse_warn(): "<file> line <n>: <msg>", then the input line and a caret line
_PARSE_ERROR = re.compile(r"\S+ line \d+: ")
_PEER_IGNORED = re.compile(r"\S+: ignored \(")


def is_parse_error(message: str) -> bool:
    """dhcpd's configuration / lease-file parse error; the next line is the offending input."""
    return _PARSE_ERROR.match(message) is not None


def is_continuation(message: str) -> bool:
    """A fixed follow-up line of a multi-line dhcpd message (trailer, help text, caret)."""
    text = message.lstrip(" ")
    return text.startswith(_CONTINUATIONS) or (message.endswith("^") and _CARET.match(message) is not None)


def parse_dhcpd(message: str) -> Payload | None:
    """A dhcpd message body -> vocabulary payload, `DhcpdOther` if known, else None."""
    space = message.find(" ")
    word = message if space < 0 else message[:space]
    if word.startswith("DHCP4o6"):
        return DhcpdOther(message=message)
    for pattern, build in _DISPATCH.get(word, ()):
        m = pattern.match(message)
        if m:
            return build(m, message)
    lifecycle = _EXACT.get(message)
    if lifecycle is not None:
        return ServerLifecycle(event=lifecycle)
    if (
        message.startswith(_KNOWN_PREFIXES)
        or is_continuation(message)
        or _PEER_IGNORED.match(message)
        or _PARSE_ERROR.match(message)
    ):
        return DhcpdOther(message=message)
    return None
