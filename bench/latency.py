"""State change -> `/metrics` latency under a steady background load (p50/p99 of 200 samples).

Run: `.venv/bin/python bench/latency.py [--rate N] [--samples N] [--out FILE]` (or `make bench`).
Starts a real `pairwatch serve` on a fresh embedded store (loopback ports), then:

* background: one TCP connection sends bench/corpus.py's fleet stream (100 pairs, octet-counted)
  at `--rate` messages/s (default 10,000), paced in batches every 10 ms, for the whole run; the
  stream is as long as the run and its lines are logged at that rate (a stream sent round
  and round would go back in time, which a real sender never does: its lines would be late);
* probe: after 3 s of background alone, a second TCP connection sends one dhcpd state
  change for the pair `bench-latency` (server `latency-a`; normal <-> communications-interrupted,
  alternating), then `/metrics` is scraped back to back until
  `dhcp_failover_state_change_timestamp_seconds{pair="bench-latency",server="latency-a",side="self"}`
  is the probe line's header time (its event time), which is the instant of its send: that
  change, not an earlier one that was late. The sample is the time from just before the send to the
  end of the scrape that showed it, so it includes up to one scrape's duration (printed as
  the resolution). Probes are 0.1-0.2 s apart (seeded), each given up after 5 s (a miss).

One pair is reused rather than a new pair per sample: every new pair adds series to
`/metrics`, and 200 of them would triple the scrape (and its cost on the service's event
loop) during the run. Back-to-back scrapes are work for that same loop: the figure is what a
client polling that hard sees. Sampling stops after 60 s whatever the count, so the script
takes about 70 s at most.

Prints p50/p99/max over every probe (a miss counts as 5 s, so with misses they are lower
bounds), the misses, the scrape time, the background rate offered, sent and received
by the service, and the deepest queue seen, then one JSON object, also written to
bench/results/latency.json. Figures only, never asserted.
"""

from __future__ import annotations

import argparse
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from corpus import make_corpus, octet_counted, report  # noqa: E402
from ingest import http_getter, wait_ready  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PAIR, HOST = "bench-latency", "latency-a"
STATES = ("communications-interrupted", "normal")
WARM_UP = 3.0
SAMPLE_DEADLINE = 5.0
SAMPLING_BUDGET = 60.0
TICK = 0.01
RECEIVED = re.compile(r'^pairwatch_syslog_messages_total\{transport="tcp"\} (\S+)$', re.MULTILINE)
QUEUE = re.compile(r"^pairwatch_queue_depth (\S+)$", re.MULTILINE)
CHANGED = re.compile(r'^dhcp_failover_state_change_timestamp_seconds\{pair="%s",server="%s",side="self"\} (\S+)$'
                     % (PAIR, HOST), re.MULTILINE)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Background(threading.Thread):
    """Sends `frames` round and round on one connection at `rate` msg/s, in 10 ms batches."""

    def __init__(self, port: int, frames: list[bytes], rate: float) -> None:
        super().__init__(daemon=True)
        self.port, self.frames, self.rate = port, frames, rate
        self.sent = 0
        self.error: BaseException | None = None
        self.stopping = threading.Event()

    def run(self) -> None:
        frames, n = self.frames, len(self.frames)
        try:
            with socket.create_connection(("127.0.0.1", self.port)) as conn:
                start = time.monotonic()
                while not self.stopping.is_set():
                    due = int((time.monotonic() - start) * self.rate)
                    if due > self.sent:
                        conn.sendall(b"".join(frames[i % n] for i in range(self.sent, due)))
                        self.sent = due
                    self.stopping.wait(TICK)
        except BaseException as exc:  # reported by main(), unless it came from stopping the service
            if not self.stopping.is_set():
                self.error = exc


def _state_line(old: str, new: str, at: float) -> bytes:
    stamp = datetime.fromtimestamp(at, UTC).isoformat(timespec="microseconds")
    line = f"<30>1 {stamp} {HOST} dhcpd - - - failover peer {PAIR}: I move from {old} to {new}"
    return octet_counted([line])


def _value(pattern: re.Pattern[str], text: str) -> float:
    found = pattern.search(text)
    if found is None:
        raise SystemExit(f"/metrics has no sample matching {pattern.pattern}")
    return float(found.group(1))


