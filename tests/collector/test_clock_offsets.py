"""Each sender's clock offset (receive time minus header time, the smallest over a window) as
the pipeline publishes it for `pairwatch_sender_clock_offset_seconds`: a real pipeline and
writer (whose store is never opened: nothing here reaches it), chunks of real lines."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from collector.config import parse_config
from collector.correlator import Correlator
from collector.listeners import Arrival, Intake
from collector.metrics import ServiceMetrics
from collector.pipeline import OFFSET_WINDOW, Pipeline
from collector.spool import Spool
from collector.store import COLUMNS, Store
from collector.store_thread import StoreThread
from collector.tally import FleetTally
from collector.writer import StoreWriter

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC).timestamp()


def line(host: str, at: float) -> str:
    stamp = datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")
    return f"<30>1 {stamp} {host} dhcpd 7 - - DHCPACK on 198.18.0.7 to 00:00:5e:00:53:07 via eth0"


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[tuple[Pipeline, ServiceMetrics]]:
    metrics = ServiceMetrics(CollectorRegistry(), "test")
    thread = StoreThread()

    def never() -> Store:
        raise AssertionError("no store in this test")

    writer = StoreWriter(COLUMNS, thread, None, never, Spool(str(tmp_path), 1 << 20), metrics,
                         batch_rows=10_000, flush_interval=3600.0, memory_rows=10_000)
    yield Pipeline(Intake(metrics), Correlator(parse_config({})), FleetTally(), metrics, writer), metrics
    thread.close()


def test_offsets_are_published_when_a_window_moves(pipeline: tuple[Pipeline, ServiceMetrics]) -> None:
    pipe, metrics = pipeline

    def read(received: float, *lines: tuple[str, float]) -> object:
        pipe._process([Arrival(received, [line(host, at) for host, at in lines], "tcp", "198.18.0.1")])
        return metrics.sender_clock_offsets

    first = read(T0 + 2.0, ("dhcp-a", T0))
    assert first == {"dhcp-a": 2.0}
    assert read(T0 + 13.0, ("dhcp-a", T0 + 10.0)) is first  # (a larger offset: nothing moved, the same dict)
    second = read(T0 + 21.0, ("dhcp-a", T0 + 20.0), ("dhcp-b", T0 + 20.5))
    assert second == {"dhcp-a": 1.0, "dhcp-b": 0.5}
    assert read(T0 + 25.0, ("dhcp-a", T0 + 23.0), ("dhcp-b", T0 + 23.0)) is second
    # a new window keeps the previous one's minimum...
    assert read(T0 + OFFSET_WINDOW + 25.0, ("dhcp-a", T0 + OFFSET_WINDOW + 20.0)) == second
    # ...until it is itself the previous one
    assert read(T0 + 2 * OFFSET_WINDOW + 30.0, ("dhcp-a", T0 + 2 * OFFSET_WINDOW + 25.0)) == {"dhcp-a": 5.0,
                                                                                                "dhcp-b": 0.5}
