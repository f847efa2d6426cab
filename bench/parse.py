"""Parse throughput: lines/s through `LineParser.parse` over a realistic synthetic mix.

Run: `.venv/bin/python bench/parse.py [--lines N] [--runs R]` (or `make bench`).
Prints each run and the median. The mix mirrors a busy failover pair as rsyslog
forwards it: mostly dhcpd lease traffic in the traditional and RFC 5424 formats,
some Kea lease and HA lines, failover state, pool-balancing and unrelated lines.
Figures are printed, never asserted: this machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime

from parsers import LineParser, ParseOptions

HOSTS = ("dhcp1", "dhcp2")
REL = "campus-pair"


def _mac(rng: random.Random) -> str:
    return "00:00:5e:00:53:%02x" % rng.randrange(256)


def _ip(rng: random.Random) -> str:
    return "198.18.%d.%d" % (rng.randrange(4), rng.randrange(1, 255))


def _header(rng: random.Random, second: int, host: str, program: str) -> str:
    hh, mm, ss = second // 3600 % 24, second // 60 % 60, second % 60
    form = rng.random()
    if form < 0.45:
        return f"Mar  3 {hh:02d}:{mm:02d}:{ss:02d} {host} {program}: "
    if form < 0.85:
        return f"<30>1 2025-03-03T{hh:02d}:{mm:02d}:{ss:02d}.{rng.randrange(10**6):06d}+00:00 {host} {program} 1234 - - "
    return f"<30>2025-03-03T{hh:02d}:{mm:02d}:{ss:02d}+00:00 {host} {program}[1234]: "


def _dhcpd_message(rng: random.Random) -> str:
    mac, ip, via = _mac(rng), _ip(rng), rng.choice(("eth0", "198.18.0.1", "vlan12"))
    name = rng.choice(("", "(host-a) ", "(laptop-17) "))
    r = rng.random()
    if r < 0.22:
        return f"DHCPDISCOVER from {mac} {name}via {via}"
    if r < 0.26:
        return f"DHCPDISCOVER from {mac} {name}via {via}: load balance to peer {REL}"
    if r < 0.46:
        return f"DHCPOFFER on {ip} to {mac} {name}via {via}"
    if r < 0.66:
        return f"DHCPREQUEST for {ip} (198.18.0.2) from {mac} {name}via {via}"
    if r < 0.86:
        return f"DHCPACK on {ip} to {mac} {name}via {via}"
    if r < 0.88:
        return f"DHCPRELEASE of {ip} from {mac} {name}via {via} (found)"
    if r < 0.90:
        return f"DHCPREQUEST for {ip} from {mac} via {via}: lease owned by peer"
    if r < 0.92:
        return "balancing pool 5612a0c3e0a0 198.18.0.0/22  total 1000  free 480  backup 470  lts 5  max-own (+/-)95"
    if r < 0.93:
        return f"failover peer {REL}: I move from normal to communications-interrupted"
    if r < 0.94:
        return f"failover peer {REL}: peer moves from normal to normal"
    if r < 0.95:
        return f"uid lease {ip} for client {mac} is duplicate on 198.18.0.0/22"
    if r < 0.96:
        return f"peer {REL}: disconnected"
    return f"DHCPDISCOVER from {mac} via {via}: peer holds all free leases"


def _kea_message(rng: random.Random) -> str:
    mac, ip = _mac(rng), _ip(rng)
    label = f"[hwtype=1 {mac}], cid=[01:{mac}], tid=0x{rng.randrange(16**8):08x}"
    r = rng.random()
    if r < 0.4:
        return f"INFO  [kea-dhcp4.leases.139887825118784] DHCP4_LEASE_ALLOC {label}: lease {ip} has been allocated for 3600 seconds"
    if r < 0.7:
        return f"INFO  [kea-dhcp4.leases.139887825118784] DHCP4_LEASE_OFFER {label}: lease {ip} will be offered"
    if r < 0.85:
        return f"INFO  [kea-dhcp4.dhcp4.139887825118784] DHCP4_QUERY_LABEL received query: {label}"
    if r < 0.95:
        return "WARN  [kea-dhcp4.ha-hooks.139887825118784] HA_COMMUNICATION_INTERRUPTED kea1: communication with kea2 is interrupted"
    return "INFO  [kea-dhcp4.ha-hooks.139887825118784] HA_STATE_TRANSITION kea1: server transitions from LOAD-BALANCING to COMMUNICATION-RECOVERY state, partner state is UNAVAILABLE"


def make_lines(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        second = 8 * 3600 + i // 50
        r = rng.random()
        if r < 0.75:
            lines.append(_header(rng, second, rng.choice(HOSTS), "dhcpd") + _dhcpd_message(rng))
        elif r < 0.95:
            lines.append(_header(rng, second, rng.choice(("kea1", "kea2")), "kea-dhcp4") + _kea_message(rng))
        else:
            lines.append(_header(rng, second, "dhcp1", "systemd") + "Started Session 42 of user root.")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    lines = make_lines(args.lines)
    options = ParseOptions(reference=datetime(2025, 3, 4, tzinfo=UTC))
    rates = []
    for run in range(1, args.runs + 1):
        parser = LineParser(options)
        parse = parser.parse
        start = time.perf_counter()
        for line in lines:
            parse(line)
        elapsed = time.perf_counter() - start
        rates.append(len(lines) / elapsed)
        print(f"run {run}: {len(lines)} lines in {elapsed:.3f} s = {rates[-1]:,.0f} lines/s")
    print(f"median of {args.runs}: {statistics.median(rates):,.0f} lines/s (single thread, {len(lines)} lines)")


if __name__ == "__main__":
    main()
