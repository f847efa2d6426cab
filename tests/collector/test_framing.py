"""RFC 6587 decoder: every case whole, byte by byte and in random splits gives one answer."""

from __future__ import annotations

import ast
import itertools
import random
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector import framing
from collector.framing import (
    DEFAULT_MAX_MESSAGE,
    ERROR_REASONS,
    MAX_OCTET_COUNT,
    Frame,
    FrameDecoder,
    FramingError,
    datagram_frame,
    decode_text,
    decode_texts,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from corpus import lf_framed, make_corpus, octet_counted  # noqa: E402


def octet(data: bytes) -> Frame:
    return Frame(data, "octet")


def lf(data: bytes) -> Frame:
    return Frame(data, "lf")


def err(reason: str) -> str:
    """Expected errors are written by reason; `decode` checks the detail is non-empty text."""
    assert reason in ERROR_REASONS
    return reason


def decode(chunks: Iterable[bytes], max_message: int = DEFAULT_MAX_MESSAGE, *, detect_tls: bool = True) -> list[object]:
    """Feed the chunks then EOF; errors become their reason, and the module docstring's buffer bound (one
    frame with its count, or up to 10 digits of a count before its SP) is checked after every feed."""
    decoder = FrameDecoder(max_message, detect_tls=detect_tls)
    bound = max(max_message + len(str(max_message)) + 1, len(str(MAX_OCTET_COUNT)))
    out: list[Frame | FramingError] = []
    for chunk in chunks:
        out += decoder.feed(chunk)
        assert decoder.buffered <= bound
    out += decoder.feed(b"")
    assert decoder.buffered == 0
    result: list[object] = []
    for item in out:
        if isinstance(item, FramingError):
            assert item.reason in ERROR_REASONS and isinstance(item.detail, str) and item.detail
            result.append(item.reason)
        else:
            assert isinstance(item, Frame) and type(item.data) is bytes and item.data
            result.append(item)
    return result


def random_splits(data: bytes, rng: random.Random) -> list[bytes]:
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(0, 12)))) if len(data) > 1 else []
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]


def check_all_ways(stream: bytes, expected: list[object], max_message: int = DEFAULT_MAX_MESSAGE, **kw: bool) -> None:
    assert decode([stream], max_message, **kw) == expected, "whole"
    assert decode([stream[i : i + 1] for i in range(len(stream))], max_message, **kw) == expected, "byte by byte"
    rng = random.Random(stream)
    for _ in range(20):
        assert decode(random_splits(stream, rng), max_message, **kw) == expected, "random splits"


HELLO = b"<30>Mar  3 08:15:02 dhcp-a dhcpd: DHCPDISCOVER from 00:00:5e:00:53:01 via eth0"
P23 = b"<190>1 2025-03-03T08:15:02.076Z dhcp-a dhcpd 321 - - failover peer failover-ab: I move from recover to startup"
RFC3339 = b"2025-03-03T08:15:02Z dhcp-b dhcpd: DHCPACK on 192.0.2.10 to 00:00:5e:00:53:01 via eth0"


def counted(data: bytes) -> bytes:
    return b"%d %s" % (len(data), data)


