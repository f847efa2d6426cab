"""Parse throughput: lines/s through `LineParser.parse`, and the same corpus through Debian's mtail.

Run: `.venv/bin/python bench/parse.py [--lines N] [--runs R] [--out FILE]` (or `make bench`).
The corpus is bench/corpus.py's stream from 100 failover pairs (dhcpd and Kea, lease
traffic, pool balancing, flaps and restarts, three rsyslog forward formats).

Runs alternate, one of pairwatch then one of mtail, so that both sides see the same periods of
a shared machine.

* pairwatch: each run a fresh `LineParser` over the lines in memory, one thread: `read` (the
  fast path, `parsers.fast`, with the full parser for the lines it leaves), the headline
  figure, and `parse` (the full parser alone).
* mtail (`mtail --one_shot`, Debian package `mtail`): the same lines in a file, read by
  the program bench/mtail/dhcpd.mtail, which extracts state transitions (dhcpd `I move
  from` / `peer moves from`, Kea HA_STATE_TRANSITION), lease messages by type, and a few
  more. Each run is the whole process, timed from outside; mtail's start-up (the same
  command on an empty file) is subtracted, which favours mtail. Also timed once: a
  program that only counts lines, mtail's own cost per line whatever the program.

Both sides are checked against the corpus' ground truth: the number of state-transition
lines (pairwatch: `failover.state` events; mtail: the sum of
`dhcp_failover_transitions_total`) and of lease lines (`lease.*` events;
`dhcp_lease_messages_total`); a mismatch is printed and recorded (`"agree": false`).
Prints each run, the medians and the ratio (and, in the JSON, each alternated pair's own
ratio), then one JSON object, also written to
bench/results/parse.json. Figures are printed, never asserted: this machine is shared and
noisy.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from corpus import make_corpus, report  # noqa: E402

from parsers import LineParser, ParseOptions  # noqa: E402

BENCH = Path(__file__).resolve().parent
PROGRAMS = BENCH / "mtail"
RESULTS = BENCH / "results"
COUNT_LINES = "counter lines_total\n/$/ {\n  lines_total++\n}\n"
"""mtail's floor: a program that does nothing but count lines."""


def make_lines(n: int, seed: int = 1) -> list[str]:
    """The corpus lines (bench/floor.py times its cost floor on the same lines)."""
    return make_corpus(n, seed=seed).lines


def _options() -> ParseOptions:
    return ParseOptions(reference=datetime(2025, 3, 4, tzinfo=UTC))


def parse_counts(lines: list[str]) -> tuple[int, int]:
    """(state-transition lines, lease lines) as pairwatch's parser sees them (not timed)."""
    parse = LineParser(_options()).parse
    kinds = Counter(parse(line).kind for line in lines)
    return kinds["failover.state"], sum(n for kind, n in kinds.items() if kind.startswith("lease."))


def parse_rate(lines: list[str], fast: bool = False) -> float:
    """Lines/s through `LineParser.parse`, or with `fast` through `LineParser.read` (the fast
    path's values for the lines it takes, the full parser's events for the rest)."""
    parser = LineParser(_options())
    parse = parser.read if fast else parser.parse
    start = time.perf_counter()
    for line in lines:
        parse(line)
    return len(lines) / (time.perf_counter() - start)


