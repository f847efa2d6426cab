"""A real `pairwatch serve` for tests: a subprocess on 127.0.0.1 with its own embedded store.

The service runs as a SUBPROCESS: chdb allows one store directory per process and the pytest
process already has one (the session store in tests/conftest.py). Everything started here is
stopped by pid, also when a test fails. Test modules build their fixtures from `serving()`.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
READY_DEADLINE = 60.0
POLL_DEADLINE = 20.0
STOP_DEADLINE = 10.0

T = TypeVar("T")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port that was free a moment ago (a bind race is retried by `serving`)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def metric_samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A /metrics body as (name, sorted labels) -> value."""
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@dataclass
class Serve:
    proc: subprocess.Popen[bytes]
    udp: int
    tcp: int
    http: int
    store: Path
    log: Path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http}{path}"

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url(path), timeout=5) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def json(self, path: str) -> object:
        status, body = self.get(path)
        assert status == 200, (status, body)
        return json.loads(body)

    def samples(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of /metrics: (name, sorted labels) -> value."""
        status, body = self.get("/metrics")
        assert status == 200
        return metric_samples(body)

    def value(self, name: str, **labels: str) -> float | None:
        return self.samples().get((name, tuple(sorted(labels.items()))))

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

    def poll(self, condition: Callable[[], T], what: str, deadline: float = POLL_DEADLINE) -> T:
        """Wait until `condition()` is truthy and return it; fail with the service log otherwise."""
        result = wait_until(condition, deadline)
        if not result:
            pytest.fail(f"timed out waiting for {what}\n--- serve log ---\n{self.logs()}")
        return result


def wait_until(condition: Callable[[], T], deadline: float) -> T | None:
    """Poll `condition` every 0.1 s until it is truthy and return that; its last (falsy)
    result after `deadline` seconds (the caller fails in its own way)."""
    end = time.monotonic() + deadline
    while True:
        result = condition()
        if result or time.monotonic() > end:
            return result
        time.sleep(0.1)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it does not exit within STOP_DEADLINE."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def start_serve(tmp: Path, store: Path | None = None, args: Sequence[str] = (), ready: str = "/readyz",
                prefix: Sequence[str] = ()) -> Serve:
    """Start `serve` on fresh loopback ports and wait until `ready` answers 200; `args` are
    extra flags (a later `--store` wins), `prefix` runs it through another command (e.g.
    setpriv, as another user). Returns also when the process exited early (the caller looks
    at the exit)."""
    udp, tcp, http = free_port(socket.SOCK_DGRAM), free_port(), free_port()
    store = store or tmp / "store"
    log = tmp / "serve.log"
    argv = [
        *prefix, sys.executable, "-m", "collector.cli", "serve",
        "--udp", f"127.0.0.1:{udp}", "--tcp", f"127.0.0.1:{tcp}", "--http", f"127.0.0.1:{http}",
        "--store", f"embedded:{store}", *args,
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    serve = Serve(proc, udp, tcp, http, store, log)
    deadline = time.monotonic() + READY_DEADLINE
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return serve
            try:
                if serve.get(ready)[0] == 200:
                    return serve
            except OSError:
                pass
            time.sleep(0.2)
    except BaseException:
        stop(proc)
        raise
    stop(proc)
    pytest.fail(f"serve not ready within {READY_DEADLINE} s:\n{serve.logs()}")


@contextlib.contextmanager
def serving(factory: pytest.TempPathFactory, args: Sequence[str] = (), ready: str = "/readyz") -> Iterator[Serve]:
    """A running service for the duration of the block, stopped by pid afterwards.

    A port probed free can be taken before the service binds it: one retry covers that."""
    started = None
    for attempt in range(2):
        started = start_serve(factory.mktemp(f"serve{attempt}"), args=args, ready=ready)
        if started.proc.poll() is None:
            break
        if "cannot listen" not in started.logs() or attempt == 1:
            pytest.fail(f"serve exited with {started.proc.returncode}:\n{started.logs()}")
    assert started is not None
    try:
        yield started
    finally:
        stop(started.proc)


def logger(*args: str) -> None:
    """util-linux `logger` with these arguments (it must succeed)."""
    subprocess.run(["logger", *args], check=True, timeout=10, stdin=subprocess.DEVNULL)


def rfc5424_frame(stamp: str, host: str, program: str, pid: str, message: str, pri: int = 30) -> bytes:
    """One octet-counted RFC 5424 frame, `LEN <PRI>1 STAMP HOST PROGRAM PID - - MESSAGE`, as
    rsyslog's RSYSLOG_SyslogProtocol23Format sends it over TCP."""
    text = f"<{pri}>1 {stamp} {host} {program} {pid} - - {message}".encode()
    return b"%d %s" % (len(text), text)
