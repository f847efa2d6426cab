"""TLS listeners (server certificate, optional client certificates), sender allowlists, and the
kernel's UDP drop counter: real sockets on loopback, certificates made by `openssl` per test run."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import time
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from collector.config import TlsConfig, parse_cidrs
from collector.listeners import (
    LISTENER_ERRORS,
    TLS_HANDSHAKE,
    Gate,
    Intake,
    Received,
    start_tcp,
    start_udp,
    tls_context,
)
from collector.metrics import ServiceMetrics
from collector.udp_drops import UdpDropsCollector, read_proc_net_udp, udp_drops
from tests.conftest import need, next_line
from tests.pki import Pki, make_pki

LINE = b"<30>Mar  3 08:15:02 dhcp1 dhcpd: failover peer f: I move from normal to communications-interrupted"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _client_context(pki: Pki, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    if cert is not None:
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


class Harness:
    """An Intake with its own registry, for listeners started inside one asyncio.run."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.metrics = ServiceMetrics(self.registry, "test", error_reasons=LISTENER_ERRORS, listeners=("tcp:0",))
        self.intake = Intake(self.metrics)

    def value(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    async def received(self, count: int, deadline: float = 10.0) -> list[Received]:
        return [await next_line(self.intake, deadline) for _ in range(count)]


def run(scenario: Callable[[Harness], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        return await scenario(Harness())

    return asyncio.run(main())


async def _wait_for(condition: Callable[[], bool], deadline: float = 10.0) -> None:
    end = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < end, "condition not met in time"
        await asyncio.sleep(0.01)


# --- TLS ---------------------------------------------------------------------------------------


@pytest.mark.integration
def test_tls_listener_takes_octet_counted_and_lf_frames(pki: Pki) -> None:
    async def scenario(h: Harness) -> list[Received]:
        server = await start_tcp(h.intake, "127.0.0.1", 0, tls=tls_context(TlsConfig(cert=str(pki.server_cert),
                                                                                       key=str(pki.server_key))))
        port = server.sockets[0].getsockname()[1]
        _reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=_client_context(pki),
                                                        server_hostname="localhost")
        assert writer.get_extra_info("ssl_object").version() in ("TLSv1.2", "TLSv1.3")
        writer.write(b"%d %s" % (len(LINE), LINE) + LINE + b"\n")
        await writer.drain()
        got = await h.received(2)
        writer.close()
        server.close()
        await server.wait_closed()
        return got

    got = run(scenario)
    assert [(r.text, r.transport) for r in got] == [(LINE.decode(), "tls")] * 2
    assert got[0].sender.startswith("127.0.0.1:")


@pytest.mark.integration
def test_tls_1_1_is_refused(pki: Pki) -> None:
    async def scenario(h: Harness) -> float:
        """The server must see the hello and refuse it: its handshake failure is counted."""
        server = await start_tcp(h.intake, "127.0.0.1", 0, tls=tls_context(TlsConfig(cert=str(pki.server_cert),
                                                                                       key=str(pki.server_key))))
        port = server.sockets[0].getsockname()[1]
        old = _client_context(pki)
        old.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer TLS 1.1 at all
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            old.minimum_version = ssl.TLSVersion.TLSv1
            old.maximum_version = ssl.TLSVersion.TLSv1_1
        try:
            with pytest.raises((ssl.SSLError, ConnectionError)):  # an alert, or the server just closes
                await asyncio.open_connection("127.0.0.1", port, ssl=old, server_hostname="localhost")
        finally:
            server.close()
            await server.wait_closed()
        await _wait_for(lambda: h.value("pairwatch_syslog_errors_total", reason=TLS_HANDSHAKE) == 1)
        return h.value("pairwatch_syslog_errors_total", reason=TLS_HANDSHAKE)

    assert run(scenario) == 1


@pytest.mark.integration
def test_mutual_tls_admits_our_ca_and_refuses_no_or_foreign_certificates(pki: Pki) -> None:
    config = TlsConfig(cert=str(pki.server_cert), key=str(pki.server_key), client_ca=str(pki.ca))

    async def refused(port: int, ctx: ssl.SSLContext) -> None:
        """TLS 1.3 reports a refused client certificate only at the first read."""
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="localhost")
        except (ssl.SSLError, ConnectionError):
            return
        writer.write(b"%d %s" % (len(LINE), LINE))
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await writer.drain()
            assert await asyncio.wait_for(reader.read(1), 10) == b""  # closed by the server
            raise ConnectionResetError("closed")
        writer.close()

    async def scenario(h: Harness) -> tuple[list[Received], float]:
        server = await start_tcp(h.intake, "127.0.0.1", 0, tls=tls_context(config))
        port = server.sockets[0].getsockname()[1]
        await refused(port, _client_context(pki))  # no client certificate
        await refused(port, _client_context(pki, pki.rogue_cert, pki.rogue_key))  # another CA's
        _reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=_client_context(pki, pki.client_cert, pki.client_key), server_hostname="localhost")
        writer.write(LINE + b"\n")
        await writer.drain()
        got = await h.received(1)
        writer.close()
        await _wait_for(lambda: h.value("pairwatch_syslog_errors_total", reason=TLS_HANDSHAKE) == 2)
        server.close()
        await server.wait_closed()
        return got, h.value("pairwatch_syslog_messages_total", transport="tls")

    got, counted = run(scenario)
    assert [r.text for r in got] == [LINE.decode()]
    assert counted == 1