def _percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=10_000, help="background messages/s (default 10000)")
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--out", type=Path, default=RESULTS / "latency.json", help="where the JSON goes")
    args = ap.parse_args()
    # as many lines as the run sends, logged at the rate they are sent: going round a shorter
    # corpus would jump back in time at each round, and the service would replay the past
    lines = make_corpus(int(args.rate * (WARM_UP + SAMPLING_BUDGET + 10)), rate=args.rate).lines
    frames = [octet_counted([line]) for line in lines]
    tcp, http = _free_port(), _free_port()
    rng = random.Random(5)

    get = http_getter(http)

    with tempfile.TemporaryDirectory(prefix="pairwatch-bench-latency-") as tmp:
        with open(Path(tmp) / "serve.log", "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "collector.cli", "serve", "--tcp", f"127.0.0.1:{tcp}",
                 "--http", f"127.0.0.1:{http}", "--store", f"embedded:{tmp}/store"],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        background: Background | None = None
        try:
            wait_ready(get, proc, Path(tmp) / "serve.log")
            background = Background(tcp, frames, args.rate)
            background.start()
            time.sleep(WARM_UP)
            text = get("/metrics")
            received0, sent0, t0 = _value(RECEIVED, text), background.sent, time.monotonic()
            latencies: list[float] = []
            scrapes: list[float] = []
            missed, deepest, current = 0, 0.0, STATES[1]
            with socket.create_connection(("127.0.0.1", tcp)) as probe:
                while len(latencies) + missed < args.samples and time.monotonic() - t0 < SAMPLING_BUDGET:
                    new = STATES[0] if current == STATES[1] else STATES[1]
                    sent_wall = time.time()
                    frame = _state_line(current, new, sent_wall)
                    sent_at = time.perf_counter()
                    probe.sendall(frame)
                    while True:
                        before = time.perf_counter()
                        text = get("/metrics")
                        now = time.perf_counter()
                        scrapes.append(now - before)
                        deepest = max(deepest, _value(QUEUE, text))
                        changed = CHANGED.search(text)
                        if changed and float(changed.group(1)) >= sent_wall - 1e-5:  # (µs in the header)
                            latencies.append(now - sent_at)
                            break
                        if now - sent_at > SAMPLE_DEADLINE:
                            missed += 1
                            break
                    current = new
                    time.sleep(rng.uniform(0.1, 0.2))
            elapsed = time.monotonic() - t0
            text = get("/metrics")
            received = _value(RECEIVED, text) - received0
            sent = background.sent - sent0
        finally:
            if background is not None:
                background.stopping.set()
                background.join(10)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
    if background is not None and background.error is not None:
        raise SystemExit(f"background sender failed: {background.error!r}")
    probes = latencies + [SAMPLE_DEADLINE] * missed  # a miss counts as the deadline: a lower bound
    if not probes:
        raise SystemExit("no probe was sent")
    p50, p99 = _percentile(probes, 50), _percentile(probes, 99)
    scrape = statistics.median(scrapes)
    result: dict[str, Any] = {
        "bench": "latency",
        "samples": len(probes),
        "missed": missed,
        "p50_ms": round(p50 * 1000, 1),
        "p99_ms": round(p99 * 1000, 1),
        "max_ms": round(max(probes) * 1000, 1),
        "mean_ms": round(statistics.fmean(probes) * 1000, 1),
        "scrape_median_ms": round(scrape * 1000, 1),
        "scrapes": len(scrapes),
        "background_rate_offered": args.rate,
        "background_rate_sent": round(sent / elapsed),
        "background_rate_received": round(received / elapsed),
        "queue_depth_max": int(deepest),
        "seconds": round(elapsed, 1),
    }
    misses = f", {missed} missed: counted as {SAMPLE_DEADLINE * 1000:.0f} ms" if missed else ""
    print(f"state change -> /metrics over {len(probes)} probes ({elapsed:.0f} s{misses}): "
          f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, max {result['max_ms']} ms "
          f"(one scrape takes {result['scrape_median_ms']} ms: the resolution)")
    print(f"background: offered {args.rate:,.0f} msg/s, sent {result['background_rate_sent']:,} msg/s, "
          f"received by the service {result['background_rate_received']:,} msg/s; deepest queue {int(deepest)}")
    report(result, args.out)


if __name__ == "__main__":
    main()
