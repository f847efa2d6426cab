"""The fleet tally: what the counters need and the correlator does not keep.

Lease messages, refusals, no-free lines, pool counts, resyncs, state transitions and each
server's last line, keyed by server (and dhcpd relationship). The pipeline owns it and feeds it
every line (`observe`, `observe_line`) under its `lock`; `snapshot()` gives any thread an
immutable copy, from which `collector.metrics.PairCollector` joins the `pair` label at scrape
time, so a pair renamed when its partner is learned keeps its history. A repeat line counts N
in the line counters and once in transitions and resyncs. Every keyed table is capped
(`MAX_SERIES`) against label floods, and no key holds a MAC or IP address.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Final

from collector.domain import Change, PoolCounts, StateChanged, host_key
from collector.metric_names import FROM_UNKNOWN
from parsers.events import (
    LEASE_LINES,
    LINE_CODES,
    LINE_KINDS,
    Event,
    FailoverHA,
    FailoverPool,
    FailoverState,
    FailoverUpdate,
    LeaseNoFree,
    SyslogOther,
    line_code,
)

__all__ = ["MAX_SERIES", "NO_RELATIONSHIP", "FleetTally", "ServerKey", "TallySnapshot"]

MAX_SERIES = 10_000
"""Per keyed table of the tally: new keys beyond this are dropped (existing ones keep counting)."""

_DHCPD_SYNC_FAILS = frozenset({"startup", "shutdown"})
_DHCPD_SYNC_ENDS = frozenset({"normal", "partner-down", "communications-interrupted"})
_KEA_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(us|µs|ms|s|sec|seconds?)?\b", re.IGNORECASE)
_KEA_UNITS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0}
_MAC = re.compile(r"\b[0-9A-Fa-f]{1,2}(?:[:-][0-9A-Fa-f]{1,2}){5}\b")
_IPV4 = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")
_IPV6 = re.compile(r"\b[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}\b")

# Relationship key of a Kea server (its lines name no relationship).
NO_RELATIONSHIP = ""
_LEASE_LABELS: Final = tuple(cls.kind.partition(".")[2] for cls in LINE_KINDS[:LEASE_LINES])
"""`dhcp_leases_total`'s `kind` of each lease line code (`lease.ack` -> `ack`)."""
_SYSLOG_OTHER: Final = LINE_CODES[SyslogOther.kind]

ServerKey = tuple[str, str]  # (server, relationship or "")


@dataclass(slots=True, frozen=True)
class TallySnapshot:
    """An immutable copy of a `FleetTally`, every table sorted by key.

    Keys name servers by host key (as `ServerView.host`) and dhcpd relationships ("" for
    Kea); `PairCollector` maps them to pairs.
    """

    last_message: tuple[tuple[str, float], ...] = ()  # server -> seconds
    lease_messages: tuple[tuple[tuple[str, str], int], ...] = ()  # (server, type)
    refused: tuple[tuple[tuple[str, str], int], ...] = ()  # (server, reason)
    no_free: tuple[tuple[tuple[str, str], int], ...] = ()  # (server, network)
    pools: tuple[tuple[tuple[str, str], PoolCounts], ...] = ()  # (server, network) -> counts
    transitions: tuple[tuple[tuple[str, str, str, str, str], int], ...] = ()  # (server, rel, side, from, to)
    sync_durations: tuple[tuple[ServerKey, float], ...] = ()  # (server, rel) -> seconds
    syncs: tuple[tuple[tuple[str, str, str], int], ...] = ()  # (server, rel, result)


