"""asyncio syslog listeners: UDP, TCP and TLS (RFC 5425), feeding one bounded queue.

What one read brings becomes one item of the intake's queue: an `Arrival` (receive time,
the texts, transport, sender address) per TCP read, the undecoded datagrams of a UDP read
(decoded when the pipeline takes them, so a read costs little more than its system calls
and a burst leaves the socket's buffer as fast as it comes). The queue is bounded by lines
(`serve.queue_size`); when it is full:

* TCP stops reading (`transport.pause_reading()`): the sender's own queue holds the
  data (DESIGN "Reliability rules"). Reading resumes once the queue has drained below a
  low-water mark (`Intake.resume_when_drained`, called by the pipeline after it takes items).
* UDP drops the datagram and counts it as ``pairwatch_syslog_errors_total{reason="queue_full"}``.

Shutdown: `Intake.divert` (frames go to a list past the bounded queue, paused connections
read again), `wait_quiet` (until every connection is silent or closed, so what senders
already wrote is read), `stop_reading`, `take_diverted` for the pipeline, and
`close_connections` at the end. An unterminated last LF frame is not a message.

TCP framing is `collector.framing.FrameDecoder`, one per connection; a framing error is
counted under its reason and logged once per connection; a bad frame never closes the
connection (only a TLS handshake on a plain port, after which nothing usable can come).

TLS is TCP plus a handshake that the listener drives itself (`loop.start_tls`), so that a
failed handshake (no client certificate when one is required, a certificate from another
CA, plain text on the TLS port) is counted as ``reason="tls_handshake"`` instead of
vanishing inside asyncio.

Sender allowlists (`Gate`): a listener with CIDRs accepts only senders inside them. A TCP
or TLS connection from elsewhere is closed before anything is read (before the handshake),
a UDP datagram is dropped; both are counted in ``pairwatch_senders_refused_total{listener}``
and logged at most once a minute per listener.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Final, NamedTuple, cast

from collector.config import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_CONNECTIONS_PER_SENDER,
    DEFAULT_QUEUE_SIZE,
    DEFAULT_UDP_RECEIVE_BUFFER,
    Network,
    TlsConfig,
)
from collector.framing import (
    DEFAULT_MAX_MESSAGE,
    FrameDecoder,
    FramingError,
    datagram_frame,
    decode_texts,
)
from collector.metrics import ServiceMetrics
from collector.udp_receive import BATCH, Unsupported, receiver

try:  # uvloop when installed (DESIGN "Dependencies"); plain asyncio otherwise
    import uvloop  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the environment
    uvloop = None

__all__ = [
    "Arrival",
    "LISTENER_ERRORS",
    "QUEUE_FULL",
    "TLS_HANDSHAKE",
    "Gate",
    "Intake",
    "Received",
    "UdpListener",
    "listener_label",
    "start_tcp",
    "start_udp",
    "tls_context",
    "uvloop",
]

log = logging.getLogger("pairwatch.listeners")

QUEUE_FULL: Final = "queue_full"
"""`pairwatch_syslog_errors_total` reason for a UDP datagram dropped because the queue was full."""
TLS_HANDSHAKE: Final = "tls_handshake"
"""`pairwatch_syslog_errors_total` reason for a TLS connection whose handshake failed."""
CONNECTION_LIMIT: Final = "connection_limit"
"""`pairwatch_syslog_errors_total` reason for a TCP/TLS connection closed at once: too many open."""
IDLE_TIMEOUT: Final = "idle_timeout"
"""`pairwatch_syslog_errors_total` reason for a connection closed after `idle_timeout` silent seconds."""
INVALID_UTF8: Final = "invalid_utf8"
"""`pairwatch_syslog_errors_total` reason for a message that is not UTF-8: counted, and stored
with U+FFFD in place of the bad bytes (the line is still evidence)."""
LISTENER_ERRORS: Final = (QUEUE_FULL, TLS_HANDSHAKE, CONNECTION_LIMIT, IDLE_TIMEOUT, INVALID_UTF8)
"""The error reasons the listeners add to the framing's own."""
TLS_HANDSHAKE_TIMEOUT: Final = 10.0
UDP_BURST: Final = 4096
"""Datagrams read per readiness callback (then the loop serves the others). The loop comes
back to the socket once per pipeline chunk, so this is what empties the receive buffer
meanwhile; a smaller number let unpaced bursts overflow it (bench/ingest.py --transport udp)."""
POLL_IDLE: Final = 0.01
"""Seconds `Intake.poll` leaves the UDP sockets alone after it found them empty: twice
CPython's switch interval, and a small part of what the receive buffer holds at line rate."""
REFUSAL_LOG_INTERVAL: Final = 60.0
MAX_DIVERTED: Final = 2_000_000
"""Messages read at shutdown beyond the queue (`Intake.divert`); past it, connections pause."""
_GATE_CACHE: Final = 4096
_LF: Final = 10
_SO_RCVBUFFORCE: Final = 33
"""Linux's option number (asm-generic/socket.h); Python's socket module names it only from 3.12."""


