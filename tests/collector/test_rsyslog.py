"""A real rsyslog forwarding to a real `pairwatch serve`, the way the servers of a pair do.

Each test starts its own `rsyslogd` (foreground, own config, own pid file, own work
directory) with one private input: an imuxsock socket in a temporary directory, fed by
util-linux `logger -u`. The system's /dev/log and any system rsyslog are never touched.
`global(localHostname=...)` gives every instance its own host name, so the lines of one
instance can be told apart in the service that all of them share.

What is proven:

* every transport and framing rsyslog offers (TCP octet-counted, TCP LF, UDP) with every
  stock forwarding template carries each line to the store exactly once, with the host
  name, program, pid and message text as sent, the parsed event, a sane UTC timestamp,
  and the metrics (`pairwatch_syslog_messages_total`, `dhcp_failover_state`) following;
* `deploy/rsyslog/60-pairwatch.conf`, as shipped (only target and port substituted),
  passes `rsyslogd -N1`, forwards the DHCP programs and nothing else, loses and repeats
  nothing while the collector restarts, and keeps its queue on disk when rsyslog itself
  restarts during the outage (within a known rsyslog limitation, see that test).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import need
from tests.pki import make_pki
from tests.serving import ROOT, Serve, free_port, logger, serving, start_serve, stop

pytestmark = pytest.mark.integration

RSYSLOGD = shutil.which("rsyslogd") or next(
    (p for p in ("/usr/sbin/rsyslogd", "/sbin/rsyslogd") if os.access(p, os.X_OK)), None
)
SNIPPET = ROOT / "deploy" / "rsyslog" / "60-pairwatch.conf"
START_DEADLINE = 15.0
ARRIVAL_DEADLINE = 20.0
RESUME_DEADLINE = 45.0
"""The snippet retries a lost collector every 10 s (action.resumeInterval); the first retry
after the collector returns can come up to that late, plus rsyslog's own scheduling."""
CLOCK_SLACK = 300.0
PID = 4242

FRAMINGS = {
    # name: (omfwd protocol parameters, the service's listener and `transport` label)
    "tcp-octet": ('protocol="tcp" TCP_Framing="octet-counted"', "tcp"),
    "tcp-lf": ('protocol="tcp" TCP_Framing="traditional"', "tcp"),
    "udp": ('protocol="udp"', "udp"),
}
TEMPLATES = ("RSYSLOG_SyslogProtocol23Format", "RSYSLOG_ForwardFormat", "RSYSLOG_TraditionalForwardFormat")


def _need_tools() -> None:
    need(RSYSLOGD is not None, "needs rsyslogd (Debian package rsyslog)")
    need(shutil.which("logger") is not None, "needs util-linux logger")


@dataclass(frozen=True, slots=True)
class Line:
    """One message as the DHCP server would log it, and what pairwatch must make of it."""

    program: str
    text: str
    kind: str
    fields: dict[str, Any]
    stored: str | None = None
    """The stored message when it differs from `text` (Kea's severity/logger prefix is header)."""

    @property
    def message(self) -> str:
        return self.text if self.stored is None else self.stored


def dhcpd_lines(rel: str, mark: str) -> list[Line]:
    """A link loss and the state change it causes, then a client's REQUEST and ACK
    (formats from log-messages.md sections 3.1, 3.2 and 5); `rel`/`mark` make them unique."""
    client = f"c-{mark}"
    lease = {"ip": "192.0.2.10", "mac": "00:00:5e:00:53:01", "client_name": client, "via": "eth0"}
    return [
        Line("dhcpd", f"peer {rel}: disconnected", "failover.connection",
             {"relationship": rel, "status": "disconnected"}),
        Line("dhcpd", f"failover peer {rel}: I move from normal to communications-interrupted", "failover.state",
             {"relationship": rel, "side": "self", "from_state": "normal", "to_state": "communications-interrupted"}),
        Line("dhcpd", f"DHCPREQUEST for 192.0.2.10 (192.0.2.1) from 00:00:5e:00:53:01 ({client}) via eth0",
             "lease.request", {**lease, "server_id": "192.0.2.1"}),
        Line("dhcpd", f"DHCPACK on 192.0.2.10 to 00:00:5e:00:53:01 ({client}) via eth0", "lease.ack", lease),
    ]


