"""The event vocabulary: one slotted dataclass per DESIGN.md kind.

Every input line becomes exactly one `Event`: the decoded syslog header
(`Record`) plus one payload whose class names the kind. The payload classes and
their field names are a contract (`pairwatch parse` prints them, scripts read
them); this module is the only place that defines them, and
`tests/parsers/test_events.py` checks them against DESIGN.md.

Events are values: nothing changes one after it is built (`dataclasses.replace`
makes a new one). They are not `frozen`, because a frozen dataclass sets each
field through `object.__setattr__` and that tripled construction cost on the
parse hot path (three objects per line); for the same reason `Record` and
`Event`, built on every line, also accept positional arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

DHCPD_STATES: frozenset[str] = frozenset(
    {
        "unknown-state",
        "partner-down",
        "normal",
        "communications-interrupted",
        "resolution-interrupted",
        "potential-conflict",
        "recover",
        "recover-done",
        "shutdown",
        "paused",
        "startup",
        "recover-wait",
        "conflict-done",
    }
)
"""The 13 names `dhcp_failover_state_name_print()` can print (log-messages.md section 2)."""

KEA_STATES: frozenset[str] = frozenset(
    {
        "backup",
        "communication-recovery",
        "hot-standby",
        "load-balancing",
        "in-maintenance",
        "partner-down",
        "partner-in-maintenance",
        "passive-backup",
        "ready",
        "syncing",
        "terminated",
        "waiting",
        "unavailable",
        "undefined",
    }
)
"""Kea HA state labels, lowercased (log-messages.md section 8)."""


@dataclass(slots=True)
class Record:
    """A decoded syslog header; `message` is the text after every header layer.

    `ts` is timezone-aware UTC or None when the line carries no timestamp.
    For Kea lines `msgid` is Kea's message id (`HA_STATE_TRANSITION`) and
    `message` starts at that id, whatever layout carried it.
    """

    ts: datetime | None = None
    host: str | None = None
    program: str | None = None
    pid: int | None = None
    facility: int | None = None
    severity: int | None = None
    msgid: str | None = None
    structured_data: str | None = None
    message: str = ""


@dataclass(slots=True, kw_only=True)
class Payload:
    """Base of all payloads; `kind` is the DESIGN.md kind name of the subclass."""

    kind: ClassVar[str] = ""


@dataclass(slots=True, kw_only=True)
class FailoverState(Payload):
    """A state transition, of the logging server (`self`) or as it sees its partner (`peer`).

    `ha_name` is Kea's this-server-name when the line names it. `partner_state`
    is the partner state a Kea HA_STATE_TRANSITION reports alongside the local
    transition; `expand()` turns it into the separate `peer` event.
    """

    kind: ClassVar[str] = "failover.state"
    relationship: str | None
    side: str
    from_state: str | None
    to_state: str
    ha_name: str | None = None
    partner_state: str | None = None


@dataclass(slots=True, kw_only=True)
class FailoverPairNormal(Payload):
    kind: ClassVar[str] = "failover.pair_normal"
    relationship: str


@dataclass(slots=True, kw_only=True)
class FailoverConnection(Payload):
    """Failover link life-cycle: `status` is a closed word, `reason` the text dhcpd gave."""

    kind: ClassVar[str] = "failover.connection"
    relationship: str | None
    status: str
    reason: str | None = None


@dataclass(slots=True, kw_only=True)
class FailoverUpdate(Payload):
    """Bulk resync progress (UPDREQ / UPDREQALL / UPDDONE)."""

    kind: ClassVar[str] = "failover.update"
    relationship: str | None
    phase: str


@dataclass(slots=True, kw_only=True)
class FailoverBindRejected(Payload):
    kind: ClassVar[str] = "failover.bind_rejected"
    ip: str
    relationship: str
    reason: str


@dataclass(slots=True, kw_only=True)
class FailoverPool(Payload):
    """One pool-balancing line; `balanced` is None for the `balancing pool` pass itself."""

    kind: ClassVar[str] = "failover.pool"
    pool: str
    network: str
    total: int
    free: int
    backup: int
    lts: int
    balanced: bool | None


@dataclass(slots=True, kw_only=True)
class FailoverHA(Payload):
    """A Kea HA message other than a state transition; `detail` keeps the variable text."""

    kind: ClassVar[str] = "failover.ha"
    event: str
    partner: str | None = None
    ha_name: str | None = None
    detail: str | None = None


@dataclass(slots=True, kw_only=True)
class Lease(Payload):
    """Fields shared by every `lease.*` kind; the subclass fixes the kind.

    `refused` says why this server did not answer the client (a failover or
    policy reason, normalised so it can label a counter); `detail` keeps any
    other suffix the server printed.
    """

    ip: str | None = None
    mac: str | None = None
    client_name: str | None = None
    via: str | None = None
    server_id: str | None = None
    refused: str | None = None
    detail: str | None = None


@dataclass(slots=True, kw_only=True)
class LeaseDiscover(Lease):
    kind: ClassVar[str] = "lease.discover"


@dataclass(slots=True, kw_only=True)
class LeaseOffer(Lease):
    kind: ClassVar[str] = "lease.offer"


@dataclass(slots=True, kw_only=True)
class LeaseRequest(Lease):
    kind: ClassVar[str] = "lease.request"


@dataclass(slots=True, kw_only=True)
class LeaseAck(Lease):
    kind: ClassVar[str] = "lease.ack"


@dataclass(slots=True, kw_only=True)
class LeaseNak(Lease):
    kind: ClassVar[str] = "lease.nak"


@dataclass(slots=True, kw_only=True)
class LeaseRelease(Lease):
    kind: ClassVar[str] = "lease.release"


@dataclass(slots=True, kw_only=True)
class LeaseDecline(Lease):
    kind: ClassVar[str] = "lease.decline"


@dataclass(slots=True, kw_only=True)
class LeaseInform(Lease):
    kind: ClassVar[str] = "lease.inform"


@dataclass(slots=True, kw_only=True)
class LeaseNoFree(Payload):
    kind: ClassVar[str] = "lease.no_free"
    network: str | None
    reason: str


@dataclass(slots=True, kw_only=True)
class ServerLifecycle(Payload):
    kind: ClassVar[str] = "server.lifecycle"
    event: str
    version: str | None = None


@dataclass(slots=True, kw_only=True)
class DhcpdOther(Payload):
    kind: ClassVar[str] = "dhcpd.other"
    message: str


@dataclass(slots=True, kw_only=True)
class KeaOther(Payload):
    kind: ClassVar[str] = "kea.other"
    message: str


@dataclass(slots=True, kw_only=True)
class SyslogOther(Payload):
    kind: ClassVar[str] = "syslog.other"
    message: str


PAYLOAD_TYPES: tuple[type[Payload], ...] = (
    FailoverState,
    FailoverPairNormal,
    FailoverConnection,
    FailoverUpdate,
    FailoverBindRejected,
    FailoverPool,
    FailoverHA,
    LeaseDiscover,
    LeaseOffer,
    LeaseRequest,
    LeaseAck,
    LeaseNak,
    LeaseRelease,
    LeaseDecline,
    LeaseInform,
    LeaseNoFree,
    ServerLifecycle,
    DhcpdOther,
    KeaOther,
    SyslogOther,
)
"""Every payload class, one per DESIGN.md kind."""

LINE_KINDS: tuple[type[Payload], ...] = (
    *(cls for cls in PAYLOAD_TYPES if issubclass(cls, Lease)), DhcpdOther, KeaOther, SyslogOther
)
"""The kinds the correlator and the tally read only as a line's host, program, PID, kind and
refusal: client traffic, and lines of no known event, nearly every line a pair sends. The
lean line path (`parsers.fast`) and the history's journal carry them as those values, the
kind as its index here (`LINE_CODES`); the Lease kinds come first (`LEASE_LINES`)."""
LINE_CODES: dict[str, int] = {cls.kind: i for i, cls in enumerate(LINE_KINDS)}
LEASE_LINES = len(LINE_KINDS) - 3
"""`LINE_KINDS[:LEASE_LINES]` are the Lease kinds (they carry a refusal)."""
_LINE_TYPE_CODES: dict[type[Payload], int] = {cls: i for i, cls in enumerate(LINE_KINDS)}


def line_code(payload: Payload) -> tuple[int, str | None] | None:
    """A payload of `LINE_KINDS` as the lean line path carries it: its code and its refusal (a
    lease's, else None); None for any other kind."""
    code = _LINE_TYPE_CODES.get(type(payload))
    if code is None:
        return None
    return code, payload.refused if code < LEASE_LINES else None  # type: ignore[attr-defined]


@dataclass(slots=True)
class Event:
    """One input line: its header, its payload and the two stream markers of DESIGN.md.

    `continuation` marks a line that only continues a multi-line message;
    `repeated` carries N of `last message repeated N times` (the payload is then
    the repeated line's payload when a stream context knew it).
    """

    record: Record
    payload: Payload
    continuation: bool = False
    repeated: int | None = None

    @property
    def kind(self) -> str:
        return self.payload.kind


def expand(event: Event) -> tuple[Event, ...]:
    """The state events a line stands for: Kea's HA_STATE_TRANSITION also reports the
    partner's state, which becomes a second, `peer`-side event. Everything else is
    itself. The correlator consumes this; `pairwatch parse` prints one object per line.
    """
    payload = event.payload
    if isinstance(payload, FailoverState) and payload.partner_state is not None:
        peer = FailoverState(
            relationship=payload.relationship,
            side="peer",
            from_state=None,
            to_state=payload.partner_state,
            ha_name=None,
        )
        return (event, Event(record=event.record, payload=peer, repeated=event.repeated))
    return (event,)
