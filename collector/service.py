"""Wiring for `pairwatch serve`: store, registry, listeners, pipeline, HTTP; lifecycle; signals.

Start: open the store on its own thread and migrate it, then build the correlator (with the
last states and open incidents the store kept, so a restart does not forget that a server
is in partner-down), tally and metrics, start the pipeline, the listeners and the HTTP
server (state `serving`).

SIGTERM / SIGINT (state `draining`): stop accepting (close the listening sockets and the
UDP endpoints); read what open TCP connections already sent until each is quiet (TCP has no
acknowledgement: bytes left unread would be lost); let the pipeline work through the queue;
when the time for that is up, spill the lines it could not process, raw, to the spool's
`received/` directory (the next start processes them first, before it listens); let the
writer flush every batch or spool it; close the store. Exit 0 within `serve.shutdown_timeout` (9 s by default).

Everything tunable comes from `Config.serve` and `Config.store` (flags already applied by
the CLI).
"""

from __future__ import annotations

import asyncio
import enum
import gc
import logging
import os
import signal
import ssl
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any, Final

from prometheus_client import CollectorRegistry, Gauge, ProcessCollector

from collector import __version__
from collector.config import Config, Listener
from collector.correlator import Correlator
from collector.framing import ERROR_REASONS
from collector.http import ApiContext, start_http
from collector.listeners import (
    LISTENER_ERRORS,
    Gate,
    Intake,
    Received,
    UdpListener,
    listener_label,
    start_tcp,
    start_udp,
)
from collector.metrics import PairCollector, ServiceMetrics
from collector.pipeline import PIPELINE_ERRORS, Pipeline
from collector.spool import Spool, SpoolError, spool_directory
from collector.store import COLUMNS, Store
from collector.store_errors import StoreError
from collector.store_thread import StoreThread
from collector.store_url import StoreTarget
from collector.tally import FleetTally
from collector.udp_drops import UdpDropsCollector
from collector.writer import StoreWriter

__all__ = ["Lifecycle", "Service", "run"]

log = logging.getLogger("pairwatch.service")

READ_SHARE: Final = 0.25
"""Of the shutdown time, at most this is spent reading what open connections already sent."""
DRAIN_QUIET: Final = 0.3
"""A connection silent this long has delivered what it sent before the shutdown."""
WRITER_SHARE: Final = 0.35
"""Of the shutdown time, what is kept for the writer (flush, or spool what the store refuses);
lines the pipeline has not processed by then are spilled raw to the spool's `received/`."""
OPEN_TIMEOUT: Final = 10.0
ENGINE_MEMORY_METRIC: Final = "pairwatch_store_engine_memory_bytes"
MEMORY_LIMIT_METRIC: Final = "pairwatch_memory_limit_bytes"
ENGINE_MEMORY_INTERVAL: Final = 10.0
"""Seconds between two readings of the embedded engine's memory (`pairwatch_store_engine_memory_bytes`)."""
"""At start, how long the store may take to open before the service serves without it (the
recovery keeps trying in the background)."""
SPILL_GRACE: Final = 30.0
"""How long past the shutdown time spilling unprocessed lines may take (a disk write of at most
the queue and what was read at shutdown) before the service gives up on them."""
RECEIVED: Final = "received"
SPILL_ROWS: Final = 10_000


class Lifecycle(enum.Enum):
    STARTING = "starting"
    SERVING = "serving"
    DRAINING = "draining"
    STOPPED = "stopped"