class Received(NamedTuple):
    """One line as it was received (what the spool keeps of a line spilled at shutdown)."""

    received_at: float
    text: str
    transport: str
    sender: str


class Arrival(NamedTuple):
    """Lines one sender's read brought: a queue item per read rather than per line, because
    what a queue item costs, paid per line, was a tenth of the line's whole path."""

    received_at: float
    texts: list[str]
    transport: str
    sender: str

    @property
    def size(self) -> int:
        return len(self.texts)

    def head(self, count: int) -> Arrival:
        """The first `count` lines (the rest: `tail`)."""
        return self._replace(texts=self.texts[:count])

    def tail(self, count: int) -> Arrival:
        return self._replace(texts=self.texts[count:])

    def lines(self) -> list[Received]:
        return [Received(self.received_at, text, self.transport, self.sender) for text in self.texts]


class _Datagrams(NamedTuple):
    """The datagrams of one UDP read, framed but not decoded, and each one's sender."""

    received_at: float
    payloads: list[bytes]
    senders: list[str]

    @property
    def size(self) -> int:
        return len(self.payloads)

    def head(self, count: int) -> _Datagrams:
        return _Datagrams(self.received_at, self.payloads[:count], self.senders[:count])

    def tail(self, count: int) -> _Datagrams:
        return _Datagrams(self.received_at, self.payloads[count:], self.senders[count:])


