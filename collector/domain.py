"""The values the line stage produces and the service, the store and the reports consume.

Nothing here imports from the service: the correlator makes these values (`Incident`, the
`Change`s, the `PairView` snapshot), the row builders (`collector.rows`), the metrics, the API
and `analyze`'s report read them, and `host_key` is how all of them compare host names.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from parsers.jsonl import epoch_iso

LISTENER_TRANSPORTS = ("udp", "tcp", "tls")
"""How lines reach `serve`: its listeners' kinds (the `[serve]` keys and the CLI flags)."""
TRANSPORTS = (*LISTENER_TRANSPORTS, "file")
"""A stored line's `transport`: a listener's kind, or `file` for what `ingest` read."""


class PoolCounts(NamedTuple):
    """A failover pool's leases as its last balancing line gave them (`dhcp_pool_leases`'s
    `kind` label, in this order): all, free for the primary, free for the secondary."""

    total: int
    free: int
    backup: int

    @property
    def empty(self) -> bool:
        """Nothing left for either server."""
        return self.total > 0 and self.free + self.backup == 0

    @property
    def one_share_empty(self) -> bool:
        """Nothing left in one server's share."""
        return self.total > 0 and 0 in (self.free, self.backup)


def host_key(name: str, strip_domain: bool) -> str:
    """The form in which two host names are compared: lowercase, and with `strip_domain`
    only the first label, so "DHCP1.example.net" and "dhcp1" match.

    An IP address literal is never cut: rsyslog puts the sender's address in the header when
    it cannot resolve a name, and "192.0.2.1" must not become "192".
    """
    lowered = name.lower()
    if not strip_domain:
        return lowered
    try:
        ipaddress.ip_address(lowered)
    except ValueError:
        return lowered.partition(".")[0]
    return lowered


# --- outputs ---------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class Incident:
    """One stretch of time during which a condition held for a pair."""

    condition: str
    pair: str
    servers: tuple[str, ...]
    start: float
    end: float | None = None
    evidence: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The incident as `analyze --json` and the API print it (times ISO 8601 UTC)."""
        return {
            "condition": self.condition,
            "pair": self.pair,
            "servers": list(self.servers),
            "start": epoch_iso(self.start),
            "end": epoch_iso(self.end),
            "evidence": list(self.evidence),
        }


@dataclass(slots=True, kw_only=True)
class StateChanged:
    """A server's own state (`side="self"`) or its view of the partner (`"peer"`) changed.

    A value like the events (not `frozen`: built on every transition, and frozen
    construction costs three times as much)."""

    ts: float
    pair: str
    server: str
    side: str
    state: str
    previous: str | None


@dataclass(slots=True, frozen=True)
class IncidentOpened:
    incident: Incident


@dataclass(slots=True, frozen=True)
class IncidentWidened:
    """An open incident now also concerns another server (both peers went into the state)."""

    incident: Incident


@dataclass(slots=True, frozen=True)
class IncidentClosed:
    incident: Incident


Change = StateChanged | IncidentOpened | IncidentWidened | IncidentClosed
INCIDENT_CHANGES = (IncidentOpened, IncidentWidened, IncidentClosed)
"""The changes after which an incident's stored row and published copy must be renewed."""


@dataclass(slots=True, frozen=True, kw_only=True)
class ServerView:
    """What the snapshot tells about one server of a pair."""

    host: str
    state: str | None
    since: float | None
    peer_state: str | None
    peer_since: float | None
    serving: bool | None
    last_seen: float | None
    ha_name: str | None


@dataclass(slots=True, frozen=True, kw_only=True)
class PairView:
    name: str
    implementation: str
    relationship: str | None
    servers: tuple[ServerView, ...]
    conditions: tuple[tuple[str, bool], ...]
