"""The fast path and the full parser give every line the same meaning (issue 18's differential
test): wherever `FastPath.match` answers, its values are the full parser's header, kind and
lease fields, with the time in microseconds. Checked on the whole bench/corpus.py stream, on
every line of the lab's captured logs in each header rsyslog forwards, and on generated lines
built from the pieces the fast path looks at (and the pieces it must refuse)."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from parsers import Event, LineParser, ParseOptions, parse_line
from parsers.events import Lease, Record
from parsers.fast import FIELDS, FastLine, FastPath, event_of
from parsers.syslog import HeaderDecoder

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
from corpus import make_corpus  # noqa: E402

REFERENCE = datetime(2025, 3, 4, tzinfo=UTC)
OPTIONS = ParseOptions(reference=REFERENCE)
LAB = ROOT / "tests" / "fixtures" / "lab"
LOCAL_LINE = re.compile(r"(?P<stamp>\S+) (?P<host>\S+) (?P<program>[^\s:\[]+)(?:\[(?P<pid>\d+)\])?:(?P<msg>.*)")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LEASE_FIELDS = ("ip", "mac", "client_name", "via", "server_id", "refused", "detail")


def full_values(event: Event) -> FastLine:
    """The full parser's event as the fast path's values (`FIELDS`)."""
    r = event.record
    ts_us = None if r.ts is None else (r.ts - _EPOCH) // timedelta(microseconds=1)
    payload = event.payload
    lease = tuple(getattr(payload, name) for name in _LEASE_FIELDS) if isinstance(payload, Lease) else (None,) * 7
    return (ts_us, r.host, r.program, r.pid, r.facility, r.severity, r.msgid, r.structured_data, r.message,  # type: ignore[return-value]
            payload.kind, *lease)


def differences(fast: FastLine, event: Event) -> dict[str, tuple[object, object]]:
    """Field -> (fast, full) where they differ; a marked or non-lease payload with fields
    beyond its message also differs (the fast path only makes plain ones)."""
    out = {name: (a, b) for name, a, b in zip(FIELDS, fast, full_values(event)) if a != b}
    if event.continuation or event.repeated is not None:
        out["markers"] = ((False, None), (event.continuation, event.repeated))
    payload = event.payload
    if not isinstance(payload, Lease) and getattr(payload, "message", event.record.message) != event.record.message:
        out["payload"] = (None, payload)
    return out


def assert_header_handed_over(line: str, options: ParseOptions) -> None:
    """A line the fast path leaves to the full parser: when it hands over the header it
    read (a dhcpd line of another shape), the header is the full parser's exactly."""
    got = FastPath(options).match(line)
    assert got is None or got == HeaderDecoder(options).decode(line), line


def check_stream(lines: list[str], options: ParseOptions = OPTIONS) -> int:
    """Compare `LineParser.read` (fast path first) with `LineParser.parse` over a stream, each
    with its own stream context; the number of lines the fast path took."""
    reader, full = LineParser(options), LineParser(options)
    taken = 0
    for line in lines:
        event = full.parse(line)
        got = reader.read(line)
        if isinstance(got, Event):
            assert got == event, line
            assert_header_handed_over(line, options)
            continue
        taken += 1
        assert not differences(got, event), (line, differences(got, event))
        assert FastPath(options).match(line) == got
        assert event_of(got) == event, line
    return taken


def test_the_whole_corpus_stream_agrees_and_mostly_takes_the_fast_path() -> None:
    lines = make_corpus(300_000).lines
    taken = check_stream(lines)
    assert taken >= 0.75 * len(lines), f"the fast path took {taken} of {len(lines)} corpus lines"


def _lab_lines() -> list[tuple[str, str, str, str, str]]:
    out = []
    for path in sorted(LAB.glob("*/*.log")):
        for line in path.read_text().splitlines():
            m = LOCAL_LINE.fullmatch(line)
            assert m is not None, f"{path}: {line!r}"
            out.append((m["stamp"], m["host"], m["program"], m["pid"] or "", m["msg"]))
    return out


def _bsd_stamp(iso: str) -> str:
    instant = datetime.fromisoformat(iso)
    return f"{instant:%b} {instant.day:2d} {instant:%H:%M:%S}"