def _address(peer: object) -> str:
    """`host:port` (`[v6]:port`) of a socket peer address; "" when unknown."""
    if isinstance(peer, tuple) and len(peer) >= 2:
        host, port = peer[0], peer[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return "" if peer is None else str(peer)


def listener_label(transport: str, port: int) -> str:
    """The `listener` label of a listener: transport and port ("udp:5514"), never its address."""
    return f"{transport}:{port}"


class Gate:
    """A listener's sender allowlist; `admits(host)` is True for every sender when it is empty.

    Answers are cached per sender address (a fleet has few senders); the cache is cleared
    when it reaches `_GATE_CACHE` entries, so spoofed UDP sources cannot grow it unbounded.
    """

    def __init__(self, allow: Sequence[Network], refused: object, label: str) -> None:
        self._allow = tuple(allow)
        self._refused = refused  # the listener's pairwatch_senders_refused_total child
        self._label = label
        self._cache: dict[str, bool] = {}
        self._logged_at = -REFUSAL_LOG_INTERVAL

    def admits(self, host: str) -> bool:
        if not self._allow:
            return True
        known = self._cache.get(host)
        if known is None:
            known = self._check(host)
            if len(self._cache) >= _GATE_CACHE:
                self._cache.clear()
            self._cache[host] = known
        if not known:
            self._refused.inc()  # type: ignore[attr-defined]
            now = time.monotonic()
            if now - self._logged_at >= REFUSAL_LOG_INTERVAL:
                self._logged_at = now
                log.warning("%s: refused sender %s (not in the allowlist; further refusals are counted, "
                            "logged once a minute)", self._label, host)
        return known

    def _check(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.partition("%")[0])  # drop an IPv6 zone
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # a dual-stack socket shows IPv4 senders as ::ffff:a.b.c.d
        return any(address in network for network in self._allow)


def tls_context(tls: TlsConfig) -> ssl.SSLContext:
    """The server context for TLS listeners: TLS 1.2 or newer; with `client_ca`, a client
    certificate chaining to it is required. Raises OSError or ssl.SSLError on a bad file."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(tls.cert, tls.key)
    if tls.client_ca is not None:
        context.load_verify_locations(cafile=tls.client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class Intake:
    """What every listener shares: the queue, the metrics, and the paused TCP transports.

    The queue holds one item per read (`Arrival`, or a UDP read's datagrams) and is bounded by
    the lines in it, `queued` of at most `queue_size`: `put` takes what fits, the pipeline
    `take`s up to a number of lines."""

    def __init__(self, metrics: ServiceMetrics, max_message: int = DEFAULT_MAX_MESSAGE, *,
                 queue_size: int = DEFAULT_QUEUE_SIZE, max_connections: int = DEFAULT_MAX_CONNECTIONS,
                 max_per_sender: int = DEFAULT_MAX_CONNECTIONS_PER_SENDER, idle_timeout: float | None = None) -> None:
        self.metrics = metrics
        self.max_message = max_message
        self.queue_size = queue_size
        self.queued = 0  # lines in `_items`
        self._items: deque[Arrival | _Datagrams] = deque()
        self._ready = asyncio.Event()  # set while `_items` holds something
        self.max_connections = max_connections
        self.max_per_sender = max_per_sender
        self.idle_timeout = idle_timeout
        self._per_sender: dict[str, int] = {}
        self._limit_logged_at = -REFUSAL_LOG_INTERVAL
        self._paused: set[_TcpProtocol] = set()  # connections holding frames the queue had no room for
        self._connections: set[_TcpProtocol] = set()
        self.draining = False
        self.diverted: list[Arrival | _Datagrams] | None = None
        self._diverted_lines = 0
        self._tls_logged_at = -REFUSAL_LOG_INTERVAL
        self._low_water = max(1, queue_size // 2)
        self._invalid = metrics.syslog_errors.labels(INVALID_UTF8)
        self.pollers: list[Callable[[], bool]] = []  # the UDP listeners' reads, see `poll`
        self._next_poll = 0.0  # (monotonic) when `poll` reads the sockets again

    def poll(self) -> None:
        """Read what the UDP sockets hold now. The pipeline calls this while it works through a
        chunk: a burst of datagrams overflows the kernel's receive buffer in milliseconds,
        and the loop reads the sockets only between chunks.

        When a read finds them all empty, the next is put off for `POLL_IDLE` seconds. Each
        read is a system call that lets go of the GIL, and CPython hands the GIL to a waiting
        thread on request only if it did not change hands during the waiter's switch interval
        (5 ms): a thread that lets go and takes it straight back more often than that starves
        the others. Read every 100 lines of a TCP burst, empty sockets kept the store's thread
        from its inserts for 0.2-0.6 s at a time (bench/README.md)."""
        now = time.monotonic()
        if now < self._next_poll:
            return
        busy = False
        for read in self.pollers:
            busy = read() or busy
        self._next_poll = 0.0 if busy else now + POLL_IDLE

    def put(self, item: Arrival | _Datagrams) -> int:
        """Queue the lines of one read, as many as there is room for; returns how many (the
        caller decides what the rest means). While diverted (shutdown), they go to `diverted`
        instead, up to `MAX_DIVERTED`."""
        room = (MAX_DIVERTED - self._diverted_lines if self.diverted is not None else self.queue_size - self.queued)
        size = item.size
        if room <= 0 or not size:
            return 0
        if size > room:
            item, size = item.head(room), room
        if self.diverted is not None:
            self.diverted.append(item)
            self._diverted_lines += size
        else:
            self._items.append(item)
            self.queued += size
            self._ready.set()
        return size

    def empty(self) -> bool:
        return not self._items

    async def wait(self, timeout: float) -> None:
        """Until the queue holds something, or `timeout` seconds."""
        if not self._items:
            try:
                async with asyncio.timeout(timeout):
                    await self._ready.wait()
            except TimeoutError:
                pass

    def take(self, limit: int) -> list[Arrival]:
        """Up to `limit` lines from the front of the queue, oldest first (an item bigger than
        what is left of `limit` is split)."""
        items = self._items
        taken: list[Arrival] = []
        while limit > 0 and items:
            item = items.popleft()
            if type(item) is _Datagrams:
                items.extendleft(reversed(self._decoded(item)))
                continue
            assert isinstance(item, Arrival)
            size = item.size
            if size > limit:
                items.appendleft(item.tail(limit))
                item, size = item.head(limit), limit
            taken.append(item)
            limit -= size
            self.queued -= size
        if not items:
            self._ready.clear()
        return taken

    def _decoded(self, datagrams: _Datagrams) -> list[Arrival]:
        """A UDP read's datagrams as texts, one `Arrival` per run of the same sender."""
        texts, invalid = decode_texts(datagrams.payloads)
        if invalid:
            self._invalid.inc(invalid)
        arrivals: list[Arrival] = []
        senders = datagrams.senders
        start = 0
        for end in range(1, len(senders) + 1):
            if end == len(senders) or senders[end] != senders[start]:
                arrivals.append(Arrival(datagrams.received_at, texts[start:end], "udp", senders[start]))
                start = end
        return arrivals

    def divert(self) -> None:
        """Shutdown, first step: from now on frames go to a list, not the bounded queue, and
        paused connections read again, so everything the senders already wrote is read at
        framing speed (the pipeline takes the list after the queue, or it is spilled)."""
        self.diverted = []
        now = time.monotonic()
        for protocol in self._connections:  # each gets its quiet window from now on: a connection
            protocol.last_data = now  # paused by a full queue has been silent, not done
        paused, self._paused = self._paused, set()
        for protocol in paused:
            protocol.resume()

    def take_diverted(self) -> list[Arrival]:
        taken, self.diverted, self._diverted_lines = self.diverted or [], None, 0
        return [arrival for item in taken
                for arrival in (self._decoded(item) if isinstance(item, _Datagrams) else (item,))]

    def pause(self, protocol: _TcpProtocol) -> None:
        self._paused.add(protocol)

    def admit(self, protocol: _TcpProtocol, host: str) -> bool:
        """Count a new connection in, or refuse it (counted, logged once a minute) when the
        total or this sender's share is at its limit: idle or slow connections (one byte a
        second) cannot take every slot, nor can one sender take all of them."""
        count = self._per_sender.get(host, 0)
        if len(self._connections) >= self.max_connections or count >= self.max_per_sender:
            self.metrics.syslog_errors.labels(CONNECTION_LIMIT).inc()
            now = time.monotonic()
            if now - self._limit_logged_at >= REFUSAL_LOG_INTERVAL:
                self._limit_logged_at = now
                log.warning("tcp: refused a connection from %s: %d open, %d from it (limits %d and %d; further "
                            "refusals are counted, logged once a minute)", host, len(self._connections), count,
                            self.max_connections, self.max_per_sender)
            return False
        self._per_sender[host] = count + 1
        self._connections.add(protocol)
        return True

    async def close_idle(self) -> None:
        """Every few seconds, close the connections silent for `idle_timeout` (runs until cancelled)."""
        if self.idle_timeout is None:
            return
        while True:
            await asyncio.sleep(min(5.0, self.idle_timeout / 4))
            oldest = time.monotonic() - self.idle_timeout
            for protocol in list(self._connections):
                if protocol.last_data < oldest:
                    self.metrics.syslog_errors.labels(IDLE_TIMEOUT).inc()
                    protocol.close()

    def forget(self, protocol: _TcpProtocol, host: str) -> None:
        """A connection closed (its held frames, if any, still wait in the paused set)."""
        if protocol in self._connections:
            self._connections.discard(protocol)
            left = self._per_sender.get(host, 1) - 1
            if left > 0:
                self._per_sender[host] = left
            else:
                self._per_sender.pop(host, None)

    def stop_reading(self) -> None:
        """Shutdown, first step: read nothing more from any TCP connection; frames already
        decoded still go to the queue as it drains (`has_backlog`)."""
        self.draining = True
        for protocol in list(self._connections):
            protocol.stop_reading()

    def has_backlog(self) -> bool:
        return bool(self._paused)

    async def wait_quiet(self, quiet: float, deadline: float) -> None:
        """Shutdown: let open connections deliver what they already sent (see `divert`).
        Returns when every connection has closed or stayed silent for `quiet` seconds, or at
        `deadline` (monotonic)."""
        while time.monotonic() < deadline:
            now = time.monotonic()
            if all(p.last_data < now - quiet for p in self._connections):
                return
            await asyncio.sleep(min(0.05, quiet))

    def take_backlog(self) -> list[Arrival]:
        """Shutdown, last step: every decoded frame a paused connection still holds."""
        held: list[Arrival] = []
        for protocol in self._paused:
            held.extend(protocol.take_backlog())
        self._paused = set()
        return held

    def close_connections(self) -> None:
        """Shutdown, last step: close every TCP connection."""
        for protocol in list(self._connections):
            protocol.close()

    def log_tls_failure(self, sender: str, exc: BaseException) -> None:
        """One warning a minute for failed TLS handshakes (each one is counted)."""
        now = time.monotonic()
        if now - self._tls_logged_at >= REFUSAL_LOG_INTERVAL:
            self._tls_logged_at = now
            log.warning("tls %s: handshake failed: %s (further failures are counted, logged once a minute)",
                        sender, exc or type(exc).__name__)

    def resume_when_drained(self) -> None:
        """Resume paused TCP readers once the queue is below its low-water mark."""
        if self._paused and self.queued <= self._low_water:
            paused, self._paused = self._paused, set()
            for protocol in paused:
                protocol.resume()


# --- TCP ----------------------------------------------------------------------------------


class _TcpProtocol(asyncio.Protocol):
    def __init__(self, intake: Intake, gate: Gate, tls: ssl.SSLContext | None = None) -> None:
        transport_name = "tcp" if tls is None else "tls"
        self._intake = intake
        self._gate = gate
        self._tls = tls
        self._name = transport_name
        self._decoder = FrameDecoder(intake.max_message, detect_tls=transport_name == "tcp")
        self._transport: asyncio.Transport | None = None
        self._sender = ""
        self._logged_error = False
        self._backlog: list[Arrival] = []  # lines read while the queue was full
        self._paused = False
        self._got_eof = False
        self._host = ""
        self.last_data = time.monotonic()
        self._counter = intake.metrics.syslog_messages.labels(transport_name)
        self._invalid = intake.metrics.syslog_errors.labels(INVALID_UTF8)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream server's; uvloop's transports have its methods without being its subclass.
        transport = cast(asyncio.Transport, transport)
        if self._transport is not None:  # start_tls hands the TLS transport over: same connection
            self._transport = transport
            return
        peer = transport.get_extra_info("peername")
        host = str(peer[0]) if isinstance(peer, tuple) else ""
        if not self._gate.admits(host) or not self._intake.admit(self, host):
            transport.close()
            return
        self._transport = transport
        self._sender = _address(peer)
        self._host = host
        if self._tls is not None:
            transport.pause_reading()  # nothing may be read before start_tls owns the bytes
            asyncio.get_running_loop().create_task(self._handshake(transport))

    async def _handshake(self, raw: asyncio.Transport) -> None:
        """Upgrade to TLS; a failed handshake is counted and logged once a minute, and closes."""
        assert self._tls is not None
        try:
            await asyncio.get_running_loop().start_tls(
                raw, self, self._tls, server_side=True, ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT
            )
        except (OSError, TimeoutError, ConnectionError) as exc:  # ssl.SSLError is an OSError
            self._intake.metrics.syslog_errors.labels(TLS_HANDSHAKE).inc()
            self._intake.log_tls_failure(self._sender, exc)
            raw.close()
            self._transport = None
            self._intake.forget(self, self._host)

    def data_received(self, data: bytes) -> None:
        self.last_data = time.monotonic()
        self._handle(*self._decoder.feed_texts(data))

    def eof_received(self) -> bool | None:
        self._eof()
        return None  # close our side too

    def _eof(self) -> None:
        if not self._got_eof:
            self._got_eof = True
            self._handle(*self._decoder.feed_texts(b""))

    def stop_reading(self) -> None:
        if self._transport is not None and not self._transport.is_closing() and not self._paused:
            self._transport.pause_reading()

    def take_backlog(self) -> list[Arrival]:
        held, self._backlog = self._backlog, []
        return held

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is None:  # refused by the gate, or its handshake failed
            return
        self._transport = None
        self._intake.forget(self, self._host)
        self._flush_backlog()  # what cannot be queued now waits in the intake's paused set

    def _handle(self, texts: list[str], errors: list[FramingError], invalid: int) -> None:
        for error in errors:
            self._intake.metrics.syslog_errors.labels(error.reason).inc()
            if not self._logged_error:
                self._logged_error = True
                log.warning("%s %s: framing error %s (%s); further errors on this connection are only counted",
                            self._name, self._sender, error.reason, error.detail)
            if error.reason == "tls_on_plain_port" and self._transport is not None:
                self._transport.close()
        if invalid:
            self._invalid.inc(invalid)
        if texts:
            self._backlog.append(Arrival(time.time(), texts, self._name, self._sender))
        self._flush_backlog()

    def _flush_backlog(self) -> None:
        backlog = self._backlog
        while backlog:
            arrival = backlog[0]
            sent = self._intake.put(arrival)
            if sent:
                self._counter.inc(sent)
            if sent < arrival.size:
                backlog[0] = arrival.tail(sent)
                break
            del backlog[0]
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


async def start_tcp(
    intake: Intake, host: str, port: int, gate: Gate | None = None, tls: ssl.SSLContext | None = None
) -> asyncio.Server:
    """A TCP listener, or a TLS one when `tls` is given (the handshake is ours: see module doc)."""
    loop = asyncio.get_running_loop()
    gate = gate or Gate((), None, "")
    return await loop.create_server(lambda: _TcpProtocol(intake, gate, tls), host, port, reuse_address=True)


# --- UDP ----------------------------------------------------------------------------------


class UdpListener:
    """A UDP listener that reads every datagram the socket holds each time it is readable
    (up to `UDP_BURST`), instead of one per event-loop turn as asyncio's datagram transport
    does, so a burst reaches the queue in one go and the pipeline takes it as one chunk.

    `get_extra_info("sockname")` and `close()` as on an asyncio transport; `socket` names the
    inode the kernel's drop counter is kept under (`metrics.UdpDropsCollector`)."""

    def __init__(self, sock: socket.socket, intake: Intake, gate: Gate) -> None:
        self._sock = sock
        self._intake = intake
        self._gate = gate
        self._counter = intake.metrics.syslog_messages.labels("udp")
        self._dropped = intake.metrics.syslog_errors.labels(QUEUE_FULL)
        self._oversize = intake.metrics.syslog_errors.labels("oversize")
        self._logged_drop = False
        self._senders: dict[object, str] = {}  # admitted sender's key -> its text (a refused one is not kept)
        self._receiver = receiver(sock, intake.max_message)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._readable)
        intake.pollers.append(self._readable)

    @property
    def socket(self) -> socket.socket:
        return self._sock

    def get_extra_info(self, name: str) -> object:
        return self._sock.getsockname() if name == "sockname" else None

    def close(self) -> None:
        if self._sock.fileno() >= 0:
            self._loop.remove_reader(self._sock.fileno())
            self._intake.pollers.remove(self._readable)
            self._sock.close()

    def _readable(self) -> bool:
        """Read what the socket holds, up to `UDP_BURST` datagrams, and queue them undecoded;
        False when it held none.

        A line-rate burst sends a datagram every few microseconds, and the kernel drops what
        its buffer cannot hold while the loop is busy elsewhere: so a read does little more
        than take the datagrams (`collector.udp_receive`: many a system call, the GIL kept;
        the sender's address text is cached, the decoding waits for the pipeline). Oversize
        and empty datagrams are recognised by their length, without framing the others."""
        receive = self._receiver.receive
        admits = self._gate.admits
        max_message = self._intake.max_message
        senders = self._senders
        payloads: list[bytes] = []
        from_: list[str] = []
        took = False
        for _ in range(UDP_BURST // BATCH):
            try:
                received, more = receive()
            except Unsupported as exc:  # (checked once: after it, this listener reads one at a time)
                log.warning("udp: %s; reading one datagram a system call", exc)
                self._receiver = receiver(self._sock, max_message, batch=False)
                receive = self._receiver.receive
                continue
            took = took or more
            for data, key in received:
                sender = senders.get(key)
                if sender is None:
                    address = self._receiver.address(key)
                    if not admits(str(address[0])):  # type: ignore[index]
                        continue
                    if len(senders) >= _GATE_CACHE:
                        senders.clear()
                    sender = senders[key] = _address(address)
                size = len(data)
                if size <= 2 or size > max_message or data[-1] == _LF:  # (a terminator to strip, or a bad size)
                    data = datagram_frame(data)
                    if not data:
                        continue
                    if len(data) > max_message:
                        self._oversize.inc()
                        continue
                payloads.append(data)
                from_.append(sender)
            if len(received) < BATCH:  # (the socket is empty, or held an error: the next read sees)
                break
        if not payloads:
            return took
        taken = self._intake.put(_Datagrams(time.time(), payloads, from_))
        if taken:
            self._counter.inc(taken)
        if taken < len(payloads):
            self._dropped.inc(len(payloads) - taken)
            if not self._logged_drop:
                self._logged_drop = True
                log.warning("udp: queue full, dropping datagrams (counted as %s)", QUEUE_FULL)
        return True


def _raise_receive_buffer(sock: socket.socket, size: int, name: str) -> None:
    """SO_RCVBUFFORCE when allowed (root or CAP_NET_ADMIN: not capped by net.core.rmem_max,
    as rsyslog's imudp does), else SO_RCVBUF (capped; best effort)."""
    force = getattr(socket, "SO_RCVBUFFORCE", _SO_RCVBUFFORCE if sys.platform == "linux" else None)
    if force is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, force, size)
            return
        except PermissionError:
            pass
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    except OSError as exc:
        log.warning("%s: cannot raise SO_RCVBUF to %d: %s", name, size, exc)


async def start_udp(
    intake: Intake, host: str, port: int, rcvbuf: int = DEFAULT_UDP_RECEIVE_BUFFER, gate: Gate | None = None
) -> UdpListener:
    """A UDP listener on (host, port) with the receive buffer raised to `rcvbuf` (best effort)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if rcvbuf:
            _raise_receive_buffer(sock, rcvbuf, f"udp {host}:{port}")
        sock.bind((host, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    got = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    if rcvbuf and got < rcvbuf:
        log.info("udp %s:%d: SO_RCVBUF is %d (asked %d; raise net.core.rmem_max)", host, port, got, rcvbuf)
    return UdpListener(sock, intake, gate or Gate((), None, ""))
