"""The cost of one `/metrics` render for a fleet whose counters move between scrapes.

Run: `.venv/bin/python bench/scrape.py [--pairs N] [--scrapes N] [--between N] [--out FILE]`
(or `make bench`). In one process, without sockets: bench/corpus.py's stream for `--pairs`
pairs goes through the parser, the correlator and the tally (50,000 lines), then `--scrapes`
times `--between` more lines are fed (the counters of the servers they name move, as under
load) and `/metrics` is rendered in text format 0.0.4 (what Prometheus asks for), with the
garbage-collector settings of `serve`. The correlator snapshot is republished every fifth
scrape, as the pipeline does every 0.25 s. Prints the median render time and the body size,
then one JSON object, also written to bench/results/scrape.json. Figures only, never asserted.

For a figure that does not move with the machine's load, count instructions: run
`PYTHONHASHSEED=0 valgrind --tool=cachegrind --cache-sim=no .venv/bin/python bench/scrape.py
--scrapes 10` with and without `--skip-render` (which feeds the same lines and renders only
once, before them) and divide the difference by 10.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry

sys.path.insert(0, str(Path(__file__).parent))
from corpus import make_corpus, report

from collector.config import Config
from collector.correlator import Correlator
from collector.tally import FleetTally
from collector.metrics import PairCollector, ServiceMetrics
from collector.exposition import exposition
from collector.service import GC_THRESHOLDS
from parsers import LineParser, ParseOptions

RESULTS = Path(__file__).parent / "results"
WARM = 50_000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=100)
    ap.add_argument("--scrapes", type=int, default=50)
    ap.add_argument("--between", type=int, default=200, help="lines fed between two scrapes")
    ap.add_argument("--skip-render", action="store_true", help="feed the lines, render nothing between them "
                    "(the baseline of an instruction count)")
    ap.add_argument("--out", type=Path, default=RESULTS / "scrape.json", help="where the JSON goes")
    args = ap.parse_args()
    lines = make_corpus(WARM + args.scrapes * args.between, pairs=args.pairs).lines
    parser = LineParser(ParseOptions(reference=datetime(2026, 3, 4, tzinfo=UTC)))
    events = [parser.parse(text) for text in lines]
    correlator, tally = Correlator(Config()), FleetTally(strip_domain=False)
    start = 1.75e9

    def feed(first: int, end: int) -> None:
        for i in range(first, end):
            now = start + i / 10_000
            tally.observe(events[i], correlator.feed(events[i], now, lines[i]), now)

    feed(0, WARM)
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    registry = CollectorRegistry()
    ServiceMetrics(registry, "bench")
    published = [correlator.snapshot()]
    registry.register(PairCollector(lambda: published[0], tally.snapshot))
    body, _ = exposition(registry, None)
    times = []
    for k in range(args.scrapes):
        feed(WARM + k * args.between, WARM + (k + 1) * args.between)
        if k % 5 == 0:
            published[0] = correlator.snapshot()
        if args.skip_render:
            continue
        began = time.perf_counter()
        body, _ = exposition(registry, None)
        times.append(time.perf_counter() - began)
    if not times:
        return
    median_ms = statistics.median(times) * 1000
    count = body.count(b"\n")
    print(f"/metrics render, {args.pairs} pairs, {count} lines ({len(body):,} bytes), "
          f"{args.between} lines fed between scrapes: median {median_ms:.2f} ms over {args.scrapes} scrapes")
    result = {"bench": "scrape", "pairs": args.pairs, "scrapes": args.scrapes, "between": args.between,
              "lines": count, "bytes": len(body), "median_ms": round(median_ms, 3),
              "min_ms": round(min(times) * 1000, 3), "max_ms": round(max(times) * 1000, 3)}
    report(result, args.out)


if __name__ == "__main__":
    main()