CASES = [
    pytest.param(counted(HELLO), [octet(HELLO)], id="octet"),
    pytest.param(counted(HELLO) + counted(P23), [octet(HELLO), octet(P23)], id="octet-twice-no-separator"),
    pytest.param(counted(P23 + b"\n"), [octet(P23)], id="octet-syslogprotocol23-trailing-lf"),
    pytest.param(counted(P23 + b"\r\n"), [octet(P23)], id="octet-trailing-crlf"),
    pytest.param(counted(b"a\nb\n\n"), [octet(b"a\nb\n")], id="octet-multiline-strips-one-lf"),
    pytest.param(counted(b"a\0b"), [octet(b"a\0b")], id="octet-keeps-nul-and-lf-inside"),
    pytest.param(counted(b" x ") + counted(b"9 y"), [octet(b" x "), octet(b"9 y")], id="octet-payload-with-spaces-and-digits"),
    pytest.param(HELLO + b"\n", [lf(HELLO)], id="lf"),
    pytest.param(HELLO + b"\r\n" + P23 + b"\r\n", [lf(HELLO), lf(P23)], id="crlf"),
    pytest.param(HELLO + b"\0" + P23 + b"\0", [lf(HELLO), lf(P23)], id="nul-terminated"),
    pytest.param(HELLO + b"\r\0", [lf(HELLO)], id="cr-nul"),
    pytest.param(b"a\r\r\n", [lf(b"a\r")], id="only-one-cr-stripped"),
    pytest.param(HELLO, [lf(HELLO)], id="lf-unterminated-flushed-at-eof"),
    pytest.param(HELLO + b"\r", [lf(HELLO)], id="lf-unterminated-cr-at-eof"),
    pytest.param(RFC3339 + b"\n", [lf(RFC3339)], id="rfc3339-without-pri-is-lf-mode"),
    pytest.param(b"12345678901234-x\n", [lf(b"12345678901234-x")], id="long-digit-run-then-dash-is-lf"),
    pytest.param(b"42\n" + b"7", [lf(b"42"), lf(b"7")], id="digits-only-lines"),
    pytest.param(b"0 zero\n" + b"05 x\n", [lf(b"0 zero"), lf(b"05 x")], id="leading-zero-is-not-a-count"),
    pytest.param(b" 5 hello\n", [lf(b" 5 hello")], id="leading-space-is-lf"),
    pytest.param(
        counted(HELLO) + RFC3339 + b"\n" + counted(P23 + b"\n") + HELLO + b"\r\n" + counted(b"x") + P23 + b"\0",
        [octet(HELLO), lf(RFC3339), octet(P23), lf(HELLO), octet(b"x"), lf(P23)],
        id="mixed-framing-per-frame",
    ),
    pytest.param(b"\n\r\n\0\n" + HELLO + b"\n\n", [lf(HELLO)], id="empty-frames-skipped"),
    pytest.param(counted(b"\n") + counted(b"\r\n") + counted(b"z"), [octet(b"z")], id="empty-octet-frames-skipped"),
    pytest.param(counted(HELLO) + b"\n" + counted(P23) + b"\r\n", [octet(HELLO), octet(P23)], id="lf-after-count-is-empty-frame"),
    pytest.param(b"", [], id="nothing"),
    # errors
    pytest.param(
        b"%d " % (DEFAULT_MAX_MESSAGE + 1) + b"x" * (DEFAULT_MAX_MESSAGE + 1) + counted(HELLO),
        ["oversize", octet(HELLO)],
        id="octet-oversize-skipped-exactly",
    ),
    pytest.param(
        b"x" * (DEFAULT_MAX_MESSAGE + 1) + b"\n" + HELLO + b"\n",
        ["oversize", lf(HELLO)],
        id="lf-oversize-discarded-to-lf",
    ),
    pytest.param(b"x" * DEFAULT_MAX_MESSAGE + b"\r\n", [lf(b"x" * DEFAULT_MAX_MESSAGE)], id="lf-at-limit-with-crlf"),
    pytest.param(b"x" * (DEFAULT_MAX_MESSAGE + 1), ["oversize"], id="lf-oversize-at-eof"),
    pytest.param(b"7" * (DEFAULT_MAX_MESSAGE + 1) + b" x\n" + HELLO + b"\n", ["oversize", lf(HELLO)], id="digit-run-oversize"),
    pytest.param(
        b"123456 " + b"x" * 123455 + b"\n" + counted(P23), ["oversize", octet(P23)], id="six-digit-count-skipped-by-count"
    ),
    pytest.param(b"%d " % MAX_OCTET_COUNT + HELLO, ["oversize"], id="count-at-hard-cap-is-oversize"),
    pytest.param(b"12345678901 " + HELLO + b"\n" + counted(P23), ["bad_length", octet(P23)], id="bad-length-eleven-digits"),
    pytest.param(
        b"%d " % (MAX_OCTET_COUNT + 1) + HELLO + b"\n" + counted(P23), ["bad_length", octet(P23)], id="bad-length-above-hard-cap"
    ),
    pytest.param(b"99999999999999999999999 x\0" + HELLO, ["bad_length", lf(HELLO)], id="bad-length-absurd"),
    pytest.param(b"60000 " + HELLO, ["truncated"], id="lying-length-then-eof"),
    pytest.param(counted(HELLO)[:-1], ["truncated"], id="cut-octet-frame"),
    pytest.param(b"3", [lf(b"3")], id="count-without-space-at-eof-is-lf"),
    pytest.param(b"99999 " + HELLO, ["oversize"], id="oversize-cut-by-eof-reported-once"),
    pytest.param(
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n" + counted(HELLO) + b"\n", ["tls_on_plain_port"], id="tls-clienthello"
    ),
    pytest.param(b"\x16", [lf(b"\x16")], id="lone-0x16-at-eof"),
    pytest.param(b"\x16x\n", [lf(b"\x16x")], id="0x16-without-0x03-is-data"),
    pytest.param(HELLO + b"\n\x16\x03\x01\n", [lf(HELLO), lf(b"\x16\x03\x01")], id="tls-bytes-later-are-data"),
]


