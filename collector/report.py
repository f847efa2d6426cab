"""What `pairwatch analyze` prints: JSON lines (DESIGN.md contract) or a readable table.

Pure functions of a `Replay`; the CLI only writes their output.

The table is for the administrator of the pairs: per pair, each server's states
as bands (start, duration; the last one runs to the end of the input and is
marked open with `+`), then each incident with a diagnosis in plain words and
the lines behind it. Every line fits in 80 columns. "The end of the input"
is the instant of its last line (`Replay.end`): open durations run to it.
Times are UTC.

An evidence line is printed as `| HH:MM:SS.mmm host  message`, what the reader
needs to see why it is evidence: its time to the millisecond (truncated; `.000`
when the header has no fraction), with `MM-DD ` in front when it is not on the
incident's start day (the other times of the block are then padded to align);
its host by its first DNS label(s) (`dhcp1.example.net` -> `dhcp1`, as long as no
other server of the pair shares them; the pair's heading names it in full); and the
message without the syslog tag, dhcpd's `failover peer NAME: ` or Kea's
`SEVERITY [logger.tid] `. A message too long for the row wraps under itself, up to
three rows. A line whose header gives no time or host is printed raw, cut to the
width. `--json` keeps the raw lines.
"""

from __future__ import annotations

import re
import textwrap
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from collector import conditions
from collector.conditions import CONDITIONS, Condition
from collector.correlator import DHCPD_SERVING, KEA_SERVING
from collector.domain import (
    Incident,
    StateChanged,
)
from collector.replay import Replay
from parsers import ParseOptions, parse_line
from parsers.events import DHCPD_STATES, KEA_STATES, FailoverPool, Lease, LeaseNoFree
from parsers.jsonl import epoch_iso


def json_objects(result: Replay) -> Iterator[dict[str, Any]]:
    """State changes and incidents, in time order (a state's ts, an incident's start).

    `{"type": "state", "ts", "pair", "server", "side", "state"}` and
    `{"type": "incident", "condition", "pair", "servers", "start", "end", "evidence"}`;
    `end` is null for an incident still open when the input ended.
    """
    items: list[tuple[float, int, dict[str, Any]]] = []
    for n, s in enumerate(result.states):
        items.append((s.ts, n, {"type": "state", "ts": epoch_iso(s.ts), "pair": s.pair, "server": s.server,
                                "side": s.side, "state": s.state}))
    base = len(items)
    for n, i in enumerate(result.incidents):
        items.append((i.start, base + n, {"type": "incident", **i.as_dict()}))
    items.sort(key=lambda item: (item[0], item[1]))
    for _, _, obj in items:
        yield obj


# --- the readable table ----------------------------------------------------------------

WIDTH = 80
SERVING = DHCPD_SERVING | KEA_SERVING
"""States in which a server answers clients (dhcpd or Kea; the names do not clash)."""
_REACTION = 60.0
"""Seconds within which a partner's state change counts as a reaction to the trouble at hand."""
_KEA_ONLY = KEA_STATES - DHCPD_STATES
"""States only Kea HA has: a pair with a band in one of them is a Kea pair."""
_RECOVERY_CHAIN = frozenset({"startup", "recover", "recover-wait", "recover-done"})
_DURATION = re.compile(r"\b(\d+[dhm]) (\d+[hms]\+?)")
_CONTROL = re.compile("[\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029]")
_EVIDENCE = "    | "
_EVIDENCE_ROWS = 3
"""Rows one evidence line may take; what is left after them is cut with '...'."""
_HOST_COLUMN = 24
"""Columns at most for the host in an evidence row: a longer name is cut, not the message."""
_PEER_PREFIX = re.compile(r"failover peer .+?: ")
_ADDRESS = re.compile(r"[0-9.]+|.*:.*")
"""An IPv4 or IPv6 address as the host: it has no labels to drop."""


@dataclass(slots=True, frozen=True, kw_only=True)
class Band:
    """One stretch of a server's own state (`side="self"`) or of its view of the partner (`"peer"`)."""

    server: str
    side: str
    state: str
    start: float
    end: float
    open: bool  # the last band of its server and side: it lasted at least until the input ended


@dataclass(slots=True, frozen=True, kw_only=True)
class PairReport:
    name: str
    servers: tuple[str, ...]
    bands: tuple[Band, ...]
    incidents: tuple[Incident, ...]


def input_end(result: Replay) -> float | None:
    """The last instant of the input (its last line), else the last one the replay recorded."""
    instants = [s.ts for s in result.states]
    instants += [t for i in result.incidents for t in (i.start, i.end) if t is not None]
    if result.end is not None:
        instants.append(result.end)
    return max(instants, default=None)


