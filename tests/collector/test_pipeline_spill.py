"""The pipeline against a real spool and the real (session) store.

Shutdown spill and replay, deterministically: a pipeline told to stop with its spill time
already past hands every queued, held and read-meanwhile line to the spill, unprocessed and in
order; those lines, kept in a real spool, are processed by the next pipeline before anything
else and end up in the real (session) store exactly once. And a pipeline with a long queue
lets the event loop run between its chunks."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from collector.config import Config
from collector.correlator import Correlator
from collector.listeners import Arrival, Intake, Received
from collector.tally import FleetTally
from collector.metrics import ServiceMetrics
from collector.pipeline import Pipeline
from collector.service import RECEIVED, spilled_records
from collector.spool import Spool
from collector.store import COLUMNS
from collector.store_errors import StoreError
from collector.writer import StoreWriter
from parsers import LineParser, ParseOptions
from tests.conftest import OnThread

pytestmark = pytest.mark.integration


def _text(i: int) -> str:
    return f"<30>Mar  3 08:15:02 spill-{i % 3} dhcpd: DHCPACK on 198.18.2.{i % 250 + 1} to 00:00:5e:00:53:01 via eth0 #{i}"


def _read(start: int, stop: int) -> Arrival:
    """Lines `start` to `stop` as one read brought them."""
    return Arrival(time.time(), [_text(i) for i in range(start, stop)], "tcp", "127.0.0.1:5000")


def _pipeline(store: OnThread, store_thread: Any, spool: Spool,
              kind: type[Pipeline] = Pipeline) -> tuple[Pipeline, StoreWriter, Intake]:
    metrics = ServiceMetrics(CollectorRegistry(), "test")

    def no_reopen() -> Any:
        raise StoreError("not reopened in this test")

    writer = StoreWriter(COLUMNS, store_thread, store.obj, no_reopen, spool, metrics,
                         batch_rows=1000, flush_interval=0.2, memory_rows=10_000)
    intake = Intake(metrics, queue_size=10_000)
    return kind(intake, Correlator(Config()), FleetTally(strip_domain=False), metrics, writer), writer, intake


def test_spill_everything_unprocessed_then_replay_it_first(store: OnThread, store_thread: Any, tmp_path: Path) -> None:
    received = Spool(str(tmp_path / RECEIVED), max_bytes=100 * 2**20)

    async def shutdown() -> tuple[int, list[Received]]:
        pipeline, writer, intake = _pipeline(store, store_thread, Spool(str(tmp_path / "batches"), 2**30))
        for start in range(0, 3000, 700):  # (reads of 700 lines: more than one chunk takes)
            assert intake.put(_read(start, min(start + 700, 3000))) == min(700, 3000 - start)
        spilled: list[Received] = []

        async def spill(lines: list[Received]) -> None:
            spilled.extend(lines)
            for start in range(0, len(lines), 1000):
                part = lines[start:start + 1000]
                received.append(RECEIVED, uuid.uuid4().hex, [list(r) for r in part])

        pipeline.stop(time.monotonic() - 1, spill, [_read(3000, 3200), _read(3200, 3500)])
        await pipeline.run()
        await writer.close(time.monotonic() + 5)
        return pipeline.processed, spilled

    processed, spilled = asyncio.run(shutdown())
    assert processed == 0
    assert [r.text for r in spilled] == [_text(i) for i in range(3500)]

    async def restart() -> int:
        pipeline, writer, _intake = _pipeline(store, store_thread, Spool(str(tmp_path / "batches"), 2**30))
        count = await pipeline.replay_received(spilled_records(received))
        await writer.close(time.monotonic() + 10)
        return count

    assert asyncio.run(restart()) == 3500
    assert not received  # every record popped once processed
    rows = store.timeline(["spill-0", "spill-1", "spill-2"], limit=10_000)
    assert sorted(r["message"] for r in rows) == sorted(_text(i).split("dhcpd: ", 1)[1] for i in range(3500))


def test_a_spooled_batch_the_store_can_never_take_is_set_aside_and_the_rest_written(
    store: OnThread, store_thread: Any, tmp_path: Path
) -> None:
    """A spool record whose rows do not fit the table (as after a schema change) must not
    block the batches behind it forever: it moves to `rejected/`, the next one is written."""
    spool = Spool(str(tmp_path / "batches"), 2**30)
    spool.append("states", "bad-token", [[1, "only two values"]])
    good = [[1_750_000_000_000_000, "pw-rejected", "dhcp1", "self", "normal", None]]
    spool.append("states", "good-token", good)

    async def recover() -> bool:
        _, writer, _intake = _pipeline(store, store_thread, spool)
        writer.start()
        deadline = time.monotonic() + 30
        while writer.degraded and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        ok = writer.ok and not writer.degraded
        await writer.close(time.monotonic() + 5)
        return ok

    assert asyncio.run(recover())
    rejected = Spool(str(tmp_path / "batches" / "rejected"), 2**30)
    record = rejected.peek()
    assert record is not None and record.token == "bad-token"
    assert not spool
    assert [s["server"] for s in store.last_states() if s["pair"] == "pw-rejected"] == ["dhcp1"]


def test_the_loop_runs_between_chunks_while_lines_are_queued(store: OnThread, store_thread: Any, tmp_path: Path) -> None:
    """5,000 queued lines are five chunks. Another task (a scrape, a read, the end of an
    insert) must get the loop between chunks, not only once the queue is empty: it sees
    the pipeline part way through."""

    async def run() -> list[int]:
        pipeline, writer, intake = _pipeline(store, store_thread, Spool(str(tmp_path / "batches"), 2**30))
        for start in range(0, 5000, 100):
            intake.put(_read(start, start + 100))
        seen: list[int] = []

        async def other_task() -> None:
            while pipeline.processed < 5000:
                seen.append(pipeline.processed)
                await asyncio.sleep(0)

        watcher = asyncio.create_task(other_task())
        consumer = asyncio.create_task(pipeline.run())
        await watcher
        pipeline.stop()
        await consumer
        await writer.close(time.monotonic() + 10)
        return seen

    seen = asyncio.run(run())
    assert any(0 < processed < 5000 for processed in seen), sorted(set(seen))


class _BuggyParser(LineParser):
    """A parser with two bugs planted: it raises on one line and gives the stage values it
    cannot take on another (fault injection: no real line is known to do either)."""

    def read(self, text: str) -> Any:
        if text.endswith("#parse-bug"):
            raise RuntimeError("planted parser bug")
        if text.endswith("#stage-bug"):
            return (None,)
        return super().read(text)


class _BuggyPipeline(Pipeline):
    def _new_parser(self, now: float) -> LineParser:
        self._parser_built = now
        return _BuggyParser(ParseOptions(tz=UTC))


def test_a_line_that_fails_costs_only_itself(store: OnThread, store_thread: Any, tmp_path: Path) -> None:
    """One chunk, one line failing in the parse pass and one in the stage pass: both are
    counted, every neighbour is stored, and the service goes on."""
    host = f"bug-{uuid.uuid4().hex[:6]}"
    texts = [f"<30>Mar  3 08:15:02 {host} dhcpd: DHCPACK on 198.18.3.{i + 1} to 00:00:5e:00:53:01 via eth0 #{i}"
             for i in range(300)]
    texts[100] += "#parse-bug"
    texts[200] += "#stage-bug"

    async def run() -> int:
        pipeline, writer, intake = _pipeline(store, store_thread, Spool(str(tmp_path / "batches"), 2**30), _BuggyPipeline)
        intake.put(Arrival(time.time(), texts, "tcp", "127.0.0.1:5000"))
        pipeline.stop()
        await pipeline.run()
        await writer.close(time.monotonic() + 10)
        return pipeline.failed_lines

    assert asyncio.run(run()) == 2
    stored = sorted(r["message"] for r in store.timeline([host], limit=1000))
    assert stored == sorted(t.split("dhcpd: ", 1)[1] for i, t in enumerate(texts) if i not in (100, 200))