def kea_line(name: str) -> Line:
    """An HA transition as kea-dhcp4 logs it to syslog (log-messages.md section 7)."""
    message = f"HA_STATE_TRANSITION {name}: server transitions from WAITING to SYNCING state, partner state is READY"
    return Line("kea-dhcp4", f"INFO  [kea-dhcp4.ha-hooks.139887825118784] {message}", "failover.state",
                {"side": "self", "from_state": "waiting", "to_state": "syncing", "ha_name": name,
                 "partner_state": "ready"}, message)


# --- rsyslog ----------------------------------------------------------------------------------

# processInternalMessages: rsyslog's own messages stay in this instance (otherwise they may
# go to the system's log socket); its errors also go to its stderr, kept for failure reports.
MAIN_CONFIG = """\
global(workDirectory="{dir}" localHostname="{host}" processInternalMessages="on")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{dir}/log.sock" RateLimit.Interval="0")
"""


@dataclass
class Rsyslog:
    """A running rsyslogd of this test, with its private socket."""

    proc: subprocess.Popen[bytes]
    dir: Path
    host: str

    @property
    def socket(self) -> Path:
        return self.dir / "log.sock"

    def send(self, line: Line) -> None:
        logger("-u", str(self.socket), "-t", line.program, f"--id={PID}", "--", line.text)

    def report(self) -> str:
        """rsyslogd's stderr (connection errors, suspensions), for failure messages."""
        out = self.dir / "rsyslogd.out"
        return f"--- rsyslogd output ---\n{out.read_text(errors='replace')}" if out.exists() else ""


def start_rsyslog(directory: Path, host: str, rules: str) -> Rsyslog:
    """rsyslogd in the foreground on `directory` (work directory, socket, pid file) with
    `rules` after the private input; returns once its socket exists (the actions are set up
    before the inputs start). TZ=UTC: RSYSLOG_TraditionalForwardFormat carries no zone and
    pairwatch reads zone-less timestamps as UTC, so the sender must run in UTC too."""
    assert RSYSLOGD is not None
    config = directory / "rsyslog.conf"
    config.write_text(MAIN_CONFIG.format(dir=directory, host=host) + rules)
    pidfile = directory / "rsyslogd.pid"
    pidfile.unlink(missing_ok=True)  # a restart on the same directory
    with open(directory / "rsyslogd.out", "ab") as out:
        proc = subprocess.Popen([RSYSLOGD, "-n", "-f", str(config), "-i", str(pidfile)], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env={**os.environ, "TZ": "UTC"})
    started = Rsyslog(proc, directory, host)
    deadline = time.monotonic() + START_DEADLINE
    while not (started.socket.exists() and pidfile.exists()):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            pytest.fail(f"rsyslogd did not start (exit {proc.returncode}):\n{started.report()}")
        time.sleep(0.05)
    return started


@contextlib.contextmanager
def running_rsyslog(directory: Path, host: str, rules: str) -> Iterator[Rsyslog]:
    """`start_rsyslog` for the block; stopped by pid afterwards, also on failure."""
    started = start_rsyslog(directory, host, rules)
    try:
        yield started
    finally:
        stop(started.proc)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path: a unix socket path is limited to 108 bytes, and
    pytest's tmp_path can be longer under a long TMPDIR."""
    with tempfile.TemporaryDirectory(prefix="pw-rs-") as name:
        yield Path(name)


def forward_rules(program: str, action: str) -> str:
    return f'if $programname == "{program}" then {{\n    action({action})\n}}\n'


