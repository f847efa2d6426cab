"""Kea message text -> one pairwatch payload.

Input is the Kea message after every header layer: the message id, one
space, then the `.mes` text with its arguments filled in
(`HA_SYNC_START kea-a: starting lease database synchronization with kea-b`).
Output is one payload of `parsers.events`; `parse_kea` never raises and
answers `KeaOther` for anything outside the vocabulary.

Why it is built this way:

* Kea names every message, so the id alone says which text follows. The id is
  split off with `str.partition`, looked up in one read-only dict, and the text
  is matched by the one pattern compiled for that id. A line therefore costs
  one dict lookup and one anchored regex match, and adding an id never slows
  down the others (one big alternation would).
* The tables are written like Kea's own format strings: `%NAME`, `%PEER`,
  `%CLIENT`, ... stand for the recurring arguments and are expanded into named
  groups when the module is imported. One template covers every Kea release
  where the wording stayed and only the optional `this-server-name: ` prefix
  of Kea 2.5.5+ came and went (log-messages.md section 9).
* Repetitions are possessive wherever the next character is known, the few
  lazy ones stop at a fixed phrase, and `.*` runs with DOTALL so it always
  reaches the end: a mangled or megabyte-long line fails in linear time
  instead of backtracking.

Decisions the vocabulary leaves open:

* A known id whose text does not fit its pattern (truncated, edited, a wording
  this module does not know) gives `KeaOther` for DHCP ids. For `HA_*` ids it
  gives `FailoverHA` with the generic event name (the id without `HA_`,
  lowercased, e.g. `sync_successful`, `state_transition`), the `name: ` prefix
  as `ha_name` when there is one, and the rest of the text as `detail`: the HA
  timeline stays complete, while the correlator never sees a state change,
  heartbeat failure or sync result whose fields were not all read.
* HA ids outside the named mappings whose text names the partner
  (`HA_LEASE_UPDATE_FAILED`, `HA_LEASES_BACKLOG_*`, `HA_RESET_FAILED`, ...)
  keep the generic event name and detail but also fill `partner`, because
  Kea pairs are found from the servers the messages name.
* `partner` is the peer's name; when Kea prints `name (url)` the URL is dropped,
  and when the name is empty the URL's host stands in (IPv6 without brackets).
* States are lowercased and not checked against `KEA_STATES`, so a state a
  newer Kea adds reaches the correlator instead of being lost.
* `ALLOC_ENGINE_V4_ALLOC_FAIL_SUBNET` reports the subnet prefix as `network`
  (the shared network has a message of its own); `DHCP4_PACKET_NAK_0003/0004`
  take the requested address, else `ciaddr`, ignoring `0.0.0.0`.
* Leading spaces are not skipped (the message must start at the id); trailing
  whitespace is ignored when matching.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

from parsers.events import (
    FailoverHA,
    FailoverState,
    KeaOther,
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

__all__ = ["parse_kea"]

_Builder = Callable[[re.Match[str]], Payload | None]
"""Turns a successful match into a payload; None means "not ours after all"."""


class _Rule(NamedTuple):
    pattern: re.Pattern[str]
    build: _Builder


# Placeholders of the templates below, expanded in this order (a fragment may
# use a placeholder that is expanded after it).
_FRAGMENTS: Mapping[str, str] = MappingProxyType(
    {
        # Kea 2.5.5+ `this-server-name: ` in front of most HA texts. A client
        # label never fits: it has a space before its first colon.
        "%NAME": r"(?:(?P<prefix>[^:\s]++): )?",
        # The partner: `name`, `name (url)`, or ` (url)` with an empty name.
        "%PEER": (
            r"(?P<partner>[^\s():]*+) ?"
            r"(?:\((?:[A-Za-z][\w+.-]*+://)?\[?"
            r"(?P<partner_host>(?<=\[)[^\]()]*+|[^\[\]/:()\s]*+)[^()]*+\))?"
        ),
        # The DHCPv4 client label `[hwtype=1 <mac>], cid=[...], tid=0x...`,
        # `[no hwaddr info]` and the ` (malformed client-id)` suffix included.
        "%CLIENT": (
            r"\[(?:hwtype=\d++ (?P<mac>%MAC)?|[^\]]*+)\], cid=\[[^\]]*+\], "
            r"tid=0x[0-9A-Fa-f]*+(?: \(malformed client-id\))?"
        ),
        # Any client label (DHCPv4 or DHCPv6) where nothing is taken from it.
        "%LABEL": r"[^\n]*?, tid=0x[0-9A-Fa-f]*+(?: \(malformed client-id\))?",
        "%MAC": r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2})++",
        "%STATE": r"[\w-]++",
        "%IP": r"(?P<ip>[^\s,]++)",
        "%REST": r"(?P<detail>.*)",
    }
)


def _compile(template: str) -> re.Pattern[str]:
    for placeholder, fragment in _FRAGMENTS.items():
        template = template.replace(placeholder, fragment)
    return re.compile(template, re.DOTALL)


def _generic_event(msgid: str) -> str:
    return msgid.removeprefix("HA_").lower()


def _partner(groups: Mapping[str, str | None]) -> str | None:
    return groups.get("partner") or groups.get("partner_host") or None


def _usable_address(*candidates: str | None) -> str | None:
    """The first candidate that looks like an address (leading digit) and is not 0.0.0.0."""
    for candidate in candidates:
        if candidate and candidate[0].isdigit() and candidate != "0.0.0.0":
            return candidate
    return None


# --- builders -------------------------------------------------------------


def _transition(match: re.Match[str], partner_state: str | None) -> FailoverState:
    return FailoverState(
        relationship=None,
        side="self",
        from_state=match["from_state"].lower(),
        to_state=match["to_state"].lower(),
        ha_name=match["prefix"],
        partner_state=partner_state,
    )


def _state_transition(match: re.Match[str]) -> FailoverState:
    return _transition(match, match["partner_state"].lower())


def _passive_transition(match: re.Match[str]) -> FailoverState:
    return _transition(match, None)


def _ha_event(event: str, detail_group: str) -> _Builder:
    def build(match: re.Match[str]) -> FailoverHA:
        groups = match.groupdict()
        return FailoverHA(
            event=event,
            partner=_partner(groups),
            ha_name=groups["prefix"],
            detail=groups.get(detail_group) or None,
        )

    return build


def _dhcp_service(event: str) -> _Builder:
    def build(match: re.Match[str]) -> FailoverHA:
        return FailoverHA(event=event, ha_name=match["server"], detail=match["state"].lower())

    return build


def _service_started(match: re.Match[str]) -> FailoverHA:
    return FailoverHA(
        event="service_started",
        ha_name=match["prefix"],
        detail=f"{match['mode']} {match['role']}",
    )


@dataclass(frozen=True, slots=True)
class _LeaseBuilder:
    """A lease message's builder: its kind and fixed detail, and the `ip`/`mac` groups. A
    value rather than a closure, so the fast path can read the fields without the payload
    (`LEASE_RULES`)."""

    kind: type[Lease]
    detail: str | None = None

    def __call__(self, match: re.Match[str]) -> Lease:
        ip, mac = match.group("ip", "mac")
        return self.kind(ip=ip, mac=mac, detail=self.detail)


def _nak(match: re.Match[str]) -> LeaseNak:
    groups = match.groupdict()
    return LeaseNak(
        ip=_usable_address(groups.get("ip"), groups.get("requested"), groups.get("ciaddr")),
        mac=groups["mac"],
        detail=groups["detail"],
    )


_RECEIVED_KINDS: Mapping[str, type[Lease]] = MappingProxyType(
    {
        "DHCPDISCOVER": LeaseDiscover,
        "DHCPREQUEST": LeaseRequest,
        "DHCPRELEASE": LeaseRelease,
        "DHCPDECLINE": LeaseDecline,
        "DHCPINFORM": LeaseInform,
    }
)


def _packet_received(match: re.Match[str]) -> Lease | None:
    kind = _RECEIVED_KINDS.get(match["type"])
    return None if kind is None else kind(mac=match["mac"], via=match["via"])


def _no_free(reason: str) -> _Builder:
    def build(match: re.Match[str]) -> LeaseNoFree:
        return LeaseNoFree(network=match.groupdict().get("network"), reason=reason)

    return build


def _lifecycle(event: str) -> _Builder:
    def build(match: re.Match[str]) -> ServerLifecycle:
        return ServerLifecycle(event=event, version=match.groupdict().get("version"))

    return build


# --- tables ---------------------------------------------------------------

# HA ids with a named event: (id, event, template). `detail` is %REST when the
# template has it, else None.
_HA_EVENTS: tuple[tuple[str, str, str], ...] = (
    ("HA_HEARTBEAT_COMMUNICATIONS_FAILED", "heartbeat_failed",
     r"%NAMEfailed to send heartbeat to %PEER: %REST"),
    ("HA_HEARTBEAT_FAILED", "heartbeat_failed",
     r"%NAMEheartbeat to %PEER failed: %REST"),
    ("HA_COMMUNICATION_INTERRUPTED", "communication_interrupted",
     r"%NAMEcommunication with %PEER is interrupted"),
    ("HA_SYNC_START", "sync_started",
     r"%NAMEstarting lease database synchronization with %PEER"),
    ("HA_SYNC_FAILED", "sync_failed",
     r"%NAMElease database synchronization with %PEER failed: %REST"),
    ("HA_LEASES_SYNC_FAILED", "sync_failed",
     r"%NAMEfailed to synchronize leases with %PEER: %REST"),
    ("HA_LEASES_SYNC_COMMUNICATIONS_FAILED", "sync_failed",
     r"%NAMEfailed to communicate with %PEER while syncing leases: %REST"),
    ("HA_SYNC_SUCCESSFUL", "sync_done",
     r"%NAMElease database synchronization with %PEER completed successfully in %REST"),
    # 1.4-1.5 `HA service terminated because of ...`, 1.6-2.5.4 `HA service
    # terminated due to ...`, 2.5.5+ `HA <name>: service terminated due to ...`.
    ("HA_TERMINATED", "terminated", r"HA %NAMEservice terminated\b.*"),
    ("HA_MAINTENANCE_STARTED", "maintenance",
     r"%NAMEthe server is now in the partner-in-maintenance state"
     r" and the partner is in-maintenance state"),
    ("HA_MAINTENANCE_STARTED_IN_PARTNER_DOWN", "maintenance",
     r"%NAMEthe server is now in the partner-down mode as a result of requested maintenance"),
    ("HA_MAINTENANCE_SHUTDOWN_SAFE", "maintenance",
     r"%NAMEthe server can now be shutdown for maintenance"
     r" as the partner has taken over the DHCP traffic"),
)

# Other HA ids whose text names the partner: (id, template after the prefix).
# Event and detail follow the generic rule; only `partner` is added.
_HA_PEER_TEXTS: tuple[tuple[str, str], ...] = (
    ("HA_DHCP_DISABLE_COMMUNICATIONS_FAILED",
     r"failed to send request to disable DHCP service of %PEER: %REST"),
    ("HA_DHCP_DISABLE_FAILED", r"failed to disable DHCP service of %PEER: %REST"),
    ("HA_DHCP_ENABLE_COMMUNICATIONS_FAILED",
     r"failed to send request to enable DHCP service of %PEER: %REST"),
    ("HA_DHCP_ENABLE_FAILED", r"failed to enable DHCP service of %PEER: %REST"),
    ("HA_LEASES_BACKLOG_COMMUNICATIONS_FAILED",
     r"failed to communicate with %PEER while sending lease updates backlog: %REST"),
    ("HA_LEASES_BACKLOG_FAILED", r"failed to send lease updates backlog to %PEER: %REST"),
    ("HA_LEASES_BACKLOG_START", r"starting to send \d++ outstanding lease updates to %PEER"),
    ("HA_LEASES_BACKLOG_SUCCESS", r"sending lease updates backlog to %PEER successful in %REST"),
    ("HA_LEASES_SYNC_LEASE_PAGE_RECEIVED", r"received \d++ leases from %PEER"),
    # Before 2.5.5 these start with the client label instead of the server name.
    ("HA_LEASE_UPDATE_COMMUNICATIONS_FAILED",
     r"(?:%LABEL: )?failed to (?:send lease update %LABEL to|communicate with) %PEER: %REST"),
    ("HA_LEASE_UPDATE_CONFLICT",
     r"(?:%LABEL: )?lease update (?:%LABEL sent )?to %PEER returned conflict status code: %REST"),
    ("HA_LEASE_UPDATE_FAILED",
     r"(?:%LABEL: )?lease update (?:%LABEL sent )?to %PEER failed: %REST"),
    ("HA_MAINTENANCE_NOTIFY_CANCEL_COMMUNICATIONS_FAILED",
     r"failed to send ha-maintenance-notify to %PEER in attempt to cancel its maintenance: %REST"),
    ("HA_MAINTENANCE_NOTIFY_CANCEL_FAILED",
     r"error returned while processing ha-maintenance-notify by %PEER"
     r" in attempt to cancel its maintenance: %REST"),
    ("HA_MAINTENANCE_NOTIFY_COMMUNICATIONS_FAILED",
     r"failed to send ha-maintenance-notify to %PEER: %REST"),
    ("HA_MAINTENANCE_NOTIFY_FAILED",
     r"error returned while processing ha-maintenance-notify by %PEER: %REST"),
    ("HA_RESET_COMMUNICATIONS_FAILED", r"failed to send ha-reset command to %PEER: %REST"),
    ("HA_RESET_FAILED", r"failed to reset HA state machine of %PEER: %REST"),
    ("HA_SYNC_COMPLETE_NOTIFY_COMMUNICATIONS_FAILED",
     r"failed to send ha-sync-complete-notify to %PEER: %REST"),
    ("HA_SYNC_COMPLETE_NOTIFY_FAILED",
     r"error processing ha-sync-complete-notify command on %PEER: %REST"),
)

_TRANSITION = r"%NAMEserver transitions from (?P<from_state>%STATE) to (?P<to_state>%STATE) state"
_DHCP_SERVICE = r"%NAMElocal DHCP service is {} while the (?P<server>.+?) is in the (?P<state>%STATE) state"
_NAK_ADDRESSES = r"client sent ciaddr (?P<ciaddr>[^\s,]++), requested-ip-address (?P<requested>.+)"

# Everything else: (id, template, builder).
_OTHER_RULES: tuple[tuple[str, str, _Builder], ...] = (
    ("HA_STATE_TRANSITION",
     _TRANSITION + r", partner state is (?P<partner_state>%STATE)", _state_transition),
    ("HA_STATE_TRANSITION_PASSIVE_BACKUP", _TRANSITION, _passive_transition),
    ("HA_LOCAL_DHCP_DISABLE", _DHCP_SERVICE.format("disabled"), _dhcp_service("dhcp_disabled")),
    ("HA_LOCAL_DHCP_ENABLE", _DHCP_SERVICE.format("enabled"), _dhcp_service("dhcp_enabled")),
    ("HA_SERVICE_STARTED",
     r"%NAMEstarted high availability service in (?P<mode>\S++) mode as (?P<role>\S++) server",
     _service_started),
    ("DHCP4_LEASE_OFFER", r"%CLIENT: lease %IP will be offered", _LeaseBuilder(LeaseOffer)),
    ("DHCP4_LEASE_ADVERT", r"%CLIENT: lease %IP will be advertised", _LeaseBuilder(LeaseOffer)),
    ("DHCP4_LEASE_ALLOC",
     r"%CLIENT: lease %IP has been allocated(?: for \d++ seconds)?", _LeaseBuilder(LeaseAck)),
    ("DHCP4_LEASE_REUSE",
     r"%CLIENT: lease %IP has been reused for \d++ seconds", _LeaseBuilder(LeaseAck, "reused")),
    ("DHCP4_INIT_REBOOT",
     r"%CLIENT: client is in INIT-REBOOT state and requests address %IP", _LeaseBuilder(LeaseRequest)),
    ("DHCP4_RELEASE",
     r"%CLIENT: address %IP was released properly\.", _LeaseBuilder(LeaseRelease, "released")),
    ("DHCP4_RELEASE_EXPIRED",
     r"%CLIENT: address %IP expired on release\.", _LeaseBuilder(LeaseRelease, "expired")),
    ("DHCP4_RELEASE_DELETED",
     r"%CLIENT: address %IP was deleted on release\.", _LeaseBuilder(LeaseRelease, "deleted")),
    # %2 is a client label or a bare hardware address: take the MAC if any.
    ("DHCP4_DECLINE_LEASE",
     r"Received DHCPDECLINE for addr %IP from client \[?(?:hwtype=\d++ )?(?P<mac>%MAC)?"
     r"[^\n]*?\. The lease will be unavailable for \d++ seconds\.",
     _LeaseBuilder(LeaseDecline)),
    ("DHCP4_SERVER_INITIATED_DECLINE",
     r"%CLIENT: Lease for addr %IP has been found to be already in use\."
     r" The lease will be unavailable for \d++ seconds\.",
     _LeaseBuilder(LeaseDecline)),
    ("DHCP4_PACKET_NAK_0001",
     r"%CLIENT: (?P<detail>failed to select a subnet for incoming packet, src [^\s,]++, type \S++)",
     _nak),
    ("DHCP4_PACKET_NAK_0002", r"%CLIENT: (?P<detail>invalid address %IP requested by INIT-REBOOT)",
     _nak),
    ("DHCP4_PACKET_NAK_0003", r"%CLIENT: (?P<detail>failed to advertise a lease, " + _NAK_ADDRESSES + ")",
     _nak),
    ("DHCP4_PACKET_NAK_0004", r"%CLIENT: (?P<detail>failed to grant a lease, " + _NAK_ADDRESSES + ")",
     _nak),
    ("DHCP4_PACKET_RECEIVED",
     r"%CLIENT: (?P<type>\S++) \(type \d++\) received from \S++ to \S++ on interface (?P<via>\S++)",
     _packet_received),
    ("ALLOC_ENGINE_V4_ALLOC_FAIL",
     r"%CLIENT: failed to allocate an IPv4 address after \d++ attempt\(s\)",
     _no_free("no free leases")),
    ("ALLOC_ENGINE_V4_ALLOC_FAIL_NO_POOLS",
     r"%CLIENT: no pools were available for the address allocation", _no_free("no pools")),
    ("ALLOC_ENGINE_V4_ALLOC_FAIL_SHARED_NETWORK",
     r"%CLIENT: failed to allocate an IPv4 address in the shared network (?P<network>.+?):"
     r" \d++ subnets have no available addresses, \d++ subnets have no matching pools",
     _no_free("no free leases")),
    ("ALLOC_ENGINE_V4_ALLOC_FAIL_SUBNET",
     r"%CLIENT: failed to allocate an IPv4 lease in the subnet (?P<network>[^\s,]++)"
     r"(?:, subnet-id \d++, shared network .*)?",
     _no_free("no free leases")),
    ("ALLOC_ENGINE_V4_ALLOC_FAIL_CLASSES",
     r"%CLIENT: Failed to allocate an IPv4 address for client with classes: .*",
     _no_free("no matching class")),
    ("DHCP4_STARTING",
     r"Kea DHCPv4 server version (?P<version>\S++)(?: \(.*\))? starting", _lifecycle("start")),
    ("DHCP4_STARTED", r"Kea DHCPv4 server version (?P<version>\S++) started", _lifecycle("serving")),
    ("DHCP4_SHUTDOWN", r"server shutdown", _lifecycle("exit")),
    # kea-dhcp6 words its life-cycle as kea-dhcp4 does (dhcp6_messages.mes)
    ("DHCP6_STARTING",
     r"Kea DHCPv6 server version (?P<version>\S++)(?: \(.*\))? starting", _lifecycle("start")),
    ("DHCP6_STARTED", r"Kea DHCPv6 server version (?P<version>\S++) started", _lifecycle("serving")),
    ("DHCP6_SHUTDOWN", r"server shutdown", _lifecycle("exit")),
)


def _rules() -> Mapping[str, _Rule]:
    table: dict[str, _Rule] = {}
    for msgid, event, template in _HA_EVENTS:
        table[msgid] = _Rule(_compile(template), _ha_event(event, "detail"))
    for msgid, template in _HA_PEER_TEXTS:
        body = _compile("%NAME(?P<body>" + template + ")")
        table[msgid] = _Rule(body, _ha_event(_generic_event(msgid), "body"))
    for msgid, template, build in _OTHER_RULES:
        table[msgid] = _Rule(_compile(template), build)
    return MappingProxyType(table)


_RULES: Mapping[str, _Rule] = _rules()

# Any HA message: the generic mapping, and the fallback for mangled known ids.
_ANY_HA: re.Pattern[str] = _compile(r"HA_(?P<event>[A-Z0-9][A-Z0-9_]*+)(?: %NAME(?P<detail>.*))?")


def _any_ha(message: str) -> Payload:
    match = _ANY_HA.fullmatch(message)
    if match is None:
        return KeaOther(message=message)
    return FailoverHA(
        event=match["event"].lower(),
        ha_name=match["prefix"],
        detail=(match["detail"] or "").strip() or None,
    )


LEASE_IDS: frozenset[str] = frozenset({
    "DHCP4_LEASE_OFFER", "DHCP4_LEASE_ADVERT", "DHCP4_LEASE_ALLOC", "DHCP4_LEASE_REUSE", "DHCP4_INIT_REBOOT",
    "DHCP4_RELEASE", "DHCP4_RELEASE_EXPIRED", "DHCP4_RELEASE_DELETED",
})
"""The client transactions that are most of a Kea server's lines (`parsers.fast` takes them)."""

LEASE_RULES: Mapping[str, tuple[re.Pattern[str], str, str | None]] = MappingProxyType({
    msgid: (rule.pattern, rule.build.kind.kind, rule.build.detail)
    for msgid, rule in _RULES.items() if msgid in LEASE_IDS and isinstance(rule.build, _LeaseBuilder)
})
"""(pattern, kind, detail) of each of `LEASE_IDS`: `parse_kea`'s own rule, read by the fast path
without building the payload. The pattern matches the text after the id, trailing blanks
stripped; its `ip` and `mac` groups are the lease's fields."""


def is_event_id(msgid: str) -> bool:
    """Whether `parse_kea` may make more than `kea.other` of a message with this id."""
    return msgid in _RULES or msgid.startswith("HA_")


def parse_kea(message: str) -> Payload:
    """The payload of one Kea message (`<MESSAGE_ID> <text>`); never raises."""
    msgid, _, text = message.partition(" ")
    rule = _RULES.get(msgid)
    if rule is not None:
        match = rule.pattern.fullmatch(text.rstrip())
        if match is not None:
            payload = rule.build(match)
            if payload is not None:
                return payload
    if msgid.startswith("HA_"):
        return _any_ha(message)
    return KeaOther(message=message)
