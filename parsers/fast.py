"""The fast path: the commonest lines in one or two matches, as the values their row needs.

Nearly every line a failover pair sends is client traffic in one of the three header
layouts rsyslog forwards (RFC 3164 with a priority, the same with an RFC 3339 time, RFC 5424
with nil MSGID and STRUCTURED-DATA): dhcpd's DHCPDISCOVER / DHCPOFFER / DHCPREQUEST / DHCPACK
lines, Kea's messages that carry no event (DHCP4_QUERY_LABEL, ...), and other programs' lines.
`FastPath.match` takes exactly those shapes and returns the values of `FIELDS`: no `Record`,
payload or `Event`, and the time as integer microseconds, converted once per distinct stamp
(RFC 3164 stamps repeat within a second; RFC 3339 stamps share their second). What repeats
from line to line is read once and remembered: the sender part of the header (host, program,
PID), and Kea's severity with logger and its message ids. A dhcpd line of any other
shape in one of those headers (failover states, pool balancing, ...) gives its header as
the `Record` the full parser would decode, which then reads only the body: these lines'
parse took 65k instructions, 54k with the header handed over. Any other line, and any
doubt, gives None: the caller parses it with the full parser, so what a line means never
depends on which path read it (`tests/parsers/test_fast.py` holds the two to the same
answers).

Pure: no clock, no I/O; each memo is a bounded cache of a pure function.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Final, TypeVar

from parsers.dhcpd import parse_dhcpd, refusal_of
from parsers.events import (
    LEASE_LINES,
    LINE_KINDS,
    Event,
    KeaOther,
    Lease,
    Record,
    SyslogOther,
)
from parsers.kea import LEASE_RULES as KEA_LEASES
from parsers.kea import is_event_id
from parsers.syslog import DEFAULT_OPTIONS, MAX_PID, ParseOptions, rfc3164_instant

__all__ = ["FIELDS", "FastLine", "FastPath", "LEASE_FIELDS", "event_of"]

FIELDS: Final = ("ts_us", "host", "program", "pid", "facility", "severity", "msgid", "structured_data", "message",
                 "kind", "ip", "mac", "client_name", "via", "server_id", "refused", "detail")
"""The values of a fast line, in order: the header's (as `parsers.events.Record`, the time in
microseconds since the epoch), the kind, and the lease fields (as `parsers.events.Lease`)."""

LEASE_FIELDS: Final = FIELDS[10:]
"""The lease fields among `FIELDS` (as `parsers.events.Lease` declares them)."""

FastLine = tuple[int | None, str, str, int | None, int | None, int | None, str | None, None, str, str,
                 str | None, str | None, str | None, str | None, str | None, str | None, str | None]

_STAMPS: Final = 4096
"""Distinct values each memo remembers (forgotten all at once beyond it)."""
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
_SCALE: Final = (0, 100_000, 10_000, 1_000, 100, 10, 1)
"""µs in a unit of the last digit of a fraction of 1-6 digits."""

_HEADER = re.compile(
    r"<(\d{1,3}+)>(?:"
    # RFC 3164, as rsyslog's RSYSLOG_ForwardFormat without the year: "Mar  3 08:00:00 host tag[pid]: "
    r"((?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ++\d{1,2}+ \d\d:\d\d:\d\d)"
    r" ([^\s:\[\]]++ [^\s\[\]:/]{1,64}+(?:\[[0-9]{1,10}+\])?+): "
    # the same with an RFC 3339 time (rsyslog's RSYSLOG_ForwardFormat)
    r"|([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]{1,6}+))?+(Z|[+-][0-9]{2}:[0-9]{2})"
    r" ([^\s:\[\]]++ [^\s\[\]:/]{1,64}+(?:\[[0-9]{1,10}+\])?+): "
    # RFC 5424 (RSYSLOG_SyslogProtocol23Format) with nil MSGID and STRUCTURED-DATA
    r"|1 ([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]{1,6}+))?+(Z|[+-][0-9]{2}:[0-9]{2})"
    r" ([!-~]{1,255}+ [!-.0-~]{1,48}+ (?:[0-9]{1,10}+|-)) - - ++"
    r")(?=[^\s\ufeff])"
)
"""The header up to the message; its sender part ("host tag[pid]", or RFC 5424's "host app
procid") is one group, read once per distinct sender (`FastPath._sender`). The quantifiers
are possessive (`++`): each stops at a character its class excludes, so giving characters
back could never lead to a match, and not keeping the state to do so is cheaper."""

_REFUSED_SENDER, _DHCPD_SENDER, _KEA_SENDER, _OTHER_SENDER = 0, 1, 2, 3
"""What a sender's program says of its messages: the full parser's to read (a nil RFC 5424 host
or app name, a program named like dhcpd that is not plain `dhcpd`), dhcpd's, Kea's, another
program's."""
Sender = tuple[str, str, int | None, int]
"""(host, program, pid, which of the above) of a header's sender part."""

# dhcpd's client lines (parsers.dhcpd: `_CLIENT_TAIL`), each by the seventh letter of its message
# (DHCPDI[S]COVER, DHCPOF[F]ER, DHCPAC[K], DHCPRE[Q]UEST, DHCPRE[L]EASE: a one-letter string is a
# cached object, so the lookup hashes nothing): (pattern, kind); the groups are (ip, server id,
# mac, client name, via, ": suffix", " (more)" of a release). Possessive where a class stops at
# what follows it anyway (not the server id's "\S+", which must give back its ")").
_TAIL = r" (?:\(([^()\n]*+)\) )?+via ([^\s:]++)(?:: ([^\n]*+))?+"
_DHCPD: Final = {
    "S": (re.compile(r"DHCPDISCOVER from ()()(\S++)" + _TAIL + r"()\Z"), "lease.discover"),
    "F": (re.compile(r"DHCPOFFER on (\S++) to ()(\S++)" + _TAIL + r"()\Z"), "lease.offer"),
    "K": (re.compile(r"DHCPACK on (\S++) to ()(\S++)" + _TAIL + r"()\Z"), "lease.ack"),
    "Q": (re.compile(r"DHCPREQUEST for (\S++)(?: \((\S+)\))? from (\S++)" + _TAIL + r"()\Z"), "lease.request"),
    "L": (re.compile(r"DHCPRELEASE of (\S++) from ()(\S++)" + _TAIL + r"(?: (\([^\n]*))?\Z"), "lease.release"),
}
_DHCPD_NAMES: Final = frozenset({"dhcpd"})
_DHCPD_RARER: Final = frozenset({"DHCPINF", "DHCPACK", "DHCPNAK"})
"""First letters of dhcpd client lines without a shape here (DHCPINFORM, its DHCPACK to, DHCPNAK),
read by `parsers.dhcpd` itself when they are of a kind the fast path carries."""
_LINE_LEASES: Final = frozenset(LINE_KINDS[:LEASE_LINES])

# Kea's own layout after the tag: severity, logger, then the message id (parsers.syslog: `_KEA_LAYOUT`).
# A process writes the same severity and logger on every line and a handful of ids, so each part is
# matched once and remembered: the head up to the first "] " (the logger holds no "]"), and the
# id up to the next space.
_KEA_HEAD = re.compile(
    r"(DEBUG|INFO|WARN|ERROR|FATAL) +\[[A-Za-z][A-Za-z0-9_-]*(?:\.[A-Za-z][A-Za-z0-9_-]*)*\.[0-9]+\] "
)
_KEA_ID = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+")
_KEA_SEVERITY: Final = {"FATAL": 2, "ERROR": 3, "WARN": 4, "INFO": 6, "DEBUG": 7}
KeaRule = tuple[re.Pattern[str] | None, str, str | None]
"""(pattern of the text after the id, kind, detail): `parsers.kea.LEASE_RULES`' entries."""
_KEA_OTHER: Final[KeaRule] = (None, "kea.other", None)
"""What an id of no event and no lease rule reads as."""
_KEA_REFUSED: Final[KeaRule] = (None, "", None)
"""What a text that is no Kea id, or an id `parse_kea` may make an event of, reads as: the
full parser's to read."""


def _priority(pri: str) -> tuple[int | None, int | None]:
    """(facility, severity) of a PRI's digits; none above 191 (facility 23, severity 7)."""
    code = int(pri)
    return divmod(code, 8) if code <= 191 else (None, None)


_PRIORITIES: Final = {str(code): _priority(str(code)) for code in range(192)}


K = TypeVar("K")
V = TypeVar("V")


def _remember(memo: dict[K, V], key: K, value: V) -> V:
    """Keep `value` in a bounded memo (`_STAMPS` entries, then forgotten all at once)."""
    if len(memo) >= _STAMPS:
        memo.clear()
    memo[key] = value
    return value


class FastPath:
    """Matches the commonest line shapes; see the module docstring."""

    __slots__ = ("_options", "_stamps", "_host_tz", "_senders", "_kea_heads", "_kea_ids")

    def __init__(self, options: ParseOptions = DEFAULT_OPTIONS) -> None:
        self._options = options
        self._stamps: dict[object, int | None] = {}
        self._host_tz = bool(options.host_tz)
        self._senders: dict[str, Sender] = {}
        self._kea_heads: dict[str, int | None] = {}  # "INFO  [logger] " -> severity, None: not Kea's layout
        self._kea_ids: dict[str, KeaRule] = {}  # message id -> its lease rule, _KEA_OTHER, _KEA_REFUSED

    def match(self, text: str) -> FastLine | Record | None:
        """The line's values (`FIELDS`); for a line of dhcpd's in a header the fast path
        reads but of another shape, the header as `parsers.syslog.HeaderDecoder.decode`
        gives it (a `Record`: the full parser takes the body from there); None when the full
        parser must read the whole line."""
        m = _HEADER.match(text)
        if m is None:
            return None
        pri, bsd, bsd_who, iso, iso_frac, iso_zone, iso_who, new, new_frac, new_zone, new_who = m.groups()
        who = bsd_who or iso_who or new_who
        host, program, pid, family = self._senders.get(who) or self._sender(who, new_who is not None)
        if family == _REFUSED_SENDER:
            return None
        start = m.end()
        facility, severity = _PRIORITIES.get(pri) or _priority(pri)
        # the body first: the time is converted only for a line the fast path takes or hands over
        msgid = ip = mac = name = via = server_id = refused = detail = None
        if family == _DHCPD_SENDER:
            shape = _DHCPD.get(text[start + 6:start + 7])
            body = None
            if shape is not None:
                pattern, kind = shape
                body = pattern.match(text, start)
            if body is None:  # an INFORM, its ACK, a NAK by `parse_dhcpd`'s rules; any other body is the full parser's
                message = text[start:]
                lease = None
                if text[start:start + 7] in _DHCPD_RARER and "repeated" not in text:
                    lease = parse_dhcpd(message)
                if type(lease) in _LINE_LEASES:
                    kind, ip, mac, name, via = lease.kind, lease.ip, lease.mac, lease.client_name, lease.via  # type: ignore[union-attr]
                    server_id, refused, detail = lease.server_id, lease.refused, lease.detail  # type: ignore[union-attr]
                elif text.startswith("[ID ", start):
                    return None
                else:
                    kind = ""  # (the header as a Record, the body for the full parser)
            else:
                ip, server_id, mac, name, via, suffix, more = body.groups()
                if suffix:
                    refusal = refusal_of(suffix)
                    if more or refusal == "":  # (no free leases: lease.no_free)
                        kind = ""
                    elif refusal is None:
                        detail = suffix.rstrip(".") or None
                    else:
                        refused = refusal
                elif more:
                    detail = more.strip("()")
                ip, server_id = ip or None, server_id or None
                message = text[start:]
        elif family == _KEA_SENDER:
            close = text.find("] ", start)
            if close < 0 or "repeated" in text:
                return None
            head = text[start:close + 2]
            severity = self._kea_heads.get(head, -1)
            if severity == -1:
                severity = self._kea_head(head)
            if severity is None:
                return None
            begin = close + 2
            end = text.find(" ", begin)
            msgid = text[begin:end] if end >= 0 else text[begin:]
            lease_text, kind, detail = self._kea_ids.get(msgid) or self._kea_id(msgid)
            if not kind:
                return None
            message = text[begin:]
            if lease_text is not None:  # `parse_kea`'s own rule on what it matches, so the fields are exactly its
                fields = lease_text.fullmatch(text[end + 1:].rstrip() if end >= 0 else "")
                if fields is None:
                    return None
                ip, mac = fields.group("ip", "mac")
        elif "repeated" in text or text.startswith("[ID ", start):
            return None  # (repeats, Solaris ids: the full parser's)
        else:
            kind, message = "syslog.other", text[start:]
        stamps = self._stamps
        if bsd is not None:
            ts_us = -1 if self._host_tz else stamps.get(bsd, -1)
            if ts_us == -1:
                ts_us = self._rfc3164(bsd, host)
        else:
            seconds, fraction, zone = (iso, iso_frac, iso_zone) if iso is not None else (new, new_frac, new_zone)
            ts_us = stamps.get((seconds, zone), -1)
            if ts_us == -1:
                ts_us = self._rfc3339(seconds, zone)
            if fraction and ts_us is not None:
                ts_us += int(fraction) * _SCALE[len(fraction)]
        if not kind:
            return Record(_instant(ts_us), host, program, pid, facility, severity, None, None, message)
        return (ts_us, host, program, pid, facility, severity, msgid, None, message,
                kind, ip, mac, name, via, server_id, refused, detail)

    def _rfc3164(self, stamp: str, host: str) -> int | None:
        """A stamp of `host` -> µs (keyed by the host too when `host_tz` gives some their own zone)."""
        key = (stamp, host) if self._host_tz else stamp
        us = self._stamps.get(key, -1)
        if us == -1:
            instant = rfc3164_instant(stamp, host, self._options)
            us = _remember(self._stamps, key, None if instant is None else (instant - _EPOCH) // _MICROSECOND)
        return us

    def _rfc3339(self, seconds: str, zone: str) -> int | None:
        """Whole seconds and zone -> µs (the fraction is added by the caller)."""
        try:
            instant = datetime.fromisoformat(seconds + zone)
        except ValueError:  # impossible dates: the full parser says what they are
            instant = None
        return _remember(self._stamps, (seconds, zone),
                         None if instant is None else (instant - _EPOCH) // _MICROSECOND)

    def _sender(self, who: str, rfc5424: bool) -> Sender:
        """(host, program, pid, family) of a header's sender part. Remembered, like the stamps:
        the strings are the same objects on every line of a sender, so their hashes are computed
        once (and a refused sender, such as every line of a dhcpd3, is not split again)."""
        if rfc5424:
            host, program, procid = who.split(" ")
            pid_text = None if procid == "-" else procid
            refuse = host == "-" or program == "-"
        else:
            host, _, tag = who.partition(" ")
            program, _, pid_text = tag.partition("[")
            pid_text = pid_text[:-1] or None
            refuse = False
        pid = None if pid_text is None else int(pid_text)
        if pid is not None and pid > MAX_PID:
            pid = None
        if program in _DHCPD_NAMES:
            family = _DHCPD_SENDER
        elif program.startswith("kea"):
            family = _KEA_SENDER
        else:
            family = _OTHER_SENDER
            refuse = refuse or program.startswith("dhcpd")
        return _remember(self._senders, who, (host, program, pid, _REFUSED_SENDER if refuse else family))

    def _kea_head(self, head: str) -> int | None:
        """The severity of a Kea head ("INFO  [logger] "), None when it is not one."""
        m = _KEA_HEAD.fullmatch(head)
        return _remember(self._kea_heads, head, None if m is None else _KEA_SEVERITY[m.group(1)])

    def _kea_id(self, msgid: str) -> KeaRule:
        """What the fast path makes of a Kea message id: its lease rule, `_KEA_OTHER`, or
        `_KEA_REFUSED` (not an id, or one `parse_kea` may make an event of)."""
        rule: KeaRule
        if _KEA_ID.fullmatch(msgid) is None or (msgid not in KEA_LEASES and is_event_id(msgid)):
            rule = _KEA_REFUSED
        else:
            rule = KEA_LEASES.get(msgid, _KEA_OTHER)
        return _remember(self._kea_ids, msgid, rule)


def _instant(ts_us: int | None) -> datetime | None:
    """A time in microseconds as the full parser's header gives it (aware, UTC)."""
    return None if ts_us is None else _EPOCH + timedelta(microseconds=ts_us)


_LEASE_KINDS: Final[dict[str, type[Lease]]] = {cls.kind: cls for cls in _LINE_LEASES}  # type: ignore[misc]


def event_of(values: FastLine) -> Event:
    """The event the full parser makes of the line (for what still reads events: the
    correlator and the tally)."""
    (ts_us, host, program, pid, facility, severity, msgid, structured_data, message, kind,
     ip, mac, client_name, via, server_id, refused, detail) = values
    record = Record(_instant(ts_us), host, program, pid, facility, severity, msgid, structured_data, message)
    cls = _LEASE_KINDS.get(kind)
    if cls is not None:
        return Event(record, cls(ip=ip, mac=mac, client_name=client_name, via=via, server_id=server_id,
                                 refused=refused, detail=detail))
    return Event(record, KeaOther(message=message) if kind == "kea.other" else SyslogOther(message=message))
