"""The listeners under uvloop, which the service runs on when it is installed (DESIGN.md
"Dependencies"): its transports have asyncio's methods without being asyncio's classes, so
the listeners must not ask for the class (every TCP connection failed at its start). uvloop
is no dependency, so these run where it is installed (`pip install uvloop` into .venv)."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from prometheus_client import CollectorRegistry

from collector.listeners import LISTENER_ERRORS, Intake, start_tcp, start_udp
from collector.metrics import ServiceMetrics
from tests.conftest import next_line

pytestmark = pytest.mark.integration
uvloop = pytest.importorskip("uvloop", reason="uvloop is not installed (pairwatch does not require it)")


def _intake(**limits: int) -> Intake:
    return Intake(ServiceMetrics(CollectorRegistry(), "test", error_reasons=LISTENER_ERRORS), **limits)


def test_tcp_and_udp_lines_arrive_under_uvloop() -> None:
    async def scenario() -> list[tuple[str, str]]:
        assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
        intake = _intake()
        server = await start_tcp(intake, "127.0.0.1", 0)
        udp = await start_udp(intake, "127.0.0.1", 0)
        _, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
        try:
            counted = b"<30>Mar  3 08:15:02 uv-a dhcpd: counted"
            writer.write(b"%d %s<30>Mar  3 08:15:03 uv-a dhcpd: by LF\n" % (len(counted), counted))
            await writer.drain()
            got = [await next_line(intake), await next_line(intake)]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
                sender.sendto(b"<30>Mar  3 08:15:04 uv-b dhcpd: datagram", udp.socket.getsockname())
                got.append(await next_line(intake))
            return [(line.transport, line.text) for line in got]
        finally:
            writer.close()
            udp.close()
            server.close()

    assert uvloop.run(scenario()) == [
        ("tcp", "<30>Mar  3 08:15:02 uv-a dhcpd: counted"),
        ("tcp", "<30>Mar  3 08:15:03 uv-a dhcpd: by LF"),
        ("udp", "<30>Mar  3 08:15:04 uv-b dhcpd: datagram"),
    ]


def test_a_full_queue_pauses_and_resumes_a_tcp_sender_under_uvloop() -> None:
    """Backpressure: with room for 10 lines the connection is paused and resumed as the queue
    drains, and every one of 500 lines arrives, in order."""
    async def scenario() -> list[str]:
        intake = _intake(queue_size=10)
        server = await start_tcp(intake, "127.0.0.1", 0)
        _, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
        try:
            writer.write(b"".join(b"<30>Mar  3 08:15:02 uv-c dhcpd: line %d\n" % i for i in range(500)))
            texts: list[str] = []
            deadline = time.monotonic() + 10
            while len(texts) < 500 and time.monotonic() < deadline:
                await intake.wait(1.0)
                for arrival in intake.take(7):
                    texts.extend(line.text for line in arrival.lines())
                intake.resume_when_drained()
            return texts
        finally:
            writer.close()
            server.close()

    assert uvloop.run(scenario()) == [f"<30>Mar  3 08:15:02 uv-c dhcpd: line {i}" for i in range(500)]