class Service:
    def __init__(self, config: Config, store: StoreTarget, tls: ssl.SSLContext | None = None,
                 api_token: str | None = None) -> None:
        self.config = config
        self.target = store
        self.tls = tls
        self.api_token = api_token
        self.state = Lifecycle.STARTING
        self.writer: StoreWriter | None = None  # (set by `run`, read by /readyz)
        self._stop = asyncio.Event()

    def request_stop(self) -> None:
        self._stop.set()

    def ready(self) -> bool:
        return self.state is Lifecycle.SERVING and self.writer is not None and self.writer.ok

    async def run(self) -> int:
        """Serve until SIGTERM/SIGINT; the exit code."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        self.thread = thread = StoreThread()
        try:
            try:
                directory = spool_directory(self.config.serve.spool_directory, self.config.store.url)
                spool = Spool(directory, self.config.serve.spool_max_bytes)
                received = Spool(os.path.join(directory, RECEIVED), self.config.serve.spool_max_bytes)
            except SpoolError as exc:
                print(f"pairwatch serve: {exc}", file=sys.stderr, flush=True)
                return 1
            store: Store | None = None
            try:  # a server that accepts but never answers must not keep the listeners closed
                store = await asyncio.wait_for(asyncio.shield(thread.call(self._open_store)), OPEN_TIMEOUT)
            except (TimeoutError, StoreError) as exc:  # a StoreError names the store (`open URL: ...`)
                problem = (exc if isinstance(exc, StoreError)
                           else f"open {self.target}: no answer in {OPEN_TIMEOUT:.0f} s")
                if self.target.kind == "embedded" and isinstance(exc, StoreError):  # local: waiting changes nothing
                    print(f"pairwatch serve: store: {problem}", file=sys.stderr, flush=True)
                    return 1
                log.error("store: %s; serving anyway: batches wait in memory and in the spool %s until it "
                          "answers (/readyz says 503 meanwhile)", problem, spool.directory)
            return await self._serve(thread, store, spool, received)
        finally:
            store = self.writer.store if self.writer is not None else None
            if store is not None:
                try:
                    await thread.call(store.close)
                except StoreError as exc:
                    log.warning("store close: %s", exc)
            thread.close(wait=False)  # an insert stuck on a store that does not answer must not hold the exit
            self.state = Lifecycle.STOPPED
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    def _open_store(self) -> Store:
        """Open and migrate the store (on the store's thread); StoreError when it cannot."""
        store = Store.open(self.target, messages_ttl_days=self.config.store.messages_ttl_days,
                           states_ttl_days=self.config.store.states_ttl_days,
                           memory_limit=self.config.store.memory_limit)
        try:
            store.migrate()
        except StoreError:
            store.close()
            raise
        return store

    async def _serve(self, thread: StoreThread, store: Store | None, spool: Spool, received: Spool) -> int:
        opts = self.config.serve
        registry = CollectorRegistry()
        labels = sorted({listener_label(lis.transport, lis.endpoint.port) for lis in opts.listeners})
        metrics = ServiceMetrics(registry, __version__,
                                 error_reasons=(*ERROR_REASONS, *LISTENER_ERRORS, *PIPELINE_ERRORS), listeners=labels)
        tally = FleetTally(strip_domain=self.config.hosts.strip_domain)
        correlator = Correlator(self.config)
        states, incidents = await self._stored_state(thread, store) if store is not None else ([], [])
        correlator.restore(states, incidents, time.time())
        if states or incidents:
            log.info("restored %d server states and %d open incidents from the store", len(states), len(incidents))
        intake = Intake(metrics, opts.max_message, queue_size=opts.queue_size, max_connections=opts.max_connections,
                        max_per_sender=opts.max_connections_per_sender, idle_timeout=opts.idle_timeout)
        idle_sweeper = asyncio.create_task(intake.close_idle(), name="pairwatch-idle-connections")
        self.writer = writer = StoreWriter(
            COLUMNS, thread, store, self._open_store, spool, metrics,
            batch_rows=opts.batch_rows, flush_interval=opts.batch_interval, memory_rows=opts.memory_rows,
            between=intake.poll,
        )
        writer.start()
        pipeline = Pipeline(intake, correlator, tally, metrics, writer, strip_domain=self.config.hosts.strip_domain)
        replayed = await pipeline.replay_received(spilled_records(received))
        if replayed:
            log.info("processed %d lines the last run received but spilled at shutdown", replayed)
        registry.register(PairCollector(pipeline.pairs_snapshot, tally.snapshot))
        # the process's own figures, beside the pairs' (not in DESIGN.md's pair contract): resident
        # memory and CPU (prometheus_client's standard process_* metrics), the embedded engine's memory
        ProcessCollector(registry=registry)
        engine_memory = Gauge(ENGINE_MEMORY_METRIC, "Memory the embedded store's engine tracks (its MemoryTracking).",
                              registry=registry)
        Gauge(MEMORY_LIMIT_METRIC, "The process's memory budget ([store] memory_limit).",
              registry=registry).set(self.config.store.memory_limit)
        engine_watch = asyncio.create_task(self._watch_engine_memory(thread, writer, engine_memory),
                                           name="pairwatch-engine-memory")
        consumer = asyncio.create_task(pipeline.run(), name="pairwatch-pipeline")

        servers: list[asyncio.Server] = []
        datagrams: list[UdpListener] = []
        udp_sockets: list[tuple[str, int]] = []

        def close_listeners() -> None:
            """Accept no more connections or datagrams (open connections stay)."""
            for server in servers:
                server.close()
            for transport in datagrams:
                transport.close()

        try:
            for lis in opts.listeners:
                gate = self._gate(lis, metrics)
                ep = lis.endpoint
                if lis.transport == "udp":
                    transport = await start_udp(intake, ep.host, ep.port, opts.udp_receive_buffer, gate)
                    datagrams.append(transport)
                    inode = os.fstat(transport.socket.fileno()).st_ino
                    udp_sockets.append((listener_label("udp", ep.port), inode))
                else:
                    servers.append(await start_tcp(intake, ep.host, ep.port, gate,
                                                   self.tls if lis.transport == "tls" else None))
                log.info("listening on %s%s", lis, " (allowlist)" if lis.allow or opts.allow else "")
            registry.register(UdpDropsCollector(udp_sockets))
            ctx = ApiContext(registry, pipeline.pairs_snapshot, lambda: pipeline.incidents, self.ready, thread,
                             lambda: writer.store, self.api_token)
            http = await start_http(ctx, opts.http.host, opts.http.port)
            log.info("http on %s", opts.http)
        except OSError as exc:
            print(f"pairwatch serve: cannot listen: {exc}", file=sys.stderr, flush=True)
            close_listeners()
            pipeline.stop()
            idle_sweeper.cancel()
            engine_watch.cancel()
            await writer.close(time.monotonic() + opts.shutdown_timeout)
            return 1

        settle_garbage_collector()
        self.state = Lifecycle.SERVING
        log.info("serving (pairwatch %s)", __version__)
        stop_wait = asyncio.create_task(self._stop.wait())
        done, _ = await asyncio.wait({stop_wait, consumer}, return_when=asyncio.FIRST_COMPLETED)
        if consumer in done:  # the pipeline died: a bug; report it and stop
            stop_wait.cancel()
            error = consumer.exception()
            log.error("pipeline stopped: %r", error)
            close_listeners()
            await http.close()
            idle_sweeper.cancel()
            engine_watch.cancel()
            return 1

        self.state = Lifecycle.DRAINING
        log.info("draining")
        deadline = time.monotonic() + opts.shutdown_timeout
        close_listeners()
        # what senders already wrote is read (TCP has no acknowledgements: unread bytes would be lost)
        intake.divert()
        pipeline.hold()
        await intake.wait_quiet(DRAIN_QUIET, time.monotonic() + opts.shutdown_timeout * READ_SHARE)
        intake.stop_reading()
        read_meanwhile = intake.take_diverted()
        spilled = 0

        async def spill(lines: list[Received]) -> None:
            nonlocal spilled
            for start in range(0, len(lines), SPILL_ROWS):
                part = lines[start:start + SPILL_ROWS]
                await asyncio.to_thread(received.append, RECEIVED, uuid.uuid4().hex, [list(r) for r in part])
                spilled += len(part)

        pipeline.stop(deadline - opts.shutdown_timeout * WRITER_SHARE, spill, read_meanwhile)
        code = 0
        try:  # the pipeline stops by itself at the spill time; spilling is bounded work, so wait for it
            await asyncio.wait_for(asyncio.shield(consumer), max(0.0, deadline - time.monotonic()) + SPILL_GRACE)
        except (TimeoutError, SpoolError) as exc:  # stuck, or the spool is full or unusable
            log.error("drain did not finish (%s); %d messages still queued are lost", exc or "timeout", intake.queued)
            consumer.cancel()
            await asyncio.gather(consumer, return_exceptions=True)
            code = 1
        if spilled:
            log.warning("%d received lines not processed in time are kept in the spool for the next start", spilled)
        if await writer.close(deadline):
            code = 1
        idle_sweeper.cancel()
        engine_watch.cancel()
        await http.close()
        log.info("stopped after %d messages", pipeline.processed)
        return code

    def _gate(self, listener: Listener, metrics: ServiceMetrics) -> Gate:
        """The listener's own allowlist, else the serve-wide one (empty: any sender)."""
        label = listener_label(listener.transport, listener.endpoint.port)
        return Gate(listener.allow or self.config.serve.allow, metrics.senders_refused.labels(label), str(listener))

    async def _watch_engine_memory(self, thread: StoreThread, writer: StoreWriter, gauge: Gauge) -> None:
        """Read the embedded engine's memory every `ENGINE_MEMORY_INTERVAL` for its gauge."""
        while True:
            store = writer.store
            if store is not None:
                try:
                    used = await thread.call(store.engine_memory)
                except StoreError as exc:
                    log.debug("engine memory: %s", exc)
                else:
                    if used is not None:
                        gauge.set(used)
            await asyncio.sleep(ENGINE_MEMORY_INTERVAL)

    async def _stored_state(self, thread: StoreThread, store: Store) -> tuple[list, list]:
        """What the last run left: the last state per server and side, and the open incidents."""
        try:
            return await thread.call(store.last_states), await thread.call(store.open_incidents)
        except StoreError as exc:
            log.warning("store: cannot read the last states, starting without them: %s", exc)
            return [], []


GC_THRESHOLDS: Final = (50_000, 20, 100)
"""Young-generation collections every 50,000 net allocations instead of 700. Every line
allocates a dozen container objects and store batches keep them alive for a second, so
with the defaults the collector ran every few dozen lines and kept promoting batches
into the old generation, whose full passes walk everything, and the service stood still
while they did (the figures: bench/README.md)."""


def settle_garbage_collector() -> None:
    """Once serving: move everything built at start (modules, the store client, restored
    state) out of the collector's sight with `gc.freeze`, and collect less often."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def spilled_records(spool: Spool) -> Iterator[list[list[Any]]]:
    """The spilled lines' records, oldest first; each popped once the caller took the next."""
    while (record := spool.peek()) is not None:
        yield record.rows
        spool.pop()


def run(config: Config, store: StoreTarget, tls: ssl.SSLContext | None = None, api_token: str | None = None) -> int:
    service = Service(config, store, tls, api_token)

    from collector.listeners import uvloop

    code = asyncio.run(service.run()) if uvloop is None else uvloop.run(service.run())
    if service.thread.busy():
        # A store call that never returns (a server that accepts and never answers) would hold
        # the interpreter's exit until its timeout; everything worth keeping is on disk by now.
        log.warning("the store did not answer its last call; exiting without waiting for it")
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
