"""One line -> one Event: header decoding, then the program's own message parser.

`parse_line` is stateless and total: any text gives exactly one Event and never
raises. `LineParser` wraps it for streams (a file, a TCP connection) and adds
what only neighbouring lines can tell (`parsers.context`).

Routing, by the program the header names:

* `dhcpd` (and `dhcpd3`...) -> `parsers.dhcpd`; unknown text stays `dhcpd.other`,
* `kea*` -> `parsers.kea`; unknown ids stay `kea.other`,
* `dhclient` and every other program -> `syslog.other` (the DHCP client on a
  server shares dhcpd's wording but is not a server event),
* no program at all (foreground output, pasted text): dhcpd's parser if it knows
  the text, Kea's if the text starts with a Kea message id, else `syslog.other`.
"""

from __future__ import annotations

import re

from parsers.dhcpd import is_continuation, parse_dhcpd
from parsers.events import DhcpdOther, Event, KeaOther, Payload, Record, SyslogOther
from parsers.kea import parse_kea
from parsers.syslog import DEFAULT_OPTIONS, ParseOptions, decode

# sysklogd / BSD syslogd, and rsyslog's $RepeatedMsgReduction
_LAST_REPEATED = re.compile(r"last message repeated (\d+) times?$")
_RSYSLOG_REPEATED = re.compile(r"message repeated (\d+) times?: \[ ?(.*)\]$", re.DOTALL)
_KEA_ID = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+(?: |$)")
_DHCPD_IDENT = re.compile(r"dhcpd\d*$")


def parse_line(text: str, options: ParseOptions = DEFAULT_OPTIONS) -> Event:
    """Parse one line (without its newline) into exactly one Event."""
    return classify(decode(text, options))


def classify(record: Record) -> Event:
    """The payload for a decoded record, with the repeat and continuation markers."""
    message = record.message
    repeated: int | None = None
    bare_repeat = False  # "last message repeated N times" says nothing but the count
    if "repeated" in message:
        m = _LAST_REPEATED.match(message)
        if m:
            repeated, bare_repeat = int(m.group(1)), True
        else:
            mr = _RSYSLOG_REPEATED.match(message)
            if mr:
                repeated, message = int(mr.group(1)), mr.group(2)
    program = record.program
    payload: Payload
    if program is None:
        payload = SyslogOther(message=message) if bare_repeat else _unlabelled(message)
    elif program.startswith("kea"):
        payload = KeaOther(message=message) if bare_repeat else parse_kea(message)
    elif program == "dhcpd" or _DHCPD_IDENT.match(program):
        payload = (None if bare_repeat else parse_dhcpd(message)) or DhcpdOther(message=message)
    else:
        payload = SyslogOther(message=message)
    continuation = isinstance(payload, DhcpdOther) and is_continuation(message)
    return Event(record, payload, continuation, repeated)


def is_bare_repeat(message: str) -> bool:
    """``last message repeated N times``: only the sender's previous line says what repeated."""
    return _LAST_REPEATED.match(message) is not None


def _unlabelled(message: str) -> Payload:
    payload = parse_dhcpd(message)
    if payload is not None:
        return payload
    if _KEA_ID.match(message):
        return parse_kea(message)
    return SyslogOther(message=message)
