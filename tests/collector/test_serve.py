"""`pairwatch serve` end to end: a real service process (tests/serving.py), real `logger`,
real sockets on 127.0.0.1; and the listeners in-process, without a store."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from collector import listeners
from collector.cli import main
from collector.config import Endpoint, parse_endpoint
from collector.listeners import QUEUE_FULL, Intake, Received, start_tcp, start_udp
from collector.metrics import ServiceMetrics
from collector.spool import Spool
from tests.conftest import need, next_line
from tests.serving import (
    ROOT,
    STOP_DEADLINE,
    Serve,
    free_port,
    logger,
    serving,
    start_serve,
    stop,
)


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    need(shutil.which("logger") is not None, "needs util-linux logger")
    with serving(tmp_path_factory) as started:
        yield started


def _interrupted(rel: str) -> str:
    return f"failover peer {rel}: I move from normal to communications-interrupted"


# --- tests against the running service --------------------------------------------------------


@pytest.mark.integration
def test_healthz_and_readyz(serve: Serve) -> None:
    assert serve.get("/healthz") == (200, b"ok\n")
    assert serve.get("/readyz")[0] == 200
    assert serve.get("/nope")[0] == 404
    post = urllib.request.Request(serve.url("/metrics"), data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(post, timeout=5)
    refused.value.close()
    assert refused.value.code == 405
    status, body = serve.get("/api/v1/timeline?limit=zero")
    assert status == 400 and b"limit" in body


@pytest.mark.integration
def test_metrics_answers_a_name_query_with_only_those_series(serve: Serve) -> None:
    status, body = serve.get("/metrics?name[]=pairwatch_syslog_messages_total&name[]=pairwatch_store_rows_total")
    assert status == 200
    series = {line.split("{")[0].split()[0] for line in body.decode().splitlines() if not line.startswith("#")}
    assert series == {"pairwatch_syslog_messages_total", "pairwatch_store_rows_total"}
    everything = serve.get("/metrics")[1]
    assert b"dhcp_failover_state" in everything and len(everything) > 4 * len(body)


@pytest.mark.integration
def test_logger_lines_over_udp_and_tcp_reach_metrics_api_and_store(serve: Serve) -> None:
    tag = uuid.uuid4().hex[:6]
    rel_udp, rel_tcp = f"u{tag}", f"t{tag}"
    host = "127.0.0.1"
    before = serve.samples()
    udp0 = before.get(("pairwatch_syslog_messages_total", (("transport", "udp"),)), 0.0)
    tcp0 = before.get(("pairwatch_syslog_messages_total", (("transport", "tcp"),)), 0.0)

    # UDP: RFC 3164 and RFC 5424
    logger("-n", host, "-P", str(serve.udp), "-d", "--rfc3164", "-t", "dhcpd", f"failover peer {rel_udp}: peer moves from normal to normal")
    logger("-n", host, "-P", str(serve.udp), "-d", "--rfc5424", "-t", "dhcpd", _interrupted(rel_udp))
    # TCP: octet-counted RFC 5424, and non-transparent (LF) RFC 3164
    logger("-n", host, "-P", str(serve.tcp), "-T", "--octet-count", "--rfc5424", "-t", "dhcpd",
           f"failover peer {rel_tcp}: peer moves from normal to normal")
    logger("-n", host, "-P", str(serve.tcp), "-T", "--rfc3164", "-t", "dhcpd", _interrupted(rel_tcp))

    def conditions_open() -> bool:
        s = serve.samples()
        key = "dhcp_failover_condition"
        return all(
            s.get((key, (("condition", "communications_interrupted"), ("pair", rel)))) == 1.0
            for rel in (rel_udp, rel_tcp)
        ) and s.get(("pairwatch_syslog_messages_total", (("transport", "udp"),)), 0) >= udp0 + 2 and s.get(
            ("pairwatch_syslog_messages_total", (("transport", "tcp"),)), 0
        ) >= tcp0 + 2

    serve.poll(conditions_open, "communications_interrupted for both pairs")

    pairs = {p["name"]: p for p in serve.json("/api/v1/pairs")["pairs"]}  # type: ignore[index]
    for rel in (rel_udp, rel_tcp):
        pair = pairs[rel]
        assert pair["implementation"] == "dhcpd"
        assert pair["conditions"]["communications_interrupted"] is True
        (server,) = pair["servers"]
        assert server["state"] == "communications-interrupted"
        assert server["since"].endswith("Z") and server["last_seen"].endswith("Z")

    incidents = serve.json("/api/v1/incidents")["incidents"]  # type: ignore[index]
    opened = {(i["pair"], i["condition"]) for i in incidents}
    assert {(rel_udp, "communications_interrupted"), (rel_tcp, "communications_interrupted")} <= opened

    def stored() -> list:  # type: ignore[type-arg]
        rows = serve.json("/api/v1/timeline?since=10m&limit=10000")["messages"]  # type: ignore[index]
        mine = [r for r in rows if r.get("relationship") in (rel_udp, rel_tcp)]
        return mine if len(mine) >= 4 else []

    rows = serve.poll(stored, "the four lines in the timeline")
    assert {r["kind"] for r in rows} == {"failover.state"}
    assert all(r["received_at"].endswith("Z") for r in rows)
    assert serve.json("/api/v1/incidents?all=1")["incidents"]  # type: ignore[index]


@pytest.mark.integration
def test_bad_frame_keeps_the_connection_and_its_neighbours(serve: Serve) -> None:
    rel = f"b{uuid.uuid4().hex[:6]}"
    oversize0 = serve.value("pairwatch_syslog_errors_total", reason="oversize") or 0.0
    line = f"<30>Mar  3 08:15:02 dhcp-b dhcpd: {_interrupted(rel)}".encode()
    with socket.create_connection(("127.0.0.1", serve.tcp), timeout=5) as conn:
        conn.sendall(b"99999999999 " + b"x" * 10 + b"\n")  # an absurd count (11 digits): bad_length, resync at LF
        conn.sendall(b"70000 " + b"y" * 70000)  # over the 64 KiB limit: oversize, skipped
        conn.sendall(f"{len(line)} ".encode() + line)
        conn.sendall(line + b"\n")
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(5)
        assert conn.recv(1) == b""  # the service closes only after our EOF

    serve.poll(lambda: serve.value("dhcp_failover_condition", condition="communications_interrupted", pair=rel) == 1.0,
         "the good frames after the bad ones")
    assert (serve.value("pairwatch_syslog_errors_total", reason="oversize") or 0) >= oversize0 + 1
    assert (serve.value("pairwatch_syslog_errors_total", reason="bad_length") or 0) >= 1
    assert "framing error" in serve.logs()


@pytest.mark.integration
def test_status_and_timeline_read_the_running_service(serve: Serve, capsys: pytest.CaptureFixture[str]) -> None:
    rel = f"c{uuid.uuid4().hex[:6]}"
    logger("-n", "127.0.0.1", "-P", str(serve.tcp), "-T", "--octet-count", "-t", "dhcpd", _interrupted(rel))
    serve.poll(lambda: serve.value("dhcp_failover_condition", condition="communications_interrupted", pair=rel) == 1.0,
         "the pair")
    api = serve.url("")
    assert main(["status", "--api", api, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (pair,) = [p for p in doc["pairs"] if p["name"] == rel]
    assert pair["servers"][0]["state"] == "communications-interrupted"

    assert main(["status", "--api", api]) == 0
    table = capsys.readouterr().out.splitlines()
    assert f"{rel} (dhcpd): communications_interrupted" in table
    assert all(len(row) <= 80 for row in table)

    def timeline() -> list[dict]:  # type: ignore[type-arg]
        assert main(["timeline", "--api", api, "--pair", rel, "--since", "1h", "--json"]) == 0
        return [json.loads(row) for row in capsys.readouterr().out.splitlines()]

    # a pair's timeline is every line of its hosts (here one host logs for every test pair)
    rows = serve.poll(lambda: [r for r in timeline() if r.get("relationship") == rel], "the pair's stored line")
    assert [(r["kind"], r["to_state"]) for r in rows] == [("failover.state", "communications-interrupted")]
    assert {"ts", "received_at", "host", "program", "kind", "message"} <= rows[0].keys()
    assert main(["timeline", "--api", api, "--pair", rel]) == 0
    assert any(row.endswith(_interrupted(rel)) for row in capsys.readouterr().out.splitlines())


@pytest.mark.integration
def test_a_pairs_timeline_finds_its_hosts_whatever_their_case(serve: Serve) -> None:
    """The correlator knows server "dhcp-up1"; the line says "DHCP-UP1": the pair's timeline
    still has it (the hosts table records each spelling)."""
    rel = f"c{uuid.uuid4().hex[:6]}"
    line = f"<30>Mar  3 08:15:02 DHCP-UP1 dhcpd: {_interrupted(rel)}"
    with socket.create_connection(("127.0.0.1", serve.tcp), timeout=5) as conn:
        conn.sendall(line.encode() + b"\n")
    rows = serve.poll(lambda: serve.json(f"/api/v1/timeline?pair={rel}")["messages"],  # type: ignore[index]
                      "the upper-case host's line in the pair's timeline")
    assert [(r["host"], r["relationship"]) for r in rows] == [("DHCP-UP1", rel)]
    (pair,) = [p for p in serve.json("/api/v1/pairs")["pairs"] if p["name"] == rel]  # type: ignore[index]
    assert [s["host"] for s in pair["servers"]] == ["dhcp-up1"]


def test_status_without_a_service_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port(socket.SOCK_STREAM)
    assert main(["status", "--api", f"http://127.0.0.1:{port}"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is `pairwatch serve` running there?" in err[0]
    assert main(["timeline", "--since", "soon", "--api", f"http://127.0.0.1:{port}"]) == 2


@pytest.mark.integration
def test_sigterm_drains_flushes_and_exits_0(serve: Serve) -> None:
    rel = f"s{uuid.uuid4().hex[:6]}"
    for _ in range(3):
        logger("-n", "127.0.0.1", "-P", str(serve.tcp), "-T", "--octet-count", "-t", "dhcpd", _interrupted(rel))
    serve.poll(lambda: serve.value("dhcp_failover_condition", condition="communications_interrupted", pair=rel) == 1.0,
         "the last lines processed")
    received = sum(serve.value("pairwatch_syslog_messages_total", transport=t) or 0 for t in ("udp", "tcp"))

    started = time.monotonic()
    serve.proc.send_signal(signal.SIGTERM)
    code = serve.proc.wait(STOP_DEADLINE)
    took = time.monotonic() - started
    assert code == 0, serve.logs()
    assert took < STOP_DEADLINE

    snippet = (
        "import json, sys\n"
        "from collector.store import Store\n"
        "s = Store.open(sys.argv[1])\n"
        "print(json.dumps({'messages': len(s.timeline(limit=100000)), 'incidents': len(s.incidents())}))\n"
        "s.close()\n"
    )
    out = subprocess.run([sys.executable, "-c", snippet, f"embedded:{serve.store}"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    counts = json.loads(out.strip().splitlines()[-1])
    assert counts["messages"] == received
    assert counts["incidents"] >= 1
    # `pairwatch timeline --store` reads the same rows once no service holds the store
    cli = subprocess.run([sys.executable, "-m", "collector.cli", "timeline", "--store", f"embedded:{serve.store}", "--json"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    assert len(cli.stdout.splitlines()) == received


@pytest.mark.integration
def test_restart_on_the_same_store_keeps_the_timeline(serve: Serve, tmp_path: Path) -> None:
    stop(serve.proc)  # one process per embedded store directory
    rel = f"r{uuid.uuid4().hex[:6]}"
    again = start_serve(tmp_path, store=serve.store)
    try:
        assert again.proc.poll() is None, again.logs()
        stored = again.json("/api/v1/timeline?since=1h&limit=10000")["messages"]  # type: ignore[index]
        assert stored, "the first run's messages are in the timeline after a restart"
        assert again.json("/api/v1/incidents?all=1")["incidents"]  # type: ignore[index]
        logger("-n", "127.0.0.1", "-P", str(again.udp), "-d", "-t", "dhcpd", _interrupted(rel))
        again.poll(lambda: again.json(f"/api/v1/timeline?pair={rel}&since=1h")["messages"], "the pair's timeline")  # type: ignore[index]
        pairs = again.json("/api/v1/pairs")["pairs"]  # type: ignore[index]
    finally:
        stop(again.proc)
    assert again.proc.returncode == 0
    # the first run's pairs come back from the store with their states and open incidents
    earlier = [p for p in pairs if p["name"] != rel]
    assert earlier, pairs
    assert any(s["state"] == "communications-interrupted" for p in earlier for s in p["servers"]), earlier


# --- in-process pieces (no store) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:5514", ("127.0.0.1", 5514)), ("[::1]:5514", ("::1", 5514)), ("0.0.0.0:0", ("0.0.0.0", 0)),
     ("localhost:514", ("localhost", 514))],
)
def test_endpoint_forms(text: str, expected: tuple[str, int]) -> None:
    assert parse_endpoint(text) == Endpoint(*expected)


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--udp", "nope"], "--udp"),
        (["--tcp", "127.0.0.1:99999"], "--tcp"),
        (["--http", "::1:80"], "--http"),
        (["--tcp", "[::1]"], "--tcp"),
        (["--tls", "127.0.0.1:6514"], "serve.tls_cert"),
    ],
)
def test_bad_serve_flags_exit_2_naming_the_flag(argv: list[str], flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"pairwatch serve: {flag}")


@pytest.mark.integration
def test_tcp_pauses_reading_when_the_queue_is_full_and_loses_nothing() -> None:
    async def scenario() -> list[str]:
        intake = Intake(ServiceMetrics(CollectorRegistry(), "test"), queue_size=4)
        server = await start_tcp(intake, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        lines = [f"<30>Mar  3 08:15:02 h dhcpd: line {i}" for i in range(50)]
        writer.write(b"".join(f"{len(x)} {x}".encode() for x in lines))
        await writer.drain()
        writer.close()
        got: list[str] = []
        deadline = time.monotonic() + 10
        while len(got) < len(lines) and time.monotonic() < deadline:
            assert intake.queued <= 4
            try:
                item = await next_line(intake, 0.5)
            except TimeoutError:
                continue
            got.append(item.text)
            intake.resume_when_drained()
        server.close()
        await server.wait_closed()
        return got

    got = asyncio.run(scenario())
    assert got == [f"<30>Mar  3 08:15:02 h dhcpd: line {i}" for i in range(50)]


@pytest.mark.integration
def test_udp_counts_drops_when_the_queue_is_full() -> None:
    registry = CollectorRegistry()

    def value(name: str, **labels: str) -> float:
        return registry.get_sample_value(name, labels) or 0.0

    async def scenario() -> int:
        intake = Intake(ServiceMetrics(registry, "test", error_reasons=(QUEUE_FULL,)), queue_size=3)
        transport = await start_udp(intake, "127.0.0.1", 0)
        port = transport.get_extra_info("sockname")[1]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i in range(10):
                s.sendto(f"<30>Mar  3 08:15:02 h dhcpd: datagram {i}\n".encode(), ("127.0.0.1", port))
        deadline = time.monotonic() + 5
        while value("pairwatch_syslog_messages_total", transport="udp") + value(
            "pairwatch_syslog_errors_total", reason=QUEUE_FULL
        ) < 10:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        transport.close()
        return intake.queued

    assert asyncio.run(scenario()) == 3
    assert value("pairwatch_syslog_messages_total", transport="udp") == 3
    assert value("pairwatch_syslog_errors_total", reason=QUEUE_FULL) == 7


@pytest.mark.integration
def test_udp_polls_within_a_chunk_pause_while_the_sockets_are_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pipeline's polls (`Intake.poll`) read the sockets again at once while they hold
    datagrams; after a read that found them empty, not before `POLL_IDLE` has passed (each read
    lets go of the GIL, which starved the store's thread when done every 100 lines). The pause
    is made long here, so that a slow machine cannot end it early."""
    monkeypatch.setattr(listeners, "POLL_IDLE", 0.5)

    async def scenario() -> list[int]:
        intake = Intake(ServiceMetrics(CollectorRegistry(), "test"))
        transport = await start_udp(intake, "127.0.0.1", 0)
        address = transport.get_extra_info("sockname")
        queued = []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            def send_and_poll() -> None:
                s.sendto(b"<30>Mar  3 08:15:02 h dhcpd: datagram", address)
                time.sleep(0.002)  # (on loopback it is in the receive buffer by then)
                intake.poll()
                queued.append(intake.queued)

            send_and_poll()  # read: the next poll reads again at once
            send_and_poll()
            intake.poll()  # empty: the next polls wait
            send_and_poll()
            send_and_poll()
            time.sleep(0.5)
            intake.poll()  # read both
            queued.append(intake.queued)
        transport.close()
        return queued

    assert asyncio.run(scenario()) == [1, 2, 2, 2, 4]