@pytest.mark.parametrize("layout", ["rfc3164", "rfc3339", "rfc5424"])
def test_every_lab_line_agrees_in_each_forwarded_layout(layout: str) -> None:
    """The captured logs of real dhcpd and Kea pairs, as rsyslog would forward each line."""
    lines = []
    for stamp, host, program, pid, msg in _lab_lines():
        tag = f"{program}[{pid}]" if pid else program
        if layout == "rfc3164":
            lines.append(f"<30>{_bsd_stamp(stamp)} {host} {tag}:{msg}")
        elif layout == "rfc3339":
            lines.append(f"<30>{stamp} {host} {tag}:{msg}")
        else:
            lines.append(f"<30>1 {stamp} {host} {program} {pid or '-'} - - {msg}")
    reference = datetime.fromisoformat(_lab_lines()[0][0]) + timedelta(days=1)
    taken = check_stream(lines, ParseOptions(reference=reference))
    assert taken >= 50, f"the fast path took only {taken} of {len(lines)} lab lines: nothing much compared"


def test_a_repeat_of_a_fast_line_is_that_line_again() -> None:
    """`last message repeated N times` takes its sender's previous line's meaning, also when
    the fast path read that line (the parser keeps its text and reads it when asked)."""
    ack = "<30>Mar  3 08:00:00 dhcp1 dhcpd: DHCPACK on 198.18.3.64 to 00:00:5e:00:53:2c via ens3"
    stream = [ack, "<30>Mar  3 08:00:01 dhcp1 dhcpd: last message repeated 3 times",
              "<30>Mar  3 08:00:02 dhcp1 last message repeated 2 times"]
    assert check_stream(stream) == 1
    parser = LineParser(OPTIONS)
    parser.read(ack)
    repeat = parser.read(stream[1])
    assert isinstance(repeat, Event) and repeat.payload.kind == "lease.ack" and repeat.repeated == 3


def test_local_log_lines_take_the_full_parser() -> None:
    """Lines without a priority (a file as rsyslog writes it locally) are not a forwarded shape."""
    fast = FastPath(OPTIONS)
    assert all(fast.match(f"{stamp} {host} {program}:{msg}") is None for stamp, host, program, _, msg in _lab_lines())


# --- generated lines --------------------------------------------------------------------------------------

_WORD = st.text(alphabet=st.sampled_from("ab:()[]/-. \t\n\ufeff0123456789"), max_size=6)
_GOOD = {
    "mac": st.sampled_from(["00:00:5e:00:53:2c", "aa:bb", "1:2:3:4:5:6"]),
    "ip": st.sampled_from(["198.18.3.64", "198.51.100.1", "::1"]),
    "name": st.none() | st.sampled_from(["host-1", "a b", "(x)", ""]),
    "via": st.sampled_from(["ens3", "198.18.3.1", "eth0"]),
}
_SUFFIX = st.just("") | st.sampled_from([
    ": load balance to peer failover-1", ": load balance to peer", ": not responding",
    ": wrong network.", " (found)", ": peer holds all free leases", "\n", ":", ": ",
    ": network 198.18.0.0/24: no free leases", ": load balance to peer x\nmore",
])


@st.composite
def dhcpd_bodies(draw: st.DrawFn) -> str:
    """A client line; in half of them, one field is mangled."""
    mangled = draw(st.sampled_from([None] * 4 + ["mac", "ip", "name", "via"]))

    def field(name: str) -> str | None:
        return draw(_WORD if name == mangled else _GOOD[name])

    kind = draw(st.sampled_from(["DHCPDISCOVER", "DHCPOFFER", "DHCPACK", "DHCPREQUEST", "BOOTREPLY", "DHCPNAK",
                                 "DHCPINFORM", "DHCPACK to"]))
    name = field("name")
    tail = (f"({name}) " if name is not None else "") + f"via {field('via')}{draw(_SUFFIX)}"
    if kind == "DHCPINFORM":
        return f"{kind} from {field('ip')} via {field('via')}{draw(_SUFFIX)}"
    if kind == "DHCPACK to":  # the reply to an INFORM
        return f"{kind} {field('ip')} ({field('mac')}) {tail}"
    if kind == "DHCPDISCOVER":
        return f"{kind} from {field('mac')} {tail}"
    if kind == "DHCPREQUEST":
        sid = draw(st.none() | _GOOD["ip"])
        return f"{kind} for {field('ip')} {'' if sid is None else f'({sid}) '}from {field('mac')} {tail}"
    return f"{kind} on {field('ip')} to {field('mac')} {tail}"