class FleetTally:
    """What the counters need from the event stream, per server; see the module docstring.

    Owned by the pipeline: `observe` is called for every line, after the correlator fed it,
    with the changes the correlator returned. `lock` guards the tables, so `snapshot()` may
    be called from another thread (a scrape) at any time; whoever calls `observe` while
    scrapes may run holds `lock` around it (the pipeline takes it once per chunk of lines:
    per line it cost as much as a counter update, and a scrape waits for one chunk at most).
    """

    def __init__(self, *, strip_domain: bool = False, max_series: int = MAX_SERIES) -> None:
        self._strip = strip_domain
        self._max = max_series
        self.lock = threading.Lock()
        self._hosts: dict[str, str] = {}  # host as logged -> host key
        self._reasons: dict[str, str] = {}  # refusal text -> label value
        self._last_seen: dict[str, float] = {}
        # host -> its lease lines by code (`_LEASE_LABELS`), (host, type) keys at snapshot time: a
        # list index a line where a tuple key took three hashes (1.4 % of a line's instructions)
        self._leases: dict[str, list[int]] = {}
        self._lease_keys = 0  # nonzero counts in `_leases`, the (host, type) keys `max_series` caps
        self._refused: dict[tuple[str, str], int] = {}
        self._no_free: dict[tuple[str, str], int] = {}
        self._pools: dict[tuple[str, str], PoolCounts] = {}
        self._transitions: dict[tuple[str, str, str, str, str], int] = {}
        self._sync_running: dict[ServerKey, float] = {}
        self._sync_last: dict[ServerKey, float] = {}
        self._syncs: dict[tuple[str, str, str], int] = {}
        self._order: list[list[Any]] = [[] for _ in fields(TallySnapshot)]  # each snapshot table's keys, sorted

    def observe(self, event: Event, changes: Sequence[Change], now: float) -> None:
        """Count one line (`event`, seen at `now`) and the changes the correlator made of it."""
        payload = event.payload
        lean = line_code(payload)
        if lean is not None:
            self.observe_line(event.record.host, *lean, now, changes, event.repeated or 1)
            return
        raw = event.record.host
        if raw is None:
            return
        host = self._host(raw)
        n = event.repeated or 1
        if now > self._last_seen.get(host, -math.inf):
            self._set(self._last_seen, host, now)  # (a late line does not move it back)
        if isinstance(payload, LeaseNoFree):
            self._add(self._no_free, (host, payload.network or ""), n)
        elif isinstance(payload, FailoverPool):
            self._set(self._pools, (host, payload.network), PoolCounts(payload.total, payload.free, payload.backup))
        elif isinstance(payload, FailoverUpdate):
            self._dhcpd_update(host, payload, now)
        elif isinstance(payload, FailoverHA):
            self._kea_ha(host, payload, now)
        if changes:
            self.count_changes(event, changes)

    def observe_line(self, raw: str | None, code: int, refused: str | None, now: float, changes: Sequence[Change],
                     n: int = 1) -> None:
        """`observe` for a line of the kind `LINE_KINDS[code]`, by its values (the lean line
        path's lines, most of them)."""
        if raw is None:
            return
        host = self._hosts.get(raw) or self._host(raw)
        last_seen = self._last_seen
        seen = last_seen.get(host)
        if seen is None:  # (`_set`, inline: this runs for nearly every line)
            if code != _SYSLOG_OTHER and len(last_seen) < self._max:
                last_seen[host] = now
        elif now > seen:  # (a late line does not move it back)
            last_seen[host] = now
        if code < LEASE_LINES:
            counts = self._leases.get(host)
            if counts is not None and counts[code]:
                counts[code] += n
            elif self._lease_keys < self._max:
                if counts is None:
                    counts = self._leases[host] = [0] * LEASE_LINES
                counts[code] = n
                self._lease_keys += 1
            if refused is not None:
                self._add(self._refused, (host, self._reason(refused)), n)
        if changes:
            self._count(changes, None, None)

    def count_changes(self, event: Event, changes: Sequence[Change]) -> None:
        """Count the transitions among `changes`, which `event`'s line caused (`observe` does it
        for a line applied at once; the pipeline for a late line when its replay ran)."""
        payload = event.payload
        self._count(changes, payload, payload.relationship if isinstance(payload, FailoverState) else None)

    def _count(self, changes: Sequence[Change], payload: object, relationship: str | None) -> None:
        for change in changes:
            if isinstance(change, StateChanged):
                self._transition(change, payload, relationship or NO_RELATIONSHIP)

    def snapshot(self) -> TallySnapshot:
        """An immutable copy; the tables are copied under the lock, ordered outside it.

        These tables only ever gain keys, so each one's sorted keys are kept from one
        snapshot to the next and sorted again only when the table grew (sorting them on every
        scrape was a large part of a scrape's work). Each call
        orders its own copy by keys it holds itself, so scrapes on two threads cannot mix them."""
        with self.lock:
            tables: tuple[dict[Any, Any], ...] = (
                dict(self._last_seen),
                {(host, _LEASE_LABELS[code]): count
                 for host, counts in self._leases.items() for code, count in enumerate(counts) if count},
                dict(self._refused),
                dict(self._no_free),
                dict(self._pools),
                dict(self._transitions),
                dict(self._sync_last),
                dict(self._syncs),
            )
        ordered = []
        for i, table in enumerate(tables):
            keys = self._order[i]
            if len(keys) != len(table):  # (equal length: the same keys, as none is ever removed)
                keys = self._order[i] = sorted(table)
            ordered.append(tuple([(key, table[key]) for key in keys]))
        return TallySnapshot(*ordered)

    # -- internals --------------------------------------------------------------------

    def _host(self, raw: str) -> str:
        key = self._hosts.get(raw)
        if key is None:
            if len(self._hosts) > 65536:  # spellings are bounded, not the hosts
                self._hosts.clear()
            key = self._hosts[raw] = host_key(raw, self._strip)
        return key

    def _reason(self, text: str) -> str:
        label = self._reasons.get(text)
        if label is None:
            label = _scrub(text)
            if len(self._reasons) < self._max:
                self._reasons[text] = label
        return label

    def _add(self, table: dict, key: tuple, n: int) -> None:
        if key in table:
            table[key] += n
        elif len(table) < self._max:
            table[key] = n

    def _set(self, table: dict, key: object, value: object) -> None:
        if key in table or len(table) < self._max:
            table[key] = value

    def _dhcpd_update(self, host: str, p: FailoverUpdate, now: float) -> None:
        """A dhcpd bulk resync runs from `Sent update request all message` (`request_all_sent`)
        to `peer update completed.` (`completed`, result `ok`); a `completed` with none running
        ends an ordinary update request (or one whose start was not seen) and is not counted.
        How a state change ends one: `_transition`."""
        if p.relationship is None:
            return
        key = (host, p.relationship)
        if p.phase == "request_all_sent":
            if key not in self._sync_running:  # a retry while one runs keeps the first start
                self._set(self._sync_running, key, now)
        elif p.phase == "completed":
            start = self._sync_running.pop(key, None)
            if start is not None:
                self._sync_done(key, "ok", now - start)

    def _kea_ha(self, host: str, p: FailoverHA, now: float) -> None:
        """A Kea sync runs from `HA_SYNC_START` to `HA_SYNC_SUCCESSFUL` (`ok`; the duration Kea
        states wins over the two lines' times, and it counts even when the start was not seen)
        or to a failure (`failed`, only when it ends a running sync: one failed attempt can log
        two failure lines). A retry while one runs keeps the first start."""
        key = (host, NO_RELATIONSHIP)
        if p.event == "sync_started":
            if key not in self._sync_running:
                self._set(self._sync_running, key, now)
        elif p.event == "sync_done":
            start = self._sync_running.pop(key, None)
            stated = _kea_duration(p.detail)
            self._sync_done(key, "ok", stated if stated is not None else None if start is None else now - start)
        elif p.event == "sync_failed":
            if self._sync_running.pop(key, None) is not None:
                self._sync_done(key, "failed", None)

    def _sync_done(self, key: ServerKey, result: str, duration: float | None) -> None:
        self._add(self._syncs, (*key, result), 1)
        if duration is not None:
            self._set(self._sync_last, key, max(duration, 0.0))

    def _transition(self, change: StateChanged, payload: object, relationship: str) -> None:
        """Count a state change. `from_state` is the correlator's previous state; for a server's
        first state, the line's own `from` when it states one for that side (dhcpd `I move from
        X to Y`, Kea `server transitions from X`), else `FROM_UNKNOWN` (no state of either is
        called that). A dhcpd resync running when the server moves to `startup` or `shutdown`
        failed; one running into `normal`, `partner-down` or `communications-interrupted` ends
        uncounted, as in the correlator; a Kea sync ends when the server leaves `syncing`."""
        previous = change.previous
        if previous is None:
            if isinstance(payload, FailoverState) and payload.side == change.side and payload.to_state == change.state:
                previous = payload.from_state
            previous = previous or FROM_UNKNOWN
        key = (change.server, relationship)
        self._add(self._transitions, (*key, change.side, previous, change.state), 1)
        if change.side != "self" or key not in self._sync_running:
            return
        if relationship == NO_RELATIONSHIP:  # Kea: leaving syncing ends an attempt
            if change.state != "syncing":
                del self._sync_running[key]
        elif change.state in _DHCPD_SYNC_FAILS:
            del self._sync_running[key]
            self._sync_done(key, "failed", None)
        elif change.state in _DHCPD_SYNC_ENDS:
            del self._sync_running[key]


def _kea_duration(detail: str | None) -> float | None:
    """Seconds from the duration HA_SYNC_SUCCESSFUL states (Kea prints e.g. `12.500 ms`)."""
    if not detail:
        return None
    m = _KEA_DURATION.match(detail)
    if m is None:
        return None
    unit = (m.group(2) or "s").lower()
    return float(m.group(1)) * _KEA_UNITS.get(unit, 1.0)


def _scrub(text: str) -> str:
    """A free-text label value without anything that looks like a MAC or an IP address."""
    text = _MAC.sub("<mac>", text)
    text = _IPV4.sub("<ip>", text)
    return _IPV6.sub("<ip>", text)