@pytest.mark.integration
def test_udp_receive_buffer_beyond_rmem_max_as_root() -> None:
    """As root the listener forces its receive buffer past net.core.rmem_max, as rsyslog's
    imudp does (Python 3.11's socket module does not name SO_RCVBUFFORCE)."""
    need(os.geteuid() == 0, "needs root to force a receive buffer past net.core.rmem_max")
    rmem_max = int(Path("/proc/sys/net/core/rmem_max").read_text())

    async def scenario() -> int:
        intake = Intake(ServiceMetrics(CollectorRegistry(), "test"))
        transport = await start_udp(intake, "127.0.0.1", 0, rcvbuf=4 * rmem_max)
        got = transport.socket.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        transport.close()
        return got

    assert asyncio.run(scenario()) >= 4 * rmem_max  # (the kernel reports twice what it was asked)


@pytest.mark.integration
def test_udp_reads_keep_each_datagrams_sender_order_and_errors() -> None:
    """Datagrams from two senders, interleaved, with a trailing LF, invalid UTF-8, an empty
    one and an oversize one: queued undecoded, they come out in order, each with its sender,
    and the bad ones counted as before."""
    registry = CollectorRegistry()

    def value(name: str, **labels: str) -> float:
        return registry.get_sample_value(name, labels) or 0.0

    sent = [(0, b"<30>Mar  3 08:15:02 h dhcpd: one"), (1, b"<30>Mar  3 08:15:02 h dhcpd: two\n"),
            (1, b"<30>Mar  3 08:15:02 h dhcpd: caf\xe9"), (0, b"\r\n"), (0, b"x" * 70), (0, b"\xff four\r\n"),
            (1, b"<30>Mar  3 08:15:02 h dhcpd: five")]
    expected = [(0, "<30>Mar  3 08:15:02 h dhcpd: one"), (1, "<30>Mar  3 08:15:02 h dhcpd: two"),
                (1, "<30>Mar  3 08:15:02 h dhcpd: caf\ufffd"), (0, "\ufffd four"),
                (1, "<30>Mar  3 08:15:02 h dhcpd: five")]

    async def scenario() -> tuple[list[Received], list[str]]:
        intake = Intake(ServiceMetrics(registry, "test", error_reasons=("oversize", "invalid_utf8")), 64)
        transport = await start_udp(intake, "127.0.0.1", 0)
        port = transport.get_extra_info("sockname")[1]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b:
            a.bind(("127.0.0.1", 0))
            b.bind(("127.0.0.1", 0))
            for who, data in sent:
                (a, b)[who].sendto(data, ("127.0.0.1", port))
            senders = [f"127.0.0.1:{s.getsockname()[1]}" for s in (a, b)]
            got = [await next_line(intake) for _ in expected]
        transport.close()
        return got, senders

    got, senders = asyncio.run(scenario())
    assert [(line.sender, line.text) for line in got] == [(senders[who], text) for who, text in expected]
    assert {line.transport for line in got} == {"udp"}
    assert value("pairwatch_syslog_messages_total", transport="udp") == len(expected)
    assert value("pairwatch_syslog_errors_total", reason="oversize") == 1
    assert value("pairwatch_syslog_errors_total", reason="invalid_utf8") == 2


