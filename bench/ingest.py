"""End-to-end ingest: messages/s from one TCP connection until every row is stored.

Run: `.venv/bin/python bench/ingest.py [--messages N] [--runs R]` (or `make bench`).
Each run starts a real `pairwatch serve` on a fresh embedded store in a temporary
directory (loopback only), sends a bounded stream of realistic dhcpd lease lines as
octet-counted frames over one TCP connection, and polls `/metrics` until
`pairwatch_store_rows_total{table="messages"}` reaches the count. It prints the rate,
the service's resident memory at rest, at its peak and after the load, and how long
SIGTERM took; then the median rate of the runs. Figures only, never asserted.
"""

from __future__ import annotations

import argparse
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STORED = re.compile(r'^pairwatch_store_rows_total\{table="messages"\} (\S+)$', re.MULTILINE)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_mib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    return 0


def make_stream(count: int) -> bytes:
    """DISCOVER / OFFER / ACK from two servers, as rsyslog's octet-counted RFC 3164 forward."""
    frames = []
    for i in range(count):
        mac = f"00:00:5e:00:53:{i % 256:02x}"
        ip = f"198.18.{i // 250 % 4}.{i % 250 + 1}"
        msg = (
            f"<30>Mar  3 08:15:02 dhcp1 dhcpd[1234]: DHCPDISCOVER from {mac} via eth0",
            f"<30>Mar  3 08:15:02 dhcp1 dhcpd[1234]: DHCPOFFER on {ip} to {mac} via eth0",
            f"<30>Mar  3 08:15:02 dhcp2 dhcpd[99]: DHCPACK on {ip} to {mac} (host{i % 100}) via eth1",
        )[i % 3].encode()
        frames.append(b"%d %s" % (len(msg), msg))
    return b"".join(frames)


def one_run(count: int, stream: bytes) -> float:
    tcp, http = _free_port(), _free_port()
    with tempfile.TemporaryDirectory(prefix="pairwatch-bench-") as tmp:
        log = open(Path(tmp) / "serve.log", "wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "collector.cli", "serve", "--tcp", f"127.0.0.1:{tcp}",
             "--http", f"127.0.0.1:{http}", "--store", f"embedded:{tmp}/store"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )

        def get(path: str) -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{http}{path}", timeout=10) as response:
                return response.read().decode()

        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    get("/readyz")
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise SystemExit("pairwatch serve did not become ready") from None
                    time.sleep(0.2)
            time.sleep(2)
            at_rest = _rss_mib(proc.pid)
            started = time.monotonic()
            with socket.create_connection(("127.0.0.1", tcp)) as conn:
                conn.sendall(stream)
            sent = time.monotonic()
            peak = at_rest
            while True:
                m = STORED.search(get("/metrics"))
                peak = max(peak, _rss_mib(proc.pid))
                if m and float(m.group(1)) >= count:
                    break
                if time.monotonic() - started > 600:
                    raise SystemExit("not every message was stored within 10 minutes")
                time.sleep(0.1)
            done = time.monotonic()
            time.sleep(2)
            after = _rss_mib(proc.pid)
        finally:
            stop = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(30)
            log.close()
        rate = count / (done - started)
        print(f"{count} messages: sent in {sent - started:.2f} s, stored in {done - started:.2f} s = {rate:,.0f} msg/s; "
              f"RSS {at_rest} MiB at rest, {peak} MiB peak, {after} MiB after; SIGTERM exit {code} in "
              f"{time.monotonic() - stop:.1f} s")
        return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    stream = make_stream(args.messages)
    rates = [one_run(args.messages, stream) for _ in range(args.runs)]
    print(f"median of {args.runs}: {statistics.median(rates):,.0f} msg/s end to end "
          f"(one TCP connection, octet-counted, embedded store)")


if __name__ == "__main__":
    main()