@pytest.mark.parametrize(("stream", "expected"), CASES)
def test_cases(stream: bytes, expected: list[object]):
    check_all_ways(stream, expected)


SMALL_CASES = [
    pytest.param(b"11 hello world" + b"5 hello", ["oversize", octet(b"hello")], id="oversize-octet"),
    pytest.param(b"10 0123456789", [octet(b"0123456789")], id="octet-at-limit"),
    pytest.param(b"11 0123456789\n", ["oversize"], id="octet-lf-counts-toward-limit"),
    pytest.param(b"100 hi\n" + b"h" * 97 + b"ok\n", ["oversize", lf(b"ok")], id="three-digits-for-limit-ten"),
    pytest.param(b"1234567 x\n" + b"2 ok", ["oversize"], id="more-digits-than-the-limit-is-still-a-count"),
    pytest.param(b"1234567890 x\n3 abc", ["bad_length", octet(b"abc")], id="ten-digits-above-hard-cap"),
    pytest.param(b"0123456789A\r\n" + b"ok\n", ["oversize", lf(b"ok")], id="lf-oversize-crlf"),
    pytest.param(b"0123456789\r\n", [lf(b"0123456789")], id="lf-at-limit"),
    pytest.param(b"0123456789\r" + b"x\n", ["oversize"], id="cr-not-before-lf-counts"),
    pytest.param(b"12345678901 x\n3 abc", ["oversize", octet(b"abc")], id="digit-run-past-limit"),
    pytest.param(b"x" * 50 + b"\0" + b"2 ok", ["oversize", octet(b"ok")], id="nul-ends-discard"),
    pytest.param(b"99 " + b"y" * 99 + b"99 " + b"z" * 50, ["oversize", "oversize"], id="two-oversize-frames"),
]


@pytest.mark.parametrize(("stream", "expected"), SMALL_CASES)
def test_small_limit_cases(stream: bytes, expected: list[object]):
    check_all_ways(stream, expected, max_message=10)


def test_detect_tls_off_treats_handshake_as_data():
    check_all_ways(b"\x16\x03\x01 x\n", [lf(b"\x16\x03\x01 x")], detect_tls=False)


def test_tls_reported_once_and_rest_dropped():
    decoder = FrameDecoder()
    assert [e.reason for e in decoder.feed(b"\x16\x03\x01\x00\xa5")] == ["tls_on_plain_port"]  # type: ignore[union-attr]
    assert decoder.feed(counted(HELLO) + b"\n" + HELLO + b"\n") == []
    assert decoder.buffered == 0
    assert decoder.feed(b"") == []


def test_data_after_eof_is_a_caller_bug():
    decoder = FrameDecoder()
    assert decoder.feed(HELLO) == []
    assert decoder.feed(b"") == [lf(HELLO)]
    assert decoder.feed(b"") == []  # repeated EOF is harmless
    with pytest.raises(RuntimeError):
        decoder.feed(b"x")


def test_frame_returned_by_the_feed_that_completes_it():
    decoder = FrameDecoder()
    assert decoder.feed(b"1") == []
    assert decoder.feed(b"5") == []  # split right after the digits: undecided
    assert decoder.feed(b" ") == []
    assert decoder.feed(HELLO[:10]) == []
    assert decoder.feed(HELLO[10:15] + b"2 o") == [octet(HELLO[:15])]
    assert decoder.feed(b"") == [FramingError("truncated", "stream ended after 1 of 2 counted octets")]


