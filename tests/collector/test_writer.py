"""The store writer against the real (session) store: what it sends, and when."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from collector import store as store_module
from collector import writer as writer_module
from collector.metrics import ServiceMetrics
from collector.rows import line_rows
from collector.spool import Spool
from collector.store import COLUMNS, MESSAGES
from collector.store_errors import StoreError
from collector.writer import StoreWriter
from parsers import parse_line
from tests.conftest import OnThread

pytestmark = pytest.mark.integration


def _no_reopen() -> Any:
    raise StoreError("not reopened in this test")


def test_rows_behind_an_insert_in_flight_go_when_it_ends(store: OnThread, store_thread: Any, tmp_path: Path) -> None:
    """Three batches' worth of rows and a single `flush_due`: each insert, when it ends, sends
    the batch that waited behind it, without another `flush_due` and long before the flush
    interval (the pipeline, caught up, may not call again for that long). Meanwhile
    `next_flush` names no past instant (the pipeline would wake at once, again and again)."""
    registry = CollectorRegistry()
    metrics = ServiceMetrics(registry, "test")
    writer = StoreWriter(COLUMNS, store_thread, store.obj, _no_reopen, Spool(str(tmp_path / "spool"), 2**20), metrics,
                         batch_rows=100, flush_interval=60.0, memory_rows=10_000)
    host = f"chain-{uuid.uuid4().hex[:8]}"
    for i in range(300):
        text = f"<30>Mar  3 08:15:02 {host} dhcpd: DHCPACK on 198.18.2.1 to 00:00:5e:00:53:01 via eth0 #{i}"
        writer.add(MESSAGES, line_rows(parse_line(text), id=i, received_at=time.time(), raw=text, transport="tcp")[0])

    async def run() -> None:
        now = time.time()
        await writer.flush_due(now)  # the first batch goes; 200 rows wait behind it
        assert writer.next_flush(now) >= now + 59
        started = time.monotonic()
        while len(store.timeline([host], limit=1000)) < 300:
            assert time.monotonic() - started < 30, "the waiting batches were not sent"
            await asyncio.sleep(0.05)
        # (the rows can be read before the loop has run the end of the insert that counts them)
        while registry.get_sample_value("pairwatch_store_rows_total", {"table": MESSAGES}) != 300:
            assert time.monotonic() - started < 30, "the last insert was not counted"
            await asyncio.sleep(0.01)

    asyncio.run(run())


def test_chunks_of_rows_make_batches_of_batch_rows_in_order(store: OnThread, store_thread: Any, tmp_path: Path) -> None:
    """The pipeline adds a chunk of rows at a time, as rows or by column; batches still hold
    `batch_rows` rows (a chunk is split where a batch ends), and the store gets every row
    once, in order."""
    registry = CollectorRegistry()
    metrics = ServiceMetrics(registry, "test")
    writer = StoreWriter(COLUMNS, store_thread, store.obj, _no_reopen, Spool(str(tmp_path / "spool"), 2**20), metrics,
                         batch_rows=100, flush_interval=60.0, memory_rows=10_000)
    host = f"chunks-{uuid.uuid4().hex[:8]}"
    texts = [f"<30>Mar  3 08:15:02 {host} dhcpd: DHCPACK on 198.18.2.1 to 00:00:5e:00:53:01 via eth0 #{i}"
             for i in range(250)]
    rows = [line_rows(parse_line(text), id=i, received_at=1_700_000_000 + i, raw=text, transport="tcp")[0]
            for i, text in enumerate(texts)]
    stored = lambda: registry.get_sample_value("pairwatch_store_rows_total", {"table": MESSAGES})  # noqa: E731

    async def run() -> None:
        for start, end in ((0, 70), (70, 140), (140, 170)):
            if start == 70:  # (as the pipeline adds the fast lines' rows: by column)
                writer.add_columns(MESSAGES, tuple(zip(*rows[start:end], strict=True)))
                writer.add_columns(MESSAGES, ())
            else:
                writer.add_rows(MESSAGES, rows[start:end])
        await writer.flush_due(time.time())  # 100 go (the 2nd chunk is cut); 70 wait, not due
        started = time.monotonic()
        while stored() < 100:
            assert time.monotonic() - started < 30, "the first batch was not sent"
            await asyncio.sleep(0.02)
        assert stored() == 100
        writer.add_rows(MESSAGES, rows[170:])
        await writer.flush_due(time.time())  # the 70 and 30 of the new chunk; 50 wait
        await writer.close(time.monotonic() + 30)  # the 50 go too

    asyncio.run(run())
    assert [r["message"].rsplit("#", 1)[1] for r in store.timeline([host], limit=1000)] == [str(i) for i in range(250)]
    assert registry.get_sample_value("pairwatch_store_rows_total", {"table": MESSAGES}) == 250
    assert registry.get_sample_value("pairwatch_store_insert_duration_seconds_count") == 3


def _acks(host: str, n: int) -> list[tuple[Any, ...]]:
    """`n` messages rows of `host`, numbered in their text and received one a second."""
    texts = [f"<30>Mar  3 08:15:02 {host} dhcpd: DHCPACK on 198.18.2.1 to 00:00:5e:00:53:01 via eth0 #{i}"
             for i in range(n)]
    return [line_rows(parse_line(text), id=i, received_at=1_700_000_000 + i, raw=text, transport="tcp")[0]
            for i, text in enumerate(texts)]


def _numbers(store: OnThread, host: str) -> list[int]:
    return [int(r["message"].rsplit("#", 1)[1]) for r in store.timeline([host], limit=10_000)]


def test_a_burst_is_encoded_beside_the_inserts_and_stored_once_in_order(
    store: OnThread, store_thread: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five full batches at once: every messages batch is encoded on the event loop's thread
    (the GIL's other users would take it at every system call of that thread), each after the
    first while the store's thread inserts the one before, with `between` (the service's UDP
    reads) called after each column joined and each converted; the Arrow stream, which pyarrow
    writes without the GIL, is written on the store's thread; and the store gets every row
    once, in order."""
    threads: list[str] = []
    beside: list[bool] = []  # whether an insert was in flight as each batch was encoded
    encode = writer_module.arrow_messages
    stream = store_module._arrow_stream
    streamed: list[str] = []

    def recorded(*args: Any) -> Any:
        threads.append(threading.current_thread().name)
        beside.append(writer._tables[MESSAGES].sending is not None)
        return encode(*args)

    def written(table: Any) -> memoryview:
        streamed.append(threading.current_thread().name)
        return stream(table)

    monkeypatch.setattr(writer_module, "arrow_messages", recorded)
    monkeypatch.setattr(store_module, "_arrow_stream", written)
    registry = CollectorRegistry()
    between: list[str] = []
    writer = StoreWriter(COLUMNS, store_thread, store.obj, _no_reopen, Spool(str(tmp_path / "spool"), 2**20),
                         ServiceMetrics(registry, "test"), batch_rows=100, flush_interval=60.0, memory_rows=10_000,
                         between=lambda: between.append(threading.current_thread().name))
    host = f"burst-{uuid.uuid4().hex[:8]}"
    rows = _acks(host, 500)

    async def run() -> None:
        for start in range(0, 500, 50):  # (chunks by column, as the pipeline adds the fast lines' rows)
            writer.add_columns(MESSAGES, tuple(zip(*rows[start:start + 50], strict=True)))
        await writer.flush_due(time.time())
        await writer.close(time.monotonic() + 30)

    asyncio.run(run())
    assert _numbers(store, host) == list(range(500))
    assert registry.get_sample_value("pairwatch_store_rows_total", {"table": MESSAGES}) == 500
    assert threads == [threading.main_thread().name] * 5
    assert beside == [False, True, True, True, True]
    assert between == [threading.main_thread().name] * (5 * 2 * len(COLUMNS[MESSAGES]))
    assert streamed == [store_thread.submit(lambda: threading.current_thread().name).result()] * 5