def run_mtail(mtail: str, progs: Path, log: Path) -> tuple[float, float, dict[str, Any]]:
    """One `mtail --one_shot` over `log`: (wall seconds, CPU seconds, its metrics).

    Its HTTP listener (started even in one-shot mode) goes to a free loopback port, and
    its log to the pipe, so nothing lands in /tmp or on a public address."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [mtail, "--one_shot", "--one_shot_format", "json", "--progs", str(progs), "--logs", str(log),
         "--address", "127.0.0.1", "--port", "0", "--logtostderr"],
        capture_output=True, timeout=600, check=False,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-5:]
        raise SystemExit(f"mtail exited with {done.returncode}:\n" + "\n".join(tail))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, json.loads(done.stdout or b"{}")


def metric_sum(metrics: dict[str, Any], name: str) -> int:
    """The sum of every series of one mtail metric in its one-shot JSON."""
    total = 0.0
    for metric in metrics.get(name, ()):
        for series in metric.get("LabelValues") or ():
            total += series["Value"]["Value"]
        if "Value" in metric:  # a metric without labels
            total += metric["Value"]["Value"]
    return int(total)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", type=Path, default=RESULTS / "parse.json", help="where the JSON goes")
    args = ap.parse_args()
    mtail = shutil.which("mtail")
    if mtail is None:
        raise SystemExit("bench/parse.py: mtail not found (Debian package `mtail`: apt-get install mtail)")

    corpus = make_corpus(args.lines)
    lines = corpus.lines
    truth = {"transitions": corpus.transitions, "leases": sum(corpus.leases.values())}
    ours_transitions, ours_leases = parse_counts(lines)
    rates, full_rates, walls, cpus, metrics = [], [], [], [], {}
    with tempfile.TemporaryDirectory(prefix="pairwatch-bench-mtail-") as tmp:
        log, empty, floor_progs = Path(tmp) / "corpus.log", Path(tmp) / "empty.log", Path(tmp) / "floor"
        log.write_text("".join(line + "\n" for line in lines))
        empty.touch()
        floor_progs.mkdir()
        (floor_progs / "lines.mtail").write_text(COUNT_LINES)
        startup = statistics.median(run_mtail(mtail, PROGRAMS, empty)[0] for _ in range(3))
        for run in range(1, args.runs + 1):  # (alternated, so both see the same periods of a shared machine)
            rates.append(parse_rate(lines, fast=True))
            full_rates.append(parse_rate(lines))
            print(f"pairwatch run {run}: {len(lines)} lines = {rates[-1]:,.0f} lines/s with the fast path, "
                  f"{full_rates[-1]:,.0f} lines/s full parser only")
            wall, cpu, metrics = run_mtail(mtail, PROGRAMS, log)
            walls.append(wall)
            cpus.append(cpu)
            print(f"mtail run {run}: {len(lines)} lines in {wall:.2f} s (CPU {cpu:.2f} s) = "
                  f"{len(lines) / max(wall - startup, 1e-9):,.0f} lines/s without its {startup * 1000:.0f} ms start-up")
        floor_wall, _, floor_metrics = run_mtail(mtail, floor_progs, log)
    ours = statistics.median(rates)
    full = statistics.median(full_rates)
    mtail_rate = len(lines) / max(statistics.median(walls) - startup, 1e-9)
    floor_rate = len(lines) / max(floor_wall - startup, 1e-9)
    theirs = {"transitions": metric_sum(metrics, "dhcp_failover_transitions_total"),
              "leases": metric_sum(metrics, "dhcp_lease_messages_total")}
    counted = metric_sum(floor_metrics, "lines_total")
    mine = {"transitions": ours_transitions, "leases": ours_leases}
    agree = mine == truth and theirs == truth and counted == len(lines)
    ratio = ours / mtail_rate

    print(f"pairwatch: median of {args.runs} {ours:,.0f} lines/s with the fast path, {full:,.0f} full parser only "
          f"(single thread); "
          f"mtail: median of {args.runs} {mtail_rate:,.0f} lines/s (a line-counting program: {floor_rate:,.0f} lines/s); "
          f"ratio {ratio:.2f}x")
    print(f"state transitions: corpus {truth['transitions']}, pairwatch {mine['transitions']}, mtail {theirs['transitions']}; "
          f"lease lines: corpus {truth['leases']}, pairwatch {mine['leases']}, mtail {theirs['leases']}"
          + ("" if agree else "  << MISMATCH"))
    result = {
        "bench": "parse",
        "lines": len(lines),
        "pairs": corpus.pairs,
        "runs": args.runs,
        "pairwatch_lines_per_s": round(ours),
        "pairwatch_runs": [round(r) for r in rates],
        "full_parser_lines_per_s": round(full),
        "full_parser_runs": [round(r) for r in full_rates],
        "mtail_lines_per_s": round(mtail_rate),
        "mtail_wall_s": [round(w, 3) for w in walls],
        "mtail_cpu_s": [round(c, 3) for c in cpus],
        "mtail_startup_s": round(startup, 3),
        "mtail_count_lines_per_s": round(floor_rate),
        "ratio": round(ratio, 2),
        "run_ratios": [round(r / (len(lines) / max(w - startup, 1e-9)), 2) for r, w in zip(rates, walls, strict=True)],
        "counts": {"corpus": truth, "pairwatch": mine, "mtail": theirs},
        "agree": agree,
    }
    report(result, args.out)


if __name__ == "__main__":
    main()
