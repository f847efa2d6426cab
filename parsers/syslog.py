"""Syslog header decoding: one text line in, one `Record` out, never an exception.

Lines reach us in every shape rsyslog, journald, sysklogd, Solaris, pfSense,
OPNsense and copy/paste produce (log-messages.md section 11). The decoder peels
layers off the front of the line in a fixed order, each layer optional:

1. `<PRI>` (RFC 3164 section 4.1.1 / RFC 5424 section 6.2.1), then either
2a. RFC 5424: ``VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP
    STRUCTURED-DATA [SP MSG]`` with `-` for nil fields, or
2b. a timestamp: RFC 3164 ``Mmm dd hh:mm:ss`` (day space-padded or not) or
    RFC 3339 (rsyslog's file and forward formats; OPNsense's TAB-separated export),
    then an optional HOSTNAME and a TAG ``prog[pid]:`` (the space after the colon
    optional: pfSense writes ``dhcpd:MSG``), or
2c. no header at all: serial-console captures (``name # [uptime] tag:``), OPNsense's
    ``Severity-word process`` export, a bare ``tag:`` of a known program, or nothing;
3. Solaris' ``[ID n facility.level]`` after the tag;
4. Kea's own layout ``[date time.ms] SEVERITY [logger(/pid(.tid)|.tid)]`` (the file
   layout under journald gives a double header), which also fills `msgid` with the
   Kea message id.

RFC 3164 timestamps carry neither year nor zone: both come from `ParseOptions`
(a reference instant, and a zone per sender), never from the clock, so replaying
a file is deterministic. A date more than `FUTURE_SLACK` after the reference
belongs to the previous year.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Final

from parsers.events import Record

FUTURE_SLACK = timedelta(days=3)
"""How far past the reference a yearless date may lie before it is taken as last year's."""
MAX_PID: Final = 2**32 - 1
"""The largest PID a record keeps (the store's column is 32 bits; no system's PIDs come near it):
a header's digits beyond it are a forged or broken tag, and the record has no PID."""


@dataclass(slots=True, kw_only=True)
class ParseOptions:
    """What the parser cannot know from a line: the reference instant and the zones.

    `reference` (aware) anchors the year of RFC 3164 and Kea timestamps; when it is
    None such lines get `ts = None` rather than a guessed year. `tz` is the zone of
    zone-less timestamps, `host_tz` overrides it per sender host name.
    """

    reference: datetime | None = None
    tz: tzinfo = UTC
    host_tz: Mapping[str, tzinfo] = field(default_factory=dict)


DEFAULT_OPTIONS = ParseOptions()

_MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)}

# <PRI> = "<" 1*3DIGIT ">"                                      (RFC 5424 6.2.1)
_PRI = re.compile(r"<(\d{1,3})>")

# TIMESTAMP = Mmm SP dd SP hh:mm:ss, dd space-padded ("Mar  3")     (RFC 3164 4.1.2)
# copies on web pages collapse the padding; some senders add fractions.
_RFC3164_TS = re.compile(
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +(\d{1,2}) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?(?: +|$)"
)

# The common shape in one match, tried first: "[<PRI>]TIMESTAMP HOST TAG[PID]: " with an
# RFC 3164 or an RFC 3339 timestamp and a host without colons or brackets (anything else
# takes the general path, layer by layer).
_FAST_HEADER = re.compile(
    r"(?:<(\d{1,3})>)?(?:((?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d{1,2} \d\d:\d\d:\d\d)"
    r"|(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d))) +"
    r"([^\s:\[\]]+) +([^\s\[\]:]{1,64})(?:\[(\d{1,10})\])?:(?: |(?=\S)|$)"
)
# PRI VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP STRUCTURED-DATA [SP MSG]
# STRUCTURED-DATA = NILVALUE / 1*SD-ELEMENT ; SD-ELEMENT = "[" SD-ID *(SP SD-PARAM) "]"
# PARAM-VALUE escapes '"', '\\' and ']' with '\\'.             (RFC 5424 6)
# One sender was seen with two spaces before HOSTNAME, hence " +".
_FAST_5424 = re.compile(
    r"<(\d{1,3})>1 +(\S+) +(\S+) +(\S+) +(\S+) +(\S+) +"
    r"(-|(?:\[(?:[^\]\"\\]|\\.|\"(?:[^\"\\]|\\.)*\")*\])+)(?: (.*))?",
    re.DOTALL,
)

