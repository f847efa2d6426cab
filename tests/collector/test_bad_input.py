"""Bad input against a real `pairwatch serve`: each class is counted, logged at most once per
connection or interval, and costs nothing else: the connection survives where it can, and a
good neighbour message right after it is processed. Plus connection limits, idle timeouts and
fairness between senders, with real sockets on loopback.

Every class and the counter that records it (`pairwatch_syslog_errors_total{reason}`):
binary garbage and NUL bytes (nothing: stored as `syslog.other`), invalid UTF-8
(`invalid_utf8`), frames over the size limit (`oversize`), octet counts that are not
numbers (LF framing takes over: the frame is a `syslog.other` line), counts larger than what
follows (`truncated`, at EOF), 8 MB without a newline (`oversize`), oversized UDP datagrams
(`oversize`), timestamps far off (`timestamp_skew`), control characters in host names
(`bad_hostname`), SQL and template text (stored verbatim), TLS on the plain port
(`tls_on_plain_port`), too many connections (`connection_limit`), idle connections
(`idle_timeout`).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from collector.listeners import (
    CONNECTION_LIMIT,
    IDLE_TIMEOUT,
    LISTENER_ERRORS,
    Intake,
    start_tcp,
)
from collector.metrics import ServiceMetrics
from tests.conftest import next_line
from tests.serving import Serve, serving

MAX_MESSAGE = 8192  # rsyslog's own default maxMessageSize


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    config = tmp_path_factory.mktemp("config") / "pairwatch.toml"
    config.write_text(f"[serve]\nmax_message = {MAX_MESSAGE}\n")
    with serving(tmp_path_factory, ["--config", str(config)]) as started:
        yield started


def _errors(serve: Serve, reason: str) -> float:
    return serve.value("pairwatch_syslog_errors_total", reason=reason) or 0.0


def _good(tag: str) -> bytes:
    return f"<30>Mar  3 08:15:02 good-host dhcpd: failover peer {tag}: I move from normal to communications-interrupted".encode()


def _counted(line: bytes) -> bytes:
    return b"%d %s" % (len(line), line)


def _stored(serve: Serve, needle: str, count: int = 1) -> list[dict]:  # type: ignore[type-arg]
    """The stored messages containing `needle`, once there are `count` of them (batches are
    written every second)."""
    def rows() -> list[dict]:  # type: ignore[type-arg]
        got = serve.json("/api/v1/timeline?limit=10000")["messages"]  # type: ignore[index]
        mine = [r for r in got if needle in r["message"]]
        return mine if len(mine) >= count else []

    return serve.poll(rows, f"{count} stored message(s) with {needle!r}")


def _neighbour_arrives(serve: Serve, tag: str) -> None:
    serve.poll(lambda: serve.value("dhcp_failover_condition", condition="communications_interrupted", pair=tag) == 1.0,
               f"the good line after the bad input ({tag})")


def _send_then_good(serve: Serve, bad: bytes, *, counted_good: bool = True) -> str:
    """Bad bytes, then a good frame on the SAME connection; returns the good line's tag."""
    tag = f"n{uuid.uuid4().hex[:8]}"
    with socket.create_connection(("127.0.0.1", serve.tcp), timeout=10) as conn:
        conn.sendall(bad)
        conn.sendall(_counted(_good(tag)) if counted_good else _good(tag) + b"\n")
        conn.shutdown(socket.SHUT_WR)
        assert conn.recv(1) == b""  # the service closed only after our EOF
    _neighbour_arrives(serve, tag)
    return tag


@pytest.mark.integration
def test_binary_garbage_and_nul_bytes(serve: Serve) -> None:
    garbage = bytes(range(1, 256)).replace(b"\n", b"") * 4
    _send_then_good(serve, garbage + b"\n" + b"abc\x00def\x00", counted_good=False)
    _send_then_good(serve, _counted(b"<30>Mar  3 08:15:02 h dhcpd: with\x00nul\x00inside"))
    (row,) = _stored(serve, "with\x00nul")
    assert row["message"] == "with\x00nul\x00inside" and row["kind"] == "dhcpd.other"


@pytest.mark.integration
def test_invalid_utf8_is_counted_and_stored_with_replacement(serve: Serve) -> None:
    before = _errors(serve, "invalid_utf8")
    _send_then_good(serve, _counted(b"<30>Mar  3 08:15:02 h dhcpd: bad \xff\xfe utf8 here"))
    assert _errors(serve, "invalid_utf8") == before + 1
    (row,) = _stored(serve, "utf8 here")
    assert row["message"] == "bad \ufffd\ufffd utf8 here"


