"""End-to-end ingest: messages/s until every row is stored, pairwatch next to rsyslog on the same stream.

Run: `.venv/bin/python bench/ingest.py [--messages N] [--runs R] [--transport T]... [--udp-rate N]
[--serve-config FILE] [--out FILE]` (or `make bench`). Needs `rsyslogd` (Debian package rsyslog).

The stream is bench/corpus.py's: N realistic dhcpd and Kea lines from 100 failover pairs
(200 hosts), as rsyslog forwards them. For every run and transport (`tcp-octet`: one TCP
connection, RFC 6587 octet-counted frames; `tcp-lf`: one TCP connection, newline-terminated;
`udp`: one datagram per message from one socket, as fast as Python sends them unless
`--udp-rate` paces them), both receivers get the same bytes, each started fresh on
loopback ports:

* rsyslog, the reference: a real `rsyslogd -n -f CONF -i PIDFILE` (own work directory in a
  temporary directory, `imtcp` and `imudp` into one ruleset whose only action is `omfile`;
  imudp asks for the same socket receive buffer as pairwatch); done when the output file
  has every line.
* pairwatch: a real `pairwatch serve` on a fresh embedded store; done when
  `pairwatch_store_rows_total{table="messages"}` in `/metrics` reaches N. That series alone
  is polled (`/metrics?name[]=...`), seldom while the stream is sent (at most every 2 s, more
  often near the predicted end), because each scrape is work for the service's event loop,
  then every 0.25 s.

The clock runs from the first byte sent until the receiver has everything, or, when some
messages never arrive (UDP), until the last one that did (no growth for a few seconds).
Reported per receiver: messages/s, lost (sent - stored), the sender's own time, CPU
seconds of the receiver's process over the run (all threads; over 100 % means more than one
core; for pairwatch also its main thread, the event loop), and memory from
/proc/PID/smaps_rollup sampled 5 times a second: peak `anon` (the process' own heap: what
must stay bounded), `private` (Private_Clean + Private_Dirty; it includes chdb's library
pages while no other process maps that file, so it moves with what else runs), `file`
(Pss_File: mapped files, for pairwatch mostly chdb's library), and VmHWM at the end; for
pairwatch also at rest (before the stream) and when done, what it received, framing errors,
the kernel's UDP drops, and its SIGTERM exit. Then per transport the median msg/s of the
runs and the ratio pairwatch/rsyslog.

Prints one line per measurement and per transport, then one JSON object, also written to
bench/results/ingest.json. Figures only, never asserted.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from corpus import lf_framed, make_corpus, octet_counted, report  # noqa: E402

from collector.config import DEFAULT_UDP_RECEIVE_BUFFER  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
TRANSPORTS = ("tcp-octet", "tcp-lf", "udp")
STORED = re.compile(r'^pairwatch_store_rows_total\{table="messages"\} (\S+)$', re.MULTILINE)
RECEIVED = re.compile(r'^pairwatch_syslog_messages_total\{transport="(tcp|udp)"\} (\S+)$', re.MULTILINE)
ERRORS = re.compile(r'^pairwatch_syslog_errors_total\{reason="([^"]+)"\} (\S+)$', re.MULTILINE)
KERNEL_DROPS = re.compile(r"^pairwatch_udp_receive_drops_total\{[^}]*\} (\S+)$", re.MULTILINE)
READY_DEADLINE = 120.0
SETTLE = {"tcp-octet": 10.0, "tcp-lf": 10.0, "udp": 3.0}
"""Seconds without growth after which a receiver is taken to have all it will ever get."""
TAIL_POLL = 0.25
"""Seconds between two polls of pairwatch's stored rows once the sender is done."""
TICK = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_seconds(pid: int, thread: int | None = None) -> float:
    """utime + stime of the whole process (every thread), or of one of its threads, from /proc."""
    stat = Path(f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def _memory(pid: int) -> dict[str, int]:
    """Bytes now: rss, private (Private_Clean + Private_Dirty), anon, file (Pss_File)."""
    kb: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, value = line.partition(":")
        kb[key] = int(value.split()[0])
    return {"rss": kb["Rss"] * 1024, "private": (kb["Private_Clean"] + kb["Private_Dirty"]) * 1024,
            "anon": kb["Anonymous"] * 1024, "file": kb.get("Pss_File", 0) * 1024}


def _hwm(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def _mib(values: dict[str, int]) -> dict[str, float]:
    return {key: round(value / MIB, 1) for key, value in values.items()}


class Sampler:
    """Peak memory of one process, sampled on a thread every 0.2 s while running."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = _memory(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _sample(self) -> None:
        try:
            now = _memory(self.pid)
        except OSError:  # the process is gone: the peak stays what was seen
            return
        self.peak = {key: max(value, now[key]) for key, value in self.peak.items()}

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self._sample()


class Sender:
    """Sends the stream on its own thread; `seconds` is how long the sending took."""

    def __init__(self, transport: str, payload: bytes | list[bytes], port: int, udp_rate: float) -> None:
        self.transport, self.payload, self.port, self.udp_rate = transport, payload, port, udp_rate
        self.seconds = 0.0
        self.error: BaseException | None = None
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> float:
        started = time.monotonic()
        self._thread.start()
        return started

    def join(self) -> None:
        self._thread.join()
        if self.error is not None:
            raise SystemExit(f"sending failed: {self.error!r}")

    def _run(self) -> None:
        started = time.monotonic()
        try:
            if isinstance(self.payload, bytes):
                with socket.create_connection(("127.0.0.1", self.port)) as conn:
                    conn.sendall(self.payload)
            else:
                self._udp(self.payload)
        except BaseException as exc:  # reported by join()
            self.error = exc
        self.seconds = time.monotonic() - started
        self.done.set()

    def _udp(self, datagrams: list[bytes]) -> None:
        target = ("127.0.0.1", self.port)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            send = sock.sendto
            if self.udp_rate <= 0:
                for datagram in datagrams:
                    send(datagram, target)
                return
            start, batch = time.monotonic(), max(1, int(self.udp_rate / 100))  # 100 batches a second
            for first in range(0, len(datagrams), batch):
                delay = start + first / self.udp_rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                for datagram in datagrams[first:first + batch]:
                    send(datagram, target)


def wait_stored(count: Callable[[], int], total: int, started: float, sender: Sender, settle: float,
                dense: bool) -> tuple[int, float]:
    """Poll `count()` until it reaches `total`, or stops growing for `settle` s once sent.

    Returns (stored, seconds from `started` to the poll that saw the last growth). `dense`
    polls every 10 ms; otherwise every half of the time the last interval's rate predicts is
    left, at least 20 ms apart and at most 2 s, or `TAIL_POLL` once everything is sent: the
    end is seen within a quarter of a second at worst, with few scrapes (each one is work for
    the service's event loop)."""
    stored, last_change = 0, started
    previous = (started, 0)  # (when, count) of the poll before
    deadline = started + max(120.0, total / 2000)
    while True:
        now_count = count()
        now = time.monotonic()
        if now_count != stored:
            if stored:  # (the first rows come after start-up: no rate yet)
                previous = (last_change, stored)
            stored, last_change = now_count, now
        if stored >= total:
            return stored, last_change - started
        if sender.done.is_set() and now - last_change > settle:
            return stored, last_change - started
        if now > deadline:
            print(f"  gave up after {now - started:.0f} s", flush=True)
            return stored, last_change - started
        if dense:
            time.sleep(0.01)
        else:
            then, before = previous
            rate = (stored - before) / (last_change - then) if stored > before and last_change > then else 0.0
            left = (total - stored) / rate if rate else 1.0
            time.sleep(min(TAIL_POLL if sender.done.is_set() else 2.0, max(0.02, left / 2)))


def _payload(transport: str, lines: list[str]) -> bytes | list[bytes]:
    if transport == "tcp-octet":
        return octet_counted(lines)
    if transport == "tcp-lf":
        return lf_framed(lines)
    return [line.encode() for line in lines]


def _result(receiver: str, transport: str, sent: int, stored: int, seconds: float, sender: Sender,
            cpu: float, peak: dict[str, int], hwm: int, **extra: Any) -> dict[str, Any]:
    rate = stored / seconds if seconds > 0 else 0.0
    result = {"receiver": receiver, "transport": transport, "sent": sent, "stored": stored, "lost": sent - stored,
              "seconds": round(seconds, 3), "msg_per_s": round(rate), "send_seconds": round(sender.seconds, 3),
              "cpu_seconds": round(cpu, 2), "cpu_percent": round(100 * cpu / seconds) if seconds > 0 else None,
              "peak_mib": _mib(peak), "hwm_mib": round(hwm / MIB, 1), **extra}
    mem = result["peak_mib"]
    main = f", main thread {extra['main_thread_cpu_seconds']:.1f} s" if "main_thread_cpu_seconds" in extra else ""
    print(f"  {receiver:9} {transport:9}: {stored}/{sent} stored in {seconds:.2f} s = {rate:,.0f} msg/s, "
          f"lost {sent - stored}; sent in {sender.seconds:.2f} s; CPU {cpu:.1f} s ({result['cpu_percent']} %{main}); "
          f"peak anon {mem['anon']} MiB, private {mem['private']} MiB, file {mem['file']} MiB; "
          f"VmHWM {result['hwm_mib']} MiB", flush=True)
    return result


def http_getter(port: int, timeout: float = 30.0) -> Callable[[str], str]:
    """GET a path of the service's HTTP port on loopback, as text."""
    def get(path: str) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as response:
            return response.read().decode()
    return get


def stored_rows(get: Callable[[str], str]) -> int:
    """The messages the service has stored so far (`pairwatch_store_rows_total{table="messages"}`),
    asked for alone (`name[]`): a whole scrape of 100 pairs is 10-20 ms of the event loop's
    time, and polling it every 0.25 s took about 5 % of that thread in a 300k run (py-spy)."""
    m = STORED.search(get("/metrics?name[]=pairwatch_store_rows_total"))
    return int(float(m.group(1))) if m else 0


def wait_ready(get: Callable[[str], str], proc: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until the service answers /readyz; exit with its log if it dies or takes too long."""
    deadline = time.monotonic() + READY_DEADLINE
    while True:
        try:
            get("/readyz")
            return
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("pairwatch serve did not become ready:\n" + log.read_text()) from None
            time.sleep(0.2)


def _stop(proc: subprocess.Popen[bytes]) -> tuple[int | None, float]:
    """SIGTERM by pid, then SIGKILL after 30 s: (exit code, seconds it took)."""
    started = time.monotonic()
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode, time.monotonic() - started


RSYSLOG_CONF = """\
global(workDirectory="{dir}")
module(load="imtcp")
module(load="imudp")
input(type="imtcp" address="127.0.0.1" port="{tcp}" ruleset="bench")
input(type="imudp" address="127.0.0.1" port="{udp}" rcvBufSize="{rcvbuf}" ruleset="bench")
ruleset(name="bench") {{
  action(type="omfile" file="{out}")
}}
"""


def run_rsyslog(rsyslogd: str, transport: str, payload: bytes | list[bytes], sent: int, udp_rate: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="pairwatch-bench-rsyslog-") as tmp:
        tcp, udp = _free_port(socket.SOCK_STREAM), _free_port(socket.SOCK_DGRAM)
        out, conf = Path(tmp) / "out.log", Path(tmp) / "rsyslog.conf"
        conf.write_text(RSYSLOG_CONF.format(dir=tmp, tcp=tcp, udp=udp, out=out, rcvbuf=DEFAULT_UDP_RECEIVE_BUFFER))
        with open(Path(tmp) / "rsyslogd.log", "wb") as log:
            proc = subprocess.Popen([rsyslogd, "-n", "-f", str(conf), "-i", f"{tmp}/rsyslogd.pid"],
                                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while True:  # listening once a TCP connect succeeds (imudp is bound in the same step)
                try:
                    socket.create_connection(("127.0.0.1", tcp), timeout=1).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit("rsyslogd did not start:\n" + (Path(tmp) / "rsyslogd.log").read_text()) from None
                    time.sleep(0.05)
            sender = Sender(transport, payload, udp if transport == "udp" else tcp, udp_rate)
            cpu0 = _cpu_seconds(proc.pid)
            with _LineCounter(out) as lines, Sampler(proc.pid) as sampler:
                started = sender.start()
                stored, seconds = wait_stored(lines, sent, started, sender, SETTLE[transport], dense=True)
                cpu = _cpu_seconds(proc.pid) - cpu0
                hwm = _hwm(proc.pid)
            sender.join()
        finally:
            _stop(proc)
        return _result("rsyslog", transport, sent, stored, seconds, sender, cpu, sampler.peak, hwm)


class _LineCounter:
    """Lines in a file that is being appended to, reading only what is new at each call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines = 0
        self._file: Any = None

    def __call__(self) -> int:
        if self._file is None:
            try:
                self._file = open(self.path, "rb")
            except FileNotFoundError:
                return 0
        while chunk := self._file.read(1 << 20):
            self.lines += chunk.count(b"\n")
        return self.lines

    def __enter__(self) -> _LineCounter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()


def run_pairwatch(transport: str, payload: bytes | list[bytes], sent: int, udp_rate: float,
                  config: Path | None = None) -> dict[str, Any]:
    tcp, udp, http = _free_port(socket.SOCK_STREAM), _free_port(socket.SOCK_DGRAM), _free_port(socket.SOCK_STREAM)
    with tempfile.TemporaryDirectory(prefix="pairwatch-bench-") as tmp:
        with open(Path(tmp) / "serve.log", "wb") as log:
            tuning = ["--config", str(config.resolve())] if config else []
            proc = subprocess.Popen(
                [sys.executable, "-m", "collector.cli", "serve", *tuning, "--tcp", f"127.0.0.1:{tcp}", "--udp",
                 f"127.0.0.1:{udp}", "--http", f"127.0.0.1:{http}", "--store", f"embedded:{tmp}/store"],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )

        get = http_getter(http)

        def stored() -> int:
            return stored_rows(get)

        try:
            wait_ready(get, proc, Path(tmp) / "serve.log")
            time.sleep(1.0)  # let start-up work finish before "at rest" is taken
            at_rest = _memory(proc.pid)
            sender = Sender(transport, payload, udp if transport == "udp" else tcp, udp_rate)
            cpu0, main0 = _cpu_seconds(proc.pid), _cpu_seconds(proc.pid, proc.pid)
            with Sampler(proc.pid) as sampler:
                started = sender.start()
                count, seconds = wait_stored(stored, sent, started, sender, SETTLE[transport], dense=False)
                cpu = _cpu_seconds(proc.pid) - cpu0
                main_cpu = _cpu_seconds(proc.pid, proc.pid) - main0
                hwm = _hwm(proc.pid)
                when_done = _memory(proc.pid)
            sender.join()
            text = get("/metrics")
            received = {m.group(1): int(float(m.group(2))) for m in RECEIVED.finditer(text)}
            errors = {m.group(1): int(float(m.group(2))) for m in ERRORS.finditer(text) if float(m.group(2))}
            kernel_drops = sum(int(float(m.group(1))) for m in KERNEL_DROPS.finditer(text))
        finally:
            code, stop_seconds = _stop(proc)
        return _result("pairwatch", transport, sent, count, seconds, sender, cpu, sampler.peak, hwm,
                       main_thread_cpu_seconds=round(main_cpu, 2),
                       received=received.get("udp" if transport == "udp" else "tcp", 0), errors=errors,
                       udp_kernel_drops=kernel_drops, at_rest_mib=_mib(at_rest), done_mib=_mib(when_done),
                       sigterm_exit=code, sigterm_seconds=round(stop_seconds, 2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=300_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--transport", action="append", choices=TRANSPORTS,
                    help="tcp-octet, tcp-lf or udp (repeatable; default: all three)")
    ap.add_argument("--udp-rate", type=float, default=0.0, help="pace UDP at this many msg/s (default 0: unpaced)")
    ap.add_argument("--out", type=Path, default=RESULTS / "ingest.json", help="where the JSON goes")
    ap.add_argument("--serve-config", type=Path, help="a config file for pairwatch serve (its [serve] tuning keys; "
                    "the listeners, HTTP address and store are the bench's own)")
    args = ap.parse_args()
    rsyslogd = shutil.which("rsyslogd") or shutil.which("rsyslogd", path="/usr/sbin:/sbin")
    if rsyslogd is None:
        raise SystemExit("bench/ingest.py: rsyslogd not found (Debian package `rsyslog`)")
    transports = args.transport or list(TRANSPORTS)
    corpus = make_corpus(args.messages)
    payloads = {t: _payload(t, corpus.lines) for t in transports}
    measured: dict[str, dict[str, list[dict[str, Any]]]] = {t: {"rsyslog": [], "pairwatch": []} for t in transports}
    for run in range(1, args.runs + 1):
        print(f"run {run}/{args.runs}: {args.messages} messages, {corpus.pairs} pairs", flush=True)
        for t in transports:
            measured[t]["rsyslog"].append(run_rsyslog(rsyslogd, t, payloads[t], args.messages, args.udp_rate))
            measured[t]["pairwatch"].append(run_pairwatch(t, payloads[t], args.messages, args.udp_rate,
                                                          args.serve_config))

    summary: dict[str, Any] = {}
    for t in transports:
        rates = {r: statistics.median(m["msg_per_s"] for m in runs) for r, runs in measured[t].items()}
        lost = {r: max(m["lost"] for m in runs) for r, runs in measured[t].items()}
        ratio = rates["pairwatch"] / rates["rsyslog"] if rates["rsyslog"] else None
        summary[t] = {"pairwatch_msg_per_s": round(rates["pairwatch"]), "rsyslog_msg_per_s": round(rates["rsyslog"]),
                      "ratio": None if ratio is None else round(ratio, 3), "pairwatch_lost_max": lost["pairwatch"],
                      "rsyslog_lost_max": lost["rsyslog"],
                      "pairwatch_peak_private_mib": max(m["peak_mib"]["private"] for m in measured[t]["pairwatch"]),
                      "pairwatch_peak_anon_mib": max(m["peak_mib"]["anon"] for m in measured[t]["pairwatch"])}
        pace = f", UDP paced at {args.udp_rate:,.0f} msg/s" if t == "udp" and args.udp_rate > 0 else ""
        print(f"{t}: median of {args.runs}: pairwatch {rates['pairwatch']:,.0f} msg/s (lost max {lost['pairwatch']}), "
              f"rsyslog {rates['rsyslog']:,.0f} msg/s (lost max {lost['rsyslog']}), ratio "
              f"{'-' if ratio is None else f'{ratio:.2f}'}{pace}; pairwatch peak anon "
              f"{summary[t]['pairwatch_peak_anon_mib']} MiB (private {summary[t]['pairwatch_peak_private_mib']} MiB)")
    result = {"bench": "ingest", "messages": args.messages, "runs": args.runs, "pairs": corpus.pairs,
              "udp_rate": args.udp_rate,
              "serve_config": args.serve_config.read_text() if args.serve_config else None,
              "summary": summary, "measurements": measured}
    report(result, args.out)


if __name__ == "__main__":
    main()