def duration(seconds: float, open: bool = False) -> str:
    """`58s`, `14m 3s`, `2h 14m`, `3d 2h`; open (still running) adds `+`."""
    s = max(0, int(seconds))
    if s < 60:
        text = f"{s}s"
    elif s < 3600:
        text = f"{s // 60}m {s % 60}s"
    elif s < 86400:
        text = f"{s // 3600}h {s % 3600 // 60}m"
    else:
        text = f"{s // 86400}d {s % 86400 // 3600}h"
    return text + "+" if open else text


def bands_of(states: Sequence[StateChanged], end: float) -> list[Band]:
    """Consecutive state changes per (server, side) -> bands, the last one open until `end`."""
    runs: dict[tuple[str, str], list[tuple[str, float]]] = {}
    for s in sorted(states, key=lambda s: s.ts):
        seq = runs.setdefault((s.server, s.side), [])
        if not seq or seq[-1][0] != s.state:
            seq.append((s.state, s.ts))
    bands = []
    for (server, side), seq in runs.items():
        for n, (state, start) in enumerate(seq):
            last = n == len(seq) - 1
            bands.append(Band(server=server, side=side, state=state, start=start,
                              end=end if last else seq[n + 1][1], open=last))
    return bands


def pair_reports(result: Replay) -> list[PairReport]:
    """Group the replay by pair, in order of first appearance.

    A Kea server logs under a pair named after itself until it names its partner;
    such a one-server pair whose server later belongs to a real pair is folded
    into that pair (its incidents too, unless the real pair has the same one then).
    """
    end = input_end(result)
    if end is None:
        return []
    first: dict[str, float] = {}
    servers: dict[str, list[str]] = {}
    for s in result.states:
        first.setdefault(s.pair, s.ts)
        _add(servers.setdefault(s.pair, []), s.server)
    for i in result.incidents:
        first[i.pair] = min(first.get(i.pair, i.start), i.start)
        for host in i.servers:
            _add(servers.setdefault(i.pair, []), host)
    alias = {}
    for name, hosts in servers.items():
        if hosts == [name]:
            home = next((p for p, h in servers.items() if p != name and name in h and len(h) > 1), None)
            if home is not None:
                alias[name] = home
    names = sorted((n for n in first if n not in alias), key=lambda n: min(
        [first[n]] + [first[a] for a, home in alias.items() if home == n]))
    reports = []
    for name in names:
        mine = {name} | {a for a, home in alias.items() if home == name}
        own = [i for i in result.incidents if i.pair == name]
        folded = [i for i in result.incidents if i.pair in mine and i.pair != name
                  and not any(_overlap(i, o) for o in own if o.condition == i.condition)]
        members: list[str] = []
        for s in result.states:
            if s.pair in mine:
                _add(members, s.server)
        for i in own + folded:
            for host in i.servers:
                _add(members, host)
        reports.append(PairReport(
            name=name,
            servers=tuple(members),
            bands=tuple(bands_of([s for s in result.states if s.pair in mine], end)),
            incidents=tuple(sorted(own + folded, key=lambda i: (i.start, i.condition))),
        ))
    return reports


def _add(seq: list[str], item: str) -> None:
    if item not in seq:
        seq.append(item)


def _overlap(a: Incident, b: Incident) -> bool:
    return (a.end is None or a.end >= b.start) and (b.end is None or b.end >= a.start)


# --- diagnosis ---------------------------------------------------------------------------
#
# Each text is a template: {subject} is who did it (possibly with how they got there,
# "dhcp2 restarted with an empty lease file at 10:03:00 and"), {who} the server(s),
# {other} the partner ("each other" when both servers are concerned), {since} when it
# began, {dur} how long it lasted, {was}/{is}/{its} agree with number and with whether
# the incident is still open. The second text is advice, given only while it is open.
# Participles ("answering no client") keep the texts true for open and closed incidents.

