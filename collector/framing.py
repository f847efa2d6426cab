"""RFC 6587 framing for syslog over TCP/TLS, sans-IO: bytes in, frames out.

Contract (one `FrameDecoder` per connection, owned by the listener):

- ``feed(data)`` appends the bytes `recv` returned and returns, in stream order,
  every `Frame` completed and every `FramingError` found. A frame split across
  feeds is returned by the feed that completes it; until then nothing.
- ``feed_texts(data)`` is ``feed`` with the frames decoded as `decode_texts` does:
  ``(texts, errors, invalid)``, the texts in stream order, the errors in theirs, and how
  many texts had invalid UTF-8. What the listeners call.
- ``feed(b"")`` is EOF: a final LF-mode frame without its terminator is still
  returned (the sender closed after its last message), an incomplete
  octet-counted frame is reported as ``truncated``. More EOFs return ``[]``;
  non-empty data after EOF raises `RuntimeError` (a caller bug, as in h11).
- Errors are values, never exceptions, and never poison the decoder: it reports
  the bad frame once, resynchronises and carries on, so a bad frame never costs
  its neighbours (DESIGN, "Reliability rules"). ``feed`` raises nothing else.
- After every ``feed`` the decoder holds at most
  ``max(max_message + len(str(max_message)) + 1, 10)`` bytes: the one incomplete
  frame with its count, or the digits of a count before its SP, of which it may
  hold up to 10 (a count of up to 10 digits is trusted, also when ``max_message``
  has fewer). An oversize frame's body is never held; see `FrameDecoder.buffered`.

Framing is chosen per frame, as rsyslog does:

- Octet counting (RFC 6587 3.4.1): ``MSG-LEN SP SYSLOG-MSG``, ``MSG-LEN =
  NONZERO-DIGIT *DIGIT``. The choice is made at the first non-digit: digits then
  SP is octet counting, digits then anything else (a PRI-less RFC 3339 line,
  ``2025-03-03T08:15:02Z host dhcpd: x``) is an LF-mode frame. One trailing LF,
  and a CR before it, is stripped from the counted octets
  (``RSYSLOG_SyslogProtocol23Format`` counts its newline).
- Non-transparent framing (RFC 6587 3.4.2): the frame ends at LF or NUL (rsyslog
  accepts both); one CR before the terminator is stripped.
- Empty frames (blank lines, ``CRLF`` after an octet-counted frame, ``NUL LF``,
  an octet-counted frame holding only a newline) are skipped silently: they
  carry no message and some senders emit them after every frame.

Errors (`ERROR_REASONS`, the ``reason`` label of ``pairwatch_syslog_errors_total``):

- ``oversize``: an octet count above ``max_message`` and at most `MAX_OCTET_COUNT`,
  however many digits it has (``300037 `` when the limit is 65536; reported at the
  header; exactly MSG-LEN bytes are then skipped, over as many feeds as it takes,
  without buffering them, and the next frame is decoded as usual), or an LF-mode
  frame longer than ``max_message`` (reported once; the rest up to the next LF or
  NUL is discarded; a frame starting with more than ``max(max_message, 10)``
  digits is such a frame). An oversize frame cut short by EOF is not reported
  again as ``truncated``: one bad frame, one error. Nothing of an oversize frame
  is delivered.
- ``bad_length``: digits then SP at a frame start that cannot be a count: more
  than 10 digits, or a value above `MAX_OCTET_COUNT` (1 GiB). Skipping by such a
  count would swallow the connection, so it falls back to LF framing: the frame
  is discarded up to the next LF or NUL.
- ``truncated``: EOF inside an octet-counted frame (a lying count, or a sender
  that died mid-frame). The partial frame is dropped.
- ``tls_on_plain_port``: the stream starts with ``0x16 0x03`` (a TLS handshake
  record, i.e. a ClientHello) and the decoder was built with ``detect_tls=True``
  (plain TCP listeners). Reported once; every later byte of the connection is
  dropped quietly, because a TLS client never switches to plaintext and its
  records would only surface as binary garbage frames. The listener may close.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "DEFAULT_MAX_MESSAGE",
    "ERROR_REASONS",
    "Frame",
    "FrameDecoder",
    "FramingError",
    "MAX_OCTET_COUNT",
    "datagram_frame",
    "decode_text",
    "decode_texts",
]

Texts = tuple[list[str], list["FramingError"], int]
"""What `FrameDecoder.feed_texts` returns: (texts, errors, how many texts had invalid UTF-8)."""

DEFAULT_MAX_MESSAGE: Final = 64 * 1024
"""Largest message accepted (bytes, without framing): rsyslog's maxMessageSize is 8 KiB by default."""

