"""`serve` stores what `analyze` finds: a burst of the bench corpus, checked incident by incident.

Run: `.venv/bin/python bench/agreement.py [--lines N] [--pairs P] [--show K]` (issue 17's
acceptance: "the same check for a burst of 100 pairs from bench/corpus.py, 300k lines").

bench/corpus.py's stream (`make_corpus(N, pairs=P)`: dhcpd and Kea pairs, RFC 3164, RFC 3339
and RFC 5424 headers as rsyslog forwards them, in time order) goes to a real `pairwatch serve`
(a subprocess on loopback ports, its own embedded store in a temporary directory) as ONE
burst on ONE TCP connection, RFC 6587 octet-counted: what a forwarder's disk queue sends
after a collector outage. The sending and the wait are bench/ingest.py's (`Sender`,
`wait_stored` on `pairwatch_store_rows_total{table="messages"}`); once every line is stored
and `SETTLE` seconds more have passed (the store is written every second), the stored
incidents are read from `/api/v1/incidents?all=1` (a retracted one is left out: it is stored
to say it did not happen). The read must come soon: `analyze` stops its clock at the last
line, while the service's pair clocks run on after the burst (a pair's newest line plus the
wall time since it arrived), and the corpus ends with pairs mid-episode; the first deadline
past the end (views_disagree of failover-002 with the default seed) is 38 s after the last
line, and the read comes about 10 s after it.

`analyze` of the same lines is `collector.replay.replay` with the service's own parse
options: the service reads RFC 3164 stamps (no year, no zone) with its receive clock as the
year reference and UTC, so the replay takes the instant the service started as its
reference, and UTC.

Dates. bench/corpus.py dates its lines from `START`, 2025-03-03 08:00 UTC. Read today, its
RFC 3164 hosts resolve to the latest 3 March not in the future while its RFC 3339/5424 hosts
keep 2025: the pairs fall into two years. The service is right about that (every pair keeps
its own clock) but `analyze` is not comparable: its one clock runs through the gap between
the two years' lines, so the older pairs' deadlines (views_disagree, not_serving, stuck, ...)
all pass, minutes to an hour after their last line, which the service never reaches. So by
default the corpus is made with `START` moved (for the one call) to end `LEAD` (1 h) before
the run: the same lines, re-dated, all in one year, an hour late. `--as-dated` keeps the
corpus' own dates (it shows that artefact). Either way the service and the replay get a
config with 10-year retentions (the store's default `states_ttl` of 400 days drops older
incidents), nothing else.

The comparison is the issue's: the stored incidents and analyze's, as a multiset of
(condition, pair, sorted servers) with start and end each within `TOLERANCE` s (open on both
sides is the same end); nothing extra, nothing missing. Prints the lines sent and stored, the
seconds to store them, the incidents on each side, matched, missing and extra (the first
`--show` of each, with the nearest incident of the same key on the other side), and exits 1
when they differ. Also written as one JSON line to bench/results/agreement.json.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import corpus  # noqa: E402
from corpus import make_corpus, octet_counted, report  # noqa: E402
from ingest import (  # noqa: E402
    RECEIVED,
    Sender,
    _free_port,
    _stop,
    http_getter,
    stored_rows,
    wait_ready,
    wait_stored,
)

from collector.config import parse_config  # noqa: E402
from collector.correlator import Correlator  # noqa: E402
from collector.replay import replay  # noqa: E402
from parsers import LineParser, ParseOptions  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
TOLERANCE = 1.0
"""Stored start and end may differ from analyze's by this much (the issue's bound)."""
SETTLE = 3.0
"""Seconds between the last line stored and reading the incidents (the store is written every
`batch_interval`, 1 s), as tests/collector/test_late_delivery.py waits."""
CONFIG = {"store": {"messages_ttl": "3650d", "states_ttl": "3650d"}}
"""The service's and the replay's config: retention long enough that the corpus never expires."""
LATE = re.compile(r'^pairwatch_late_lines_total\{applied="(yes|no)"\} (\S+)$', re.MULTILINE)
LEAD = 3600.0
"""By default the corpus is re-dated to end this many seconds before the run: a burst an hour
late, within `max_lateness`, all of it in the current year whatever the header format."""
ERRORS = re.compile(r'^pairwatch_syslog_errors_total\{reason="([^"]+)"\} (\S+)$', re.MULTILINE)

Key = tuple[str, str, tuple[str, ...]]
Row = tuple[Key, float, float | None]


def _config_text() -> str:
    return "".join(f"[{table}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items())
                   for table, keys in CONFIG.items())


def _corpus(lines: int, pairs: int, start: float) -> corpus.Corpus:
    """`make_corpus(lines, pairs=pairs)` with its first line at `start` (bench/corpus.py reads its
    module constant `START` at each call; it is set for this one and put back)."""
    dated = corpus.START
    corpus.START = start  # type: ignore[misc]
    try:
        return make_corpus(lines, pairs=pairs)
    finally:
        corpus.START = dated  # type: ignore[misc]


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _iso(ts: float | None) -> str:
    return "open" if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def _close(a: float | None, b: float | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and abs(a - b) <= TOLERANCE)


def compare(want: Sequence[Row], have: Sequence[Row]) -> tuple[int, list[Row], list[Row]]:
    """(matched, missing from `have`, extra in `have`): one for one, same key, start and end
    within TOLERANCE; analyze's incidents are matched in start order, each to the first fit."""
    unmatched: dict[Key, list[Row]] = {}
    for row in have:
        unmatched.setdefault(row[0], []).append(row)
    matched, missing = 0, []
    for w in sorted(want, key=lambda r: r[1]):
        candidates = unmatched.get(w[0], [])
        hit = next((i for i, h in enumerate(candidates) if _close(h[1], w[1]) and _close(h[2], w[2])), None)
        if hit is None:
            missing.append(w)
        else:
            del candidates[hit]
            matched += 1
    extra = sorted((h for rows in unmatched.values() for h in rows), key=lambda r: r[1])
    return matched, missing, extra