def test_oversize_octet_frame_is_skipped_without_buffering():
    decoder = FrameDecoder(1000)
    assert [e.reason for e in decoder.feed(b"9999 ")] == ["oversize"]  # type: ignore[union-attr]
    for _ in range(9):
        assert decoder.feed(b"z" * 1111) == []
        assert decoder.buffered == 0
    assert decoder.feed(b"\n" + b"3 abc") == [octet(b"abc")]


def test_drip_feed_is_linear(monkeypatch: pytest.MonkeyPatch):
    """A long frame dripped byte by byte is searched once, not once per byte (h11's DoS note)."""
    decoder = FrameDecoder()
    line = b"x" * DEFAULT_MAX_MESSAGE
    calls = 0
    original = framing.FrameDecoder._run

    def counting_run(self: FrameDecoder, buf: bytes | bytearray, out: list[Frame | FramingError]) -> int:
        nonlocal calls
        calls += 1
        assert self._scan >= len(buf) - 1 or self._state != framing._LINE  # resumes at the last searched byte
        return original(self, buf, out)

    monkeypatch.setattr(framing.FrameDecoder, "_run", counting_run)
    for i in range(len(line)):
        assert decoder.feed(line[i : i + 1]) == []
    assert calls == len(line)
    assert decoder.feed(b"\n") == [lf(line)]


def test_bad_max_message():
    with pytest.raises(ValueError):
        FrameDecoder(0)
    with pytest.raises(ValueError):  # a count above the hard cap is never trusted, so no frame could be that long
        FrameDecoder(MAX_OCTET_COUNT + 1)
    assert FrameDecoder(MAX_OCTET_COUNT).max_message == MAX_OCTET_COUNT


def test_decoded_frames_are_frozen_values():
    """The frames `feed` returns (octet and LF mode, from one feed, from a small feed onto a
    partial frame, flushed at EOF) are the values `Frame(data=..., framing=...)` builds: equal,
    with the same hash and repr, immutable and without a `__dict__`."""
    decoder = FrameDecoder()
    frames = decoder.feed(counted(HELLO) + P23 + b"\n")
    frames += decoder.feed(RFC3339[:-1]) + decoder.feed(RFC3339[-1:] + b"\n")
    frames += decoder.feed(HELLO) + decoder.feed(b"")
    built = [Frame(data=HELLO, framing="octet"), Frame(data=P23, framing="lf"), Frame(data=RFC3339, framing="lf"),
             Frame(data=HELLO, framing="lf")]
    assert frames == built
    assert len(set(frames)) == 4 and set(frames) == set(built)
    for frame, value in zip(frames, built):
        assert type(frame) is Frame and type(frame.data) is bytes
        assert hash(frame) == hash(value) and repr(frame) == repr(value)
        assert not hasattr(frame, "__dict__")
        with pytest.raises(AttributeError):
            frame.data = b"y"  # type: ignore[misc,union-attr]


def test_error_reasons_closed_set():
    assert ERROR_REASONS == ("oversize", "bad_length", "truncated", "tls_on_plain_port")
    source = Path(framing.__file__).read_text()
    assert set(re.findall(r'FramingError\("(\w+)"', source)) == set(ERROR_REASONS)
    assert sorted(framing.__all__) == framing.__all__