def deployed_snippet(target: str, port: int) -> str:
    """The shipped snippet with only its collector address and port replaced."""
    out, counts = [], {"target": 0, "port": 0}
    for line in SNIPPET.read_text().splitlines(keepends=True):
        if not line.lstrip().startswith("#"):
            for key, value in (("target", target), ("port", str(port))):
                line, n = re.subn(rf'\b{key}="[^"]*"', f'{key}="{value}"', line)
                counts[key] += n
        out.append(line)
    assert counts == {"target": 1, "port": 1}, f"one target= and one port= outside comments: {counts}"
    return "".join(out)


# --- the service and what it stored -----------------------------------------------------------


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    _need_tools()
    with serving(tmp_path_factory) as started:
        yield started


def stored(serve: Serve, host: str) -> list[dict[str, Any]]:
    rows = serve.json(f"/api/v1/timeline?host={host}&since=1h&limit=1000")["messages"]  # type: ignore[index]
    return list(rows)


def await_stored(serve: Serve, host: str, count: int, what: str, deadline: float = ARRIVAL_DEADLINE,
                 sender: Rsyslog | None = None) -> list[dict[str, Any]]:
    """The host's rows once `count` of them are stored (failing with rsyslog's own log too)."""
    end = time.monotonic() + deadline
    while True:
        rows = stored(serve, host)
        if len(rows) >= count:
            return rows
        if time.monotonic() > end:
            report = sender.report() if sender is not None else ""
            pytest.fail(f"timed out waiting for {what}: {len(rows)} of {count} rows for {host}: "
                        f"{[r['message'] for r in rows]}\n{report}\n--- serve log ---\n{serve.logs()}")
        time.sleep(0.1)


def check_rows(rows: Sequence[dict[str, Any]], host: str, lines: Sequence[Line]) -> None:
    """Each line stored exactly once, in order, with its header fields, text and event."""
    assert [r["message"] for r in rows] == [line.message for line in lines]
    now = datetime.now(UTC)
    for row, line in zip(rows, lines, strict=True):
        assert row["host"] == host
        assert row["program"] == line.program
        assert row["pid"] == PID
        assert row["kind"] == line.kind, row
        assert {k: row.get(k) for k in line.fields} == line.fields
        for key in ("ts", "received_at"):
            assert row[key].endswith("Z"), row
            assert abs((datetime.fromisoformat(row[key]) - now).total_seconds()) < CLOCK_SLACK, row


def received(serve: Serve, transport: str) -> float:
    return serve.value("pairwatch_syslog_messages_total", transport=transport) or 0.0


# --- the matrix: transport x framing x template ----------------------------------------------


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("framing", list(FRAMINGS))
def test_every_line_arrives_once_with_header_text_event_and_metrics(
    serve: Serve, short_dir: Path, framing: str, template: str
) -> None:
    """One rsyslog per case, forwarding four dhcpd lines with this framing and template."""
    protocol, transport = FRAMINGS[framing]
    mark = uuid.uuid4().hex[:8]
    host, rel = f"rs-{framing}-{mark}", f"fo-{mark}"
    port = serve.tcp if transport == "tcp" else serve.udp
    action = f'type="omfwd" target="127.0.0.1" port="{port}" {protocol} template="{template}"'
    lines = dhcpd_lines(rel, mark)
    before = received(serve, transport)

    with running_rsyslog(short_dir, host, forward_rules("dhcpd", action)) as rsyslog:
        for line in lines:
            rsyslog.send(line)
        rows = await_stored(serve, host, len(lines), f"{framing} {template}", sender=rsyslog)

    check_rows(rows, host, lines)
    assert received(serve, transport) - before == len(lines)  # no frame split, merged or sent twice
    state = {"pair": rel, "server": host, "side": "self"}
    serve.poll(lambda: serve.value("dhcp_failover_state", **state, state="communications-interrupted") == 1.0,
               f"dhcp_failover_state of {host}")
    assert serve.value("dhcp_failover_state", **state, state="normal") == 0.0


# --- the deployed snippet ---------------------------------------------------------------------