@pytest.mark.integration
def test_plain_text_on_the_tls_port_is_a_failed_handshake_and_neighbours_survive(pki: Pki) -> None:
    async def scenario(h: Harness) -> list[Received]:
        server = await start_tcp(h.intake, "127.0.0.1", 0, tls=tls_context(TlsConfig(cert=str(pki.server_cert),
                                                                                       key=str(pki.server_key))))
        port = server.sockets[0].getsockname()[1]
        good_reader, good = await asyncio.open_connection("127.0.0.1", port, ssl=_client_context(pki),
                                                          server_hostname="localhost")
        plain_reader, plain = await asyncio.open_connection("127.0.0.1", port)
        plain.write(LINE + b"\n")
        await plain.drain()
        assert await asyncio.wait_for(plain_reader.read(100), 10) == b""  # the server closed it
        plain.close()
        good.write(LINE + b"\n")
        await good.drain()
        got = await h.received(1)
        good.close()
        server.close()
        await server.wait_closed()
        assert h.value("pairwatch_syslog_errors_total", reason=TLS_HANDSHAKE) == 1
        return got

    assert [r.transport for r in run(scenario)] == ["tls"]


# --- allowlists --------------------------------------------------------------------------------


def test_gate_matches_cidrs_v4_v6_and_v4_mapped() -> None:
    class Count:
        n = 0

        def inc(self) -> None:
            self.n += 1

    refused = Count()
    gate = Gate(parse_cidrs(["192.0.2.0/24", "2001:db8::/32"]), refused, "tcp 0.0.0.0:5514")
    assert gate.admits("192.0.2.77") and gate.admits("::ffff:192.0.2.1") and gate.admits("2001:db8::5")
    assert gate.admits("192.0.2.77")  # cached
    assert not gate.admits("198.51.100.1") and not gate.admits("fe80::1%eth0") and not gate.admits("")
    assert refused.n == 3
    assert Gate((), refused, "any").admits("203.0.113.9")


@pytest.mark.integration
def test_tcp_from_outside_the_allowlist_is_closed_unread_and_counted() -> None:
    async def scenario(h: Harness) -> tuple[float, int]:
        refused = h.metrics.senders_refused.labels("tcp:0")
        outside = Gate(parse_cidrs(["192.0.2.0/24"]), refused, "tcp test")
        server = await start_tcp(h.intake, "127.0.0.1", 0, outside)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(LINE + b"\n")
        with pytest.raises(ConnectionError):  # closed by the server (EOF or reset)
            assert await asyncio.wait_for(reader.read(1), 10) == b""
            raise ConnectionResetError
        writer.close()
        server.close()
        await server.wait_closed()

        inside = Gate(parse_cidrs(["127.0.0.0/8"]), refused, "tcp test")
        server = await start_tcp(h.intake, "127.0.0.1", 0, inside)
        port = server.sockets[0].getsockname()[1]
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(LINE + b"\n")
        await writer.drain()
        got = await h.received(1)
        writer.close()
        server.close()
        await server.wait_closed()
        return h.value("pairwatch_senders_refused_total", listener="tcp:0"), len(got)

    assert run(scenario) == (1.0, 1)


@pytest.mark.integration
def test_udp_from_outside_the_allowlist_is_dropped_and_counted() -> None:
    async def scenario(h: Harness) -> tuple[float, float, str]:
        refused = h.metrics.senders_refused.labels("tcp:0")
        gate = Gate(parse_cidrs(["192.0.2.0/24", "127.0.0.2/32"]), refused, "udp test")
        transport = await start_udp(h.intake, "0.0.0.0", 0, gate=gate)
        port = transport.get_extra_info("sockname")[1]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(LINE, ("127.0.0.1", port))  # from 127.0.0.1: refused
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.2", 0))
            s.sendto(LINE, ("127.0.0.1", port))  # from 127.0.0.2: allowed
        got = await h.received(1)
        await _wait_for(lambda: h.value("pairwatch_senders_refused_total", listener="tcp:0") == 1)
        transport.close()
        return (h.value("pairwatch_senders_refused_total", listener="tcp:0"),
                h.value("pairwatch_syslog_messages_total", transport="udp"), got[0].sender)

    refused, accepted, sender = run(scenario)
    assert (refused, accepted) == (1.0, 1.0)
    assert sender.startswith("127.0.0.2:")


# --- the kernel's UDP drops --------------------------------------------------------------------


def test_udp_drops_reads_the_kernels_count_for_our_socket() -> None:
    need(os.path.exists("/proc/self/net/udp"), "needs /proc/self/net/udp (Linux)")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as src:
        sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)  # the kernel's minimum: a few datagrams fit
        sink.bind(("127.0.0.1", 0))
        inode = os.fstat(sink.fileno()).st_ino
        assert udp_drops(read_proc_net_udp())[inode] == 0
        for _ in range(200):  # nobody reads: the buffer fills and the kernel drops the rest
            src.sendto(b"x" * 1000, sink.getsockname())
        drops = udp_drops(read_proc_net_udp())[inode]
        assert drops > 0

        registry = CollectorRegistry()
        registry.register(UdpDropsCollector([("udp:5514", inode)]))
        assert registry.get_sample_value("pairwatch_udp_receive_drops_total", {"listener": "udp:5514"}) >= drops