_STUCK: dict[str, tuple[str, str]] = {
    "startup": (
        "{subject} {was} in startup for {dur}, answering no client; dhcpd leaves startup after about "
        "15 s or as soon as the failover link to {other} is up",
        "check that the failover port is reachable both ways"),
    "recover": (
        "{subject} {was} in recover for {dur} without 'peer update completed', answering no client "
        "until every lease has come from the partner",
        "check the failover link and that the partner is running"),
    "recover-wait": (
        "{subject} {was} in recover-wait for {dur}, past MCLT plus grace, answering no client "
        "until recover-done",
        "if the servers' real MCLT is longer than pairwatch's mclt, set it in the pair's config; "
        "otherwise the recover-wait timer was lost"),
    "recover-done": (
        "{subject} {was} in recover-done for {dur}, answering no client while waiting for the partner "
        "to leave partner-down",
        "check the partner's state and the failover link"),
    "potential-conflict": (
        "{subject} {was} resolving a conflict (potential-conflict) for {dur}, answering no client: "
        "the lease exchange between the two has not finished",
        "check the failover link; a stalled exchange keeps the pair out of service"),
    "resolution-interrupted": (
        "{subject} lost the link to {other} during conflict resolution and {was} in "
        "resolution-interrupted for {dur}, answering no client",
        "restore the link; only if a partner is really down, put the surviving server in partner-down"),
    "conflict-done": (
        "{subject} finished {its} conflict updates and {was} in conflict-done for {dur}, answering no "
        "client while waiting for the partner",
        "check the partner's state and the failover link"),
    "shutdown": (
        "{subject} entered shutdown at {since} and {was} there for {dur}, answering no client; dhcpd "
        "never leaves this state by itself",
        "find out why (an invalid state transition, a peer panic), then restart dhcpd there"),
    "paused": (
        "{subject} {was} paused since {since} ({dur}), answering no client; dhcpd never leaves this "
        "state by itself",
        "restart dhcpd there, or set its state back, once the maintenance is over"),
    "waiting": (
        "{subject} {was} in waiting for {dur} with DHCP disabled: a server leaves it only once its "
        "partner is in a state to synchronise from",
        "check that each server reaches the other's HA URL; two waiting servers leave clients dark"),
    "syncing": (
        "{subject} {was} syncing leases from {other} for {dur} with DHCP disabled: the lease "
        "synchronisation keeps failing or is very slow",
        "check the lease_cmds hook, the credentials and TLS between the two"),
    "ready": (
        "{subject} {was} in ready for {dur} with DHCP disabled, waiting for the partner to move to "
        "the normal HA state",
        "check the partner's state; a secondary waits for its primary"),
    "terminated": (
        "{subject} went to terminated at {since} ({dur}): HA stopped, each serving its own scopes "
        "without sending lease updates",
        "a terminated server needs a restart after fixing the cause (clock skew, rejected lease updates)"),
}
_STUCK_OTHER = ("{subject} {was} in {state} for {dur}, longer than its limit", "")

_INTERRUPTED: dict[str, tuple[str, str]] = {
    "communications-interrupted": (
        "{subject} lost contact with {other} at {since} and {was} serving only {its} own free leases "
        "for {dur}",
        "auto-partner-down is off or longer: if {other} is really down, put {who} in partner-down"),
    "communications-interrupted/both": (
        "{subject} lost contact with {other} at {since} while both kept running: the failover link "
        "or the network between them is broken, each serving only its own free leases for {dur}",
        "repair the link; do not put either in partner-down while both run"),
    "communication-recovery": (
        "{subject} lost contact with {other} at {since} and {was} in communication-recovery for "
        "{dur}, serving clients and queuing lease updates for the partner",
        "Kea moves to partner-down by itself once enough clients go unanswered"),
    "": (
        "{subject} reported the HA link to {other} interrupted at {since} ({dur}) and kept serving",
        "Kea declares partner-down by itself once too many clients go unanswered"),
}

_PARTNER_DOWN: dict[str, tuple[str, str]] = {
    "one/dhcpd": (
        "{subject} declared {other} down at {since} and {was} in partner-down for {dur}, serving "
        "the whole pool alone once MCLT has passed",
        "when the partner returns it first recovers its leases from {who}"),
    "one/kea": (
        "{subject} declared {other} down at {since} and {was} in partner-down for {dur}, serving "
        "the partner's scopes too",
        "when the partner returns it syncs its leases from {who} before the pair is back to normal"),
    "both": (
        "{subject} declared each other down and {was} in partner-down for {dur}: see split_brain",
        ""),
}

_SPLIT_BRAIN: dict[str, tuple[str, str]] = {
    "both": (
        "both servers in partner-down since {since} ({dur}): each hands out the whole pool, so an "
        "address can be given twice until they talk again",
        "restore the failover link now, or stop one of them"),
    "one": (
        "{down} {was} in partner-down while {up} kept serving in {state} since {since} ({dur}): both "
        "hand out addresses from the same pool, so an address can be given twice",
        "restore the failover link now, or stop one of them"),
}

def diagnose(incident: Incident, bands: Sequence[Band], end: float | None = None,
             incidents: Sequence[Incident] = ()) -> str:
    """One or two sentences for the operator: what happened, and what to do while it lasts.

    `bands` are the pair's state bands, `end` the end of the input (default: the
    incident's end, else the end of the last band), `incidents` the pair's other
    incidents (a partner that fell silent is said to be silent, not "in normal").
    """
    if end is None:
        end = incident.end if incident.end is not None else max((b.end for b in bands), default=incident.start)
    ctx = _Context(incident, bands, end, incidents)
    text, advice = _DIAGNOSES.get(incident.condition, _generic)(ctx)
    starts_with_host = any(text.startswith(host) for host in ctx.servers())
    sentence = _sentence(text, capital=not starts_with_host)
    if advice and incident.end is None:
        sentence += " " + _sentence(advice)
    return sentence