def test_module_is_sans_io():
    tree = ast.parse(Path(framing.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"__future__", "re", "dataclasses", "typing"}


@pytest.mark.parametrize(
    ("data", "text", "invalid"),
    [
        pytest.param(b"plain", "plain", False, id="ascii"),
        pytest.param("caf\u00e9".encode(), "caf\u00e9", False, id="utf8"),
        pytest.param("\ufffd".encode(), "\ufffd", False, id="sent-replacement-char-is-valid"),
        pytest.param(b"caf\xe9 x", "caf\ufffd x", True, id="latin1"),
        pytest.param(b"\xff\xfe", "\ufffd\ufffd", True, id="binary"),
        pytest.param(b"", "", False, id="empty"),
    ],
)
def test_decode_text(data: bytes, text: str, invalid: bool):
    assert decode_text(data) == (text, invalid)


@settings(max_examples=300)
@given(st.lists(st.one_of(st.binary(max_size=20), st.text(max_size=20).map(str.encode),
                          st.sampled_from([b"a\nb", b"\n", b"\xff", b""])), max_size=12))
def test_decode_texts_is_decode_text_of_each(frames: list[bytes]):
    """One decode for many frames gives what decoding each gives: frames holding an LF or
    invalid UTF-8 too."""
    each = [decode_text(frame) for frame in frames]
    assert decode_texts(frames) == ([text for text, _ in each], sum(invalid for _, invalid in each))


@pytest.mark.parametrize(
    ("data", "frame"),
    [
        pytest.param(b"<13>x\n", b"<13>x", id="lf"),
        pytest.param(b"<13>x\r\n", b"<13>x", id="crlf"),
        pytest.param(b"<13>x\n\n", b"<13>x\n", id="only-one"),
        pytest.param(b"<13>x\r", b"<13>x\r", id="lone-cr-kept"),
        pytest.param(b"<13>x", b"<13>x", id="none"),
        pytest.param(b"\n", b"", id="just-lf"),
    ],
)
def test_datagram_frame(data: bytes, frame: bytes):
    assert datagram_frame(data) == frame


# ---- properties ------------------------------------------------------------------------

LIMIT = 40


@st.composite
def splits(draw: st.DrawFn, stream: bytes) -> list[bytes]:
    if len(stream) < 2:
        return [stream]
    cuts = draw(st.lists(st.integers(1, len(stream) - 1), max_size=20, unique=True))
    cuts.sort()
    return [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)])]


_OCTET_START = re.compile(rb"[1-9][0-9]* ")


@st.composite
def encoded_frame(draw: st.DrawFn) -> tuple[bytes, Frame | None]:
    """One message encoded with a random framing -> (wire bytes, the frame it must decode to)."""
    kind = draw(st.sampled_from(("octet", "octet-lf", "lf", "blank")))
    if kind == "blank":
        return draw(st.sampled_from((b"\n", b"\r\n", b"\0"))), None
    msg = draw(st.binary(min_size=1, max_size=LIMIT - 2))
    if kind == "lf":
        msg = msg.replace(b"\n", b"_").replace(b"\0", b"_")
        msg = msg.rstrip(b"\r")
        if not msg or _OCTET_START.match(msg):
            msg = b"_" + msg
        return msg + draw(st.sampled_from((b"\n", b"\r\n", b"\0", b"\r\0"))), lf(msg)
    if kind == "octet-lf":  # RSYSLOG_SyslogProtocol23Format: the LF is counted
        msg = msg.rstrip(b"\r\n") or b"m"
        return counted(msg + draw(st.sampled_from((b"\n", b"\r\n")))), octet(msg)
    if msg.endswith(b"\n"):
        msg += b"."
    return counted(msg), octet(msg)


@settings(max_examples=300)
@given(st.data())
def test_encoded_messages_round_trip(data: st.DataObject):
    encoded = data.draw(st.lists(encoded_frame(), max_size=12))
    stream = b"".join(wire for wire, _ in encoded)
    expected = [frame for _, frame in encoded if frame is not None]
    last = data.draw(st.binary(max_size=10).map(lambda b: b.replace(b"\n", b"").replace(b"\0", b"").replace(b"\r", b"")))
    if last and not _OCTET_START.match(last):  # an unterminated last line still arrives at EOF
        stream += last
        expected.append(lf(last))
    chunks = data.draw(splits(stream))
    assert decode(chunks, LIMIT, detect_tls=False) == expected


NOISE = st.lists(
    st.sampled_from(
        [b"1", b"9", b"0", b" ", b"\n", b"\r", b"\0", b"\x16", b"\x03", b"a", b"\xff", b"12 ", b"99999 ", b"x" * 30, b"5 abcde"]
    ),
    max_size=60,
).map(b"".join)


@settings(max_examples=400)
@given(st.data(), st.one_of(NOISE, st.binary(max_size=300)), st.sampled_from((1, 9, 10, LIMIT, DEFAULT_MAX_MESSAGE)))
def test_any_bytes_any_splits(data: st.DataObject, stream: bytes, limit: int):
    """Never raises, stays bounded (checked in `decode`), and the split never changes the answer."""
    whole = decode([stream], limit)
    assert decode(data.draw(splits(stream)), limit) == whole
    assert decode([stream[i : i + 1] for i in range(len(stream))], limit) == whole