def test_snippet_passes_the_rsyslog_config_check(tmp_path: Path) -> None:
    _need_tools()
    assert RSYSLOGD is not None

    def check(text: str) -> subprocess.CompletedProcess[str]:
        path = tmp_path / "60-pairwatch.conf"
        path.write_text(text)
        return subprocess.run([RSYSLOGD, "-N1", "-f", str(path)], capture_output=True, text=True, timeout=30)

    shipped = check(SNIPPET.read_text())
    assert shipped.returncode == 0, shipped.stderr
    substituted = check(deployed_snippet("192.0.2.1", 5514))
    assert substituted.returncode == 0, substituted.stderr
    # the check does read the action's parameters: a misspelt one is refused
    broken = check(SNIPPET.read_text().replace("queue.saveOnShutdown=", "queue.saveOnShutdwn="))
    assert broken.returncode != 0 and "queue.saveOnShutdwn" in broken.stderr


def _collector(tmp: Path, run: str, port: int) -> Serve:
    """`pairwatch serve` on the test's one store, with a second TCP listener on `port`,
    which this test keeps across collector restarts."""
    (tmp / run).mkdir()
    started = start_serve(tmp / run, store=tmp / "store", args=["--tcp", f"127.0.0.1:{port}"])
    if started.proc.poll() is not None:
        pytest.fail(f"serve exited with {started.proc.returncode}:\n{started.logs()}")
    return started


def _await_refusal(rsyslog: Rsyslog, port: int) -> None:
    """Until rsyslog has tried the stopped collector: the lines sent meanwhile now sit in
    its queue behind a suspended action, not in a socket."""
    refused = f"cannot connect to 127.0.0.1:{port}"
    end = time.monotonic() + ARRIVAL_DEADLINE
    while refused not in rsyslog.report():
        if time.monotonic() > end:
            pytest.fail(f"rsyslog never found the collector gone\n{rsyslog.report()}")
        time.sleep(0.1)


@pytest.fixture
def second_dir() -> Iterator[Path]:
    """The work directory of a second rsyslog (each has its own queue files)."""
    with tempfile.TemporaryDirectory(prefix="pw-rs-") as name:
        yield Path(name)