@dataclass(slots=True)
class _Context:
    incident: Incident
    bands: Sequence[Band]
    end: float
    incidents: Sequence[Incident]

    @property
    def open(self) -> bool:
        return self.incident.end is None

    @property
    def stop(self) -> float:
        return self.end if self.incident.end is None else self.incident.end

    def servers(self) -> list[str]:
        hosts: list[str] = []
        for b in self.bands:
            _add(hosts, b.server)
        for host in self.incident.servers:
            _add(hosts, host)
        return hosts

    def others(self, hosts: Sequence[str]) -> list[str]:
        return [h for h in self.servers() if h not in hosts]

    def clock(self, ts: float) -> str:
        return _clock(ts, self.incident.start)

    def dur(self, since: float) -> str:
        return duration(self.stop - since, self.open)

    def self_bands(self, host: str) -> list[Band]:
        return [b for b in self.bands if b.server == host and b.side == "self"]

    def band_at(self, host: str, ts: float, side: str = "self", prefer: frozenset[str] | None = None) -> Band | None:
        """The band of `host` at `ts`; but the first band in `prefer` that overlaps the incident
        from `ts` on wins (a server named by an incident may enter its state a moment later)."""
        seq = [b for b in self.bands if b.server == host and b.side == side]
        if prefer:
            for b in seq:
                if b.state in prefer and b.start <= self.stop and b.end >= ts:
                    return b
        before = [b for b in seq if b.start <= ts]
        return before[-1] if before else None

    def words(self, hosts: Sequence[str], **extra: str) -> dict[str, str]:
        plural = len(hosts) > 1
        others = self.others(hosts)
        return {
            "who": _join(hosts),
            "subject": _join(hosts),
            "other": _join(others) if others else ("each other" if plural else "its partner"),
            "was": ("have been" if plural else "has been") if self.open else ("were" if plural else "was"),
            "is": ("are" if plural else "is") if self.open else ("were" if plural else "was"),
            "its": "their" if plural else "its",
            "since": self.clock(self.incident.start),
            "dur": self.dur(self.incident.start),
            **extra,
        }

    def meanwhile(self, hosts: Sequence[str], since: float, serving: bool) -> str:
        """What the other server(s) did while `hosts` were in trouble, from the bands.

        A state the other server entered long before (more than `_REACTION`) is only its
        last word, not proof that it still runs: it is told with its time, unjudged.
        """
        parts = []
        for other in self.others(hosts):
            silent = next((i for i in self.incidents
                           if i.condition == conditions.SERVER_SILENT.name and other in i.servers
                           and i.start <= self.stop and (i.end is None or i.end > since)), None)
            if silent is not None:
                parts.append(f"{other} fell silent (server_silent from {self.clock(silent.start)})")
                continue
            seq = [b for b in self.self_bands(other) if b.start < self.stop and b.end > since]
            if not seq:
                continue
            if seq[0].start < since - _REACTION:
                later = ", then ".join(f"{b.state} at {self.clock(b.start)}" for b in seq[1:])
                later = f"then {later}" if later else "and no change since"
                parts.append(f"{other} had last reported {seq[0].state} at {self.clock(seq[0].start)}, {later}")
                continue
            states = list(dict.fromkeys(b.state for b in seq))
            listed = ", then ".join(states)
            if all(s in SERVING for s in states):
                parts.append(f"{other} kept serving meanwhile ({listed})" if serving
                             else f"{other} served clients alone meanwhile, in {listed}")
            elif not any(s in SERVING for s in states):
                parts.append(f"{other} answered no client meanwhile ({listed})")
            else:
                parts.append(f"{other} went through {listed} meanwhile")
        return "; ".join(parts)


Diagnosis = Callable[["_Context"], tuple[str, str]]
_DIAGNOSES: dict[str, Diagnosis] = {}


def _diagnosis(condition: Condition) -> Callable[[Diagnosis], Diagnosis]:
    """Register the decorated function as `condition`'s diagnosis: (what happened, advice)."""
    def register(diagnose: Diagnosis) -> Diagnosis:
        _DIAGNOSES[condition.name] = diagnose
        return diagnose
    return register


