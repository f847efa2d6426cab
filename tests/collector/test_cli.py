"""`pairwatch` CLI: subcommand forms, exit codes, and `parse` end to end with real `logger` output."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from collector.cli import main
from tests.conftest import need

SUBCOMMANDS = ("serve", "parse", "analyze", "ingest", "status", "timeline", "check-config")


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: pairwatch {command}" in capsys.readouterr().out


def test_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["parse", "--no-such-flag"])
    assert exit_info.value.code == 2


def test_bad_zone_exits_2_naming_the_option(tmp_path, capsys):
    assert main(["parse", "--tz", "Mars/Olympus", str(tmp_path)]) == 2
    assert "--tz" in capsys.readouterr().err


def test_missing_file_exits_1(tmp_path, capsys):
    assert main(["parse", str(tmp_path / "absent.log")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "absent.log" in err[0]


def test_parse_prints_one_object_per_line(tmp_path, capsys):
    log = tmp_path / "mixed.log"
    raw = (
        b"Mar  3 08:15:02 dhcp-a dhcpd: failover peer ab: I move from normal to communications-interrupted\n"
        b"\n"
        b"Mar  3 08:15:03 dhcp-a dhcpd: DHCPDISCOVER from 00:00:5e:00:53:01 via eth0: peer holds all free leases\r\n"
        b"\xff\xfe binary \x00 junk with a \x0b vertical tab and a \r carriage return\n"
        b"Mar  3 08:15:04 dhcp-a last message repeated 3 times"
    )
    log.write_bytes(raw)
    assert main(["parse", "--reference", "2025-03-05T00:00:00Z", str(log)]) == 0
    objects = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(objects) == 5
    assert [o["kind"] for o in objects] == ["failover.state", "syslog.other", "lease.no_free", "syslog.other", "lease.no_free"]
    assert objects[0]["ts"] == "2025-03-03T08:15:02Z" and objects[0]["to_state"] == "communications-interrupted"
    assert objects[1]["message"] == ""
    assert objects[4]["repeated"] == 3 and objects[4]["ts"] == "2025-03-03T08:15:04Z"
    assert "\ufffd" in objects[3]["message"]


def test_parse_zone_option(tmp_path, capsys):
    log = tmp_path / "local.log"
    log.write_text("Jul  3 08:15:02 dhcp-a dhcpd: exiting.\n")
    assert main(["parse", "--tz", "Europe/Berlin", "--reference", "2025-07-05T00:00:00+00:00", str(log)]) == 0
    assert json.loads(capsys.readouterr().out)["ts"] == "2025-07-03T06:15:02Z"


@pytest.mark.integration
def test_parse_reads_stdin_through_the_console_script(tmp_path):
    script = Path(sys.executable).with_name("pairwatch")
    need(script.exists(), "needs the installed console script (make install)")
    result = subprocess.run(
        [str(script), "parse", "-"],
        input=b"failover peer ab: peer moves from normal to partner-down\n",
        capture_output=True,
        check=True,
    )
    obj = json.loads(result.stdout)
    assert (obj["kind"], obj["side"], obj["to_state"], obj["ts"]) == ("failover.state", "peer", "partner-down", None)


@pytest.mark.integration
def test_parse_real_logger_output(tmp_path, capsys):
    """Lines as util-linux `logger` formats them (RFC 3164 and RFC 5424, with structured data)."""
    need(shutil.which("logger") is not None, "needs util-linux logger (bsdutils)")
    path = str(tmp_path / "log.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    sends = [
        ["-t", "dhcpd", "-i", "--rfc3164", "failover peer ab: I move from normal to recover"],
        ["-t", "dhcpd", "--rfc5424", "-p", "local7.info", "peer ab: disconnected"],
        ["-t", "kea-dhcp4", "--rfc5424", "--sd-id", "meta@32473", "--sd-param", 'sequenceId="4"',
         "INFO  [kea-dhcp4.ha-hooks.1] HA_SYNC_START kea-a: starting lease database synchronization with kea-b"],
    ]
    received = []
    try:
        for args in sends:
            subprocess.run(["logger", "-u", path, *args], check=True)
            received.append(sock.recv(65536))
    finally:
        sock.close()
    log = tmp_path / "logger.log"
    log.write_bytes(b"\n".join(received) + b"\n")
    assert main(["parse", str(log)]) == 0
    first, second, third = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    hostname = socket.gethostname()
    assert (first["kind"], first["host"], first["from_state"], first["to_state"]) == (
        "failover.state", hostname.split(".")[0], "normal", "recover"
    )
    assert isinstance(first["pid"], int) and first["ts"] is not None
    assert (second["kind"], second["status"], second["relationship"], second["program"]) == (
        "failover.connection", "disconnected", "ab", "dhcpd"
    )
    assert second["ts"].endswith("Z") and second["host"] == hostname
    assert (third["kind"], third["event"], third["partner"], third["ha_name"]) == ("failover.ha", "sync_started", "kea-b", "kea-a")