# FULL-DATE "T" FULL-TIME with optional fraction and offset     (RFC 3339 5.6)
_RFC3339_TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?(?=[ \t]|$)")

# TAG = 1*32 printable, then "[" PID "]" and ":"; pfSense omits the space after ":".
_TAG = re.compile(r"([^\s\[\]:]{1,64})(?:\[(\d{1,10})\])?:(?: |(?=\S)|$)")

# An IPv6 address standing in the host-name position (it contains colons, so the
# TAG rule would otherwise cut it).
_IPV6_HOST = re.compile(r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:%\S+)? +")

# Programs whose bare "tag:" is trusted on a line without any other header.
_HEADERLESS_TAG = re.compile(r"(dhcpd\d*|dhclient|kea-[A-Za-z0-9-]+|systemd)(?:\[(\d{1,10})\])?:(?: |(?=\S)|$)")

# Serial console capture: "<machine> # " and a kernel-console uptime "[   12.345678] ".
_CONSOLE = re.compile(r"(\S+) # (?:\[ *\d+\.\d+\] )?")

# OPNsense GUI export written with spaces: "<Severity-word> <process> <Kea layout>".
_SEVERITY_WORDS = {
    "Emergency": 0,
    "Alert": 1,
    "Critical": 2,
    "Error": 3,
    "Warning": 4,
    "Notice": 5,
    "Informational": 6,
    "Debug": 7,
}
_WORD_PROCESS = re.compile(
    r"(Emergency|Alert|Critical|Error|Warning|Notice|Informational|Debug) ([^\s\[\]:]+)"
    r" (?=(?:DEBUG|INFO|WARN|ERROR|FATAL) +\[)"
)

# Solaris: "[ID <msgid> <facility>.<level>] "
_SOLARIS_ID = re.compile(r"\[ID (\d+) ([a-z0-9]+)\.([a-z]+)\] ?")
_FACILITIES = {
    name: code
    for code, name in enumerate(
        "kern user mail daemon auth syslog lpr news uucp cron authpriv ftp ntp security console solaris-cron".split()
    )
} | {f"local{i}": 16 + i for i in range(8)}
_LEVELS = {
    "emerg": 0,
    "panic": 0,
    "alert": 1,
    "crit": 2,
    "err": 3,
    "error": 3,
    "warning": 4,
    "warn": 4,
    "notice": 5,
    "info": 6,
    "debug": 7,
}

# Kea (log4cplus) layouts, >= 1.8 file "%D{%Y-%m-%d %H:%M:%S.%q} %-5p [%c/%i.%t] %m",
# syslog "%-5p [%c.%t] %m"; before 1.8 "[%c/%i]" and "[%c]". Severity padding may be
# collapsed to one space; copy/paste may lose the first digit of the year.
_KEA_LAYOUT = re.compile(
    r"(?:(\d{3,4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{1,6}) +)?"
    r"(DEBUG|INFO|WARN|ERROR|FATAL) +"
    r"\[([A-Za-z][\w-]*)(?:\.[A-Za-z][\w-]*)*(?:/(\d+)(?:\.(?:0x)?[0-9A-Fa-f]+)?|\.(?:0x[0-9A-Fa-f]+|\d+))?\] ?"
)
_KEA_SEVERITY = {"FATAL": 2, "ERROR": 3, "WARN": 4, "INFO": 6, "DEBUG": 7}
_KEA_MSGID = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+(?= |$)")


_MISSING: Final = object()