@pytest.mark.integration
def test_oversize_frames_non_numeric_counts_and_8mb_lines(serve: Serve) -> None:
    oversize = _errors(serve, "oversize")
    _send_then_good(serve, b"9000 " + b"y" * 9000)  # a counted frame over the limit: skipped exactly
    _send_then_good(serve, b"x" * (8 * 1024 * 1024) + b"\n", counted_good=False)  # 8 MB, then LF
    assert _errors(serve, "oversize") == oversize + 2
    tag = _send_then_good(serve, b"12a4 not a count\n", counted_good=False)  # not digits: an LF frame
    assert _stored(serve, "12a4 not a count") and tag


@pytest.mark.integration
def test_a_count_larger_than_what_follows_keeps_the_earlier_frames(serve: Serve) -> None:
    truncated = _errors(serve, "truncated")
    tag = f"t{uuid.uuid4().hex[:8]}"
    with socket.create_connection(("127.0.0.1", serve.tcp), timeout=10) as conn:
        conn.sendall(_counted(_good(tag)) + b"500 <30>Mar  3 08:15:02 h dhcpd: cut short")
        conn.shutdown(socket.SHUT_WR)
        assert conn.recv(1) == b""
    _neighbour_arrives(serve, tag)
    serve.poll(lambda: _errors(serve, "truncated") == truncated + 1, "the truncated frame counted")


@pytest.mark.integration
def test_oversized_udp_datagram(serve: Serve) -> None:
    oversize = _errors(serve, "oversize")
    tag = f"u{uuid.uuid4().hex[:8]}"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"z" * (MAX_MESSAGE + 100), ("127.0.0.1", serve.udp))  # over the limit
        s.sendto(_good(tag), ("127.0.0.1", serve.udp))
    _neighbour_arrives(serve, tag)
    assert _errors(serve, "oversize") == oversize + 1


@pytest.mark.integration
def test_far_timestamps_and_control_characters_in_host_names(serve: Serve) -> None:
    skew, bad_host = _errors(serve, "timestamp_skew"), _errors(serve, "bad_hostname")
    _send_then_good(serve, _counted(b"<30>1 2099-01-01T00:00:00Z h dhcpd - - - from the future")
                    + _counted(b"<30>1 1990-01-01T00:00:00Z h dhcpd - - - from the past")
                    + _counted(b"<30>Mar  3 08:15:02 ho\x1bst dhcpd: escape in the host"))
    serve.poll(lambda: _errors(serve, "timestamp_skew") >= skew + 2, "both skewed lines counted")
    assert _errors(serve, "bad_hostname") == bad_host + 1
    assert [r["host"] for r in _stored(serve, "escape in the host")] == ["ho\x1bst"]


@pytest.mark.integration
def test_numbers_too_big_for_their_columns_cost_no_neighbour(serve: Serve) -> None:
    """A PID beyond 32 bits (the store's column) is dropped from the record, so the line and the
    rest of its batch are stored and the store stays healthy."""
    failures = serve.value("pairwatch_store_insert_failures_total")
    _send_then_good(serve, _counted(b"<30>Mar  3 08:15:02 h dhcpd[99999999999]: pid too big for the column")
                    + _counted(b"<30>Mar  3 08:15:02 h dhcpd[4294967296]: DHCPDISCOVER from 00:00:5e:00:53:01 via eth0"))
    (row,) = _stored(serve, "pid too big")
    assert (row["message"], row["pid"]) == ("dhcpd[99999999999]: pid too big for the column", None)
    (lease,) = _stored(serve, "DHCPDISCOVER from 00:00:5e:00:53:01")
    assert lease["pid"] is None and lease["kind"] == "lease.discover"
    assert serve.value("pairwatch_store_insert_failures_total") == failures
    assert serve.get("/readyz")[0] == 200


@pytest.mark.integration
def test_sql_and_template_text_is_stored_verbatim(serve: Serve) -> None:
    nasty = ["x'); DROP TABLE messages; --", "{{7*7}} ${jndi:ldap://198.18.0.9/a} %s%n", "\\' OR 1=1 -- \\\\"]
    _send_then_good(serve, b"".join(_counted(f"<30>Mar  3 08:15:02 h dhcpd: nasty {x}".encode()) for x in nasty))
    got = [r["message"] for r in _stored(serve, "nasty ", len(nasty))]
    assert sorted(got) == sorted(f"nasty {x}" for x in nasty)
    assert serve.get("/readyz")[0] == 200  # and the tables are all still there


@pytest.mark.integration
def test_tls_hello_on_the_plain_port_closes_only_that_connection(serve: Serve) -> None:
    before = _errors(serve, "tls_on_plain_port")
    with socket.create_connection(("127.0.0.1", serve.tcp), timeout=10) as conn:
        conn.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(32))
        assert conn.recv(1) == b""
    assert _errors(serve, "tls_on_plain_port") == before + 1
    _send_then_good(serve, b"")