def _host_spans(lines: Sequence[str], hosts: set[str], options: ParseOptions) -> dict[str, tuple[float, float]]:
    """Each of `hosts`' first and last line time in the corpus (to place a diff in its pair's timeline)."""
    parser = LineParser(options)
    spans: dict[str, tuple[float, float]] = {}
    for line in lines:
        if not any(f" {h} " in line for h in hosts):
            continue
        record = parser.parse(line).record
        if record.host in hosts and record.ts is not None:
            ts = record.ts.timestamp()
            first, last = spans.get(record.host, (ts, ts))
            spans[record.host] = (min(first, ts), max(last, ts))
    return spans


def _show(title: str, rows: Sequence[Row], other: Sequence[Row], show: int,
          spans: dict[str, tuple[float, float]]) -> list[str]:
    out = [f"{title} ({len(rows)}):"]
    for (condition, pair, servers), start, end in rows[:show]:
        firsts = [spans[s][0] for s in servers if s in spans]
        lasts = [spans[s][1] for s in servers if s in spans]
        where = ""
        if firsts:
            t0, t1 = min(firsts), max(lasts)
            rel_end = "open" if end is None else f"{end - t0:+.3f}"
            where = f" [t+{start - t0:.3f} .. {rel_end} s after the servers' first line; their last at t+{t1 - t0:.3f}]"
        length = "" if end is None else f" ({end - start:.3f} s)"
        out.append(f"  {condition:<26} {pair:<14} {','.join(servers):<16} {_iso(start)} .. {_iso(end)}{length}{where}")
        near = sorted((r for r in other if r[0] == (condition, pair, servers)), key=lambda r: abs(r[1] - start))[:2]
        for _, s, e in near:
            out.append(f"      nearest on the other side: {_iso(s)} .. {_iso(e)} (start {s - start:+.3f} s, "
                       f"end {'-' if e is None or end is None else f'{e - end:+.3f} s'})")
        if not near:
            out.append("      no incident with this condition, pair and servers on the other side")
    if len(rows) > show:
        out.append(f"  ... and {len(rows) - show} more")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=300_000)
    ap.add_argument("--pairs", type=int, default=100)
    ap.add_argument("--show", type=int, default=10, help="diffs listed per side (default 10)")
    ap.add_argument("--out", type=Path, default=RESULTS / "agreement.json", help="where the JSON goes")
    ap.add_argument("--as-dated", action="store_true",
                    help="keep bench/corpus.py's own dates (from 2025-03-03 08:00 UTC) instead of re-dating the "
                         "corpus to end an hour ago (see the module docstring: then the RFC 3164 pairs resolve "
                         "to another year than the others)")
    args = ap.parse_args()
    wall0 = time.monotonic()
    start = corpus.START if args.as_dated else float(int(time.time() - LEAD - args.lines / corpus.RATE))
    fleet = _corpus(args.lines, args.pairs, start)
    lines = fleet.lines
    payload = octet_counted(lines)
    config = CONFIG
    tcp, http = _free_port(socket.SOCK_STREAM), _free_port(socket.SOCK_STREAM)

    get = http_getter(http, timeout=60)

    def stored() -> int:
        return stored_rows(get)

    with tempfile.TemporaryDirectory(prefix="pairwatch-bench-agreement-") as tmp:
        config_file = Path(tmp) / "pairwatch.toml"
        config_file.write_text(_config_text())
        reference = datetime.now(UTC)  # the service's year reference is its clock at start (refreshed hourly)
        with open(Path(tmp) / "serve.log", "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "collector.cli", "serve", "--config", str(config_file),
                 "--tcp", f"127.0.0.1:{tcp}", "--http", f"127.0.0.1:{http}", "--store", f"embedded:{tmp}/store"],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        try:
            wait_ready(get, proc, Path(tmp) / "serve.log")
            sender = Sender("tcp-octet", payload, tcp, 0.0)
            started = sender.start()
            count, seconds = wait_stored(stored, len(lines), started, sender, settle=10.0, dense=False)
            sender.join()
            time.sleep(SETTLE)
            text = get("/metrics")
            received = {m.group(1): int(float(m.group(2))) for m in RECEIVED.finditer(text)}.get("tcp", 0)
            late = {m.group(1): int(float(m.group(2))) for m in LATE.finditer(text)}
            errors = {m.group(1): int(float(m.group(2))) for m in ERRORS.finditer(text) if float(m.group(2))}
            rows: list[dict[str, Any]] = json.loads(get("/api/v1/incidents?all=1"))["incidents"]
            read_at = time.time()
        finally:
            code, _ = _stop(proc)
            serve_log = (Path(tmp) / "serve.log").read_text(errors="replace")
    stored_at = time.monotonic()

    options = ParseOptions(reference=reference, tz=UTC)
    t = time.monotonic()
    analyzed = replay([(lines, options)], Correlator(parse_config(config)))
    analyze_seconds = time.monotonic() - t
    want: list[Row] = [((i.condition, i.pair, tuple(sorted(i.servers))), i.start, i.end) for i in analyzed.incidents]
    standing = [r for r in rows if not r.get("retracted", False)]
    have: list[Row] = [((r["condition"], r["pair"], tuple(sorted(r["servers"]))), _epoch(r["start"]),
                        _epoch(r["end"]) if r.get("end") else None) for r in standing]
    matched, missing, extra = compare(want, have)
    wall = time.monotonic() - wall0

    rate = count / seconds if seconds > 0 else 0.0
    print(f"corpus: {len(lines):,} lines from {fleet.pairs} pairs ({fleet.transitions} state transitions), "
          f"{_iso(start)} .. {_iso(start + (len(lines) - 1) / corpus.RATE)}")
    print(f"sent {len(lines):,} lines in one burst on one TCP connection (octet-counted) in {sender.seconds:.2f} s; "
          f"received {received:,}, stored {count:,} in {seconds:.2f} s = {rate:,.0f} lines/s")
    print(f"late lines: applied {late.get('yes', 0)}, not applied {late.get('no', 0)}; "
          f"errors: {errors or 'none'}; serve exit on SIGTERM: {code}")
    print(f"incidents: analyze {len(want)} (replay {analyze_seconds:.1f} s), stored {len(rows)} "
          f"({len(rows) - len(standing)} retracted, {len(have)} standing); "
          f"matched {matched}, missing {len(missing)}, extra {len(extra)}")
    by_condition: dict[str, list[int]] = {}
    for side, found in ((0, want), (1, have)):
        for (condition, _, _), _, _ in found:
            by_condition.setdefault(condition, [0, 0])[side] += 1
    print("  by condition (analyze/stored): "
          + ", ".join(f"{c} {a}/{s}" for c, (a, s) in sorted(by_condition.items())))
    if missing or extra:
        hosts = {s for (_, _, servers), _, _ in missing[:args.show] + extra[:args.show] for s in servers}
        spans = _host_spans(lines, hosts, options)
        print(f"(analyze's clock stopped at its last line, {_iso(analyzed.end)}; "
              f"the stored incidents were read at {_iso(read_at)})")
        for line in (_show("missing from the store (analyze found, serve did not)", missing, have, args.show, spans)
                     + _show("extra in the store (serve stored, analyze did not find)", extra, want, args.show, spans)):
            print(line)
    if "Traceback" in serve_log:
        print("serve's log has a traceback:\n" + serve_log[-4000:])
    print(f"wall time {wall:.0f} s (store and read {stored_at - wall0:.0f} s, of which storing {seconds:.0f} s)")
    result = {
        "bench": "agreement", "lines": len(lines), "corpus_start": _iso(start), "pairs": fleet.pairs,
        "sent": len(lines), "received": received,
        "stored": count, "store_seconds": round(seconds, 3), "lines_per_s": round(rate),
        "send_seconds": round(sender.seconds, 3), "late_lines": late, "errors": errors,
        "incidents_analyze": len(want), "incidents_stored": len(rows), "retracted": len(rows) - len(standing),
        "matched": matched, "missing": len(missing), "extra": len(extra),
        "missing_first": [[*k, _iso(s), _iso(e)] for k, s, e in missing[:args.show]],
        "extra_first": [[*k, _iso(s), _iso(e)] for k, s, e in extra[:args.show]],
        "wall_seconds": round(wall, 1),
    }
    report(result, args.out)
    if missing or extra or count != len(lines):
        sys.exit(1)


if __name__ == "__main__":
    main()