def test_snippet_forwards_dhcp_programs_and_keeps_lines_through_a_collector_restart(
    tmp_path: Path, short_dir: Path, second_dir: Path
) -> None:
    """Two servers run the shipped snippet. Collector up: Kea and dhcpd lines arrive, other
    programs' lines do not. Collector stopped: both servers queue. Server `steady` keeps
    running; server `rebooted` restarts rsyslog meanwhile, whose queue goes to disk
    (queue.saveOnShutdown) and comes back. A new collector on the same store and port:

    * `steady`: every line exactly once, in order;
    * `rebooted`: every line queued on disk arrives. Known rsyslog limitation
      (rsyslog/rsyslog#2710, seen with 8.2302 here): the one line the suspended action
      holds at shutdown is not saved, and after the restart rsyslog may send a line twice
      (at-least-once). So at most that line is missing and nothing arrives that was not sent.
    """
    _need_tools()
    mark = uuid.uuid4().hex[:8]
    port = free_port()
    steady, rebooted = f"rs-steady-{mark}", f"rs-rebooted-{mark}"
    rules = {}
    for directory in (short_dir, second_dir):
        (directory / "60-pairwatch.conf").write_text(deployed_snippet("127.0.0.1", port))
        rules[directory] = f'include(file="{directory / "60-pairwatch.conf"}")\n'
    kea = kea_line(f"kea-{mark}")
    s_lines = [dhcpd_lines(f"fo-s{mark}-{n}", f"s{mark}-{n}") for n in range(2)]
    r_lines = [dhcpd_lines(f"fo-r{mark}-{n}", f"r{mark}-{n}") for n in range(3)]

    first = _collector(tmp_path, "run1", port)
    a = start_rsyslog(short_dir, steady, rules[short_dir])
    b = start_rsyslog(second_dir, rebooted, rules[second_dir])
    try:
        # collector up: the DHCP programs arrive, another program does not
        a.send(Line("sshd", f"Accepted publickey for nobody {mark}", "syslog.other", {}))
        for line in (kea, *s_lines[0]):
            a.send(line)
        for line in r_lines[0]:
            b.send(line)
        rows = await_stored(first, steady, 1 + len(s_lines[0]), "the first lines", sender=a)
        check_rows(rows, steady, [kea, *s_lines[0]])  # the sshd line went first on this connection
        check_rows(await_stored(first, rebooted, len(r_lines[0]), "the first lines", sender=b), rebooted, r_lines[0])

        # collector down: both queue; `rebooted` restarts rsyslog with its queue on disk
        stop(first.proc)
        assert first.proc.returncode == 0, first.logs()
        for line in s_lines[1]:
            a.send(line)
        for line in r_lines[1]:
            b.send(line)
        _await_refusal(a, port)
        _await_refusal(b, port)
        stop(b.proc)
        assert b.proc.returncode == 0, b.report()
        assert (second_dir / "pairwatch.qi").exists(), f"no queue on disk: {sorted(second_dir.iterdir())}"
        b = start_rsyslog(second_dir, rebooted, rules[second_dir])
        for line in r_lines[2]:
            b.send(line)

        # collector back on the same store and port
        second = _collector(tmp_path, "run2", port)
        try:
            expected = [kea, *s_lines[0], *s_lines[1]]
            check_rows(await_stored(second, steady, len(expected), "the queued lines", RESUME_DEADLINE, a),
                       steady, expected)
            state = {"pair": f"fo-s{mark}-1", "server": steady, "side": "self"}
            second.poll(lambda: second.value("dhcp_failover_state", **state, state="communications-interrupted") == 1.0,
                        "the queued state change in the metrics")

            in_flight = r_lines[1][0].message
            wanted = {line.message for batch in r_lines for line in batch}

            def all_but_in_flight() -> list[dict[str, Any]]:
                rows = stored(second, rebooted)
                return rows if wanted - {r["message"] for r in rows} <= {in_flight} else []

            rows = second.poll(all_but_in_flight, "the lines queued across the rsyslog restart", RESUME_DEADLINE)
            assert {r["message"] for r in rows} <= wanted
            assert all(r["kind"] in ("failover.connection", "failover.state", "lease.request", "lease.ack")
                       for r in rows), rows
        finally:
            stop(second.proc)
    finally:
        stop(b.proc)
        stop(a.proc)
        stop(first.proc)


# --- TLS (RFC 5425) with rsyslog's gtls stream driver -------------------------------------------


def test_rsyslog_gtls_with_a_client_certificate_is_stored_and_one_without_is_refused(
    tmp_path_factory: pytest.TempPathFactory, short_dir: Path
) -> None:
    """pairwatch with a TLS listener that requires client certificates from its CA; a real
    rsyslog (Debian package rsyslog-gnutls) with such a certificate forwards over TLS, one
    without a certificate is refused at the handshake, and none of its lines are stored."""
    _need_tools()
    need(Path("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so").exists()
         or bool(list(Path("/usr/lib").glob("*/rsyslog/lmnsd_gtls.so"))),
         "needs rsyslog's gtls stream driver (Debian package rsyslog-gnutls)")
    pki = make_pki(tmp_path_factory.mktemp("pki"))
    config = tmp_path_factory.mktemp("tlsconf") / "pairwatch.toml"
    config.write_text(f'[serve]\ntls_cert = "{pki.server_cert}"\ntls_key = "{pki.server_key}"\n'
                      f'tls_client_ca = "{pki.ca}"\n')
    tls_port = free_port()
    with serving(tmp_path_factory, ["--config", str(config), "--tls", f"127.0.0.1:{tls_port}"]) as serve:
        def action(cert: bool) -> str:
            own = f' StreamDriver.CertFile="{pki.client_cert}" StreamDriver.KeyFile="{pki.client_key}"' if cert else ""
            return (f'type="omfwd" target="127.0.0.1" port="{tls_port}" protocol="tcp" TCP_Framing="octet-counted" '
                    f'template="RSYSLOG_SyslogProtocol23Format" StreamDriver="gtls" StreamDriverMode="1" '
                    f'StreamDriverAuthMode="x509/name" StreamDriverPermittedPeers="localhost" '
                    f'StreamDriver.CAFile="{pki.ca}"{own}')

        mark = uuid.uuid4().hex[:8]
        host, rel = f"rs-tls-{mark}", f"fo-{mark}"
        lines = dhcpd_lines(rel, mark)
        (short_dir / "with").mkdir()
        (short_dir / "without").mkdir()
        with running_rsyslog(short_dir / "with", host, forward_rules("dhcpd", action(cert=True))) as rsyslog:
            for line in lines:
                rsyslog.send(line)
            rows = await_stored(serve, host, len(lines), "lines over TLS", sender=rsyslog)
        check_rows(rows, host, lines)
        assert received(serve, "tls") == len(lines)

        refused = serve.value("pairwatch_syslog_errors_total", reason="tls_handshake") or 0.0
        stranger = f"rs-nocert-{mark}"
        with running_rsyslog(short_dir / "without", stranger, forward_rules("dhcpd", action(cert=False))) as rsyslog:
            for line in dhcpd_lines(f"x-{mark}", mark):
                rsyslog.send(line)
            serve.poll(lambda: (serve.value("pairwatch_syslog_errors_total", reason="tls_handshake") or 0) > refused,
                       "the certificate-less rsyslog refused at the handshake")
        assert stored(serve, stranger) == []
        assert received(serve, "tls") == len(lines)


