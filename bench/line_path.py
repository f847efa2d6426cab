"""The service's line path in one process, without the network or the store: µs a line.

Run: `.venv/bin/python bench/line_path.py [--lines N] [--runs R] [--out FILE]` (or `make bench`).

What `serve`'s event loop does with lines once a TCP read has framed and decoded them:
`Pipeline._process` on chunks of `collector.pipeline.CHUNK` lines (parse, event time,
history and correlator, tally, rows, the writer's segments), on a real `Pipeline` with a
real `StoreWriter` whose store is never opened, so its batches stay in memory and nothing
else competes for the thread, and with the service's garbage-collector settings. The lines
are bench/corpus.py's 100 pairs, in reads of `READ_LINES` lines, each received a little after
its last line's time (so no line counts as skewed). Thread CPU time per line, each run with a
fresh pipeline; the median of the runs. Figures only, never asserted: the machine is shared
and noisy (for comparisons, count instructions: `valgrind --tool=cachegrind` on one run).
The end-to-end figure with the network, the store and the engine's threads is bench/ingest.py's.
Prints each run and the median, then one JSON object, also written to bench/results/line_path.json.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from corpus import RATE, START, make_corpus, report  # noqa: E402
from prometheus_client import CollectorRegistry  # noqa: E402

from collector import __version__  # noqa: E402
from collector.config import parse_config  # noqa: E402
from collector.correlator import Correlator  # noqa: E402
from collector.listeners import Arrival, Intake  # noqa: E402
from collector.metrics import ServiceMetrics  # noqa: E402
from collector.pipeline import CHUNK, Pipeline  # noqa: E402
from collector.service import settle_garbage_collector  # noqa: E402
from collector.spool import Spool  # noqa: E402
from collector.store import COLUMNS, Store  # noqa: E402
from collector.store_thread import StoreThread  # noqa: E402
from collector.tally import FleetTally  # noqa: E402
from collector.writer import StoreWriter  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
READ_LINES = 200
"""Lines per TCP read (a 64 KiB read of corpus lines holds about 400)."""
DELAY = 0.05
"""Seconds between a read's last line's time and its receipt."""


def arrivals(lines: list[str]) -> list[Arrival]:
    out = []
    for start in range(0, len(lines), READ_LINES):
        texts = lines[start:start + READ_LINES]
        out.append(Arrival(START + (start + len(texts) - 1) / RATE + DELAY, texts, "tcp", "198.18.0.1"))
    return out


def chunks(reads: list[Arrival]) -> list[list[Arrival]]:
    """As `Intake.take(CHUNK)` hands them over."""
    out: list[list[Arrival]] = []
    chunk: list[Arrival] = []
    size = 0
    for read in reads:
        chunk.append(read)
        size += read.size
        if size >= CHUNK:
            out.append(chunk)
            chunk, size = [], 0
    if chunk:
        out.append(chunk)
    return out


async def one_run(work: list[list[Arrival]], lines: int, spool_dir: str) -> float:
    """µs of thread CPU per line through `Pipeline._process`."""
    registry = CollectorRegistry()
    metrics = ServiceMetrics(registry, __version__)
    thread = StoreThread()
    try:
        def never() -> Store:
            raise AssertionError("the benchmark opens no store")

        writer = StoreWriter(COLUMNS, thread, None, never, Spool(spool_dir, 1 << 30), metrics,
                             batch_rows=10_000, flush_interval=1.0, memory_rows=10 * lines)
        pipeline = Pipeline(Intake(metrics), Correlator(parse_config({})), FleetTally(), metrics, writer)
        process = pipeline._process
        settle_garbage_collector()  # as `serve` does once serving
        started = time.thread_time()
        for chunk in work:
            process(chunk)
        return (time.thread_time() - started) / lines * 1e6
    finally:
        thread.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", type=Path, default=RESULTS / "line_path.json", help="where the JSON goes")
    args = ap.parse_args()
    work = chunks(arrivals(make_corpus(args.lines).lines))
    figures = []
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory(prefix="pairwatch-line-path-") as spool_dir:
            us = asyncio.run(one_run(work, args.lines, spool_dir))
        figures.append(us)
        print(f"run {run}: {args.lines} lines, {us:.2f} µs a line (thread CPU)", flush=True)
    median = statistics.median(figures)
    print(f"median of {args.runs}: {median:.2f} µs a line = {1e6 / median:,.0f} lines/s on one thread")
    report({"bench": "line_path", "lines": args.lines, "runs": args.runs, "us_per_line": [round(f, 3) for f in figures],
            "median_us_per_line": round(median, 3), "lines_per_s": round(1e6 / median)}, args.out)


if __name__ == "__main__":
    main()