@pytest.mark.integration
def test_one_log_line_per_connection_for_many_errors(serve: Serve) -> None:
    with socket.create_connection(("127.0.0.1", serve.tcp), timeout=10) as conn:
        port = conn.getsockname()[1]
        conn.sendall(b"".join(b"99999999 x\n" for _ in range(200)))
        conn.shutdown(socket.SHUT_WR)
        assert conn.recv(1) == b""
    serve.poll(lambda: f":{port}: framing error" in serve.logs(), "the framing error logged")
    assert serve.logs().count(f":{port}: framing error") == 1


@pytest.mark.integration
def test_a_flood_does_not_starve_another_sender(serve: Serve) -> None:
    """One connection floods (it is paused and resumed by the bounded queue); another sender's
    lines still get through while the flood goes on."""
    stop = time.monotonic() + 20
    flood_line = _counted(b"<30>Mar  3 08:15:02 flood-host dhcpd: DHCPDISCOVER from 00:00:5e:00:53:01 via eth0")
    chunk = flood_line * 2000
    flooding = True

    async def flood() -> None:
        _reader, writer = await asyncio.open_connection("127.0.0.1", serve.tcp)
        while flooding and time.monotonic() < stop:
            writer.write(chunk)
            await writer.drain()
        writer.close()

    async def scenario() -> float:
        nonlocal flooding
        task = asyncio.create_task(flood())
        await asyncio.sleep(1.0)  # the flood is on
        tag = f"f{uuid.uuid4().hex[:8]}"
        started = time.monotonic()
        _reader, writer = await asyncio.open_connection("127.0.0.1", serve.tcp)
        writer.write(_counted(_good(tag)))
        await writer.drain()
        try:
            while time.monotonic() < stop:
                value = await asyncio.to_thread(
                    serve.value, "dhcp_failover_condition", condition="communications_interrupted", pair=tag)
                if value == 1.0:
                    assert not task.done(), "the flood was still going on"
                    return time.monotonic() - started
                await asyncio.sleep(0.1)
            pytest.fail("the other sender's line did not get through during the flood")
        finally:
            flooding = False
            writer.close()
            await task
        return -1.0

    took = asyncio.run(scenario())
    assert 0 <= took < 15


# --- connection limits, in-process -------------------------------------------------------------


class _Harness:
    def __init__(self, **limits: float | int | None) -> None:
        self.registry = CollectorRegistry()
        self.intake = Intake(ServiceMetrics(self.registry, "test", error_reasons=LISTENER_ERRORS),
                             **limits)  # type: ignore[arg-type]

    def errors(self, reason: str) -> float:
        return self.registry.get_sample_value("pairwatch_syslog_errors_total", {"reason": reason}) or 0.0


async def _closed_by_peer(reader: asyncio.StreamReader) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1), 5) == b""
    except ConnectionError:
        return True


@pytest.mark.integration
def test_connection_limits_total_and_per_sender() -> None:
    async def scenario() -> tuple[bool, bool, bool, float]:
        h = _Harness(max_connections=3, max_per_sender=2)
        server = await start_tcp(h.intake, "0.0.0.0", 0)
        port = server.sockets[0].getsockname()[1]
        a1 = await asyncio.open_connection("127.0.0.1", port)
        a2 = await asyncio.open_connection("127.0.0.1", port)
        a3 = await asyncio.open_connection("127.0.0.1", port)  # a third from 127.0.0.1: over its share
        third_refused = await _closed_by_peer(a3[0])
        b1 = await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.2", 0))  # another sender gets in
        b1[1].write(b"<30>Mar  3 08:15:02 h dhcpd: from b\n")
        await b1[1].drain()
        got = await next_line(h.intake)
        c1 = await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.3", 0))  # total of 3 reached
        fourth_refused = await _closed_by_peer(c1[0])
        a1[1].close()
        await asyncio.sleep(0.2)
        a4 = await asyncio.open_connection("127.0.0.1", port)  # a slot was freed
        a4[1].write(b"<30>Mar  3 08:15:02 h dhcpd: again a\n")
        await a4[1].drain()
        again = await next_line(h.intake)
        for _r, w in (a2, a3, b1, c1, a4):
            w.close()
        server.close()
        await server.wait_closed()
        return third_refused, fourth_refused, got.text.endswith("from b") and again.text.endswith("again a"), \
            h.errors(CONNECTION_LIMIT)

    third, fourth, delivered, counted = asyncio.run(scenario())
    assert third and fourth and delivered
    assert counted == 2