class _FailsFirst:
    """The real store, whose first insert fails as a store gone for a moment would."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.target = store.target
        self.failed = False

    def insert(self, *args: Any, **kwargs: Any) -> int:
        if not self.failed:
            self.failed = True
            raise StoreError("gone for a moment")
        return self._store.insert(*args, **kwargs)

    def hold_merges(self, held: bool) -> None:
        self._store.hold_merges(held)


def test_a_failed_insert_keeps_the_batch_taken_to_follow_it_in_order(store: OnThread, store_thread: Any,
                                                                      tmp_path: Path) -> None:
    """The first insert fails while the batch after it is being encoded: both go to the
    backlog, in their order, the recovery writes them, and every row is stored once."""
    registry = CollectorRegistry()
    writer = StoreWriter(COLUMNS, store_thread, _FailsFirst(store.obj), _no_reopen,  # type: ignore[arg-type]
                         Spool(str(tmp_path / "spool"), 2**20), ServiceMetrics(registry, "test"),
                         batch_rows=100, flush_interval=60.0, memory_rows=10_000)
    host = f"fails-{uuid.uuid4().hex[:8]}"
    rows = _acks(host, 300)

    async def run() -> None:
        writer.add_columns(MESSAGES, tuple(zip(*rows, strict=True)))
        await writer.flush_due(time.time())  # 100 go (and fail), the next 100 are taken behind them
        started = time.monotonic()
        while not writer.degraded:
            assert time.monotonic() - started < 30, "the failed insert was not noticed"
            await asyncio.sleep(0.01)
        await writer.close(time.monotonic() + 30)  # the recovery writes the backlog; the last 100 go

    asyncio.run(run())
    assert _numbers(store, host) == list(range(300))
    assert registry.get_sample_value("pairwatch_store_insert_failures_total") == 1


class _Held:
    """The real store, whose inserts wait until the test lets them go on; what the writer
    asked of it, in order, is in `calls`."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.target = store.target
        self.go = threading.Event()
        self.calls: list[str] = []

    def insert(self, *args: Any, **kwargs: Any) -> int:
        self.calls.append("insert")  # (on the store's thread: in the order the calls run)
        assert self.go.wait(30), "the test did not let the insert go on"
        return self._store.insert(*args, **kwargs)

    def hold_merges(self, held: bool) -> None:
        self.calls.append("hold" if held else "let go")
        self._store.hold_merges(held)