# --- an oversize message between two normal ones (issue 16) -------------------------------------


@pytest.mark.parametrize("template", ["RSYSLOG_ForwardFormat", "RSYSLOG_SyslogProtocol23Format"])
def test_an_oversize_message_costs_only_itself(serve: Serve, short_dir: Path, template: str) -> None:
    """rsyslog with `maxMessageSize="300k"` forwards a 200 KB message whole, as one
    octet-counted frame with a 6-digit count (204,8xx octets; seen on the wire with rsyslog
    8.2302; at its default 8 KiB it would cut the message to an 8 KiB frame, which pairwatch
    stores). Over pairwatch's 64 KiB `max_message`: counted once as `oversize`, skipped by its
    count, and the neighbours on the same connection arrive. ForwardFormat frames end without
    LF, so a decoder that fell back to LF framing would lose every later frame of the
    connection; SyslogProtocol23Format counts a trailing LF."""
    _need_tools()
    mark = uuid.uuid4().hex[:8]
    host = f"rs-big-{mark}"
    before_line, after_line = dhcpd_lines(f"fo-{mark}", mark)[:2]
    big = short_dir / "big.txt"
    big.write_text(f"big {mark} " + "B" * 200_000 + "\n")
    action = (f'type="omfwd" target="127.0.0.1" port="{serve.tcp}" protocol="tcp" TCP_Framing="octet-counted" '
              f'template="{template}"')
    rules = 'global(maxMessageSize="300k")\n' + forward_rules("dhcpd", action)
    oversize = serve.value("pairwatch_syslog_errors_total", reason="oversize") or 0.0
    bad_length = serve.value("pairwatch_syslog_errors_total", reason="bad_length") or 0.0
    before = received(serve, "tcp")

    with running_rsyslog(short_dir, host, rules) as rsyslog:
        rsyslog.send(before_line)
        logger("-u", str(rsyslog.socket), "-t", "dhcpd", f"--id={PID}", "--size", "300000", "-f", str(big))
        rsyslog.send(after_line)
        rows = await_stored(serve, host, 2, f"the neighbours of the oversize message ({template})", sender=rsyslog)

    check_rows(rows, host, [before_line, after_line])  # the big one is not stored, nothing else is lost
    assert serve.value("pairwatch_syslog_errors_total", reason="oversize") == oversize + 1
    assert (serve.value("pairwatch_syslog_errors_total", reason="bad_length") or 0.0) == bad_length
    assert received(serve, "tcp") - before == 2
