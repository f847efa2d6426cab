"""Pure parsers: syslog lines from ISC dhcpd and Kea -> typed events.

No I/O, no clock, no mutable globals: `parse_line` for one line, `LineParser`
for a stream (it adds what neighbouring lines tell), `event_to_dict` for the
JSON shape `pairwatch parse` prints.
"""

from parsers.context import LineParser
from parsers.dispatch import classify, parse_line
from parsers.events import PAYLOAD_TYPES, Event, Payload, Record, expand
from parsers.jsonl import event_to_dict
from parsers.syslog import ParseOptions, decode

__all__ = [
    "Event",
    "LineParser",
    "PAYLOAD_TYPES",
    "ParseOptions",
    "Payload",
    "Record",
    "classify",
    "decode",
    "event_to_dict",
    "expand",
    "parse_line",
]