BAD_FRAMES = st.sampled_from(
    [
        b"%d " % (LIMIT + 1) + b"b" * (LIMIT + 1),  # oversize octet, skipped exactly
        b"b" * (LIMIT + 5) + b"\n",  # oversize line
        b"b" * (LIMIT + 5) + b"\0",
        b"1" * (LIMIT + 5) + b" b\n",  # absurd digit run
        b"123 " + b"b\n" * 61 + b"c",  # more digits than LIMIT has: still a count, skipped exactly
        b"12345678901 bad length\n",  # more than 10 digits: no count
        b"%d bad length\0" % (MAX_OCTET_COUNT + 1),  # above the hard cap: no count
        b"99999999999999999999 b\r\n",
    ]
)


@settings(max_examples=300)
@given(st.data(), encoded_frame(), BAD_FRAMES, encoded_frame())
def test_bad_frame_never_costs_its_neighbours(data: st.DataObject, before, bad: bytes, after):
    (wire1, frame1), (wire2, frame2) = before, after
    stream = wire1 + bad + wire2
    result = decode(data.draw(splits(stream)), LIMIT, detect_tls=False)
    frames = [item for item in result if isinstance(item, Frame)]
    assert frames == [f for f in (frame1, frame2) if f is not None]
    assert [item for item in result if not isinstance(item, Frame)] in (["oversize"], ["bad_length"])


# ---- oversize counts of many digits: skipped by the count, never buffered ------------------------

FILL = counted(HELLO) + b"\n"
"""Skipped body bytes that look like frames: decoding any of them would show up as an extra frame."""


