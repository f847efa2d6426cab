"""Stream context: what a line means can depend on the line before it.

Two cases, both keyed by the sender (host, program) so interleaved senders do
not disturb each other:

* ``last message repeated N times`` (sysklogd) stands for the sender's previous
  line: the event takes that line's payload and keeps ``repeated = N``. sysklogd
  writes it without a tag, so a repeat without a program falls back to the
  host's last line of any program.
* a dhcpd parse error (``<file> line <n>: <msg>``) is followed by the offending
  input line as read so far; that line is a continuation whatever it says. (The
  caret line after it, and the fixed trailer and help texts, are recognised
  without state by `parsers.dhcpd.is_continuation`.)

`LineParser` holds a bounded amount of state (`max_senders`) and never reads a
clock or does I/O: lines in, events out. `read` tries the fast path first
(`parsers.fast`): the commonest lines come out as plain values, the rest as events,
and the context is kept the same either way (a line the fast path took is
remembered as its text, and parsed only if a repeat refers to it).
"""

from __future__ import annotations

from dataclasses import replace

from parsers.dhcpd import is_parse_error
from parsers.dispatch import classify, is_bare_repeat
from parsers.events import DhcpdOther, Event, Record, SyslogOther
from parsers.fast import FastLine, FastPath
from parsers.syslog import DEFAULT_OPTIONS, HeaderDecoder, ParseOptions

Sender = tuple[str | None, str | None]


class LineParser:
    """Parse a stream of lines; `parse()` returns exactly one Event per line."""

    def __init__(self, options: ParseOptions = DEFAULT_OPTIONS, *, max_senders: int = 4096) -> None:
        self.options = options
        self._decode = HeaderDecoder(options).decode
        self._fast = FastPath(options).match
        self._max = max_senders
        self._last: dict[Sender, Event | str] = {}  # an event, or the text of a line the fast path took
        self._last_of_host: dict[str | None, Event | str] = {}
        self._source_line_due: set[Sender] = set()

    def read(self, text: str) -> FastLine | Event:
        """The fast path's values (`parsers.fast.FIELDS`) when it takes the line, else the
        event `parse` makes of it; the same meaning either way."""
        values = self._fast(text)
        if not isinstance(values, tuple):  # None, or a dhcpd line's header for the full parser
            return self.parse(text, values)
        sender = (values[1], values[2])
        due = self._source_line_due
        if due:
            due.discard(sender)  # (as `parse` does: only a dhcpd.other line becomes the source line)
        last = self._last
        last[sender] = text
        self._last_of_host[values[1]] = text
        if len(last) > self._max:
            last.clear()
            self._last_of_host.clear()
            due.clear()
        return values

    def _previous(self, kept: Event | str) -> Event:
        return kept if isinstance(kept, Event) else classify(self._decode(kept))

    def parse(self, text: str, header: Record | None = None) -> Event:
        """The event of a line; `header`: its header as `HeaderDecoder.decode` gives it, when
        the fast path read it already."""
        event = classify(self._decode(text) if header is None else header)
        record = event.record
        sender = (record.host, record.program)
        if event.repeated is not None and is_bare_repeat(record.message):
            previous = self._last.get(sender) if record.program is not None else None
            if previous is None:
                previous = self._last_of_host.get(record.host)
            if previous is not None:
                before = self._previous(previous)
                return replace(event, payload=before.payload, continuation=before.continuation)
            return event
        due = self._source_line_due
        if due and sender in due:
            due.discard(sender)
            payload = event.payload
            if isinstance(payload, SyslogOther) and record.program is None:
                # header-less foreground output: the input line can say anything
                payload = DhcpdOther(message=payload.message)
            if isinstance(payload, DhcpdOther):
                event = replace(event, payload=payload, continuation=True)
        elif isinstance(event.payload, DhcpdOther) and is_parse_error(record.message):
            due.add(sender)
        last = self._last
        last[sender] = event
        self._last_of_host[record.host] = event
        if len(last) > self._max or len(due) > self._max:
            # a flood of distinct senders: forget them all rather than grow without bound
            last.clear()
            self._last_of_host.clear()
            due.clear()
        return event
