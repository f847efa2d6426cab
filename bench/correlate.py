"""Correlator throughput: events/s through `Correlator.feed` for 100 pairs.

Run: `.venv/bin/python bench/correlate.py [--pairs N] [--events N] [--runs R] [--state-share F]`
(or `make bench`). Events are parsed once up front (parsing is bench/parse.py's job); the
timed loop is what `serve` does per event: `feed(event, now, line)`, plus `tick(now)` once
per simulated second. The mix is lease traffic on every host (DISCOVER, OFFER, REQUEST,
ACK, load-balancing refusals), pool lines, and state changes: by default 3% of all lines
(every pair flaps between normal and communications-interrupted every ~17 s, a stress
mix that opens and closes incidents all the time); `--state-share 0.001` is closer to a
healthy fleet. Prints each run and the median; never asserted.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime

from collector.correlator import Correlator
from parsers import LineParser, ParseOptions


def make_events(pairs: int, count: int, seed: int = 7, state_share: float = 0.03) -> list[tuple[float, object, str]]:
    rng = random.Random(seed)
    parser = LineParser(ParseOptions(reference=datetime(2025, 3, 10, tzinfo=UTC)))
    out = []
    start = datetime(2025, 3, 3, 8, tzinfo=UTC).timestamp()
    per_second = 200
    for n in range(count):
        t = start + n / per_second
        pair = rng.randrange(pairs)
        host = f"dhcp{pair}{'ab'[rng.randrange(2)]}"
        rel = f"pair-{pair}"
        r = rng.random()
        mac = "00:00:5e:00:53:%02x" % rng.randrange(256)
        if r < 0.30:
            msg = f"DHCPDISCOVER from {mac} via eth0"
        elif r < 0.50:
            msg = f"DHCPOFFER on 198.18.{pair}.{rng.randrange(1, 250)} to {mac} via eth0"
        elif r < 0.70:
            msg = f"DHCPREQUEST for 198.18.{pair}.{rng.randrange(1, 250)} (198.18.0.1) from {mac} via eth0"
        elif r < 0.92:
            msg = f"DHCPACK on 198.18.{pair}.{rng.randrange(1, 250)} to {mac} via eth0"
        elif r < 0.95:
            msg = f"DHCPDISCOVER from {mac} via eth0: load balance to peer {rel}"
        elif r < 0.97:
            msg = f"balanced pool 5612a0c3e0a0 198.18.{pair}.0/24  total 240  free 120  backup 119  lts 0  max-misbal 36"
        elif r < 1.0 - state_share:
            msg = f"DHCPACK on 198.18.{pair}.{rng.randrange(1, 250)} to {mac} via eth0"
        elif r < 1.0 - state_share / 2:
            msg = f"failover peer {rel}: I move from normal to communications-interrupted"
        else:
            msg = f"failover peer {rel}: I move from communications-interrupted to normal"
        stamp = datetime.fromtimestamp(t, UTC)
        line = f"<30>1 {stamp.isoformat()} {host} dhcpd 1234 - - {msg}"
        out.append((t, parser.parse(line), line))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=100)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--state-share", type=float, default=0.03,
                    help="share of lines that are state changes (default 0.03: every pair flaps every ~17 s)")
    args = ap.parse_args()
    events = make_events(args.pairs, args.events, state_share=args.state_share)
    rates = []
    for run in range(1, args.runs + 1):
        correlator = Correlator()
        feed, tick = correlator.feed, correlator.tick
        next_tick = events[0][0]
        started = time.perf_counter()
        for now, event, line in events:
            if now >= next_tick:
                tick(now)
                next_tick = now + 1.0
            feed(event, now, line)  # type: ignore[arg-type]
        elapsed = time.perf_counter() - started
        rates.append(len(events) / elapsed)
        print(f"run {run}: {len(events)} events, {args.pairs} pairs in {elapsed:.3f} s = {rates[-1]:,.0f} events/s")
    print(f"median of {args.runs}: {statistics.median(rates):,.0f} events/s ({args.pairs} pairs, "
          f"{args.state_share:.1%} state changes, single thread)")


if __name__ == "__main__":
    main()