class HeaderDecoder:
    """`decode` with a memo of resolved RFC 3164 timestamps.

    Busy senders log many lines per second and the year inference costs more
    than the rest of the header, so the decoder remembers the last few hundred
    timestamp text -> instant answers (keyed by the host too when `host_tz` gives
    some hosts their own zone). The memo is a pure function's cache: the same line
    always decodes to the same Record.
    """

    __slots__ = ("options", "_stamps")

    def __init__(self, options: ParseOptions = DEFAULT_OPTIONS) -> None:
        self.options = options
        self._stamps: dict[object, datetime | None] = {}

    def decode(self, text: str) -> Record:
        """Decode every header layer of one line (no trailing newline) into a Record."""
        if text.startswith("<"):
            m5 = _FAST_5424.match(text)
            if m5:
                return _from_rfc5424(m5, self.options)
        m = _FAST_HEADER.match(text)
        if m is None:
            return _decode_general(text, self.options)
        pri, old_stamp, new_stamp, host, tag, pid = m.groups()
        if old_stamp is not None:
            # the zone can depend on the host only when `host_tz` names some
            key = (old_stamp, host) if self.options.host_tz else old_stamp
            stamps = self._stamps
            ts = stamps.get(key, _MISSING)
            if ts is _MISSING:
                if len(stamps) >= 512:
                    stamps.clear()
                fields = _rfc3164_fields(_RFC3164_TS.match(old_stamp))  # type: ignore[arg-type]
                ts = stamps[key] = _resolve(fields, host, self.options)
        else:
            parsed = _isoformat(new_stamp)
            ts = None if parsed is None else _utc(parsed)
        facility = severity = None
        if pri is not None:
            code = int(pri)
            if code <= 191:
                facility, severity = divmod(code, 8)
        program = _program(tag) if "/" in tag else tag
        return _finish(text, m.end(), ts, host, program, int(pid) if pid else None,  # type: ignore[arg-type]
                       facility, severity, self.options)  # (`ts` is no longer the `_MISSING` sentinel)


def decode(text: str, options: ParseOptions = DEFAULT_OPTIONS) -> Record:
    """Decode one line with no memo (see `HeaderDecoder` for streams)."""
    return HeaderDecoder(options).decode(text)


def rfc3164_instant(stamp: str, host: str | None, options: ParseOptions) -> datetime | None:
    """The instant of an RFC 3164 stamp (`Mar  3 08:00:00`) logged by `host`, as `decode`
    resolves it (year from the reference, zone from the options)."""
    m = _RFC3164_TS.match(stamp)
    return None if m is None else _resolve(_rfc3164_fields(m), host, options)


def _decode_general(text: str, options: ParseOptions) -> Record:
    """Every layout, one layer at a time (the module docstring's order)."""
    pri: int | None = None
    pos = 0
    if text.startswith("<"):
        m5 = _FAST_5424.match(text)
        if m5:
            return _from_rfc5424(m5, options)
        m = _PRI.match(text)
        if m:
            pri = int(m.group(1))
            pos = m.end()
    facility = severity = None
    if pri is not None and pri <= 191:
        facility, severity = divmod(pri, 8)

    first = text[pos : pos + 1]
    ts: datetime | None = None
    zoneless: tuple[int, ...] | None = None
    if first.isalpha():
        m3 = _RFC3164_TS.match(text, pos)
        if m3:
            zoneless = _rfc3164_fields(m3)
            pos = m3.end()
    elif first.isdigit():
        m9 = _RFC3339_TS.match(text, pos)
        stamp = _isoformat(m9.group()) if m9 else None
        if m9 and stamp is not None:
            pos = m9.end()
            if text.startswith("\t", pos):
                return _from_tab_export(text, pos + 1, stamp, facility, severity, options)
            pos = _skip_spaces(text, pos)
            if stamp.tzinfo is None:
                zoneless = (stamp.year, stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second,
                            stamp.microsecond, 1)
            else:
                ts = _utc(stamp)

    if zoneless is None and ts is None:
        return _headerless(text, pos, facility, severity, options)

    host, program, pid, pos = _host_and_tag(text, pos)
    if zoneless is not None:
        ts = _resolve(zoneless, host, options)
    return _finish(text, pos, ts, host, program, pid, facility, severity, options)


