"""deploy/systemd/pairwatch.service: `systemd-analyze verify` accepts it, it is hardened as the
issue asks, and its ExecStart is a valid `pairwatch serve` whose paths are writable under the
hardening.

`systemd-analyze verify` insists that ExecStart's program exists: the copy it checks has the
documented install path (/opt/pairwatch/bin/pairwatch) replaced by this checkout's
.venv/bin/pairwatch, nothing else changed. It exits 0 even for unknown keys and bad values
(it prints them and ignores them), so its output must also be empty.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from collector.cli import build_parser
from collector.store_url import parse_store_url
from tests.conftest import need
from tests.deploy.files import UNIT

INSTALLED = "/opt/pairwatch/bin/pairwatch"
STATE = "/var/lib/pairwatch"


def directives() -> dict[str, list[str]]:
    """Key -> values, in file order (keys may repeat), continuation lines joined."""
    out: dict[str, list[str]] = {}
    text = UNIT.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key, []).append(value)
    return out


@pytest.mark.integration
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    need(shutil.which("systemd-analyze") is not None, "needs systemd-analyze (Debian package systemd)")
    program = Path(sys.executable).parent / "pairwatch"
    need(program.exists(), f"needs the pairwatch console script at {program} (make install)")
    text = UNIT.read_text()
    assert text.count(INSTALLED) == 1
    unit = tmp_path / UNIT.name
    unit.write_text(text.replace(INSTALLED, str(program)))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == "", result.stdout + result.stderr


@pytest.mark.integration
def test_verify_would_notice_a_bad_directive(tmp_path: Path) -> None:
    """The check above can fail: the same verify, one value broken, prints it."""
    need(shutil.which("systemd-analyze") is not None, "needs systemd-analyze (Debian package systemd)")
    program = Path(sys.executable).parent / "pairwatch"
    need(program.exists(), f"needs the pairwatch console script at {program} (make install)")
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace(INSTALLED, str(program)).replace("ProtectSystem=strict", "ProtectSystem=sometimes"))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    assert "ProtectSystem" in result.stderr or "protect system" in result.stderr.lower(), result.stderr


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("DynamicUser", "yes"),
        ("ProtectSystem", "strict"),
        ("StateDirectory", "pairwatch"),
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"),
        ("AmbientCapabilities", "CAP_NET_BIND_SERVICE"),
        ("SystemCallFilter", "@system-service"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("RestrictNamespaces", "yes"),
        ("SystemCallArchitectures", "native"),
        ("Type", "exec"),
        ("KillSignal", "SIGTERM"),
        ("RestartPreventExitStatus", "2"),
    ],
)
def test_hardening_directive(key: str, value: str) -> None:
    assert value in directives().get(key, []), f"{key}={value} missing"


def test_address_families_are_only_what_pairwatch_uses() -> None:
    (families,) = directives()["RestrictAddressFamilies"]
    assert set(families.split()) == {"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"}


def test_exec_start_is_a_valid_serve_writing_only_to_the_state_directory() -> None:
    (exec_start,) = directives()["ExecStart"]
    argv = shlex.split(exec_start)
    assert argv[0] == INSTALLED
    args = build_parser().parse_args(argv[1:])
    assert args.command == "serve"
    target = parse_store_url(args.store, env={})
    assert target.kind == "embedded" and target.path is not None
    # ProtectSystem=strict: the store (and the spool, relative to the working directory) must be
    # under the state directory, the one place the service may write
    assert Path(target.path).is_relative_to(STATE)
    assert directives()["WorkingDirectory"] == [STATE]
    assert args.http.startswith("127.0.0.1:"), "the API stays on loopback unless the operator opens it"
    assert args.config.startswith("/etc/pairwatch/")
    assert directives()["ConfigurationDirectory"] == ["pairwatch"]
