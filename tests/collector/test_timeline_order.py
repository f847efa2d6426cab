"""The merged timeline is in event-time order, not arrival order (DESIGN.md "Event time").

Two servers' lines reach a real `pairwatch serve` over two TCP connections; the second
server's lines arrive late (seconds, then an hour: a forwarder's disk queue flushed after an
outage), with their header times in the past. The API (paged by its cursor, small pages) and
`pairwatch timeline --json --store` both interleave the two servers by the time the lines
happened; `since` selects by that time too.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.serving import ROOT, STOP_DEADLINE, Serve, serving

pytestmark = pytest.mark.integration


def frame(at: datetime, host: str, n: int) -> bytes:
    """An octet-counted RFC 5424 frame of a DHCPACK logged by `host` at `at`; `n` names it."""
    stamp = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    line = f"<30>1 {stamp} {host} dhcpd 812 - - DHCPACK on 192.0.2.{n} to 00:00:5e:00:53:{n:02x} via eth0".encode()
    return f"{len(line)} ".encode() + line


def send(serve: Serve, frames: Sequence[bytes]) -> None:
    """One TCP connection (one sender), every frame, then a clean close."""
    with socket.create_connection(("127.0.0.1", serve.tcp), timeout=5) as conn:
        conn.sendall(b"".join(frames))


def api_pages(serve: Serve, hosts: Sequence[str], limit: int, **extra: str) -> list[list[dict[str, Any]]]:
    """Every page of `/api/v1/timeline` for `hosts`, following `next`."""
    pages: list[list[dict[str, Any]]] = []
    after = None
    while True:
        params = [("host", h) for h in hosts] + [("limit", str(limit)), *extra.items()]
        if after:
            params.append(("after", after))
        page = serve.json("/api/v1/timeline?" + urllib.parse.urlencode(params))
        assert isinstance(page, dict)
        pages.append(page["messages"])
        after = page.get("next")
        if not after:
            return pages
        assert len(pages) < 100, "the cursor does not advance"


def stored(serve: Serve, hosts: Sequence[str], n: int) -> list[dict[str, Any]]:
    rows = [r for p in api_pages(serve, hosts, 1000) for r in p]
    return rows if len(rows) >= n else []


@pytest.mark.parametrize("late", [timedelta(seconds=8), timedelta(hours=1)], ids=["seconds", "hour"])
def test_late_lines_interleave_by_event_time(tmp_path_factory: pytest.TempPathFactory, late: timedelta) -> None:
    tag = uuid.uuid4().hex[:6]
    a, b = f"dhcp-a-{tag}", f"dhcp-b-{tag}"
    now = datetime.now(UTC)
    start = now - late - timedelta(seconds=1)
    # a logs at start + 0, 2, 4, 6 s and, for the hour case, once more a moment ago;
    # b logs at start + 1, 3, 5 s, but its lines only arrive after all of a's
    a_times = [start + timedelta(seconds=2 * i) for i in range(4)]
    if late >= timedelta(minutes=30):
        a_times.append(now - timedelta(seconds=1))
    b_times = [start + timedelta(seconds=2 * i + 1) for i in range(3)]
    expected = sorted([(t, a, i) for i, t in enumerate(a_times)] + [(t, b, 100 + i) for i, t in enumerate(b_times)])
    order = [(host, f"192.0.2.{n}") for _, host, n in expected]

    with serving(tmp_path_factory) as serve:
        send(serve, [frame(t, a, i) for i, t in enumerate(a_times)])
        serve.poll(lambda: stored(serve, [a], len(a_times)), "server a's lines stored")
        time.sleep(0.05)  # b's lines arrive strictly later
        send(serve, [frame(t, b, 100 + i) for i, t in enumerate(b_times)])
        rows = serve.poll(lambda: stored(serve, [a, b], len(order)), "both servers' lines stored")

        # arrival order is a's lines then b's; the timeline is the order they happened
        assert max(r["received_at"] for r in rows if r["host"] == a) < min(r["received_at"] for r in rows if r["host"] == b)
        assert [(r["host"], r["ip"]) for r in rows] == order
        pages = api_pages(serve, [a, b], 2)
        assert [len(p) for p in pages[:-1]] == [2] * (len(pages) - 1)
        assert [(r["host"], r["ip"]) for p in pages for r in p] == order
        # `at`: the line's event time, here its header time
        assert all(r["at"] == r["ts"] for r in rows)
        if late >= timedelta(minutes=30):
            # since: what happened in the last half hour, not what arrived in it
            recent = [r for p in api_pages(serve, [a, b], 2, since="30m") for r in p]
            assert [(r["host"], r["ip"]) for r in recent] == [order[-1]]

        serve.proc.terminate()
        assert serve.proc.wait(STOP_DEADLINE) == 0, serve.logs()
        cli = subprocess.run(
            [sys.executable, "-m", "collector.cli", "timeline", "--store", f"embedded:{serve.store}", "--json",
             "--host", a, "--host", b],
            cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert cli.returncode == 0, cli.stderr
        printed = [json.loads(line) for line in cli.stdout.splitlines()]
        assert [(r["host"], r["ip"]) for r in printed] == order
        for row in printed:
            assert {"ts", "received_at", "host", "program", "kind", "message"} <= row.keys()
