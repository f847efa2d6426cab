"""The UDP readers on real loopback sockets: `recvmmsg` through ctypes (the one `serve` uses on
Linux) gives the same datagrams and sender addresses as `socket.recvfrom`, and a datagram cut
to a slot is judged as the whole one would be."""

from __future__ import annotations

import asyncio
import ctypes
import errno
import logging
import socket
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from collector.framing import datagram_frame
from collector.listeners import LISTENER_ERRORS, Intake, start_udp
from collector.metrics import ServiceMetrics
from collector.udp_receive import BATCH, BatchReceiver, SingleReceiver, receiver, slot_size
from tests.conftest import next_line

MAX_MESSAGE = 600


def _socket(family: int, host: str) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)  # (capped by rmem_max: room for some 500)
    sock.bind((host, 0))
    sock.setblocking(False)
    return sock


def _drain(reader: BatchReceiver | SingleReceiver) -> tuple[list[tuple[bytes, object]], int]:
    """Everything the socket holds as (payload, address), and how many calls took it."""
    out: list[tuple[bytes, object]] = []
    calls = 0
    while True:
        received, took = reader.receive()
        if not took:
            return out, calls
        calls += 1
        out.extend((data, reader.address(key)) for data, key in received)


def _payloads() -> Iterator[bytes]:
    yield b""
    yield b"x"
    yield b"x" * (MAX_MESSAGE + 2)
    yield b"y" * (MAX_MESSAGE + 3)
    yield b"z" * (MAX_MESSAGE + 50)
    for i in range(BATCH + 100):
        yield b"<30>Dec  7 12:00:00 dhcp1 dhcpd[%d]: DHCPACK on 198.18.0.%d\n" % (i, i % 250)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="recvmmsg is Linux's")
@pytest.mark.parametrize("family, host", [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")])
def test_recvmmsg_takes_what_recvfrom_takes(family: int, host: str) -> None:
    try:
        sock = _socket(family, host)
    except OSError as exc:  # (a container without IPv6 on its loopback)
        pytest.skip(f"cannot bind {host}: {exc}")
    with sock, socket.socket(family, socket.SOCK_DGRAM) as sender:
        readers = {"batch": receiver(sock, MAX_MESSAGE), "single": receiver(sock, MAX_MESSAGE, batch=False)}
        assert isinstance(readers["batch"], BatchReceiver) and isinstance(readers["single"], SingleReceiver)
        got = {}
        for name, reader in readers.items():
            for payload in _payloads():
                sender.sendto(payload, sock.getsockname())
            got[name] = _drain(reader)
        (batch, batch_calls), (single, _) = got["batch"], got["single"]
        cut = slot_size(MAX_MESSAGE)
        assert batch == [(p[:cut], single[0][1]) for p in _payloads()]
        address = (host, *sender.getsockname()[1:])
        assert single == [(p[:cut], address) for p in _payloads()]
        assert batch_calls == 2  # (BATCH + 105 datagrams)


def test_a_datagram_cut_to_its_slot_is_judged_as_the_whole_one() -> None:
    """What the listener does with a datagram: oversize past `max_message` once its
    terminator is stripped, else the framed bytes."""

    def verdict(data: bytes, max_message: int) -> bytes | None:
        framed = datagram_frame(data)
        return None if len(framed) > max_message else framed

    for max_message in (480, MAX_MESSAGE, 65_533, 65_535):
        cut = slot_size(max_message)
        for length in range(max_message - 3, max_message + 8):
            for end in (b"", b"\n", b"\r\n", b"\r", b"\n\n"):
                for rest in (b"", b"x", b"\n", b"xyz"):  # (a terminator where the cut falls)
                    whole = b"m" * length + end + rest
                    if len(whole) <= 65_507:  # (the largest UDP payload)
                        assert verdict(whole[:cut], max_message) == verdict(whole, max_message), whole[-8:]


def _refused(*_: Any) -> int:
    """A `recvmmsg` as a seccomp filter or an old kernel leaves it: every call fails."""
    ctypes.set_errno(errno.ENOSYS)
    return -1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="recvmmsg is Linux's")
def test_a_listener_whose_recvmmsg_is_refused_reads_one_datagram_at_a_time(caplog: pytest.LogCaptureFixture) -> None:
    """The call refused (not a datagram gone wrong) is said once, and the listener goes on
    with `recvfrom`: every datagram still arrives, and the loop does not spin on a socket
    that stays readable."""
    async def scenario() -> list[str]:
        intake = Intake(ServiceMetrics(CollectorRegistry(), "test", error_reasons=LISTENER_ERRORS))
        udp = await start_udp(intake, "127.0.0.1", 0)
        udp._receiver = BatchReceiver(udp.socket, slot_size(intake.max_message), _refused)  # type: ignore[arg-type]
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
                for i in range(3):
                    sender.sendto(b"<30>Mar  3 08:15:0%d refused dhcpd: datagram %d" % (i, i), udp.socket.getsockname())
                got = [await next_line(intake) for _ in range(3)]
            assert isinstance(udp._receiver, SingleReceiver)
            return [line.text for line in got]
        finally:
            udp.close()

    with caplog.at_level(logging.WARNING, logger="collector.listeners"):
        texts = asyncio.run(scenario())
    assert texts == [f"<30>Mar  3 08:15:0{i} refused dhcpd: datagram {i}" for i in range(3)]
    assert [r.getMessage() for r in caplog.records if "recvmmsg" in r.getMessage()] == [
        "udp: [Errno 38] recvmmsg: ENOSYS; reading one datagram a system call"]
