"""The store writer against the real (session) store: what it sends, and when."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from collector.metrics import ServiceMetrics
from collector.spool import Spool
from collector.store import COLUMNS, MESSAGES, StoreError, line_rows
from collector.writer import StoreWriter
from parsers import parse_line
from tests.conftest import OnThread


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

    asyncio.run(run())
    assert registry.get_sample_value("pairwatch_store_rows_total", {"table": MESSAGES}) == 300
