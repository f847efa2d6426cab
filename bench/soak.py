"""Steady load for a long time: `pairwatch serve`'s memory and CPU, minute by minute.

Run: `.venv/bin/python bench/soak.py [--rate 5000] [--minutes 10] [--serve-config FILE] [--out FILE]`
(`make bench` runs the 10-minute version).

A real `pairwatch serve` (a subprocess on loopback ports, its own embedded store in a
temporary directory, the default configuration unless `--serve-config`) takes bench/corpus.py's
fleet stream (100 pairs) over ONE TCP connection, RFC 6587 octet-counted, at `--rate` messages
per second, paced in 10 ms batches, for `--minutes`. The stream moves forward in time as a
real fleet's does: it is made a minute at a time, each minute's corpus dated where the last
one ended (round and round one corpus would send the same past again and again, and the
service would rightly treat it as late lines).

Each minute it prints the service's resident memory (VmRSS), its anonymous memory, the CPU
seconds it used in that minute, the embedded engine's own memory
(`pairwatch_store_engine_memory_bytes`) and the lines sent and stored so far. At the end:
sent, stored and lost (after up to 60 s for the store to catch up), the peak RSS, and RSS at
the end against RSS at 10 minutes (the issue's "within 15 %"); one JSON object, also written
to bench/results/soak.json. Figures only, never asserted.
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import corpus  # noqa: E402
from corpus import make_corpus, octet_counted, report  # noqa: E402
from ingest import _free_port, _memory, _stop, http_getter, stored_rows, wait_ready  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
TICK = 0.01
CHUNK_SECONDS = 60
ENGINE = re.compile(r"^pairwatch_store_engine_memory_bytes (\S+)$", re.MULTILINE)
CATCH_UP = 60.0


class Stream(threading.Thread):
    """Makes the corpus a minute at a time, each dated where the previous one ended."""

    def __init__(self, rate: float, minutes: int) -> None:
        super().__init__(daemon=True)
        self.rate, self.minutes = rate, minutes
        self.chunks: queue.Queue[list[bytes]] = queue.Queue(maxsize=2)
        self.start_at = float(int(time.time()))

    def run(self) -> None:
        lines_per_chunk = int(self.rate * CHUNK_SECONDS)
        for minute in range(self.minutes):
            dated = corpus.START
            corpus.START = self.start_at + minute * CHUNK_SECONDS  # type: ignore[misc]
            try:
                lines = make_corpus(lines_per_chunk, rate=self.rate, seed=minute + 1).lines
            finally:
                corpus.START = dated  # type: ignore[misc]
            self.chunks.put([octet_counted([line]) for line in lines])


class Sender(threading.Thread):
    """Sends the stream's chunks at `rate` msg/s on one connection, in 10 ms batches."""

    def __init__(self, port: int, stream: Stream, rate: float, minutes: int) -> None:
        super().__init__(daemon=True)
        self.port, self.stream, self.rate, self.minutes = port, stream, rate, minutes
        self.sent = 0
        self.error: BaseException | None = None
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            with socket.create_connection(("127.0.0.1", self.port)) as conn:
                start = time.monotonic()
                for _ in range(self.minutes):
                    frames = self.stream.chunks.get()
                    done = 0
                    while done < len(frames) and not self.stopping.is_set():
                        due = min(len(frames), int((time.monotonic() - start) * self.rate) - self.sent + done)
                        if due > done:
                            conn.sendall(b"".join(frames[done:due]))
                            self.sent += due - done
                            done = due
                        self.stopping.wait(TICK)
        except BaseException as exc:  # reported by main()
            self.error = exc


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=5000.0, help="messages/s (default 5000)")
    ap.add_argument("--minutes", type=int, default=10)
    ap.add_argument("--serve-config", type=Path, help="a config file for pairwatch serve")
    ap.add_argument("--out", type=Path, default=RESULTS / "soak.json", help="where the JSON goes")
    args = ap.parse_args()
    tcp, http = _free_port(socket.SOCK_STREAM), _free_port(socket.SOCK_STREAM)

    get = http_getter(http)

    def stored() -> int:
        return stored_rows(get)

    stream = Stream(args.rate, args.minutes)
    stream.start()
    minutes: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="pairwatch-bench-soak-") as tmp:
        command = [sys.executable, "-m", "collector.cli", "serve", "--tcp", f"127.0.0.1:{tcp}",
                   "--http", f"127.0.0.1:{http}", "--store", f"embedded:{tmp}/store"]
        if args.serve_config:
            command[4:4] = ["--config", str(args.serve_config)]
        with open(Path(tmp) / "serve.log", "wb") as log:
            proc = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        sender: Sender | None = None
        try:
            wait_ready(get, proc, Path(tmp) / "serve.log")
            start_rss, cpu_before = _rss(proc.pid), _cpu(proc.pid)
            print(f"at start: RSS {start_rss / 2**20:,.0f} MiB")
            sender = Sender(tcp, stream, args.rate, args.minutes)
            sender.start()
            began = time.monotonic()
            for minute in range(1, args.minutes + 1):
                time.sleep(max(0.0, began + minute * 60 - time.monotonic()))
                if proc.poll() is not None or sender.error is not None:
                    raise SystemExit(f"stopped at minute {minute}: serve exit {proc.poll()}, sender {sender.error!r}\n"
                                     + (Path(tmp) / "serve.log").read_text()[-3000:])
                text = get("/metrics")
                engine = ENGINE.search(text)
                cpu = _cpu(proc.pid)
                row = {"minute": minute, "rss_mib": round(_rss(proc.pid) / 2**20, 1),
                       "anon_mib": round(_memory(proc.pid)["anon"] / 2**20, 1),
                       "cpu_s": round(cpu - cpu_before, 1),
                       "engine_mib": round(float(engine.group(1)) / 2**20, 1) if engine else None,
                       "sent": sender.sent, "stored": stored()}
                cpu_before = cpu
                minutes.append(row)
                print(f"minute {minute:3d}: RSS {row['rss_mib']:7,.1f} MiB, anon {row['anon_mib']:7,.1f} MiB, "
                      f"CPU {row['cpu_s']:5.1f} s, engine {row['engine_mib']} MiB, sent {row['sent']:,}, "
                      f"stored {row['stored']:,}", flush=True)
            sender.stopping.set()
            sender.join(10)
            deadline = time.monotonic() + CATCH_UP
            while stored() < sender.sent and time.monotonic() < deadline:
                time.sleep(1.0)
            total_stored = stored()
        finally:
            if sender is not None:
                sender.stopping.set()
            _stop(proc)
    peak = max(row["rss_mib"] for row in minutes)
    at_10 = minutes[min(9, len(minutes) - 1)]["rss_mib"]
    end = minutes[-1]["rss_mib"]
    result = {"bench": "soak", "rate": args.rate, "minutes": args.minutes,
              "serve_config": args.serve_config.read_text() if args.serve_config else None,
              "sent": sender.sent, "stored": total_stored, "lost": sender.sent - total_stored,
              "start_rss_mib": round(start_rss / 2**20, 1), "peak_rss_mib": peak,
              "rss_end_vs_10min": round(end / at_10, 3), "per_minute": minutes}
    print(f"sent {sender.sent:,}, stored {total_stored:,}, lost {sender.sent - total_stored:,}; peak RSS {peak:,.1f} MiB; "
          f"RSS at the end {end:,.1f} MiB = {result['rss_end_vs_10min']:.3f} x RSS at minute {min(10, len(minutes))}")
    report(result, args.out)


if __name__ == "__main__":
    main()