MAX_OCTET_COUNT: Final = 1 << 30
"""The largest octet count trusted (1 GiB): a larger one is taken for garbage, not a frame to skip.

No syslog sender frames a message of a gigabyte; skipping by an absurd count (a line that
merely starts with digits and a space, a corrupt header) would silently eat the connection's
next hours of messages, while LF resynchronisation loses one line."""

_COUNT_DIGITS: Final = len(str(MAX_OCTET_COUNT))
"""Digits of the longest count trusted (10): more digits before the SP are bad_length at once."""

Reason = Literal["oversize", "bad_length", "truncated", "tls_on_plain_port"]
ERROR_REASONS: Final[tuple[Reason, ...]] = ("oversize", "bad_length", "truncated", "tls_on_plain_port")
"""Every `FramingError.reason`; a closed, stable set (it is a metric label)."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One syslog message as framed on the wire, without its terminator or count."""

    data: bytes
    framing: Literal["octet", "lf"]


@dataclass(frozen=True, slots=True)
class FramingError:
    """A bad frame, reported once; the decoder has already resynchronised."""

    reason: Reason
    detail: str


# Frames are built on the hot path, once per line: the frozen dataclass __init__ goes through
# object.__setattr__ by name; setting the slots directly costs less and builds
# the very same object (h11's `_parsed=True` idea).
_new_frame = object.__new__
_set_data = Frame.__dict__["data"].__set__
_set_framing = Frame.__dict__["framing"].__set__


def _frame(data: bytes, framing: Literal["octet", "lf"]) -> Frame:
    frame = _new_frame(Frame)
    _set_data(frame, data)
    _set_framing(frame, framing)
    return frame


# MSG-LEN = NONZERO-DIGIT *DIGIT                                  (RFC 6587 3.4.1)
# The decision octet/LF is made at the first byte that is not a digit.
_NON_DIGIT = re.compile(rb"[^0-9]")

# TLS record header: ContentType handshake (22), then ProtocolVersion major 3.  (RFC 8446 5.1)
_TLS_HANDSHAKE = 0x16
_TLS_MAJOR = 0x03

_LF, _CR, _SP, _NUL, _ZERO = 10, 13, 32, 0, 48

# Decoder states. START: at a frame start (`_scan` = digits already seen); LINE: in an
# LF-mode frame (`_scan` = searched up to); OCTET: in a counted frame (`_body`, `_need`);
# SKIP: skipping `_need` bytes of an oversize counted frame; DISCARD: dropping up to the
# next LF or NUL; DEAD: dropping everything (TLS on a plain port).
_START, _LINE, _OCTET, _SKIP, _DISCARD, _DEAD = range(6)


