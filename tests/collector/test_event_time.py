"""`serve` on event time: a pair's old lines delivered in one burst or paced tell the same story
as `analyze` of the same lines (DESIGN.md "Event time").

Before, the correlator ran on the receive clock: every incident of a burst started and ended
at the moment the burst arrived, and a split brain whose hold had passed in the logs never
opened, because its hold passed in receive time.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from collector.config import parse_config
from collector.correlator import Correlator
from collector.replay import replay
from parsers import ParseOptions
from tests.serving import Serve, rfc5424_frame, serving

pytestmark = pytest.mark.integration

A, B = "et-a", "et-b"
DAY = (time.time() // 86400 - 2) * 86400  # midnight two days ago: old lines, inside the store's TTL
PACE = 20.0  # paced delivery: the logs' time, 20 times faster


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    with serving(tmp_path_factory) as started:
        yield started


def servers(rel: str) -> tuple[str, str]:
    """The two servers of the pair `rel`: its own, see `split_brain`."""
    return f"{rel}-a", f"{rel}-b"


def split_brain(rel: str) -> list[tuple[float, str, str]]:
    """(seconds after 10:00, host, message): a partition during which both servers are put
    into partner-down by hand (40 s of split brain), then the heal, as dhcpd 4.4.3 logs it.
    The servers are the pair's own: a server of two pairs whose lines of one pair come after
    those of the other, logged at the same time, is a clock gone back, and its lines late."""
    peer = f"failover peer {rel}"
    a, b = servers(rel)
    lines = [
        (0.0, a, f"{peer}: I move from startup to normal"), (0.0, b, f"{peer}: I move from startup to normal"),
        (0.1, a, f"{peer}: peer moves from startup to normal"), (0.1, b, f"{peer}: peer moves from startup to normal"),
        (10.0, a, f"peer {rel}: disconnected"), (10.0, a, f"{peer}: I move from normal to communications-interrupted"),
        (10.4, b, f"peer {rel}: disconnected"), (10.4, b, f"{peer}: I move from normal to communications-interrupted"),
        (40.0, a, f"{peer}: I move from communications-interrupted to partner-down"),
        (45.0, b, f"{peer}: I move from communications-interrupted to partner-down"),
        (85.0, a, f"{peer}: peer moves from communications-interrupted to partner-down"),
        (85.0, b, f"{peer}: peer moves from communications-interrupted to partner-down"),
        (85.1, a, f"{peer}: I move from partner-down to potential-conflict"),
        (85.1, b, f"{peer}: I move from partner-down to potential-conflict"),
        (85.2, a, f"{peer}: I move from potential-conflict to conflict-done"),
        (85.3, a, f"{peer}: I move from conflict-done to normal"),
        (85.3, b, f"{peer}: I move from potential-conflict to normal"),
        (85.4, a, f"{peer}: peer moves from potential-conflict to normal"),
        (85.4, b, f"{peer}: peer moves from conflict-done to normal"),
    ]
    # clients answered by both all along, so no server is silent and the pair serves
    lines += [(20.0 * i + 5, (a, b)[i % 2], f"DHCPACK on 192.0.2.{10 + i} to 00:00:5e:00:53:{i:02x} via eth0")
              for i in range(8)]
    return sorted(lines, key=lambda item: item[0])


def frame(offset: float, host: str, message: str) -> bytes:
    stamp = datetime.fromtimestamp(DAY + 36000 + offset, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    return rfc5424_frame(stamp, host, "dhcpd", "42", message)


def analyzed(lines: list[tuple[float, str, str]]) -> list[tuple[str, tuple[str, ...], float, float | None]]:
    texts = [frame(*line).partition(b" ")[2].decode() for line in lines]
    result = replay([(texts, ParseOptions())], Correlator(parse_config({})))
    return sorted((i.condition, i.servers, i.start, i.end) for i in result.incidents)


def stored(serve: Serve, rel: str, count: int) -> list[tuple[str, tuple[str, ...], float, float | None]]:
    def closed() -> list[dict] | None:
        rows = [i for i in serve.json(f"/api/v1/incidents?all=1&pair={rel}")["incidents"]]  # type: ignore[index]
        return rows if len(rows) >= count and all(i["end"] or i["retracted"] for i in rows) else None

    rows = serve.poll(closed, f"{count} closed incidents of {rel}")
    # lines in order on the pair's own timeline: nothing to replay, so nothing to retract
    assert not [i for i in rows if i["retracted"]]
    epoch = lambda text: datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()  # noqa: E731
    return sorted((i["condition"], tuple(i["servers"]), epoch(i["start"]), epoch(i["end"])) for i in rows)


@pytest.mark.parametrize("delivery", ["burst", "paced"])
def test_a_delivery_of_old_lines_stores_what_analyze_finds(serve: Serve, delivery: str) -> None:
    rel = f"e{uuid.uuid4().hex[:6]}"
    lines = split_brain(rel)
    expected = analyzed(lines)
    assert {c for c, *_ in expected} >= {"communications_interrupted", "partner_down", "split_brain"}
    with socket.create_connection(("127.0.0.1", serve.tcp), timeout=5) as conn:
        if delivery == "burst":
            conn.sendall(b"".join(frame(*line) for line in lines))
        else:
            started = time.monotonic()
            for line in lines:
                time.sleep(max(0.0, started + line[0] / PACE - time.monotonic()))
                conn.sendall(frame(*line))
    got = stored(serve, rel, len(expected))
    assert [(c, s) for c, s, _, _ in got] == [(c, s) for c, s, _, _ in expected]
    for (condition, _, start, end), (_, _, want_start, want_end) in zip(got, expected, strict=True):
        assert abs(start - want_start) < 1.0, (condition, start, want_start)
        assert want_end is not None and end is not None and abs(end - want_end) < 1.0, (condition, end, want_end)


def test_late_lines_and_sender_clock_offsets_are_counted(serve: Serve) -> None:
    """A line older than its pair's newest is late: applied within max_lateness (1 h), not
    beyond; each sender's clock offset is its smallest receive time minus header time."""
    rel = f"e{uuid.uuid4().hex[:6]}"
    peer = f"failover peer {rel}"
    before = {applied: serve.value("pairwatch_late_lines_total", applied=applied) or 0.0 for applied in ("yes", "no")}
    lines = [
        (7200.0, A, f"{peer}: I move from startup to normal"),
        (7200.0, B, f"{peer}: I move from startup to normal"),
        (7190.0, B, f"{peer}: peer moves from startup to normal"),  # 10 s late: applied
        (0.0, A, f"{peer}: I move from normal to communications-interrupted"),  # 2 h late: not applied
    ]
    with socket.create_connection(("127.0.0.1", serve.tcp), timeout=5) as conn:
        conn.sendall(b"".join(frame(*line) for line in lines))
    serve.poll(lambda: (serve.value("pairwatch_late_lines_total", applied="no") or 0.0) > before["no"], "the late lines counted")
    assert serve.value("pairwatch_late_lines_total", applied="yes") == before["yes"] + 1
    assert serve.value("pairwatch_late_lines_total", applied="no") == before["no"] + 1

    def states() -> dict[str, tuple[str, str | None]]:
        (pair,) = [p for p in serve.json("/api/v1/pairs")["pairs"] if p["name"] == rel]  # type: ignore[index]
        return {s["host"]: (s["state"], s["peer_state"]) for s in pair["servers"]}

    # the 10 s late line is replayed into the pair's past within a second or so
    want = {A: ("normal", None), B: ("normal", "normal")}
    serve.poll(lambda: states() == want, f"the late line applied: {want}")
    sent_at = time.time()
    offset = serve.value("pairwatch_sender_clock_offset_seconds", host=A)
    # the smallest offset of A's lines: its newest line, logged at DAY 12:00, read a moment ago
    assert offset is not None and 0 < sent_at - (DAY + 36000 + 7200.0) - offset < 30.0