@_diagnosis(conditions.STUCK)
def _stuck(ctx: _Context) -> tuple[str, str]:
    sentences, advice = [], ""
    prefer = frozenset(_STUCK)
    for state, hosts in _by_state(ctx, ctx.incident.servers, prefer).items():
        text, advice_text = _STUCK.get(state, _STUCK_OTHER)
        band = ctx.band_at(hosts[0], ctx.incident.start, prefer=prefer)
        since = band.start if band is not None else ctx.incident.start
        words = ctx.words(hosts, state=state, since=ctx.clock(since), dur=ctx.dur(since))
        if len(hosts) == 1 and band is not None:
            words["subject"] = _restart(ctx, band)
        sentence = text.format(**words)
        if len(hosts) == 1:
            meanwhile = ctx.meanwhile(hosts, since, serving=state in SERVING)
            sentence += f"; {meanwhile}" if meanwhile else ""
        sentences.append(sentence)
        advice = advice or advice_text.format(**words)
    return ". ".join(sentences), advice


def _restart(ctx: _Context, band: Band) -> str:
    """`host`, or how it got into its recovery: a restart, with an empty lease file when it
    came back in recover from a state other than recover (dhcpd starts from recover only
    when its lease file holds no failover state)."""
    seq = ctx.self_bands(band.server)
    n = seq.index(band)
    while n >= 0 and seq[n].state in _RECOVERY_CHAIN:
        if seq[n].state == "startup":
            before = seq[n - 1] if n > 0 else None
            after = seq[n + 1] if n + 1 < len(seq) else None
            at = ctx.clock(seq[n].start)
            if after is not None and after.state == "recover" and before is not None and before.state != "recover":
                return f"{band.server} restarted with an empty lease file at {at} and"
            return f"{band.server} restarted at {at} and"
        n -= 1
    return band.server


def _is_kea(bands: Sequence[Band]) -> bool:
    return any(b.state in _KEA_ONLY for b in bands)


def _by_state(ctx: _Context, hosts: Sequence[str], prefer: frozenset[str] | None) -> dict[str, list[str]]:
    """The incident's servers grouped by their state at the incident's start."""
    groups: dict[str, list[str]] = {}
    for host in hosts:
        band = ctx.band_at(host, ctx.incident.start, prefer=prefer)
        groups.setdefault(band.state if band is not None else "", []).append(host)
    return groups


@_diagnosis(conditions.COMMUNICATIONS_INTERRUPTED)
def _interrupted(ctx: _Context) -> tuple[str, str]:
    sentences, advice = [], ""
    everyone = len(ctx.incident.servers) > 1 and not ctx.others(ctx.incident.servers)
    prefer = frozenset({"communications-interrupted", "communication-recovery"})
    for state, hosts in _by_state(ctx, ctx.incident.servers, prefer).items():
        key = state if state in _INTERRUPTED else ""
        if everyone and f"{key}/both" in _INTERRUPTED:
            key = f"{key}/both"
        text, advice_text = _INTERRUPTED[key]
        band = ctx.band_at(hosts[0], ctx.incident.start, prefer=prefer)
        since = band.start if band is not None and key else ctx.incident.start
        words = ctx.words(hosts, since=ctx.clock(since), dur=ctx.dur(since))
        sentence = text.format(**words)
        meanwhile = "" if everyone else ctx.meanwhile(hosts, since, serving=True)
        sentences.append(sentence + ("; " + meanwhile if meanwhile else ""))
        advice = advice or advice_text.format(**words)
    return ". ".join(sentences), advice


@_diagnosis(conditions.PARTNER_DOWN)
def _partner_down(ctx: _Context) -> tuple[str, str]:
    hosts = list(ctx.incident.servers)
    band = ctx.band_at(hosts[0], ctx.incident.start, prefer=frozenset({"partner-down"}))
    since = band.start if band is not None else ctx.incident.start
    words = ctx.words(hosts, since=ctx.clock(since), dur=ctx.dur(since))
    if len(hosts) > 1:
        words["subject"] = "both servers"
        text, advice = _PARTNER_DOWN["both"]
        return text.format(**words), advice
    text, advice = _PARTNER_DOWN["one/kea" if _is_kea(ctx.bands) else "one/dhcpd"]
    text, advice = text.format(**words), advice.format(**words)
    meanwhile = ctx.meanwhile(hosts, since, serving=True)
    return text + ("; " + meanwhile if meanwhile else ""), advice


@_diagnosis(conditions.SPLIT_BRAIN)
def _split_brain(ctx: _Context) -> tuple[str, str]:
    prefer = frozenset({"partner-down"})
    groups = _by_state(ctx, ctx.incident.servers, prefer)
    down = groups.pop("partner-down", [])
    up = [h for hosts in groups.values() for h in hosts]
    words = ctx.words(down or list(ctx.incident.servers), down=_join(down), up=_join(up),
                      state=_join(list(groups)) or "a serving state")
    text, advice = _SPLIT_BRAIN["one" if up and down else "both"]
    return text.format(**words), advice.format(**words)