_KEA_BODIES = st.builds(
    lambda sev, spaces, logger, msgid, rest: f"{sev}{spaces}[{logger}] {msgid}{rest}",
    st.sampled_from(["INFO", "WARN", "DEBUG", "ERROR", "FATAL"]) | st.sampled_from(["info", "NOTICE"]),
    st.sampled_from([" ", "  "]) | st.just("\t"),
    st.sampled_from(["kea-dhcp4.dhcp4.474967287465411", "kea-dhcp4.leases.1", "kea-dhcp4.ha-hooks.70"])
    | st.sampled_from(["kea-dhcp4.dhcp4/123.456", "kea-dhcp4", "x.0x1f"]),
    st.sampled_from(["DHCP4_QUERY_LABEL", "DHCP4_PACKET_RECEIVED", "DHCP4_STARTED", "DHCP4_LEASE_ALLOC"])
    | st.sampled_from(["HA_STATE_TRANSITION", "HA_HEARTBEAT_COMMUNICATIONS_FAILED", "lowercase_id", "DHCP4"]),
    st.sampled_from(["", " received query: [hwtype=1 00:00:5e:00:53:30]", " x"])
    | st.sampled_from([" message repeated 2 times", "\n"]),
)
_KEA_LABELS = st.sampled_from(["[hwtype=1 00:00:5e:00:53:30], cid=[01:00:00:5e:00:53:30], tid=0x1a2b",
                                "[no hwaddr info], cid=[no info], tid=0x0",
                                "[hwtype=1 00:00:5e:00:53:31], cid=[no info], tid=0x9 (malformed client-id)"])
_KEA_LEASE_TEXTS = st.sampled_from([
    ("DHCP4_LEASE_OFFER", "lease {ip} will be offered"), ("DHCP4_LEASE_ADVERT", "lease {ip} will be advertised"),
    ("DHCP4_LEASE_ALLOC", "lease {ip} has been allocated"),
    ("DHCP4_LEASE_ALLOC", "lease {ip} has been allocated for 3600 seconds"),
    ("DHCP4_LEASE_REUSE", "lease {ip} has been reused for 100 seconds"),
    ("DHCP4_INIT_REBOOT", "client is in INIT-REBOOT state and requests address {ip}"),
    ("DHCP4_RELEASE", "address {ip} was released properly."),
    ("DHCP4_RELEASE_EXPIRED", "address {ip} expired on release."),
    ("DHCP4_RELEASE_DELETED", "address {ip} was deleted on release."),
    ("DHCP4_LEASE_REUSE", "lease {ip} has been allocated"),  # another id's text: not a lease line
])
_KEA_LEASES = st.builds(
    lambda sev, logger, label, id_text, ip, tail: f"{sev}  [{logger}] {id_text[0]} {label}: {id_text[1].format(ip=ip)}{tail}",
    st.sampled_from(["INFO", "DEBUG"]), st.sampled_from(["kea-dhcp4.leases.1", "kea-dhcp4.leases.782313546254638"]),
    _KEA_LABELS, _KEA_LEASE_TEXTS, st.sampled_from(["198.18.0.7", "2001:db8::1", "x,y"]),
    st.sampled_from(["", " ", "  \t", " x", "\n"]),
)
_OTHER_BODIES = st.sampled_from([
    "Started Session 9344 of user root.", "last message repeated 3 times", "[ID 123 daemon.info] hello",
    " leading space", "\ufeffbom", "message repeated 2 times: [ DHCPACK on 1.2.3.4 to aa via eth0]", "x",
])
_PARTS = {  # (shapes the fast path takes, shapes it must leave to the full parser or read like it)
    "pri": (["30", "190", "191", "134"], ["192", "999", "0", "013"]),
    "stamp": (["Mar  3 08:00:00", "Mar 3 08:00:00", "2025-03-03T08:00:00+00:00", "2025-03-03T08:00:00.001+01:00",
               "2025-03-03T08:00:00Z", "2024-02-29T23:59:59.999999-05:30"],
              ["Feb 29 08:00:00", "Mar  3 08:00:00.5", "2025-13-03T08:00:00+00:00", "2025-03-03T08:00:00",
               "2025-03-03T08:00:00.1234567+00:00", "Mar 33 08:00:00"]),
    "host": (["dhcp1", "dhcp1.example.net", "198.18.0.1", "kea1"], ["-", "h[1]", "Ünï", "a:b", ""]),
    "program": (["dhcpd", "dhcpd", "kea-dhcp4", "kea-dhcp4", "systemd", "dhclient"],
                ["dhcpd3", "dhcpd-x", "kea-ctrl-agent", "/usr/sbin/dhcpd", "-", "a:b", ""]),
    "pid": (["", "123", "0", "4294967295", "4294967296"], ["abc", "-", "12345678901"]),
    "sep": ([" "], ["  ", "\t"]),
}


