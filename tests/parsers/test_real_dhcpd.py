"""A real ISC dhcpd (Debian isc-dhcp-server) in the foreground, its output parsed.

dhcpd -d -f writes every log line to stderr without any header (log-messages.md
section 1): the parser must know each of them as dhcpd's, one event per line.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from parsers import LineParser, ParseOptions
from tests.conftest import Namespace, need

pytestmark = pytest.mark.integration

REL = "pw-lab"
PAIR_CONF = f"""
authoritative;
ddns-update-style none;
failover peer "{REL}" {{
  primary; address 198.18.5.1; port 6470; peer address 198.18.5.2; peer port 6470;
  max-response-delay 30; max-unacked-updates 10; load balance max seconds 3; mclt 60; split 128;
}}
subnet 198.18.5.0 netmask 255.255.255.0 {{
  pool {{ failover peer "{REL}"; range 198.18.5.10 198.18.5.20; }}
}}
"""
BAD_CONF = PAIR_CONF.replace(f'pool {{ failover peer "{REL}"', 'pool { failover peer "nope"')


def _dhcpd() -> str:
    path = shutil.which("dhcpd") or "/usr/sbin/dhcpd"
    need(Path(path).exists(), "needs isc-dhcp-server (dhcpd)")
    return path


def _run(netns: Namespace, tmp_path: Path, conf: str, until: tuple[str, ...], limit: float = 20.0) -> list[str]:
    """Start dhcpd in the foreground, stop it once every `until` text was printed (or it exited)."""
    (tmp_path / "dhcpd.conf").write_text(conf)
    (tmp_path / "dhcpd.leases").write_text("")
    argv = netns.run(
        _dhcpd(), "-4", "-d", "-f", "-cf", str(tmp_path / "dhcpd.conf"), "-lf", str(tmp_path / "dhcpd.leases"),
        "-pf", str(tmp_path / "dhcpd.pid"), "d0",
    )
    out_path = tmp_path / "stderr.txt"
    with out_path.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + limit
        try:
            while proc.poll() is None and time.monotonic() < deadline:
                text = out_path.read_text(errors="replace")
                if all(u in text for u in until):
                    break
                time.sleep(0.1)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    return out_path.read_bytes().decode("utf-8", errors="replace").splitlines()


def test_foreground_startup_of_a_failover_primary(netns: Namespace, tmp_path: Path):
    lines = _run(netns, tmp_path, PAIR_CONF, ("Server starting service.", f"failover peer {REL}: I move from recover to startup"))
    parser = LineParser(ParseOptions())
    events = [parser.parse(line) for line in lines]
    assert len(events) == len(lines)
    by_kind = [(e.kind, e.payload) for e in events]
    banner = events[0]
    assert banner.kind == "server.lifecycle" and banner.payload.event == "start"  # type: ignore[attr-defined]
    assert banner.payload.version.startswith("4.4")  # type: ignore[attr-defined]
    assert ("server.lifecycle", events[0].payload) in by_kind
    assert any(k == "server.lifecycle" and p.event == "serving" for k, p in by_kind)  # type: ignore[attr-defined]
    moves = [p for k, p in by_kind if k == "failover.state"]
    assert moves and moves[0].relationship == REL and moves[0].side == "self"  # type: ignore[attr-defined]
    assert (moves[0].from_state, moves[0].to_state) == ("recover", "startup")  # type: ignore[attr-defined]
    # every line dhcpd printed is known as dhcpd's: nothing falls to syslog.other
    unknown = [e.record.message for e in events if e.kind == "syslog.other" and e.record.message]
    assert unknown == []
    assert {"Config file", "Database file", "Listening on"} <= {
        e.record.message.split(":")[0].split(" LPF")[0] for e in events if e.kind == "dhcpd.other"
    }


def test_foreground_config_error_and_fatal_trailer(netns: Namespace, tmp_path: Path):
    lines = _run(netns, tmp_path, BAD_CONF, ("exiting.",))
    parser = LineParser(ParseOptions())
    events = [parser.parse(line) for line in lines]
    assert len(events) == len(lines)
    error = next(i for i, e in enumerate(events) if " line " in e.record.message and "not found" in e.record.message)
    assert events[error].kind == "dhcpd.other" and not events[error].continuation
    # the offending source line and the caret line continue the error
    assert events[error + 1].continuation and 'failover peer "nope"' in events[error + 1].record.message
    assert events[error + 2].continuation and events[error + 2].record.message.strip() == "^"
    trailer = [e for e in events if e.record.message.startswith(("If you think", "process and the information"))]
    assert trailer and all(e.continuation for e in trailer)
    assert events[-1].kind == "server.lifecycle" and events[-1].payload.event == "exit"  # type: ignore[attr-defined]
    assert not [e for e in events if e.kind == "syslog.other" and e.record.message]