@pytest.mark.integration
def test_store_down_spools_then_a_restart_replays_everything_once(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A ClickHouse server URL that refuses: the service serves anyway (/readyz 503), keeps
    correlating, and spools the batches; SIGTERM keeps what is in memory in the spool too.
    Restarted on a store that works (the embedded one: no ClickHouse server here), it writes
    the spool first, and every line is stored exactly once."""
    d = tmp_path_factory.mktemp("spooled")
    config = d / "pairwatch.toml"
    config.write_text(f'[serve]\nspool_directory = "{d}/spool"\nbatch_rows = 20\nmemory_rows = 20\n'
                      'batch_interval = 0.2\n')
    refusing = f"clickhouse://u:p@127.0.0.1:{free_port()}/pw"  # nothing listens there
    rel = f"d{uuid.uuid4().hex[:6]}"
    lines = [f"<30>Mar  3 08:15:{i % 60:02d} dhcp-d dhcpd: DHCPACK on 198.18.0.{i % 250 + 1} to 00:00:5e:00:53:01 "
             f"via eth0 #{i}" for i in range(300)] + [f"<30>Mar  3 08:16:00 dhcp-d dhcpd: {_interrupted(rel)}"]
    with serving(tmp_path_factory, ["--config", str(config), "--store", refusing], ready="/healthz") as down:
        assert down.get("/readyz")[0] == 503
        with socket.create_connection(("127.0.0.1", down.tcp), timeout=5) as conn:
            conn.sendall(b"".join(b"%d %s" % (len(x), x.encode()) for x in lines))
        down.poll(lambda: down.value("dhcp_failover_condition", condition="communications_interrupted", pair=rel) == 1.0,
                  "live correlation without a store")
        down.poll(lambda: (down.value("pairwatch_spool_bytes") or 0) > 0, "batches in the spool")
        assert (down.value("pairwatch_store_insert_failures_total") or 0) >= 1
        assert down.get("/api/v1/timeline")[0] == 503
        down.proc.send_signal(signal.SIGTERM)
        assert down.proc.wait(STOP_DEADLINE) == 0, down.logs()
    assert "store did not take every batch by the shutdown time" in down.logs()
    assert "serving anyway" in down.logs()

    with serving(tmp_path_factory, ["--config", str(config)]) as up:  # the harness's embedded store
        def stored() -> list:  # type: ignore[type-arg]
            rows = up.json("/api/v1/timeline?host=dhcp-d&limit=10000")["messages"]  # type: ignore[index]
            return rows if len(rows) >= len(lines) else []

        rows = up.poll(stored, "every spooled line in the store")
        up.poll(lambda: up.value("pairwatch_spool_bytes") == 0.0, "the spool emptied")
        assert sorted(r["message"] for r in rows) == sorted(x.split("dhcpd: ", 1)[1] for x in lines)
        assert len({r["id"] for r in rows}) == len(lines)
        incidents = up.json("/api/v1/incidents?all=1")["incidents"]  # type: ignore[index]
        assert [i["condition"] for i in incidents if i["pair"] == rel] == ["communications_interrupted"]
        assert "caught up" in up.logs()


@pytest.mark.integration
def test_an_unusable_embedded_store_exits_1_with_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    proc = subprocess.run(
        [sys.executable, "-m", "collector.cli", "serve", "--tcp", "127.0.0.1:0", "--http", f"127.0.0.1:{free_port()}",
         "--store", f"embedded:{blocker}/store"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.startswith("pairwatch serve:")]
    assert len(lines) == 1 and "store" in lines[0], proc.stderr


@pytest.mark.integration
def test_tcp_listener_on_ipv6_loopback() -> None:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        need(False, "needs an IPv6 loopback (::1)")

    async def scenario() -> Received:
        intake = Intake(ServiceMetrics(CollectorRegistry(), "test"))
        server = await start_tcp(intake, "::1", 0)
        port = server.sockets[0].getsockname()[1]
        _reader, writer = await asyncio.open_connection("::1", port)
        writer.write(b"<30>Mar  3 08:15:02 h dhcpd: over v6\n")
        await writer.drain()
        item = await next_line(intake)
        writer.close()
        server.close()
        await server.wait_closed()
        return item

    item = asyncio.run(scenario())
    assert item.text == "<30>Mar  3 08:15:02 h dhcpd: over v6"
    assert item.transport == "tcp" and item.sender.startswith("[::1]:")


@pytest.mark.integration
def test_serve_with_tls_and_an_allowlist_from_the_config(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A TLS listener (--tls) with the certificate from the config file, and serve.allow: a
    sender outside it is refused and counted by listener, one inside it is stored."""
    need(shutil.which("openssl") is not None, "needs the openssl command to make a test certificate")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out", "cert.pem",
                    "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"],
                   cwd=d, check=True, capture_output=True, timeout=60)
    config = d / "pairwatch.toml"
    config.write_text(f'[serve]\nallow = ["127.0.0.2/32"]\ntls_cert = "{d}/cert.pem"\ntls_key = "{d}/key.pem"\n')
    tls_port = free_port()
    rel = f"x{uuid.uuid4().hex[:6]}"
    with serving(tmp_path_factory, ["--config", str(config), "--tls", f"127.0.0.1:{tls_port}"]) as serve:
        assert serve.value("pairwatch_udp_receive_drops_total", listener=f"udp:{serve.udp}") == 0.0
        assert serve.value("pairwatch_senders_refused_total", listener=f"tcp:{serve.tcp}") == 0.0
        with socket.create_connection(("127.0.0.1", serve.tcp), timeout=5) as refused:  # from 127.0.0.1
            refused.sendall(f"<30>Mar  3 08:15:02 dhcp-x dhcpd: {_interrupted(rel + 'no')}\n".encode())
        serve.poll(lambda: serve.value("pairwatch_senders_refused_total", listener=f"tcp:{serve.tcp}") == 1.0,
                   "the refusal counted")

        ctx = ssl.create_default_context(cafile=str(d / "cert.pem"))
        with socket.create_connection(("127.0.0.1", tls_port), timeout=5, source_address=("127.0.0.2", 0)) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as conn:
                line = f"<30>Mar  3 08:15:02 dhcp-x dhcpd: {_interrupted(rel)}".encode()
                conn.sendall(b"%d %s" % (len(line), line))
        rows = serve.poll(lambda: serve.json(f"/api/v1/timeline?pair={rel}")["messages"],  # type: ignore[index]
                          "the TLS line in the timeline")
        assert [r["relationship"] for r in rows] == [rel]
        assert serve.value("pairwatch_syslog_messages_total", transport="tls") == 1.0
        assert serve.value("pairwatch_syslog_messages_total", transport="tcp") == 0.0
        assert "refused sender 127.0.0.1" in serve.logs()