def body_chunks(size: int, stride: int) -> Iterator[bytes]:
    """`size` body bytes as one `stride`-byte chunk repeated, then the rest (a 9-digit body is
    never held in memory at once)."""
    chunk = (FILL * (stride // len(FILL) + 1))[:stride]
    full, rest = divmod(size, stride)
    yield from itertools.repeat(chunk, full)
    if rest:
        yield chunk[:rest]


def around_body(before: bytes, count: int, after: bytes, edge: int) -> tuple[bytes, bytes]:
    """The bytes before and after an oversize frame's middle: `before` and the header with the
    first `edge` body bytes, the last `edge` body bytes and `after`."""
    return before + b"%d " % count + FILL[:edge], FILL[:edge] + after


@pytest.mark.parametrize("digits", [6, 7, 9])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_oversize_count_of_many_digits_is_skipped_by_count(digits: int, data: st.DataObject):
    """500 good frames, one of 300,037 bytes, 1,500 good frames (issue 16), in miniature: a
    count with more digits than `max_message` has is still a count; its frame is skipped over
    as many feeds as it takes, reported once, and every neighbour comes out."""
    count = data.draw(st.integers(10 ** (digits - 1), 10**digits - 1), label="count")
    before = data.draw(st.lists(encoded_frame(), max_size=6), label="before")
    after = data.draw(st.lists(encoded_frame(), min_size=1, max_size=6), label="after")
    edge = data.draw(st.integers(0, len(FILL)), label="edge")
    stride = max(data.draw(st.sampled_from((4096, 65536, 1 << 20)), label="stride"), count // 2048)
    head, tail = around_body(b"".join(w for w, _ in before), count, b"".join(w for w, _ in after), edge)
    chunks = itertools.chain(
        data.draw(splits(head), label="head"), body_chunks(count - 2 * edge, stride), data.draw(splits(tail), label="tail")
    )
    expected = [f for _, f in before if f is not None] + ["oversize"] + [f for _, f in after if f is not None]
    assert decode(chunks, detect_tls=False) == expected


@pytest.mark.parametrize("count", [300_037, 1_234_567, 123_456_789])
def test_oversize_count_split_at_every_byte_of_header_and_neighbours(count: int):
    """Every split point of the bytes around the oversize frame's body gives the same answer."""
    head, tail = around_body(counted(HELLO) + RFC3339 + b"\n", count, counted(P23) + HELLO + b"\n", len(FILL))
    expected = [octet(HELLO), lf(RFC3339), "oversize", octet(P23), lf(HELLO)]
    stride = max(1 << 16, count // 256)
    for cut in range(1, len(head)):
        assert decode(itertools.chain((head[:cut], head[cut:]), body_chunks(count - 2 * len(FILL), stride), (tail,))) == expected
    for cut in range(1, len(tail)):
        assert decode(itertools.chain((head,), body_chunks(count - 2 * len(FILL), stride), (tail[:cut], tail[cut:]))) == expected


@settings(max_examples=200)
@given(
    st.data(),
    st.one_of(st.integers(MAX_OCTET_COUNT + 1, 10**10 - 1), st.integers(10**10, 10**30)),
    st.sampled_from((b"\n", b"\r\n", b"\0")),
)
def test_absurd_count_falls_back_to_lf_framing(data: st.DataObject, count: int, end: bytes):
    """More than 10 digits, or above the 1 GiB hard cap: not trusted as a count; the line is
    discarded to its LF or NUL (bad_length) and the frames after it come out."""
    before = data.draw(st.lists(encoded_frame(), max_size=4), label="before")
    after = data.draw(st.lists(encoded_frame(), min_size=1, max_size=4), label="after")
    stream = b"".join(wire for wire, _ in before) + b"%d <13>1 - h a - - - x" % count + end
    stream += b"".join(wire for wire, _ in after)
    expected = [f for _, f in before if f is not None] + ["bad_length"] + [f for _, f in after if f is not None]
    assert decode(data.draw(splits(stream)), detect_tls=False) == expected


# ---- feed_texts: feed, decoded, with ASCII reads sliced as text ---------------------------------


def by_feed(chunks: list[bytes], limit: int, detect_tls: bool) -> list[tuple[list[str], list[str], int]]:
    """Per feed (the chunks, then EOF): `feed`'s frames decoded, its errors' reasons, the invalid count."""
    decoder = FrameDecoder(limit, detect_tls=detect_tls)
    out = []
    for chunk in [*chunks, b""]:
        items = decoder.feed(chunk)
        texts, invalid = decode_texts([item.data for item in items if isinstance(item, Frame)])
        out.append((texts, [item.reason for item in items if isinstance(item, FramingError)], invalid))
    return out


def by_feed_texts(chunks: list[bytes], limit: int, detect_tls: bool) -> list[tuple[list[str], list[str], int]]:
    """The same through `feed_texts`, with the buffer bound checked after every feed."""
    decoder = FrameDecoder(limit, detect_tls=detect_tls)
    bound = max(limit + len(str(limit)) + 1, len(str(MAX_OCTET_COUNT)))
    out = []
    for chunk in [*chunks, b""]:
        texts, errors, invalid = decoder.feed_texts(chunk)
        assert decoder.buffered <= bound
        out.append((texts, [error.reason for error in errors], invalid))
    return out


ASCII_FRAMES = st.lists(
    st.one_of(
        st.text(st.characters(max_codepoint=127), max_size=LIMIT + 3).map(lambda t: counted(t.encode())),
        st.text(st.characters(max_codepoint=127, exclude_characters="\n\0"), max_size=LIMIT + 3)
        .map(lambda t: t.encode() + b"\n"),
        NOISE,
    ),
    max_size=12,
).map(b"".join)


@settings(max_examples=500)
@given(st.data(), st.one_of(ASCII_FRAMES, NOISE, st.binary(max_size=300)),
       st.sampled_from((1, 9, 10, LIMIT, DEFAULT_MAX_MESSAGE)), st.booleans())
def test_feed_texts_is_feed_decoded(data: st.DataObject, stream: bytes, limit: int, detect_tls: bool):
    """Any bytes, any splits, any limit: every feed gives the texts, errors and invalid count
    that `feed` and `decode_texts` give, whichever way `feed_texts` took the read."""
    chunks = data.draw(splits(stream))
    assert by_feed_texts(chunks, limit, detect_tls) == by_feed(chunks, limit, detect_tls)


def test_feed_texts_takes_a_corpus_stream_in_either_framing():
    """The corpus's lines, octet-counted and LF-framed, in 64 KiB reads (as the listeners get
    them): every line comes out once, in order, by the text slicing and `feed` alike."""
    lines = make_corpus(3000).lines
    for payload in (octet_counted(lines), lf_framed(lines)):
        chunks = [payload[i:i + 65536] for i in range(0, len(payload), 65536)]
        got = by_feed_texts(chunks, DEFAULT_MAX_MESSAGE, True)
        assert [text for texts, _, _ in got for text in texts] == lines
        assert got == by_feed(chunks, DEFAULT_MAX_MESSAGE, True)
