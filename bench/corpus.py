"""One realistic, deterministic syslog stream from a fleet of DHCP failover pairs (for bench/).

`make_corpus(count)` gives `count` syslog messages (no framing, no newline) in time
order, as the servers' rsyslog forwards them, from `pairs` pairs (default 100: four
in five ISC dhcpd failover pairs, the rest Kea HA pairs in load-balancing; 200 hosts).
Seeded: the same arguments give the same lines. Every message text follows a format
string of the message catalog (shared/reference/log-messages.md), so parser,
correlator, store and metrics do the work real traffic gives them:

* lease traffic (most lines): a new client's DISCOVER, OFFER, REQUEST and ACK on the
  server the load-balancing hash picks, with the partner's debug-level refusals
  (`load balance to peer`, `lease owned by peer`) on pairs that keep debug lines;
  renewals, releases, INFORMs, the odd NAK and duplicate-uid line; Kea's
  DHCP4_QUERY_LABEL, DHCP4_LEASE_OFFER (2.2: DHCP4_LEASE_ADVERT), DHCP4_LEASE_ALLOC,
  DHCP4_LEASE_REUSE, DHCP4_RELEASE;
* pool balancing (`balancing pool` / `balanced pool`, both dhcpd servers, in normal);
* failover episodes, rare (the next episode of a healthy pair is one with chance `FLAP`
  or `RESTART`): a link flap (both
  servers `peer X: disconnected` and into communications-interrupted, back to normal
  5-60 s later with each one's view of the other and `Both servers normal`), and a
  server restarted with an empty lease file (the survivor in communications-interrupted,
  then partner-down; the restarted one recover -> startup -> recover, the bulk update,
  recover-wait for MCLT 60 s while it answers `not responding (recover wait)`, then
  recover-done and normal). Kea: heartbeat failures, HA_COMMUNICATION_INTERRUPTED,
  LOAD-BALANCING -> COMMUNICATION-RECOVERY and back; a restart (the survivor to
  PARTNER-DOWN, the restarted one WAITING -> SYNCING with a lease sync -> READY ->
  LOAD-BALANCING). State-transition lines end up about 0.2 % of all lines: a fleet
  busier with failover than a healthy one (0.1 %), calmer than bench/correlate.py's
  3 % stress mix;
* about 2 % lines of other programs on the same hosts (systemd, CRON, sshd).

Each host forwards with one of rsyslog's templates: RFC 3164
(RSYSLOG_TraditionalForwardFormat), RFC 3339 (RSYSLOG_ForwardFormat) or RFC 5424
(RSYSLOG_SyslogProtocol23Format); dhcpd with or without a PID, Kea 2.2 or 2.6 texts.
Timestamps advance `rate` lines per simulated second from 2025-03-03 08:00:00 UTC.

`Corpus.transitions` counts the state-transition lines (dhcpd `I move from` and
`peer moves from`, Kea HA_STATE_TRANSITION) and `Corpus.leases` the lease lines by
type (the dhcpd `DHCP...` word, the Kea message id): the ground truth bench/parse.py
checks pairwatch's parser and mtail against.
"""

from __future__ import annotations

import json
import random
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

START: Final = datetime(2025, 3, 3, 8, 0, tzinfo=UTC).timestamp()
RATE: Final = 2000.0
"""Lines per simulated second, fleet-wide (300k lines span 150 s)."""
KEA_SHARE: Final = 0.2
FLAP: Final = 0.001
"""Chance that the next episode of a healthy pair is a link flap."""
RESTART: Final = 0.0003
"""Chance that the next episode of a healthy pair is a server restart."""
MCLT: Final = 60.0
CLIENTS: Final = 200
"""Clients per pair: MAC 00:00:5e:00:53:xx (the documentation range has 256), address .20 + n."""

TRANSITION: Final = "transition"

# syslog facility * 8 + severity
_DAEMON, _LOCAL7, _LOCAL0 = 3 * 8, 23 * 8, 16 * 8
_ERR, _WARN, _INFO, _DEBUG = 3, 4, 6, 7
_MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True, slots=True)
class Corpus:
    lines: list[str]
    transitions: int
    leases: Counter[str]
    pairs: int