def _count_stored(store: Path) -> tuple[int, int]:
    """(rows, distinct messages) of a stopped service's embedded store, read in a subprocess."""
    snippet = (
        "import json, sys, clickhouse_connect\n"
        "c = clickhouse_connect.get_client(interface='chdb', path=sys.argv[1])\n"
        "print(json.dumps(list(c.query('SELECT count(), uniqExact(message) FROM pairwatch.messages').result_rows[0])))\n"
    )
    out = subprocess.run([sys.executable, "-c", snippet, str(store)], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    total, distinct = json.loads(out.strip().splitlines()[-1])
    return int(total), int(distinct)


@pytest.mark.integration
@pytest.mark.parametrize("shutdown", ["9s", "3s"], ids=["default", "too-short-to-process"])
def test_sigterm_right_after_a_burst_of_100k_loses_nothing(tmp_path_factory: pytest.TempPathFactory,
                                                          shutdown: str) -> None:
    """100,000 octet-counted lines, then SIGTERM as soon as they are written. With the default
    shutdown time the pipeline usually processes them all; with 3 s it often cannot, and what
    it has not processed is spilled raw to the spool, which the next start processes first
    (the spill itself is tested deterministically in test_pipeline_spill.py). Either way, after
    the restart every line is stored exactly once."""
    count = 100_000
    payload = b"".join(
        b"%d %s" % (len(x), x) for x in (
            f"<30>Mar  3 08:15:02 burst-{i % 4} dhcpd: DHCPACK on 198.18.1.{i % 250 + 1} to 00:00:5e:00:53:01 via eth0 "
            f"#{i}".encode() for i in range(count)))
    d = tmp_path_factory.mktemp("burst")
    config = d / "pairwatch.toml"
    # a small queue: the connection is paused (backpressure) when SIGTERM comes, as on a slow machine
    config.write_text(f'[serve]\nshutdown_timeout = "{shutdown}"\nqueue_size = 2000\n')
    with serving(tmp_path_factory, ["--config", str(config)]) as first:
        with socket.create_connection(("127.0.0.1", first.tcp), timeout=30) as conn:
            conn.sendall(payload)
        first.proc.send_signal(signal.SIGTERM)
        assert first.proc.wait(STOP_DEADLINE + 2) == 0, first.logs()
    spilled = "kept in the spool for the next start" in first.logs()
    assert spilled or "stopped after 100000 messages" in first.logs(), first.logs()
    again = start_serve(d, store=first.store, args=["--config", str(config)])  # spilled lines first
    assert again.proc.poll() is None, again.logs()
    stop(again.proc)
    assert again.proc.returncode == 0, again.logs()
    assert ("spilled at shutdown" in again.logs()) == spilled
    assert _count_stored(first.store) == (count, count), (first.logs(), again.logs())


@pytest.mark.integration
def test_sigkill_mid_stream_then_a_clean_start_with_state_and_spool(tmp_path_factory: pytest.TempPathFactory) -> None:
    """SIGKILL while lines stream in: the next start opens the embedded store as it was (no
    repair needed), takes back the pair state it had stored (partner-down), writes the batches
    a failing store had left in the spool, and serves."""
    d = tmp_path_factory.mktemp("killed")
    config = d / "pairwatch.toml"
    config.write_text(f'[serve]\nspool_directory = "{d}/spool"\nbatch_rows = 50\nmemory_rows = 50\nbatch_interval = 0.2\n')
    rel = f"k{uuid.uuid4().hex[:6]}"
    down = f"<30>Mar  3 08:15:02 dhcp-k1 dhcpd: failover peer {rel}: I move from communications-interrupted to partner-down"

    def stream(serve: Serve, n: int, tag: str) -> None:
        lines = [f"<30>Mar  3 08:15:02 dhcp-k1 dhcpd: DHCPACK on 198.18.3.{i % 250 + 1} to 00:00:5e:00:53:01 via eth0 "
                 f"{tag}{i}".encode() for i in range(n)]
        with socket.create_connection(("127.0.0.1", serve.tcp), timeout=10) as conn:
            conn.sendall(b"".join(b"%d %s" % (len(x), x) for x in lines))

    # 1. the embedded store: partner-down stored, then killed while lines stream in
    with serving(tmp_path_factory, ["--config", str(config)]) as first:
        with socket.create_connection(("127.0.0.1", first.tcp), timeout=10) as conn:
            conn.sendall(down.encode() + b"\n")
        first.poll(lambda: first.json(f"/api/v1/incidents?all=1&pair={rel}")["incidents"],  # type: ignore[index]
                   "the partner-down incident stored")
        stream(first, 20_000, "a")
        first.proc.kill()
        first.proc.wait(10)
    store = first.store

    # 2. a server store that refuses: batches go to the spool; killed again
    refusing = f"clickhouse://u:p@127.0.0.1:{free_port()}/pw"
    with serving(tmp_path_factory, ["--config", str(config), "--store", refusing], ready="/healthz") as second:
        stream(second, 2_000, "b")
        second.poll(lambda: (second.value("pairwatch_spool_bytes") or 0) > 0, "batches in the spool")
        second.proc.kill()
        second.proc.wait(10)
    copy = d / "spool-copy"
    shutil.copytree(d / "spool", copy)
    spooled, counted = Spool(str(copy), 2**30), 0
    while (record := spooled.peek()) is not None:
        counted += len(record.rows) if record.table == "messages" else 0
        spooled.pop()
    assert counted > 0

    # 3. a clean start on the first store and the spool
    third = start_serve(d, store=store, args=["--config", str(config)])
    try:
        assert third.proc.poll() is None, third.logs()
        (pair,) = [p for p in third.json("/api/v1/pairs")["pairs"] if p["name"] == rel]  # type: ignore[index]
        assert pair["servers"][0]["state"] == "partner-down" and pair["conditions"]["partner_down"] is True
        third.poll(lambda: third.value("pairwatch_spool_bytes") == 0.0, "the spool written")
        assert "caught up" in third.logs()
        assert (third.value("pairwatch_store_rows_total", table="messages") or 0) == counted  # the spooled b lines
        stream(third, 10, "c")
        third.poll(lambda: (third.value("pairwatch_store_rows_total", table="messages") or 0) == counted + 10,
                   "new lines served and stored")
    finally:
        stop(third.proc)
    assert third.proc.returncode == 0, third.logs()


@pytest.mark.integration
def test_an_embedded_store_that_becomes_unwritable_spools_then_catches_up(tmp_path: Path) -> None:
    """The service runs in a mount namespace of its own; its embedded store directory is
    bind-mounted read-only there while it runs (even root gets EROFS): inserts fail, batches
    go to the spool, /readyz says 503; unmounted, the spool is written and every line stored."""
    need(os.geteuid() == 0 and shutil.which("unshare") is not None and shutil.which("nsenter") is not None,
         "needs root, unshare and nsenter for a private read-only mount")
    base = tmp_path
    (base / "store").mkdir()
    config = base / "pairwatch.toml"
    config.write_text(f'[serve]\nspool_directory = "{base}/spool"\nbatch_rows = 20\nmemory_rows = 20\n'
                      'batch_interval = 0.2\n')
    serve = start_serve(base, store=base / "store", args=["--config", str(config)],
                        prefix=["unshare", "--mount", "--propagation", "private"])

    def in_its_mounts(*argv: str) -> None:
        subprocess.run(["nsenter", "-t", str(serve.proc.pid), "-m", *argv], check=True, timeout=30)

    def send(tag: str, n: int) -> None:
        with socket.create_connection(("127.0.0.1", serve.tcp), timeout=10) as conn:
            conn.sendall(b"".join(
                f"<30>Mar  3 08:15:02 dhcp-w dhcpd: DHCPACK on 198.18.4.{i + 1} to 00:00:5e:00:53:01 via eth0 {tag}{i}\n"
                .encode() for i in range(n)))

    def stored() -> float:
        return serve.value("pairwatch_store_rows_total", table="messages") or 0.0

    store = str(base / "store")
    mounted = False
    try:
        assert serve.proc.poll() is None, serve.logs()
        send("a", 50)
        serve.poll(lambda: stored() >= 50, "the first lines stored")
        in_its_mounts("mount", "--bind", store, store)
        mounted = True
        in_its_mounts("mount", "-o", "remount,bind,ro", store)
        send("b", 200)
        serve.poll(lambda: (serve.value("pairwatch_spool_bytes") or 0) > 0, "batches spooled while read-only")
        assert serve.get("/readyz")[0] == 503
        assert (serve.value("pairwatch_store_insert_failures_total") or 0) >= 1
        in_its_mounts("umount", store)
        mounted = False
        serve.poll(lambda: serve.value("pairwatch_spool_bytes") == 0.0 and stored() >= 250,
                   "the spool written once the store is writable again", deadline=60)
        assert serve.get("/readyz")[0] == 200
        send("c", 1)
        serve.poll(lambda: stored() >= 251, "new lines stored again")
    finally:
        if mounted and serve.proc.poll() is None:
            in_its_mounts("umount", store)
        stop(serve.proc)
    assert serve.proc.returncode == 0, serve.logs()
    assert "inserts succeed again" in serve.logs()


@pytest.mark.integration
def test_a_store_that_never_answers_does_not_stop_receiving(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A ClickHouse URL whose server accepts connections and never answers (the slowest store
    there is): the service still starts listening, receives, correlates and answers /metrics
    at once; pending rows stay bounded (backpressure); SIGTERM puts what the store never took
    in the spool, and a start on a store that works writes all of it."""
    d = tmp_path_factory.mktemp("hung")
    config = d / "pairwatch.toml"
    config.write_text(f'[serve]\nspool_directory = "{d}/spool"\nbatch_rows = 100\nmemory_rows = 1000\n'
                      'batch_interval = 0.2\nshutdown_timeout = "5s"\n')
    with socket.create_server(("127.0.0.1", 0)) as hung:  # the kernel accepts; nobody answers
        hung.listen(64)
        url = f"clickhouse://u:p@127.0.0.1:{hung.getsockname()[1]}/pw"
        rel = f"h{uuid.uuid4().hex[:6]}"
        lines = [f"<30>Mar  3 08:15:02 dhcp-h dhcpd: DHCPACK on 198.18.6.{i % 250 + 1} to 00:00:5e:00:53:01 via eth0 "
                 f"h{i}" for i in range(3_000)] + [f"<30>Mar  3 08:16:00 dhcp-h dhcpd: {_interrupted(rel)}"]
        started = time.monotonic()
        with serving(tmp_path_factory, ["--config", str(config), "--store", url], ready="/healthz") as slow:
            assert time.monotonic() - started < 40
            assert slow.get("/readyz")[0] == 503
            with socket.create_connection(("127.0.0.1", slow.tcp), timeout=10) as conn:
                conn.sendall(b"".join(b"%d %s" % (len(x), x.encode()) for x in lines))
            slow.poll(lambda: slow.value("pairwatch_syslog_messages_total", transport="tcp") == len(lines),
                      "every line received while the store hangs", deadline=60)
            slow.poll(lambda: slow.value("dhcp_failover_condition", condition="communications_interrupted",
                                         pair=rel) == 1.0, "live correlation")
            scrape = time.monotonic()
            slow.samples()
            assert time.monotonic() - scrape < 2
            slow.proc.send_signal(signal.SIGTERM)
            assert slow.proc.wait(STOP_DEADLINE + 35) == 0, slow.logs()
    again = start_serve(d, args=["--config", str(config)])  # the harness's embedded store
    try:
        assert again.proc.poll() is None, again.logs()
        again.poll(lambda: (again.value("pairwatch_store_rows_total", table="messages") or 0) >= len(lines),
                   "every line written from the spool", deadline=60)
    finally:
        stop(again.proc)
    assert again.proc.returncode == 0
