"""Wiring for `pairwatch serve`: store, registry, listeners, pipeline, HTTP; lifecycle; signals.

Start: open the store on its own thread and migrate it, then build the correlator (with the
last states and open incidents the store kept, so a restart does not forget that a server
is in partner-down), tally and metrics, start the pipeline, the listeners and the HTTP
server (state `serving`).

SIGTERM / SIGINT (state `draining`): stop accepting (close the listening sockets and the
UDP endpoints), close open TCP connections, let the pipeline drain the queue and flush
every batch, close the store; exit 0 when that finished within `SHUTDOWN_TIMEOUT`.

Not yet (see issue 4): TLS listeners, CIDR allow-lists, the disk spool.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Final

from prometheus_client import CollectorRegistry

from collector import __version__
from collector.config import Config
from collector.correlator import Correlator
from collector.framing import DEFAULT_MAX_MESSAGE, ERROR_REASONS
from collector.http import ApiContext, start_http
from collector.listeners import DEFAULT_QUEUE_SIZE, DEFAULT_UDP_RCVBUF, QUEUE_FULL, Intake, start_tcp, start_udp
from collector.metrics import FleetTally, PairCollector, ServiceMetrics
from collector.pipeline import Pipeline
from collector.store import Store, StoreError, StoreTarget, StoreThread

__all__ = ["DEFAULT_HTTP", "DEFAULT_SYSLOG_PORT", "Endpoint", "Lifecycle", "Service", "ServeOptions"]

log = logging.getLogger("pairwatch.service")

DEFAULT_SYSLOG_PORT: Final = 5514
DEFAULT_HTTP_PORT: Final = 9874
# HTTP default port. The Prometheus project keeps default ports for exporters in the
# 9100-9999 range on its wiki page "Default port allocations"
# (https://github.com/prometheus/prometheus/wiki/Default-port-allocations). A 2023 note
# (utcc.utoronto.ca/~cks/.../PrometheusExportersFixedPorts, quoting Scott Laird) says the
# range is now fully listed, and the copies of the page available while this was written
# were old (2016), so 9874 is PROVISIONAL: check the live page and register pairwatch there
# before a release. Always overridable with --http.
DEFAULT_HTTP: Final = ("127.0.0.1", DEFAULT_HTTP_PORT)
SHUTDOWN_TIMEOUT: Final = 9.0


class Lifecycle(enum.Enum):
    STARTING = "starting"
    SERVING = "serving"
    DRAINING = "draining"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ServeOptions:
    store: StoreTarget
    udp: tuple[Endpoint, ...] = ()
    tcp: tuple[Endpoint, ...] = ()
    http: Endpoint = field(default_factory=lambda: Endpoint(*DEFAULT_HTTP))
    queue_size: int = DEFAULT_QUEUE_SIZE
    udp_rcvbuf: int = DEFAULT_UDP_RCVBUF
    max_message: int = DEFAULT_MAX_MESSAGE


class Service:
    def __init__(self, config: Config, options: ServeOptions) -> None:
        self.config = config
        self.options = options
        self.state = Lifecycle.STARTING
        self.migrated = False
        self._stop = asyncio.Event()

    def request_stop(self) -> None:
        self._stop.set()

    def ready(self) -> bool:
        return self.state is Lifecycle.SERVING and self.migrated and self.pipeline.store_ok

    async def run(self) -> int:
        """Serve until SIGTERM/SIGINT; the exit code."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        thread = StoreThread()
        store: Store | None = None
        try:
            try:
                store = await thread.call(Store.open, self.options.store)
                await thread.call(store.migrate)
            except StoreError as exc:  # the message names the store (`open URL: ...`)
                print(f"pairwatch serve: store: {exc}", file=sys.stderr, flush=True)
                return 1
            self.migrated = True
            return await self._serve(thread, store)
        finally:
            if store is not None:
                try:
                    await thread.call(store.close)
                except StoreError as exc:
                    log.warning("store close: %s", exc)
            thread.close()
            self.state = Lifecycle.STOPPED
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    async def _serve(self, thread: StoreThread, store: Store) -> int:
        opts = self.options
        registry = CollectorRegistry()
        metrics = ServiceMetrics(registry, __version__, error_reasons=(*ERROR_REASONS, QUEUE_FULL))
        tally = FleetTally(strip_domain=self.config.hosts.strip_domain)
        correlator = Correlator(self.config)
        states, incidents = await self._stored_state(thread, store)
        correlator.restore(states, incidents, time.time())
        if states or incidents:
            log.info("restored %d server states and %d open incidents from the store", len(states), len(incidents))
        queue: asyncio.Queue = asyncio.Queue(maxsize=opts.queue_size)  # type: ignore[type-arg]
        intake = Intake(queue, metrics, opts.max_message)
        self.pipeline = pipeline = Pipeline(intake, correlator, tally, metrics, thread, store)
        registry.register(PairCollector(pipeline.pairs_snapshot, tally.snapshot))
        consumer = asyncio.create_task(pipeline.run(), name="pairwatch-pipeline")

        servers: list[asyncio.Server] = []
        datagrams: list[asyncio.DatagramTransport] = []
        try:
            for ep in opts.udp:
                datagrams.append(await start_udp(intake, ep.host, ep.port, opts.udp_rcvbuf))
                log.info("listening on udp %s", ep)
            for ep in opts.tcp:
                servers.append(await start_tcp(intake, ep.host, ep.port))
                log.info("listening on tcp %s", ep)
            ctx = ApiContext(registry, pipeline.pairs_snapshot, lambda: pipeline.incidents, self.ready, thread, store)
            http = await start_http(ctx, opts.http.host, opts.http.port)
            log.info("http on %s", opts.http)
        except OSError as exc:
            print(f"pairwatch serve: cannot listen: {exc}", file=sys.stderr, flush=True)
            for server in servers:
                server.close()
            for transport in datagrams:
                transport.close()
            pipeline.stop()
            await consumer
            return 1

        self.state = Lifecycle.SERVING
        log.info("serving (pairwatch %s)", __version__)
        stop_wait = asyncio.create_task(self._stop.wait())
        done, _ = await asyncio.wait({stop_wait, consumer}, return_when=asyncio.FIRST_COMPLETED)
        if consumer in done:  # the pipeline died: a bug; report it and stop
            stop_wait.cancel()
            exc = consumer.exception()
            log.error("pipeline stopped: %r", exc)
            for server in servers:
                server.close()
            for transport in datagrams:
                transport.close()
            http.close()
            return 1

        self.state = Lifecycle.DRAINING
        log.info("draining")
        for server in servers:
            server.close()
        for transport in datagrams:
            transport.close()
        intake.stop_reading()
        pipeline.stop()
        code = 0
        try:
            await asyncio.wait_for(asyncio.shield(consumer), SHUTDOWN_TIMEOUT)
        except TimeoutError:
            log.error("drain did not finish within %.0f s; %d messages still queued", SHUTDOWN_TIMEOUT, queue.qsize())
            code = 1
        intake.close_connections()
        http.close()
        log.info("stopped after %d messages", pipeline.processed)
        return code

    async def _stored_state(self, thread: StoreThread, store: Store) -> tuple[list, list]:  # type: ignore[type-arg]
        """What the last run left: the last state per server and side, and the open incidents."""
        try:
            return await thread.call(store.last_states), await thread.call(store.open_incidents)
        except StoreError as exc:
            log.warning("store: cannot read the last states, starting without them: %s", exc)
            return [], []


def run(config: Config, options: ServeOptions) -> int:
    async def main() -> int:
        return await Service(config, options).run()

    from collector.listeners import uvloop

    if uvloop is None:
        return asyncio.run(main())
    return uvloop.run(main())  # type: ignore[no-any-return]  # pragma: no cover - not installed here