@dataclass(slots=True)
class _Host:
    """One server: its name and how its rsyslog forwards (template, facility, tag)."""

    name: str
    template: str  # "3164", "3339" or "5424"
    facility: int
    program: str
    pid: int | None

    def line(self, t: float, severity: int, text: str) -> str:
        pri = self.facility + severity
        if self.template == "3164":
            tag = self.program if self.pid is None else f"{self.program}[{self.pid}]"
            return f"<{pri}>{_rfc3164_stamp(int(t))} {self.name} {tag}: {text}"
        second, micro = divmod(round(t * 1_000_000), 1_000_000)
        stamp = f"{_rfc3339_second(second)}.{micro:06d}+00:00"
        if self.template == "3339":
            tag = self.program if self.pid is None else f"{self.program}[{self.pid}]"
            return f"<{pri}>{stamp} {self.name} {tag}: {text}"
        return f"<{pri}>1 {stamp} {self.name} {self.program} {self.pid or '-'} - - {text}"


@lru_cache(maxsize=1024)
def _rfc3164_stamp(second: int) -> str:
    d = datetime.fromtimestamp(second, UTC)
    return f"{_MONTHS[d.month - 1]} {d.day:2d} {d:%H:%M:%S}"


@lru_cache(maxsize=1024)
def _rfc3339_second(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")


# An emitted line before its header: (server index 0/1, severity, text, truth), where truth
# is TRANSITION, a lease type, or None.
_Item = tuple[int, int, str, str | None]


@dataclass(slots=True)
class _Pair:
    """A pair's pending lines and failover state; subclasses write the episodes."""

    index: int
    hosts: tuple[_Host, _Host]
    rng: random.Random
    pending: deque[_Item] = field(default_factory=deque)
    phase: str = "normal"
    until: float = 0.0  # when the current phase ends (simulated time)
    down: int | None = None  # the server that is restarting, while one is
    clock: float = START  # simulated time of the line being made

    @property
    def net(self) -> str:
        return f"198.{18 + self.index // 256}.{self.index % 256}"

    def client(self) -> tuple[int, str, str]:
        c = self.rng.randrange(CLIENTS)
        return c, f"00:00:5e:00:53:{c:02x}", f"{self.net}.{20 + c}"

    def add(self, server: int, severity: int, text: str, truth: str | None = None) -> None:
        self.pending.append((server, severity, text, truth))

    def next_item(self, now: float) -> _Item:
        self.clock = now
        if not self.pending:
            self.episode(now)
        return self.pending.popleft()

    def episode(self, now: float) -> None:
        raise NotImplementedError


class _DhcpdPair(_Pair):
    """An ISC dhcpd 4.4 failover pair; server 0 is the primary."""

    def __init__(self, index: int, hosts: tuple[_Host, _Host], rng: random.Random) -> None:
        super().__init__(index, hosts, rng)
        self.rel = f"failover-{index:03d}"
        self.debug = rng.random() < 0.5  # keeps LOG_DEBUG lines (load balance to peer, ...)
        self.vias = (rng.choice(("eth0", "ens3", "vlan12")), f"{self.net}.1")
        self.pools = (f"{rng.getrandbits(44) | 1 << 43:x}", f"{rng.getrandbits(44) | 1 << 43:x}")
        self.free = 100

    def episode(self, now: float) -> None:
        if self.phase == "normal":
            r = self.rng.random()
            if r < FLAP:
                self._flap()
            elif r < FLAP + RESTART:
                self._crash()
            elif r < FLAP + RESTART + 0.04:
                self._balance()
            else:
                self._lease(serving=(0, 1))
        elif now >= self.until:
            {"interrupted": self._heal, "down": self._restart, "recover-wait": self._recovered}[self.phase]()
        else:  # serving alone or from own pools, and the restarting server refusing
            self._lease(serving=(0, 1) if self.phase == "interrupted" else (1 - (self.down or 0),))

    def _move(self, s: int, old: str, new: str) -> None:
        self.add(s, _INFO, f"failover peer {self.rel}: I move from {old} to {new}", TRANSITION)

    def _peer_moves(self, s: int, old: str, new: str) -> None:
        self.add(s, _INFO, f"failover peer {self.rel}: peer moves from {old} to {new}", TRANSITION)

    def _lease(self, serving: tuple[int, ...]) -> None:
        c, mac, ip = self.client()
        s = c % 2 if len(serving) == 2 else serving[0]
        other = 1 - s
        via = self.vias[c % 2]
        name = f"(host-{c}) " if c % 3 == 0 else ""
        sid = f"{self.net}.{2 + s}"
        lb = self.phase == "normal" and self.debug
        refusing = self.phase == "recover-wait" and other == self.down
        r = self.rng.random()
        if r < 0.55:  # a new client
            self.add(s, _INFO, f"DHCPDISCOVER from {mac} {name}via {via}", "DHCPDISCOVER")
            if lb:
                self.add(other, _DEBUG, f"DHCPDISCOVER from {mac} {name}via {via}: load balance to peer {self.rel}",
                         "DHCPDISCOVER")
            if refusing:
                self.add(other, _INFO, f"DHCPDISCOVER from {mac} {name}via {via}: not responding (recover wait)",
                         "DHCPDISCOVER")
            self.add(s, _INFO, f"DHCPOFFER on {ip} to {mac} {name}via {via}", "DHCPOFFER")
            self.add(s, _INFO, f"DHCPREQUEST for {ip} ({sid}) from {mac} {name}via {via}", "DHCPREQUEST")
            if lb:
                self.add(other, _DEBUG, f"DHCPREQUEST for {ip} ({sid}) from {mac} {name}via {via}: lease owned by peer",
                         "DHCPREQUEST")
            self.add(s, _INFO, f"DHCPACK on {ip} to {mac} {name}via {via}", "DHCPACK")
        elif r < 0.90:  # a renewal, unicast to the server that holds the lease
            self.add(s, _INFO, f"DHCPREQUEST for {ip} from {mac} {name}via {via}", "DHCPREQUEST")
            self.add(s, _INFO, f"DHCPACK on {ip} to {mac} {name}via {via}", "DHCPACK")
        elif r < 0.95:
            self.add(s, _INFO, f"DHCPRELEASE of {ip} from {mac} {name}via {via} (found)", "DHCPRELEASE")
        elif r < 0.98:
            self.add(s, _INFO, f"DHCPINFORM from {ip} via {via}", "DHCPINFORM")
            self.add(s, _INFO, f"DHCPACK to {ip} ({mac}) via {via}", "DHCPACK")
        elif r < 0.99:
            wrong = f"198.51.100.{20 + c % 200}"
            self.add(s, _INFO, f"DHCPREQUEST for {wrong} from {mac} via {via}: wrong network.", "DHCPREQUEST")
            self.add(s, _INFO, f"DHCPNAK on {wrong} to {mac} via {via}", "DHCPNAK")
        else:
            self.add(s, _ERR, f"uid lease {ip} for client {mac} is duplicate on {self.net}.0/24")

    def _balance(self) -> None:
        self.free = max(60, min(140, self.free + self.rng.randrange(-6, 7)))
        free, backup = self.free, 200 - self.free
        for s in (0, 1):
            lts = (free - backup) // 2 if s == 0 else (backup - free) // 2
            own, misbal = ((free + backup) * 10 + 50) // 100, ((free + backup) * 15 + 50) // 100
            pool, net = self.pools[s], f"{self.net}.0/24"
            self.add(s, _INFO, f"balancing pool {pool} {net}  total 200  free {free}  backup {backup}  lts {lts}  "
                               f"max-own (+/-){own}")
            self.add(s, _INFO, f"balanced pool {pool} {net}  total 200  free {free}  backup {backup}  lts {lts}  "
                               f"max-misbal {misbal}")

    def _flap(self) -> None:
        for s in (0, 1):
            self.add(s, _INFO, f"peer {self.rel}: disconnected")
            self._move(s, "normal", "communications-interrupted")
        self.phase, self.until = "interrupted", self._now_plus(5, 60)

    def _heal(self) -> None:
        for s in (0, 1):
            self._peer_moves(s, "normal", "communications-interrupted")
        for s in (0, 1):
            self._move(s, "communications-interrupted", "normal")
        for s in (0, 1):
            self._peer_moves(s, "communications-interrupted", "normal")
            self.add(s, _INFO, f"failover peer {self.rel}: Both servers normal")
        self.add(0, _INFO, f"Sending updates to {self.rel}.")
        self.phase = "normal"
        self._balance()

    def _crash(self) -> None:
        """The secondary dies (no line of its own); the primary notices."""
        self.down = 1
        self.add(0, _INFO, f"peer {self.rel}: disconnected")
        self._move(0, "normal", "communications-interrupted")
        self.phase, self.until = "down", self._now_plus(5, 30)

    def _restart(self) -> None:
        """The secondary is back with an empty lease file: recover, bulk update, recover-wait."""
        b = 1
        for text in ("Internet Systems Consortium DHCP Server 4.4.3",
                     "Copyright 2004-2022 Internet Systems Consortium.", "All rights reserved.",
                     "For info, please visit https://www.isc.org/software/dhcp/",
                     "Wrote 0 leases to leases file.", "Server starting service."):
            self.add(b, _INFO, text)
        self._move(b, "recover", "startup")
        self._move(b, "startup", "recover")
        self.add(b, _INFO, f"Sent update request all message to {self.rel}")
        self._peer_moves(0, "normal", "recover")
        self._move(0, "communications-interrupted", "partner-down")
        self._peer_moves(b, "unknown-state", "partner-down")
        self.add(0, _INFO, f"Update request all from {self.rel}: sending update")
        self.add(0, _INFO, f"Sent update done message to {self.rel}")
        self.add(b, _INFO, f"failover peer {self.rel}: peer update completed.")
        self._move(b, "recover", "recover-wait")
        self._peer_moves(0, "recover", "recover-wait")
        self.phase, self.until = "recover-wait", self._now_plus(MCLT, MCLT)

    def _recovered(self) -> None:
        b = 1
        self._move(b, "recover-wait", "recover-done")
        self._peer_moves(0, "recover-wait", "recover-done")
        self._move(0, "partner-down", "normal")
        self._peer_moves(b, "partner-down", "normal")
        self._move(b, "recover-done", "normal")
        self._peer_moves(0, "recover-done", "normal")
        for s in (0, 1):
            self.add(s, _INFO, f"failover peer {self.rel}: Both servers normal")
        self.phase, self.down = "normal", None
        self._balance()

    def _now_plus(self, low: float, high: float) -> float:
        return self.clock + self.rng.uniform(low, high)


class _KeaPair(_Pair):
    """A Kea HA pair in load-balancing; server 0 is the primary. Kea 2.2 or 2.6 texts."""

    def __init__(self, index: int, hosts: tuple[_Host, _Host], rng: random.Random) -> None:
        super().__init__(index, hosts, rng)
        self.modern = rng.random() < 0.5  # 2.5.5+: `name: ` prefix, DHCP4_LEASE_OFFER
        self.tids = (rng.randrange(10**14, 10**15), rng.randrange(10**14, 10**15))

    def _log(self, s: int, severity: int, logger: str, msgid: str, text: str, truth: str | None = None) -> None:
        level = {_ERR: "ERROR", _WARN: "WARN ", _INFO: "INFO "}[severity]
        self.add(s, severity, f"{level} [kea-dhcp4.{logger}.{self.tids[s]}] {msgid} {text}", truth)

    def _ha(self, s: int, severity: int, msgid: str, text: str, truth: str | None = None) -> None:
        prefix = f"{self.hosts[s].name}: " if self.modern else ""
        self._log(s, severity, "ha-hooks", msgid, prefix + text, truth)

    def _transition(self, s: int, old: str, new: str, partner: str) -> None:
        self._ha(s, _INFO, "HA_STATE_TRANSITION",
                 f"server transitions from {old} to {new} state, partner state is {partner}", TRANSITION)

    def episode(self, now: float) -> None:
        if self.phase == "normal":
            r = self.rng.random()
            if r < FLAP:
                self._interrupted(0, 1)
                self._interrupted(1, 0)
                for s in (0, 1):
                    self._transition(s, "LOAD-BALANCING", "COMMUNICATION-RECOVERY", "UNAVAILABLE")
                self.phase, self.until = "interrupted", now + self.rng.uniform(5, 60)
            elif r < FLAP + RESTART:
                self.down = 1
                self._interrupted(0, 1)
                self._transition(0, "LOAD-BALANCING", "COMMUNICATION-RECOVERY", "UNAVAILABLE")
                self.phase, self.until = "down", now + self.rng.uniform(10, 30)
            else:
                self._lease((0, 1))
        elif now < self.until:
            if self.rng.random() < 0.05:  # heartbeats keep failing every heartbeat-delay
                for s in (0, 1) if self.down is None else (0,):
                    self._interrupted(s, 1 - s)
            self._lease((0, 1) if self.down is None else (0,))
        elif self.phase == "interrupted":
            self._transition(0, "COMMUNICATION-RECOVERY", "LOAD-BALANCING", "COMMUNICATION-RECOVERY")
            self._transition(1, "COMMUNICATION-RECOVERY", "LOAD-BALANCING", "LOAD-BALANCING")
            self.phase = "normal"
        else:
            self._restart()

    def _interrupted(self, s: int, partner: int) -> None:
        peer = self.hosts[partner].name
        url = f"http://{self.net}.{2 + partner}:8000/"
        self._ha(s, _WARN, "HA_HEARTBEAT_COMMUNICATIONS_FAILED",
                 f"failed to send heartbeat to {peer} ({url}): Connection refused")
        self._ha(s, _WARN, "HA_COMMUNICATION_INTERRUPTED", f"communication with {peer} is interrupted")

    def _restart(self) -> None:
        a, b = 0, 1
        names = (self.hosts[0].name, self.hosts[1].name)
        version = "2.6.1" if self.modern else "2.2.0"
        self._transition(a, "COMMUNICATION-RECOVERY", "PARTNER-DOWN", "UNAVAILABLE")
        self._log(b, _INFO, "dhcp4", "DHCP4_STARTING", f"Kea DHCPv4 server version {version} (tarball) starting")
        self._ha(b, _INFO, "HA_SERVICE_STARTED", "started high availability service in load-balancing mode as "
                                                 "secondary server")
        self._log(b, _INFO, "dhcp4", "DHCP4_STARTED", f"Kea DHCPv4 server version {version} started")
        self._transition(b, "WAITING", "SYNCING", "PARTNER-DOWN")
        self._log(b, _INFO, "ha-hooks", "HA_LOCAL_DHCP_DISABLE",
                  f"local DHCP service is disabled while the {names[b]} is in the SYNCING state")
        self._ha(b, _INFO, "HA_SYNC_START", f"starting lease database synchronization with {names[a]}")
        self._ha(b, _INFO, "HA_SYNC_SUCCESSFUL", f"lease database synchronization with {names[a]} completed "
                                                 f"successfully in {self.rng.uniform(20, 900):.3f} ms")
        self._transition(b, "SYNCING", "READY", "PARTNER-DOWN")
        self._transition(a, "PARTNER-DOWN", "LOAD-BALANCING", "READY")
        self._transition(b, "READY", "LOAD-BALANCING", "LOAD-BALANCING")
        self._log(b, _INFO, "ha-hooks", "HA_LOCAL_DHCP_ENABLE",
                  f"local DHCP service is enabled while the {names[b]} is in the LOAD-BALANCING state")
        self.phase, self.down = "normal", None

    def _lease(self, serving: tuple[int, ...]) -> None:
        c, mac, ip = self.client()
        s = c % 2 if len(serving) == 2 else serving[0]
        label = f"[hwtype=1 {mac}], cid=[01:{mac}], tid=0x{self.rng.getrandbits(32):08x}"
        r = self.rng.random()
        if r < 0.5:  # a new client: DISCOVER and REQUEST
            self._log(s, _INFO, "dhcp4", "DHCP4_QUERY_LABEL", f"received query: {label}")
            if self.modern:
                self._log(s, _INFO, "leases", "DHCP4_LEASE_OFFER", f"{label}: lease {ip} will be offered",
                          "DHCP4_LEASE_OFFER")
            else:
                self._log(s, _INFO, "leases", "DHCP4_LEASE_ADVERT", f"{label}: lease {ip} will be advertised",
                          "DHCP4_LEASE_ADVERT")
            self._log(s, _INFO, "dhcp4", "DHCP4_QUERY_LABEL", f"received query: {label}")
            self._log(s, _INFO, "leases", "DHCP4_LEASE_ALLOC", f"{label}: lease {ip} has been allocated for 3600 seconds",
                      "DHCP4_LEASE_ALLOC")
        elif r < 0.95:  # a renewal
            self._log(s, _INFO, "dhcp4", "DHCP4_QUERY_LABEL", f"received query: {label}")
            if self.rng.random() < 0.5:
                self._log(s, _INFO, "leases", "DHCP4_LEASE_REUSE",
                          f"{label}: lease {ip} has been reused for {self.rng.randrange(1800, 3600)} seconds",
                          "DHCP4_LEASE_REUSE")
            else:
                self._log(s, _INFO, "leases", "DHCP4_LEASE_ALLOC",
                          f"{label}: lease {ip} has been allocated for 3600 seconds", "DHCP4_LEASE_ALLOC")
        else:
            self._log(s, _INFO, "leases", "DHCP4_RELEASE", f"{label}: address {ip} was released properly.",
                      "DHCP4_RELEASE")


_OTHER: Final[tuple[tuple[str, int, Callable[[random.Random], str]], ...]] = (
    ("systemd", _DAEMON, lambda rng: f"Started Session {rng.randrange(1, 9999)} of user root."),
    ("CRON", 9 * 8, lambda rng: "(root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)"),
    ("sshd", 4 * 8, lambda rng: f"Accepted publickey for admin from 198.18.255.{rng.randrange(1, 250)} port "
                                f"{rng.randrange(32768, 61000)} ssh2: ED25519 SHA256:bench"),
)
"""Other programs on the same hosts: (program, facility, message)."""


def _hosts(index: int, kea: bool, rng: random.Random) -> tuple[_Host, _Host]:
    template = rng.choices(("3164", "3339", "5424"), weights=(45, 15, 40))[0]
    out = []
    for side in "ab":
        if kea:
            out.append(_Host(f"kea{index:03d}{side}", template, _LOCAL0, "kea-dhcp4", rng.randrange(300, 30000)))
        else:
            pid = rng.randrange(300, 30000) if rng.random() < 0.4 else None  # journald shows it, syslog(3) not
            facility = _LOCAL7 if rng.random() < 0.3 else _DAEMON
            out.append(_Host(f"dhcp{index:03d}{side}", template, facility, "dhcpd", pid))
    return out[0], out[1]


def make_corpus(count: int, pairs: int = 100, seed: int = 1, rate: float = RATE) -> Corpus:
    """`count` lines from `pairs` pairs, with the ground truth of what they contain."""
    if not 2 <= pairs <= 512:
        raise ValueError("pairs must be 2..512 (one /24 of 198.18.0.0/15 each)")
    rng = random.Random(seed)
    fleet: list[_Pair] = []
    for i in range(pairs):
        kea = i >= round(pairs * (1 - KEA_SHARE))
        pair_rng = random.Random(rng.getrandbits(64))
        hosts = _hosts(i, kea, pair_rng)
        fleet.append(_KeaPair(i, hosts, pair_rng) if kea else _DhcpdPair(i, hosts, pair_rng))
    lines: list[str] = []
    leases: Counter[str] = Counter()
    transitions = 0
    for n in range(count):
        now = START + n / rate
        pair = fleet[rng.randrange(pairs)]
        if rng.random() < 0.02:
            program, facility, text = _OTHER[rng.randrange(len(_OTHER))]
            host = pair.hosts[rng.randrange(2)]
            pid = 1 if program == "systemd" else rng.randrange(300, 30000)
            lines.append(_Host(host.name, host.template, facility, program, pid).line(now, _INFO, text(rng)))
            continue
        server, severity, text, truth = pair.next_item(now)
        lines.append(pair.hosts[server].line(now, severity, text))
        if truth == TRANSITION:
            transitions += 1
        elif truth is not None:
            leases[truth] += 1
    return Corpus(lines, transitions, leases, pairs)


def octet_counted(lines: Iterable[str]) -> bytes:
    """RFC 6587 octet-counted frames, as rsyslog's omfwd sends with TCP_Framing="octet-counted"."""
    out = []
    for line in lines:
        data = line.encode()
        out.append(b"%d %s" % (len(data), data))
    return b"".join(out)


def lf_framed(lines: Iterable[str]) -> bytes:
    """Newline-terminated frames (rsyslog's default TCP framing)."""
    return "".join(line + "\n" for line in lines).encode()


def report(result: dict[str, Any], out: Path) -> None:
    """A bench script's last word: its result as one JSON line, printed and written to `out`."""
    text = json.dumps(result)
    print(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