def _isoformat(text: str) -> datetime | None:
    """RFC 3339 text -> datetime, None for impossible dates (month 13, hour 25)."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _utc(stamp: datetime) -> datetime:
    return stamp if stamp.tzinfo is UTC else stamp.astimezone(UTC)


def _skip_spaces(text: str, pos: int) -> int:
    end = len(text)
    while pos < end and text[pos] == " ":
        pos += 1
    return pos


def _rfc3164_fields(m: re.Match[str]) -> tuple[int, ...]:
    mon, day, hh, mm, ss, frac = m.groups()
    micro = int(frac.ljust(6, "0")) if frac else 0
    # year 0 = "not carried by the line": inferred from the reference in _resolve.
    return (0, _MONTHS[mon], int(day), int(hh), int(mm), int(ss), micro, 0)


def _resolve(fields: tuple[int, ...], host: str | None, options: ParseOptions) -> datetime | None:
    """Zone-less (and possibly yearless) wall time of `host` -> aware UTC datetime."""
    year, mon, day, hh, mm, ss, micro, has_year = fields
    zone = options.host_tz.get(host, options.tz) if host is not None and options.host_tz else options.tz
    try:
        local: datetime | None
        if has_year:
            local = datetime(year, mon, day, hh, mm, ss, micro, tzinfo=zone)
        else:
            ref = options.reference
            if ref is None:
                return None
            local = _infer_year(ref, mon, day, hh, mm, ss, micro, zone)
            if local is None:
                return None
    except ValueError:
        return None
    return local if zone is UTC else local.astimezone(UTC)


def _infer_year(ref: datetime, mon: int, day: int, hh: int, mm: int, ss: int, micro: int,
                zone: tzinfo) -> datetime | None:
    """The latest year that does not put the date more than FUTURE_SLACK after `ref`."""
    for year in (ref.year + 1, ref.year, ref.year - 1, ref.year - 2, ref.year - 3, ref.year - 4):
        try:
            candidate = datetime(year, mon, day, hh, mm, ss, micro, tzinfo=zone)
        except ValueError:  # 29 February of a common year: try an earlier one
            continue
        if candidate - ref <= FUTURE_SLACK:
            return candidate
    return None


def _host_and_tag(text: str, pos: int) -> tuple[str | None, str | None, int | None, int]:
    """After the timestamp: ``[HOSTNAME SP] [TAG]``; a first word that is a tag means no host."""
    if not _IPV6_HOST.match(text, pos):
        m = _TAG.match(text, pos)
        if m:
            prog, pid = m.groups()
            return None, _program(prog), int(pid) if pid else None, m.end()
    space = text.find(" ", pos)
    if space < 0:
        return (text[pos:] or None), None, None, len(text)
    host = text[pos:space]
    pos = _skip_spaces(text, space)
    m = _TAG.match(text, pos)
    if m:
        prog, pid = m.groups()
        return host, _program(prog), int(pid) if pid else None, m.end()
    return host, None, None, pos


def _program(tag: str) -> str:
    """Ident as dhcpd sets it (basename of argv[0]); some senders log the full path."""
    slash = tag.rfind("/")
    return tag[slash + 1 :] if slash >= 0 and slash < len(tag) - 1 else tag


def _headerless(text: str, pos: int, facility: int | None, severity: int | None, options: ParseOptions) -> Record:
    """Lines without a timestamp: console captures, GUI exports, bare tags, bare messages."""
    host = None
    m = _CONSOLE.match(text, pos)
    if m:
        host = m.group(1)
        pos = m.end()
    else:
        mw = _WORD_PROCESS.match(text, pos)
        if mw:
            severity = _SEVERITY_WORDS[mw.group(1)]
            return _finish(text, mw.end(), None, None, _program(mw.group(2)), None, facility, severity, options)
    mt = _HEADERLESS_TAG.match(text, pos) if host is None else _TAG.match(text, pos)
    if mt:
        prog, pid = mt.groups()
        return _finish(text, mt.end(), None, host, _program(prog), int(pid) if pid else None, facility, severity,
                       options)
    return _finish(text, pos, None, host, None, None, facility, severity, options)


def _from_rfc5424(m: re.Match[str], options: ParseOptions) -> Record:
    pri_text, stamp, host, app, procid, msgid, sd, msg = m.groups()
    pri = int(pri_text)
    ts: datetime | None = None
    if stamp != "-":
        parsed = _isoformat(stamp)
        if parsed is not None:
            if parsed.tzinfo is None:
                fields = (parsed.year, parsed.month, parsed.day, parsed.hour, parsed.minute, parsed.second,
                          parsed.microsecond, 1)
                ts = _resolve(fields, None if host == "-" else host, options)
            else:
                ts = _utc(parsed)
    msg = msg or ""
    if msg.startswith("\ufeff"):  # RFC 5424 6.4: MSG may start with a UTF-8 BOM
        msg = msg[1:]
    facility, severity = divmod(pri, 8) if pri <= 191 else (None, None)
    text = msg
    return _finish(
        text,
        0,
        ts,
        None if host == "-" else host,
        None if app == "-" else _program(app),
        int(procid) if procid.isdigit() else None,
        facility,
        severity,
        options,
        msgid=None if msgid == "-" else msgid,
        structured_data=None if sd == "-" else sd,
    )


def _from_tab_export(
    text: str, pos: int, stamp: datetime, facility: int | None, severity: int | None, options: ParseOptions
) -> Record:
    """OPNsense GUI export: ``ISO-time TAB Severity-word TAB process TAB message [TAB]``."""
    parts = text[pos:].split("\t", 2)
    if len(parts) == 3:
        word, process, rest = parts
        severity = _SEVERITY_WORDS.get(word, severity)
        body = rest[:-1] if rest.endswith("\t") else rest
        program: str | None = _program(process) if process else None
    else:
        body, program = text[pos:], None
    if stamp.tzinfo is None:
        fields = (stamp.year, stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second, stamp.microsecond, 1)
        ts = _resolve(fields, None, options)
    else:
        ts = _utc(stamp)
    return _finish(body, 0, ts, None, program, None, facility, severity, options)


def _finish(
    text: str,
    pos: int,
    ts: datetime | None,
    host: str | None,
    program: str | None,
    pid: int | None,
    facility: int | None,
    severity: int | None,
    options: ParseOptions,
    *,
    msgid: str | None = None,
    structured_data: str | None = None,
) -> Record:
    """The layers inside the message: Solaris ``[ID ...]`` and Kea's own layout.

    Leading spaces are not part of the message: rsyslog's `msg` property keeps the space
    after the tag, so `RSYSLOG_SyslogProtocol23Format` (`... SD %msg%`) sends two."""
    if text.startswith(" ", pos):
        pos = _skip_spaces(text, pos)
    if pid is not None and pid > MAX_PID:
        pid = None
    if program is not None and not program.startswith("kea") and not text.startswith("[ID ", pos):
        # positional: this is the hot path, and keywords cost a third of the call here
        return Record(ts, host, program, pid, facility, severity, msgid, structured_data, text[pos:] if pos else text)
    if text.startswith("[ID ", pos):
        m = _SOLARIS_ID.match(text, pos)
        if m:
            msgid = m.group(1)
            facility = _FACILITIES.get(m.group(2), facility)
            severity = _LEVELS.get(m.group(3), severity)
            pos = m.end()
    if program is None or program.startswith("kea"):
        m = _KEA_LAYOUT.match(text, pos)
        if m:
            year, mon, day, hh, mm, ss, frac, sev, root, kpid = m.groups()
            severity = _KEA_SEVERITY[sev]
            if program is None:
                program = root
            if pid is None and kpid and int(kpid) <= MAX_PID:
                pid = int(kpid)
            if ts is None and year:
                y = int(year)
                fields = (y if y >= 1000 else 2000 + y % 100, int(mon), int(day), int(hh), int(mm), int(ss),
                          int(frac.ljust(6, "0")[:6]), 1)
                ts = _resolve(fields, host, options)
            pos = m.end()
        if program is not None and msgid is None:
            mid = _KEA_MSGID.match(text, pos)
            if mid:
                msgid = mid.group()
    message = text[pos:] if pos else text
    return Record(
        ts=ts,
        host=host,
        program=program,
        pid=pid,
        facility=facility,
        severity=severity,
        msgid=msgid,
        structured_data=structured_data,
        message=message,
    )