@_diagnosis(conditions.VIEWS_DISAGREE)
def _views_disagree(ctx: _Context) -> tuple[str, str]:
    start, found = ctx.incident.start, []
    hosts = ctx.servers()
    for viewer in ctx.incident.servers:
        view = ctx.band_at(viewer, start, side="peer")
        for viewed in hosts:
            own = ctx.band_at(viewed, start)
            if viewed != viewer and view is not None and own is not None and view.state != own.state:
                since = max(view.start, own.start)
                words = ctx.words([viewer])
                found.append(f"{viewer} {words['was']} seeing {viewed} in {view.state} while {viewed} itself "
                             f"{words['is']} in {own.state} (since {ctx.clock(since)}, {ctx.dur(since)})")
    text = "; ".join(found) or f"the servers' views of each other disagree{_for(ctx)}"
    return text + ": a change did not reach the partner (half-open failover link, or lost log lines)", \
        _advice(conditions.VIEWS_DISAGREE)


@_diagnosis(conditions.NOT_SERVING)
def _not_serving(ctx: _Context) -> tuple[str, str]:
    reasons: list[str] = []
    for line in ctx.incident.evidence:
        payload = parse_line(line).payload
        if isinstance(payload, Lease) and payload.refused and payload.refused not in reasons:
            reasons.append(payload.refused)
    start = ctx.incident.start
    text = f"no server of the pair answered a client from {ctx.clock(start)} on ({ctx.dur(start)})"
    if reasons:
        text += "; they refused with " + _join([f"'{r}'" for r in reasons])
    idle = {state: hosts for state, hosts in _by_state(ctx, ctx.servers(), None).items()
            if state and state not in SERVING}
    if idle:
        text += "; " + ", ".join(f"{_join(hosts)} {ctx.words(hosts)['is']} in {state}" for state, hosts in idle.items())
    return text, _advice(conditions.NOT_SERVING)


@_diagnosis(conditions.SERVER_SILENT)
def _server_silent(ctx: _Context) -> tuple[str, str]:
    hosts = list(ctx.incident.servers)
    words = ctx.words(hosts)
    text = (f"{words['who']} {words['was']} silent past the limit since {words['since']} ({words['dur']}; "
            f"{words['its']} last line is below) while {words['other']} kept logging: {words['who']} "
            f"{words['is']} down, or {words['its']} syslog forwarding {words['is']}")
    return text, _advice(conditions.SERVER_SILENT).format(**words)


@_diagnosis(conditions.SYNC_SLOW)
def _sync_slow(ctx: _Context) -> tuple[str, str]:
    hosts = list(ctx.incident.servers)
    words = ctx.words(hosts)
    text = (f"the bulk lease resync {words['who']} started with {words['other']} (line below) {words['was']} "
            f"running past the limit from {words['since']} on ({words['dur']}), and {words['who']} answers no "
            f"client until it completes")
    meanwhile = ctx.meanwhile(hosts, ctx.incident.start, serving=False) if len(hosts) == 1 else ""
    return text + ("; " + meanwhile if meanwhile else ""), _advice(conditions.SYNC_SLOW).format(**words)


@_diagnosis(conditions.POOL_EXHAUSTED)
def _pool_exhausted(ctx: _Context) -> tuple[str, str]:
    found: list[str] = []
    for line in ctx.incident.evidence:
        event = _parse(line)
        if event is None:
            continue
        host, payload = event
        partner = _join(ctx.others([host])) or "the partner"
        if isinstance(payload, LeaseNoFree) and payload.reason == "peer holds all free leases":
            band = ctx.band_at(host, ctx.incident.start)
            stuck = band is not None and band.state == "communications-interrupted"
            text = f"peer holds all free leases: {host} has used up its own share; {partner} holds the rest"
            found.append(text + (" (unreachable while in communications-interrupted)" if stuck else ""))
        elif isinstance(payload, LeaseNoFree):
            found.append(f"no free leases in {payload.network}" if payload.network else f"{host} found no free lease")
        elif isinstance(payload, FailoverPool) and payload.total > 0 and 0 in (payload.free, payload.backup):
            side, left = ("primary", payload.backup) if payload.free == 0 else ("secondary", payload.free)
            other = "backup" if payload.free == 0 else "free"
            found.append(f"{host} reports {payload.network or payload.pool}: no free lease left for the {side} "
                         f"({other} {left} of {payload.total})")
    text = "; ".join(dict.fromkeys(found)) or f"a pool ran out of free leases{_for(ctx)}"
    return text, _advice(conditions.POOL_EXHAUSTED)


def _generic(ctx: _Context) -> tuple[str, str]:
    return f"{ctx.incident.condition} held for {_join(list(ctx.incident.servers))}{_for(ctx)}", ""


if _DIAGNOSES.keys() != set(CONDITIONS):  # (a condition added to the registry needs its words here)
    raise ImportError(f"conditions without a diagnosis: {sorted(set(CONDITIONS) - _DIAGNOSES.keys())}")