@pytest.mark.integration
def test_idle_connections_are_closed_after_the_timeout() -> None:
    async def scenario() -> tuple[bool, bool, float]:
        h = _Harness(idle_timeout=0.4)
        sweeper = asyncio.create_task(h.intake.close_idle())
        server = await start_tcp(h.intake, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        idle_r, idle_w = await asyncio.open_connection("127.0.0.1", port)
        busy_r, busy_w = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(8):  # the busy one talks every 0.1 s
            busy_w.write(b"<30>Mar  3 08:15:02 h dhcpd: still here\n")
            await busy_w.drain()
            await asyncio.sleep(0.1)
        idle_closed = await _closed_by_peer(idle_r)
        busy_open = not busy_r.at_eof()
        sweeper.cancel()
        for w in (idle_w, busy_w):
            w.close()
        server.close()
        await server.wait_closed()
        return idle_closed, busy_open, h.errors(IDLE_TIMEOUT)

    idle_closed, busy_open, counted = asyncio.run(scenario())
    assert idle_closed and busy_open and counted == 1


@pytest.mark.integration
def test_serve_api_needs_the_bearer_token_when_one_is_set(tmp_path_factory: pytest.TempPathFactory,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAIRWATCH_API_TOKEN", "s3cret-token")  # the subprocess inherits it
    with serving(tmp_path_factory) as secured:
        assert secured.get("/metrics")[0] == 200 and secured.get("/readyz")[0] == 200
        assert secured.get("/api/v1/pairs")[0] == 401
        wrong = urllib.request.Request(secured.url("/api/v1/pairs"), headers={"Authorization": "Bearer nope"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(wrong, timeout=5)
        refused.value.close()
        assert refused.value.code == 401 and refused.value.headers["WWW-Authenticate"].startswith("Bearer")
        right = urllib.request.Request(secured.url("/api/v1/pairs"), headers={"Authorization": "Bearer s3cret-token"})
        with urllib.request.urlopen(right, timeout=5) as resp:
            assert resp.status == 200
        from collector.client import (
            get_json,  # the CLI's client sends the same environment's token
        )

        assert "pairs" in get_json(secured.url(""), "/api/v1/pairs")


@pytest.mark.integration
def test_thousands_of_idle_connections_and_a_slowloris_leave_room_for_the_real_sender() -> None:
    """2,000 idle connections from one address and one sending a byte a second: the per-sender
    limit refuses most of them (counted), the slow one holds one slot, and another sender's
    lines still arrive at once."""
    async def scenario() -> tuple[float, int, list[str]]:
        h = _Harness(max_connections=1000, max_per_sender=32)
        server = await start_tcp(h.intake, "0.0.0.0", 0)
        port = server.sockets[0].getsockname()[1]
        idle = []
        for _ in range(2000):
            try:
                idle.append(await asyncio.open_connection("127.0.0.1", port))
            except OSError:
                break
        slow_r, slow_w = await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.4", 0))
        for byte in b"<30>Mar":  # slowloris: a byte at a time, never a whole frame
            slow_w.write(bytes([byte]))
            await slow_w.drain()
            await asyncio.sleep(0.05)
        _r, real = await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.5", 0))
        real.write(b"<30>Mar  3 08:15:02 h dhcpd: the real sender\n")
        await real.drain()
        got = await next_line(h.intake)
        for _reader, writer in [*idle, (slow_r, slow_w), (_r, real)]:
            writer.close()
        server.close()
        await server.wait_closed()
        return h.errors(CONNECTION_LIMIT), len(idle), [got.text]

    refused, opened, got = asyncio.run(scenario())
    assert opened >= 500, "the test needs file descriptors for hundreds of connections"
    assert refused >= opened - 32
    assert got == ["<30>Mar  3 08:15:02 h dhcpd: the real sender"]


def test_no_shell_no_eval_and_no_sql_built_from_text_in_the_service() -> None:
    """The code itself: no subprocess, os.system, eval or exec anywhere in collector/ and
    parsers/, and every store query passes values as parameters (no f-string or % formatting
    of a query with anything but the database name and fixed fragments)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    paths = [*(root / "collector").rglob("*.py"), *(root / "parsers").rglob("*.py")]  # (sub-packages too)
    assert len(paths) > 30
    for path in paths:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
                assert not {"subprocess", "pty", "shlex"} & set(names), f"{path}: imports {names}"
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
                assert name not in ("eval", "exec", "system", "popen", "spawnl", "execv"), f"{path}:{node.lineno} {name}"
                if name in ("query", "command") and node.args:
                    query = node.args[0]
                    # allowed: a constant, a name/attribute (schema constants), or `self._render(...)`/`.format(db=...)`
                    assert not isinstance(query, ast.JoinedStr | ast.BinOp), f"{path}:{node.lineno}: query built inline"