@st.composite
def lines(draw: st.DrawFn) -> str:
    """A forwarded line; in half of them one part of the header is of a shape the fast path
    must refuse, or read exactly as the full parser does."""
    bad = draw(st.sampled_from([None] * len(_PARTS) + list(_PARTS)))
    pri, stamp, host, program, pid, sep = (draw(st.sampled_from(_PARTS[part][part == bad]))
                                           for part in ("pri", "stamp", "host", "program", "pid", "sep"))
    if program.startswith("kea"):
        body = draw(_KEA_BODIES | _KEA_LEASES)
    elif "dhcpd" in program:
        body = draw(st.one_of(dhcpd_bodies(), dhcpd_bodies(), _OTHER_BODIES))
    else:
        body = draw(_OTHER_BODIES | dhcpd_bodies())
    if draw(st.booleans()) and "T" in stamp:
        return f"<{pri}>1 {stamp}{sep}{host} {program} {pid or '-'} - -{sep}{body}"
    tag = f"{program}[{pid}]" if pid else program
    return f"<{pri}>{stamp}{sep}{host} {tag}:{sep}{body}"


_ZONES = st.sampled_from([ParseOptions(reference=REFERENCE), ParseOptions(reference=None),
                          ParseOptions(reference=REFERENCE, tz=timezone(timedelta(hours=-5))),
                          ParseOptions(reference=REFERENCE, host_tz={"dhcp1": timezone(timedelta(hours=2))})])


@settings(max_examples=3000, deadline=None)
@given(lines(), _ZONES)
@example("<30>Mar  3 08:00:00 dhcp1 dhcpd: DHCPDISCOVER from 00:00:5e:00:53:2c via ens3: load balance to peer f",
         OPTIONS)
@example("<30>1 2025-03-03T08:00:00Z dhcp1 dhcpd - - - DHCPACK on 1.2.3.4 to aa (h) via eth0", OPTIONS)
@example("<30>Mar  3 08:00:00 dhcp1 dhcpd[9999999999]: DHCPDISCOVER from 00:00:5e:00:53:2c via ens3", OPTIONS)
def test_generated_lines_agree(line: str, options: ParseOptions) -> None:
    values = FastPath(options).match(line)
    event("fast: " + ("none" if values is None else "header" if isinstance(values, Record) else values[9]))
    if isinstance(values, Record):
        assert values == HeaderDecoder(options).decode(line)
    elif values is not None:
        full = parse_line(line, options)
        assert not differences(values, full), differences(values, full)


@pytest.mark.parametrize("body", ["DHCPINFORM from 198.18.0.7 via eth0", "DHCPACK to 198.18.0.7 (00:00:5e:00:53:07) via eth0",
                                  "DHCPNAK on 198.18.0.7 to 00:00:5e:00:53:07 via eth0"])
def test_an_inform_its_ack_and_a_nak_take_the_fast_path(body: str) -> None:
    line = f"<30>Mar  3 08:00:00 dhcp1 dhcpd[12]: {body}"
    values = FastPath(OPTIONS).match(line)
    assert isinstance(values, tuple) and not differences(values, parse_line(line, OPTIONS))


_HEADERS = ["<30>Mar  3 08:00:00 dhcp1 dhcpd[12]: ", "<30>2025-03-03T08:00:00.25+01:00 dhcp1 dhcpd: ",
            "<30>1 2025-03-03T08:00:00.5Z dhcp1 dhcpd 12 - -  "]


@pytest.mark.parametrize("header", _HEADERS)
@pytest.mark.parametrize("body", [
    "balancing pool 55d2b2fa1b60 198.18.7.0/24  total 200  free 94  backup 106  lts 6  max-own (+/-)20",
    "failover peer failover-1: I move from communications-interrupted to normal",
    "DHCPDISCOVER from 00:00:5e:00:53:2c via ens3: network 198.18.7.0/24: no free leases",
    "DHCPINFORM from 198.18.0.7 via eth0 last message repeated",
    "last message repeated 3 times",
])
def test_a_dhcpd_line_of_another_shape_hands_its_header_to_the_full_parser(header: str, body: str) -> None:
    """The full parser does not read the header of a dhcpd line again when the fast path read
    it: it gets the header as a `Record`, the one it would have decoded itself."""
    line = header + body
    got = FastPath(OPTIONS).match(line)
    assert isinstance(got, Record) and got == HeaderDecoder(OPTIONS).decode(line)
    assert check_stream([line]) == 0


def test_a_solaris_id_is_left_to_the_full_parser() -> None:
    line = "<30>Mar  3 08:00:00 dhcp1 dhcpd: [ID 702911 daemon.info] balancing pool 55d2b2fa1b60 198.18.7.0/24"
    assert FastPath(OPTIONS).match(line) is None
    assert check_stream([line]) == 0