def _advice(condition: Condition) -> str:
    """The advice of a condition that has one (the diagnoses that end with it)."""
    assert condition.advice is not None
    return condition.advice


def _for(ctx: _Context) -> str:
    return f" from {ctx.clock(ctx.incident.start)} on ({ctx.dur(ctx.incident.start)})"


def _parse(line: str) -> tuple[str, Any] | None:
    """Host and payload of an evidence line (no timestamp needed: no reference, no zone)."""
    event = parse_line(line)
    return None if event.record.host is None else (event.record.host, event.payload)


def _join(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _sentence(text: str, capital: bool = True) -> str:
    """A capital (unless it starts with a host name) and a full stop."""
    text = text.strip()
    if not text:
        return ""
    if capital:
        text = text[0].upper() + text[1:]
    return text if text.endswith(".") else text + "."


# --- layout ------------------------------------------------------------------------------


def render_table(result: Replay, tz: tzinfo = UTC) -> str:
    """The readable report of `pairwatch analyze`: per pair, state bands and incidents
    with a diagnosis and the evidence lines; then a one-line summary. `tz` is the zone the
    replay read zone-less timestamps in (analyze's --tz): evidence lines are read again."""
    reports = pair_reports(result)
    end = input_end(result)
    out: list[str] = []
    if not reports or end is None:
        unplaced = f" ({result.unplaced} without a timestamp or host)" if result.unplaced else ""
        out.append(f"no failover/HA events found in {_count(result.lines, 'line')} read{unplaced}")
    else:
        options = ParseOptions(reference=datetime.fromtimestamp(end, UTC), tz=tz)
        for report in reports:
            out += _render_pair(report, end, options)
            out.append("")
    incidents = [i for r in reports for i in r.incidents]
    still = sum(1 for i in incidents if i.end is None)
    out.append(f"{_count(len(reports), 'pair')}, {_count(len(incidents), 'incident')}, {still} open "
               f"({_count(result.lines, 'line')} read)")
    return "".join(_fit(text) + "\n" for text in out)


def _render_pair(report: PairReport, end: float, options: ParseOptions) -> list[str]:
    out = _wrap(f"pair {report.name}: {', '.join(report.servers)}", "", "    ")
    self_bands = [b for b in report.bands if b.side == "self"]
    width = max((len(b.state) for b in self_bands), default=0)
    for host in report.servers:
        out += _wrap(host, "  ", "    ")
        mine = [b for b in self_bands if b.server == host]
        if not mine:
            out.append("    no state of its own logged")
        day = None
        for b in mine:
            date = _day(b.start)
            shown = date if date != day else " " * len(date)
            day = date
            out.append(f"    {shown} {_time(b.start)}  {b.state:<{width}}  {duration(b.end - b.start, b.open)}")
        silent = next((i for i in report.incidents if i.condition == conditions.SERVER_SILENT.name and host in i.servers
                       and i.end is None), None)
        if silent is not None and mine:
            out += _wrap(f"silent (server_silent from {_clock(silent.start, mine[-1].start)}): the state above "
                         f"is its last word", "    ", "      ")
        views = [b for b in report.bands if b.server == host and b.side == "peer"]
        if views:
            day, items = None, []
            for b in views:
                date = _day(b.start)
                items.append(f"{date + ' ' if date != day else ''}{_time(b.start)} {b.state}")
                day = date
            out += _wrap("sees its partner: " + ", ".join(items), "    ", "      ")
    if not report.incidents:
        out.append("  no incidents")
        return out
    out.append("  incidents:")
    for incident in report.incidents:
        out += _render_incident(incident, report, end, options)
    return out


def _render_incident(incident: Incident, report: PairReport, end: float, options: ParseOptions) -> list[str]:
    out = _wrap(f"{incident.condition}: {', '.join(incident.servers)}", "  * ", "      ")
    start = f"{_day(incident.start)} {_time(incident.start)}"
    if incident.end is None:
        span = f"{start} -> open, {duration(end - incident.start, True)}"
    else:
        stop = _time(incident.end) if _day(incident.end) == _day(incident.start) else \
            f"{_day(incident.end)} {_time(incident.end)}"
        span = f"{start} -> {stop}, {duration(incident.end - incident.start)}"
    out.append("    " + span)
    out += _wrap(diagnose(incident, report.bands, end, report.incidents), "    ", "    ")
    out += _evidence_block(incident, report.servers, options)
    return out


def _evidence_block(incident: Incident, servers: Sequence[str], options: ParseOptions) -> list[str]:
    """The incident's evidence lines as rows; times, hosts and messages each in a column."""
    read = [_evidence_fields(line, options) for line in incident.evidence]
    start_day = _day(incident.start)
    stamps = [_stamp(fields[0], start_day) if fields else "" for fields in read]
    hosts = list(servers) + [fields[1] for fields in read if fields and fields[1] not in servers]
    names = {host: _fit(short, _HOST_COLUMN) for host, short in _short_names(hosts).items()}
    stamp_width = max(map(len, stamps), default=0)
    host_width = max((len(names[fields[1]]) for fields in read if fields), default=0)
    out: list[str] = []
    for line, fields, stamp in zip(incident.evidence, read, stamps):
        if fields is None:
            out.append(_fit(_EVIDENCE + line))
        else:
            head = f"{_EVIDENCE}{stamp:>{stamp_width}} {names[fields[1]]:<{host_width}}  "
            out += _wrap_evidence(head, fields[2])
    return out


def _evidence_fields(line: str, options: ParseOptions) -> tuple[datetime, str, str] | None:
    """(time, host, message) of an evidence line, read again with the replay's zone; the
    message loses dhcpd's relationship prefix (the pair is named above it). None when the
    header gives no time or no host."""
    record = parse_line(line, options).record
    if record.ts is None or record.host is None:
        return None
    message = record.message.lstrip(" ")
    prefix = _PEER_PREFIX.match(message)
    return record.ts, record.host, message[prefix.end():] if prefix else message


def _stamp(ts: datetime, day: str) -> str:
    """`HH:MM:SS.mmm` of a UTC time, `MM-DD HH:MM:SS.mmm` off `day`; milliseconds are
    truncated so a line never shows a later second than its header's."""
    clock = f"{ts:%H:%M:%S}.{ts.microsecond // 1000:03d}"
    return clock if ts.strftime("%Y-%m-%d") == day else f"{ts:%m-%d} {clock}"


def _short_names(hosts: Sequence[str]) -> dict[str, str]:
    """Each host by its fewest leading DNS labels that no other host shares: a fully
    qualified name in every evidence row would push the message out of the width."""
    names = {}
    for host in hosts:
        labels = host.split(".")
        names[host] = host
        if _ADDRESS.fullmatch(host):
            continue
        for n in range(1, len(labels)):
            short = ".".join(labels[:n])
            if not any(other != host and (other == short or other.startswith(short + ".")) for other in hosts):
                names[host] = short
                break
    return names


def _wrap_evidence(head: str, message: str) -> list[str]:
    """`head` then `message`, wrapped at spaces under the message's first column in at most
    `_EVIDENCE_ROWS` rows of `WIDTH` columns; the last row ends in '...' if more is left."""
    indent = _EVIDENCE.rstrip() + " " * (_width(head) - len(_EVIDENCE.rstrip()))
    words = _clean(message).split()
    rows: list[str] = []
    row, used, empty = head, _width(head), True
    for n, word in enumerate(words):
        size = _width(word)
        if not empty and used + 1 + size > WIDTH:
            if len(rows) == _EVIDENCE_ROWS - 1:
                row += " " + " ".join(words[n:n + WIDTH])  # more than fits: _fit cuts it
                break
            rows.append(row)
            row, used, empty = indent, len(indent), True
        row, used = (row + word, used + size) if empty else (f"{row} {word}", used + 1 + size)
        empty = False
    rows.append(row)
    return [_fit(r) for r in rows]


def _wrap(text: str, first: str, rest: str) -> list[str]:
    """Word-wrapped to `WIDTH`, never inside a state name or a duration ("2h 14m")."""
    wrapper = textwrap.TextWrapper(width=WIDTH, initial_indent=first, subsequent_indent=rest,
                                   break_on_hyphens=False, break_long_words=True)
    glued = _DURATION.sub("\\1\u00a0\\2", _clean(text))
    return [part.replace("\u00a0", " ") for part in wrapper.wrap(glued)] or [first.rstrip()]


def _clean(text: str) -> str:
    return _CONTROL.sub("?", text.replace("\t", " "))


def _columns(ch: str) -> int:
    return 2 if unicodedata.east_asian_width(ch) in "WF" else 1


def _width(text: str) -> int:
    """Columns `text` takes (wide characters count two)."""
    return len(text) if text.isascii() else sum(map(_columns, text))


def _fit(text: str, width: int = WIDTH) -> str:
    """`text` cut to `width` columns (wide characters count two), ending in '...' when cut."""
    text = _clean(text)
    if len(text) <= width // 2 or sum(_columns(c) for c in text) <= width:
        return text
    kept, used = [], 0
    for ch in text:
        used += _columns(ch)
        if used > width - 3:
            break
        kept.append(ch)
    return "".join(kept) + "..."


def _clock(ts: float, ref: float) -> str:
    """`HH:MM:SS`, with the date in front when it is not `ref`'s day (UTC)."""
    return _time(ts) if _day(ts) == _day(ref) else f"{_day(ts)} {_time(ts)}"


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def _time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