def test_a_batch_that_fills_behind_an_insert_is_encoded_before_that_insert_ends(
    store: OnThread, store_thread: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pipeline adds a chunk at a time while an insert runs: once a full batch waits
    behind it, the next `flush_due` takes it and starts its encoding, so the encoding runs
    beside the engine's work instead of after it. Every row is still stored once, in order."""
    encoded = threading.Semaphore(0)
    encode = writer_module.arrow_messages

    def counted(*args: Any) -> Any:
        body = encode(*args)
        encoded.release()
        return body

    monkeypatch.setattr(writer_module, "arrow_messages", counted)
    held = _Held(store.obj)
    registry = CollectorRegistry()
    writer = StoreWriter(COLUMNS, store_thread, held, _no_reopen,  # type: ignore[arg-type]
                         Spool(str(tmp_path / "spool"), 2**20), ServiceMetrics(registry, "test"),
                         batch_rows=100, flush_interval=60.0, memory_rows=10_000)
    host = f"held-{uuid.uuid4().hex[:8]}"
    rows = _acks(host, 250)

    async def run() -> None:
        writer.add_columns(MESSAGES, tuple(zip(*rows[:100], strict=True)))
        await writer.flush_due(time.time())  # the first batch is encoded, and its insert waits
        assert await asyncio.to_thread(encoded.acquire, timeout=30)
        for start in (100, 160, 220):  # (chunks of 60 and 30 rows: the batch fills with the second)
            writer.add_columns(MESSAGES, tuple(zip(*rows[start:start + 60], strict=True)))
            await writer.flush_due(time.time())
        assert await asyncio.to_thread(encoded.acquire, timeout=30), "the batch behind the insert was not encoded"
        assert not registry.get_sample_value("pairwatch_store_rows_total", {"table": MESSAGES})  # (none stored yet)
        held.go.set()
        await writer.close(time.monotonic() + 30)

    asyncio.run(run())
    assert _numbers(store, host) == list(range(250))
    assert registry.get_sample_value("pairwatch_store_rows_total", {"table": MESSAGES}) == 250


@pytest.mark.parametrize("cap", [60, 2])
def test_merges_are_held_while_the_store_is_behind(
    store: OnThread, store_thread: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cap: int
) -> None:
    """A full batch waiting behind an insert: the store is behind, and its merges are held
    until it has kept up for `MERGE_LINGER` seconds (at most `MERGE_HOLD_INSERTS` inserts; then
    not again until it has kept up). A store that keeps up never has them held."""
    monkeypatch.setattr(writer_module, "MERGE_HOLD_INSERTS", cap)
    clock = [1_000.0]
    held = _Held(store.obj)
    writer = StoreWriter(COLUMNS, store_thread, held, _no_reopen,  # type: ignore[arg-type]
                         Spool(str(tmp_path / "spool"), 2**20), ServiceMetrics(CollectorRegistry(), "test"),
                         batch_rows=100, flush_interval=60.0, memory_rows=10_000, clock=lambda: clock[0])
    host = f"merges-{uuid.uuid4().hex[:8]}"
    rows = _acks(host, 600)

    def calls() -> list[str]:
        store_thread.submit(lambda: None).result(timeout=30)  # (what was asked of the store has run)
        return held.calls

    async def run() -> None:
        writer.add_columns(MESSAGES, tuple(zip(*rows[:100], strict=True)))
        await writer.flush_due(clock[0])  # an insert, waiting
        for start in range(100, 500, 100):  # four more batches behind it
            writer.add_columns(MESSAGES, tuple(zip(*rows[start:start + 100], strict=True)))
            await writer.flush_due(clock[0])
        held.go.set()
        while writer._tables[MESSAGES].inflight is not None:
            await asyncio.sleep(0.01)
        assert calls().count("let go") == (cap < 5)  # kept up now, but not for long yet
        writer.add_columns(MESSAGES, tuple(zip(*rows[500:], strict=True)))  # a batch alone: kept up
        await writer.flush_due(clock[0] + writer_module.MERGE_LINGER / 2)
        while writer._tables[MESSAGES].inflight is not None:
            await asyncio.sleep(0.01)
        assert calls().count("let go") == (cap < 5)
        await writer.flush_due(clock[0] + writer_module.MERGE_LINGER)  # kept up long enough
        assert calls().count("let go") == 1
        await writer.close(time.monotonic() + 30)

    asyncio.run(run())
    assert _numbers(store, host) == list(range(600))
    assert calls().count("hold") == 1 and held.calls.index("hold") <= 1  # (before the second insert)
    rest = [call for call in held.calls if call != "hold"]
    if cap == 60:  # let go once the store kept up
        assert rest == ["insert"] * 6 + ["let go"]
    else:  # let go after two inserts, and not held again while the store is still behind
        assert rest == ["insert"] * 2 + ["let go"] + ["insert"] * 4
