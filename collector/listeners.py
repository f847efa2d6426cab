"""asyncio syslog listeners: UDP and TCP (TLS: not yet), feeding one bounded queue.

Each received message becomes one `Received` item on the pipeline's `asyncio.Queue`:
(receive time, text, transport, sender address). The queue is bounded
(`DEFAULT_QUEUE_SIZE`); when it is full:

* TCP stops reading (`transport.pause_reading()`): the sender's own queue holds the
  data (DESIGN "Reliability rules"). Reading resumes once the queue has drained below a
  low-water mark (`Intake.resume_when_drained`, called by the pipeline after it takes items).
* UDP drops the datagram and counts it as ``pairwatch_syslog_errors_total{reason="queue_full"}``.

Shutdown (`Intake.stop_reading`, then `close_connections` once the pipeline drained):
no more bytes are read, frames already decoded still reach the queue; bytes still in the
kernel's buffers, and an unterminated last LF frame, are not read.

TCP framing is `collector.framing.FrameDecoder`, one per connection; a framing error is
counted under its reason and logged once per connection; a bad frame never closes the
connection (only a TLS handshake on a plain port, after which nothing usable can come).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Final, NamedTuple

from collector.framing import DEFAULT_MAX_MESSAGE, Frame, FrameDecoder, FramingError, datagram_frame, decode_text
from collector.metrics import ServiceMetrics

try:  # uvloop when installed (DESIGN "Dependencies"); plain asyncio otherwise
    import uvloop  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the environment
    uvloop = None

__all__ = [
    "DEFAULT_QUEUE_SIZE",
    "DEFAULT_UDP_RCVBUF",
    "QUEUE_FULL",
    "Intake",
    "Received",
    "start_tcp",
    "start_udp",
    "uvloop",
]

log = logging.getLogger("pairwatch.listeners")

DEFAULT_QUEUE_SIZE: Final = 100_000
DEFAULT_UDP_RCVBUF: Final = 4 * 1024 * 1024
QUEUE_FULL: Final = "queue_full"
"""`pairwatch_syslog_errors_total` reason for a UDP datagram dropped because the queue was full."""
_MAX_DATAGRAM: Final = 65_535


class Received(NamedTuple):
    received_at: float
    text: str
    transport: str
    sender: str


def _address(peer: object) -> str:
    """`host:port` (`[v6]:port`) of a socket peer address; "" when unknown."""
    if isinstance(peer, tuple) and len(peer) >= 2:
        host, port = peer[0], peer[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return "" if peer is None else str(peer)


class Intake:
    """What every listener shares: the queue, the metrics, and the paused TCP transports."""

    def __init__(self, queue: asyncio.Queue[Received], metrics: ServiceMetrics,
                 max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        self.queue = queue
        self.metrics = metrics
        self.max_message = max_message
        self._paused: set[_TcpProtocol] = set()  # connections holding frames the queue had no room for
        self._connections: set[_TcpProtocol] = set()
        self.draining = False
        self._low_water = max(1, self.queue.maxsize // 2) if self.queue.maxsize > 0 else 0

    def put(self, item: Received) -> bool:
        """Queue one message; False when the queue is full (the caller decides what that means)."""
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            return False
        return True

    def pause(self, protocol: _TcpProtocol) -> None:
        self._paused.add(protocol)

    def opened(self, protocol: _TcpProtocol) -> None:
        self._connections.add(protocol)

    def forget(self, protocol: _TcpProtocol) -> None:
        """A connection closed (its held frames, if any, still wait in the paused set)."""
        self._connections.discard(protocol)

    def stop_reading(self) -> None:
        """Shutdown, first step: read nothing more from any TCP connection; frames already
        decoded still go to the queue as it drains (`has_backlog`)."""
        self.draining = True
        for protocol in list(self._connections):
            protocol.stop_reading()

    def has_backlog(self) -> bool:
        return bool(self._paused)

    def close_connections(self) -> None:
        """Shutdown, last step: close every TCP connection."""
        for protocol in list(self._connections):
            protocol.close()

    def resume_when_drained(self) -> None:
        """Resume paused TCP readers once the queue is below its low-water mark."""
        if self._paused and self.queue.qsize() <= self._low_water:
            paused, self._paused = self._paused, set()
            for protocol in paused:
                protocol.resume()


# --- TCP ----------------------------------------------------------------------------------


class _TcpProtocol(asyncio.Protocol):
    def __init__(self, intake: Intake, transport_name: str = "tcp") -> None:
        self._intake = intake
        self._name = transport_name
        self._decoder = FrameDecoder(intake.max_message, detect_tls=transport_name == "tcp")
        self._transport: asyncio.Transport | None = None
        self._sender = ""
        self._logged_error = False
        self._backlog: list[Received] = []  # frames decoded while the queue was full
        self._paused = False
        self._got_eof = False
        self._counter = intake.metrics.syslog_messages.labels(transport_name)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._sender = _address(transport.get_extra_info("peername"))
        self._intake.opened(self)

    def data_received(self, data: bytes) -> None:
        self._handle(self._decoder.feed(data))

    def eof_received(self) -> bool | None:
        self._eof()
        return None  # close our side too

    def _eof(self) -> None:
        if not self._got_eof:
            self._got_eof = True
            self._handle(self._decoder.feed(b""))

    def stop_reading(self) -> None:
        if self._transport is not None and not self._transport.is_closing() and not self._paused:
            self._transport.pause_reading()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._intake.forget(self)
        self._flush_backlog()  # what cannot be queued now waits in the intake's paused set

    def _handle(self, items: list[Frame | FramingError]) -> None:
        now = time.time()
        for item in items:
            if isinstance(item, Frame):
                text, _invalid = decode_text(item.data)
                self._backlog.append(Received(now, text, self._name, self._sender))
                continue
            self._intake.metrics.syslog_errors.labels(item.reason).inc()
            if not self._logged_error:
                self._logged_error = True
                log.warning("%s %s: framing error %s (%s); further errors on this connection are only counted",
                            self._name, self._sender, item.reason, item.detail)
            if item.reason == "tls_on_plain_port" and self._transport is not None:
                self._transport.close()
        self._flush_backlog()

    def _flush_backlog(self) -> None:
        backlog = self._backlog
        sent = 0
        for item in backlog:
            if not self._intake.put(item):
                break
            sent += 1
        if sent:
            self._counter.inc(sent)
            del backlog[:sent]
        if backlog and not self._paused:
            self._paused = True
            if self._transport is not None and not self._transport.is_closing():
                self._transport.pause_reading()
            self._intake.pause(self)

    def resume(self) -> None:
        """The queue drained: hand over held frames, then read again (not while draining)."""
        was_reading = self._transport is not None and not self._intake.draining
        self._paused = False
        self._flush_backlog()
        if not self._paused and was_reading and self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()


async def start_tcp(intake: Intake, host: str, port: int) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: _TcpProtocol(intake), host, port, reuse_address=True)


# --- UDP ----------------------------------------------------------------------------------


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, intake: Intake) -> None:
        self._intake = intake
        self._counter = intake.metrics.syslog_messages.labels("udp")
        self._dropped = intake.metrics.syslog_errors.labels(QUEUE_FULL)
        self._oversize = intake.metrics.syslog_errors.labels("oversize")
        self._logged_drop = False
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        frame = datagram_frame(data)
        if not frame:
            return
        if len(frame) > self._intake.max_message:
            self._oversize.inc()
            return
        text, _invalid = decode_text(frame)
        if self._intake.put(Received(time.time(), text, "udp", _address(addr))):
            self._counter.inc()
            return
        self._dropped.inc()
        if not self._logged_drop:
            self._logged_drop = True
            log.warning("udp: queue full, dropping datagrams (counted as %s)", QUEUE_FULL)

    def error_received(self, exc: Exception) -> None:  # pragma: no cover - ICMP errors
        log.debug("udp error: %s", exc)


async def start_udp(intake: Intake, host: str, port: int, rcvbuf: int = DEFAULT_UDP_RCVBUF) -> asyncio.DatagramTransport:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if rcvbuf:
            try:  # best effort: the kernel caps it at net.core.rmem_max
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            except OSError as exc:
                log.warning("udp %s:%d: cannot raise SO_RCVBUF to %d: %s", host, port, rcvbuf, exc)
        sock.bind((host, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    got = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    if rcvbuf and got < rcvbuf:
        log.info("udp %s:%d: SO_RCVBUF is %d (asked %d; raise net.core.rmem_max)", host, port, got, rcvbuf)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: _UdpProtocol(intake), sock=sock)
    return transport