class FrameDecoder:
    """Incremental RFC 6587 decoder for one TCP/TLS connection (module docstring: contract).

    `max_message` caps a message's size in bytes. `detect_tls` reports a TLS
    handshake at the start of the stream: plain TCP listeners keep it, the TLS
    listener (which feeds decrypted bytes) passes False.
    """

    __slots__ = ("max_message", "_max_run", "_sniff", "_buf", "_state", "_scan", "_body", "_need", "_eof")

    def __init__(self, max_message: int = DEFAULT_MAX_MESSAGE, *, detect_tls: bool = True) -> None:
        if not 1 <= max_message <= MAX_OCTET_COUNT:
            raise ValueError(f"max_message must be between 1 and {MAX_OCTET_COUNT}, got {max_message}")
        self.max_message = max_message
        # A digit run at a frame start is held until its first non-digit decides octet or LF
        # mode; a count of up to _COUNT_DIGITS digits must be able to reach its SP.
        self._max_run = max(max_message, _COUNT_DIGITS)
        self._sniff = detect_tls  # still looking at the first two bytes of the stream
        self._buf = bytearray()  # the one incomplete frame; offsets below are relative to it
        self._state = _START
        self._scan = 0
        self._body = 0
        self._need = 0
        self._eof = False

    @property
    def buffered(self) -> int:
        """Bytes held for the incomplete frame (bounded by about `max_message`; module docstring)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame | FramingError]:
        """Append `data` (``b""`` = EOF); return the frames and errors it completes, in order."""
        if not data:
            return self._close()
        if self._eof:
            raise RuntimeError("FrameDecoder.feed: data after EOF")
        if self._state == _DEAD:
            return []
        if type(data) is not bytes:
            data = bytes(data)
        out: list[Frame | FramingError] = []
        buf = self._buf
        if self._sniff:
            first = buf + data if buf else data
            if first[0] != _TLS_HANDSHAKE:
                self._sniff = False
            elif len(first) < 2:
                buf += data
                return out
            else:
                self._sniff = False
                if first[1] == _TLS_MAJOR:
                    self._state = _DEAD
                    buf.clear()
                    detail = "TLS handshake on a plain TCP port; dropping the connection's data"
                    out.append(FramingError("tls_on_plain_port", detail))
                    return out
        if not buf:
            pos = self._run(data, out)
            if pos < len(data):
                buf += memoryview(data)[pos:]
        elif len(data) >= len(buf):
            # A large feed: parse one bytes object (slices are then single copies); the
            # copy is at most twice the new data, so it stays linear.
            work = b"".join((buf, data))
            pos = self._run(work, out)
            buf.clear()
            if pos < len(work):
                buf += memoryview(work)[pos:]
        else:
            # A small feed onto a long partial frame (a drip): search only the new bytes.
            buf += data
            pos = self._run(buf, out)
            if pos:
                del buf[:pos]
        return out

    def feed_texts(self, data: bytes) -> Texts:
        """`feed`, the frames decoded (`decode_texts`); see the module docstring.

        A read that is all ASCII (nearly every one) and starts at a frame start is decoded once
        and its complete, well-formed frames are sliced from the text (`_ascii_texts`): no
        `Frame` and no decode a line, about 290 against 510 ns a line (bench/README.md). The
        first frame it does not take, and everything after it, goes through `feed`, from that
        frame's start (the decoder holds an incomplete frame from its count on, so a frame
        begun in the last read is read again whole)."""
        buf = self._buf
        if not data or self._sniff or self._state > _OCTET or self._eof:
            return _decoded(self.feed(data))
        work = b"".join((buf, data)) if buf else data
        if not work.isascii():
            return _decoded(self.feed(data))
        texts: list[str] = []
        pos = _ascii_texts(work.decode("ascii"), self.max_message, texts)
        if not pos:  # (nothing taken: the decoder carries on from where it stands)
            return _decoded(self.feed(data))
        buf.clear()
        self._state = _START
        self._scan = 0
        if pos == len(work):
            return texts, [], 0
        rest, errors, invalid = _decoded(self.feed(work[pos:]))
        texts += rest
        return texts, errors, invalid

    def _run(self, buf: bytes | bytearray, out: list[Frame | FramingError]) -> int:
        """Consume complete frames from `buf` (offset 0 = the saved frame start); return the consumed length."""
        n = len(buf)
        pos = 0
        state = self._state
        scan = self._scan
        body = self._body
        need = self._need
        max_message = self.max_message
        max_run = self._max_run
        append = out.append
        is_bytes = type(buf) is bytes  # slices of bytes are already bytes: one copy, not two
        find = buf.find
        while pos < n:
            if state == _START:
                # The common case first, in a loop of its own: complete, well-formed
                # octet-counted frames one after another. Anything else leaves it at that
                # frame's start, for the state machine below.
                while True:
                    sp = find(b" ", pos, pos + _COUNT_DIGITS + 1)
                    if sp <= pos:
                        break
                    count = buf[pos:sp]
                    if count[0] == _ZERO or not count.isdigit():
                        break
                    need = int(count)
                    end = sp + 1 + need
                    if need > max_message or end > n:
                        break
                    stop = end
                    if buf[stop - 1] == _LF:
                        stop -= 1
                        if stop > sp + 1 and buf[stop - 1] == _CR:
                            stop -= 1
                    if stop > sp + 1:
                        append(_frame(buf[sp + 1:stop] if is_bytes else bytes(buf[sp + 1:stop]), "octet"))
                    pos = end
                if pos >= n:
                    break
                c = buf[pos]
                if 49 <= c <= 57:  # "1".."9": octet counting or a line starting with digits
                    m = _NON_DIGIT.search(buf, scan if scan > pos else pos + 1)
                    if m is None:
                        if n - pos > max_run:
                            append(FramingError("oversize", f"line longer than {max_message} bytes"))
                            state = _DISCARD
                            pos = n
                        else:
                            scan = n
                        break
                    j = m.start()
                    if j - pos > max_run:  # as if it had arrived byte by byte
                        append(FramingError("oversize", f"line longer than {max_message} bytes"))
                        state = _DISCARD
                        pos = j
                        continue
                    if buf[j] == _SP:
                        if j - pos > _COUNT_DIGITS:
                            append(FramingError("bad_length",
                                                f"octet count of {j - pos} digits (at most {_COUNT_DIGITS})"))
                            state = _DISCARD
                            pos = j + 1
                            continue
                        need = int(buf[pos:j])
                        body = j + 1
                        if need > max_message:
                            if need > MAX_OCTET_COUNT:
                                append(FramingError("bad_length", f"octet count {need} above {MAX_OCTET_COUNT}"))
                                state = _DISCARD
                            else:
                                append(FramingError("oversize", f"octet count {need} above {max_message}"))
                                state = _SKIP
                            pos = body
                            continue
                        state = _OCTET
                    else:
                        state = _LINE
                        scan = j
                else:
                    state = _LINE
                    scan = pos
            if state == _OCTET:
                end = body + need
                if end > n:
                    break
                stop = end
                if buf[stop - 1] == _LF:
                    stop -= 1
                    if stop > body and buf[stop - 1] == _CR:
                        stop -= 1
                if stop > body:
                    append(_frame(buf[body:stop] if is_bytes else bytes(buf[body:stop]), "octet"))
                pos = end
                state = _START
                scan = 0
            elif state == _LINE:
                lf = buf.find(b"\n", scan)
                nul = buf.find(b"\0", scan, n if lf < 0 else lf)
                end = nul if nul >= 0 else lf
                if end < 0:
                    if n - pos > max_message + 1:  # + 1: a CR that the LF will strip
                        append(FramingError("oversize", f"line longer than {max_message} bytes"))
                        state = _DISCARD
                        pos = n
                    else:
                        scan = n
                    break
                stop = end - 1 if end > pos and buf[end - 1] == _CR else end
                if stop - pos > max_message:
                    append(FramingError("oversize", f"line longer than {max_message} bytes"))
                elif stop > pos:
                    append(_frame(buf[pos:stop] if is_bytes else bytes(buf[pos:stop]), "lf"))
                pos = end + 1
                state = _START
                scan = 0
            elif state == _SKIP:
                if n - pos < need:
                    need -= n - pos
                    pos = n
                    break
                pos += need
                state = _START
                scan = 0
            elif state == _DISCARD:
                lf = buf.find(b"\n", pos)
                nul = buf.find(b"\0", pos, n if lf < 0 else lf)
                end = nul if nul >= 0 else lf
                if end < 0:
                    pos = n
                    break
                pos = end + 1
                state = _START
                scan = 0
        self._state = state
        self._scan = scan - pos if scan > pos else 0
        self._body = body - pos
        self._need = need
        return pos

    def _close(self) -> list[Frame | FramingError]:
        """EOF: flush an unterminated LF-mode frame, report a truncated counted one."""
        if self._eof:
            return []
        self._eof = True
        out: list[Frame | FramingError] = []
        buf = self._buf
        state = self._state
        if state == _OCTET:
            got = len(buf) - self._body
            out.append(FramingError("truncated", f"stream ended after {got} of {self._need} counted octets"))
        elif state in (_START, _LINE) and buf:
            stop = len(buf) - 1 if buf[-1] == _CR else len(buf)
            if stop > self.max_message:
                out.append(FramingError("oversize", f"line longer than {self.max_message} bytes"))
            elif stop:
                out.append(_frame(bytes(buf[:stop]), "lf"))
        # _SKIP: the frame was already reported as oversize; _DISCARD, _DEAD: nothing to say.
        buf.clear()
        self._state = _DEAD
        return out


def _ascii_texts(text: str, max_message: int, out: list[str]) -> int:
    """Append the texts of the frames `text` (ASCII, from a frame start) begins with, as long
    as they are complete and of the commonest shapes: octet-counted with a count of no more
    than `max_message`, or LF-terminated, not starting with a digit, and without NUL. Return
    where the first frame it did not take starts (`len(text)`: all taken). Terminators and
    empty frames are handled as `FrameDecoder._run` does."""
    n = len(text)
    pos = 0
    find = text.find
    append = out.append
    plain = "\0" not in text
    while pos < n:
        if "1" <= text[pos] <= "9":
            sp = find(" ", pos, pos + _COUNT_DIGITS + 1)
            if sp < 0:
                return pos
            count = text[pos:sp]
            if not count.isdigit():
                return pos
            need = int(count)
            end = sp + 1 + need
            if need > max_message or end > n:
                return pos
            stop = end
            if text[stop - 1] == "\n":
                stop -= 1
                if stop > sp + 1 and text[stop - 1] == "\r":
                    stop -= 1
            if stop > sp + 1:
                append(text[sp + 1:stop])
        else:
            if not plain or text[pos] == "0":
                return pos
            end = find("\n", pos)
            if end < 0:
                return pos
            stop = end - 1 if end > pos and text[end - 1] == "\r" else end
            if stop - pos > max_message:
                return pos
            if stop > pos:
                append(text[pos:stop])
            end += 1
        pos = end
    return pos


def _decoded(items: list[Frame | FramingError]) -> Texts:
    """`feed`'s frames and errors as `feed_texts` gives them."""
    frames = [item.data for item in items if type(item) is Frame]
    errors = [item for item in items if type(item) is FramingError]
    texts, invalid = decode_texts(frames) if frames else ([], 0)
    return texts, errors, invalid


def decode_text(data: bytes) -> tuple[str, bool]:
    """Frame bytes -> (text, invalid): UTF-8, invalid sequences replaced by U+FFFD.

    `invalid` is True only when a replacement happened (a U+FFFD sent as valid
    UTF-8 does not count).
    """
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace"), True


def decode_texts(frames: list[bytes]) -> tuple[list[str], int]:
    """Many frames -> (their texts, how many had invalid UTF-8), as `decode_text` each.

    One decode of the frames joined by LF when none holds an LF and all are valid (nearly
    always): the split then gives exactly one text per frame. Otherwise each on its own."""
    try:
        texts = b"\n".join(frames).decode()
    except UnicodeDecodeError:
        pass
    else:
        split = texts.split("\n")
        if len(split) == len(frames):
            return split, 0
    decoded = [decode_text(frame) for frame in frames]
    return [text for text, _ in decoded], sum(invalid for _, invalid in decoded)


def datagram_frame(data: bytes) -> bytes:
    """One UDP datagram is one frame: strip one trailing LF (and a CR before it)."""
    if data.endswith(b"\n"):
        return data[:-2] if data.endswith(b"\r\n") else data[:-1]
    return data
