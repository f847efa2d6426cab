"""Fixtures of the lab (see tests/lab/harness.py for what runs where).

Every fixture is function-scoped: each scenario gets a fresh network, fresh servers and a
fresh pairwatch with an empty store, so no scenario depends on what another one left
behind (a broken pair from a failed test cannot turn the next one red). Setting all of it
up costs about 3 s. The factories register what they start with the test's `Lab`, and
`lab_network` tears all of it down (processes by pid, then the namespaces) in `finally`.

With PAIRWATCH_LAB_CAPTURE=DIR set, the scenarios that call `capture` keep their servers'
local logs and pairwatch's config under DIR/SCENARIO/ (tests/fixtures/lab/ is such a capture).

Outside CI a missing prerequisite (root, a binary) skips with the reason; in CI (CI=1) it
fails, through `tests.conftest.need`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tests.conftest import need
from tests.lab.harness import (
    DEV_LOG,
    KEA_HOOKS,
    SUBNET,
    Clients,
    DhcpdPair,
    FailoverTimers,
    Forwarding,
    Host,
    KeaPair,
    Lab,
    PairDecl,
    Pairwatch,
    Rsyslog,
    local_log,
    pairwatch_config,
)

TOOLS = {
    "ip": "iproute2",
    "bridge": "iproute2",
    "nsenter": "util-linux",
    "unshare": "util-linux",
    "rsyslogd": "rsyslog",
    "dhcpd": "isc-dhcp-server",
    "omshell": "isc-dhcp-server",
    "dhclient": "isc-dhcp-client",
    "kea-dhcp4": "kea-dhcp4-server",
}

CAPTURE = "PAIRWATCH_LAB_CAPTURE"


def capture(scenario: str, pw: Pairwatch, syslogs: Sequence[Rsyslog]) -> None:
    """With PAIRWATCH_LAB_CAPTURE=DIR set: each server's local log (`HOST.log`, the lines
    `analyze` reads) and the config pairwatch ran with (`pairwatch.toml`) go to DIR/scenario,
    so real pair logs can be replayed without root (tests/collector/test_late_delivery.py)."""
    root = os.environ.get(CAPTURE)
    if not root:
        return
    out = Path(root) / scenario
    out.mkdir(parents=True, exist_ok=True)
    for rs in syslogs:
        (out / f"{rs.host.name}.log").write_text("".join(f"{line}\n" for line in local_log(rs)))
    (out / "pairwatch.toml").write_text(pw.config.read_text())


@pytest.fixture(scope="session")
def dev_log() -> Iterator[Path]:
    """/dev/log as a mount point for each server's own log socket (bound in the server's
    private mount namespace). A machine without a syslog daemon has none: an empty file is
    made for the session and removed afterwards, if it is still the empty file made here."""
    need(os.geteuid() == 0, "the lab needs root (network namespaces, mounts)")
    made = not DEV_LOG.exists() and not DEV_LOG.is_symlink()
    if made:
        DEV_LOG.touch()
    try:
        yield DEV_LOG
    finally:
        if made and DEV_LOG.is_file() and DEV_LOG.stat().st_size == 0:
            DEV_LOG.unlink()


@pytest.fixture
def lab_network(tmp_path: Path, dev_log: Path) -> Iterator[Lab]:
    """The namespaces and bridge of one test; everything started in it is stopped afterwards."""
    for tool, package in TOOLS.items():
        need(shutil.which(tool) is not None, f"the lab needs {tool} (Debian package {package})")
    lab = Lab(tmp_path)
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture
def pairwatch_service(lab_network: Lab) -> Callable[..., Pairwatch]:
    """Start `pairwatch serve` in LAN with these pairs and limits (seconds)."""

    def start(pairs: Sequence[PairDecl], **limits: float) -> Pairwatch:
        return Pairwatch(lab_network, pairwatch_config(pairs, limits))

    return start


@pytest.fixture
def rsyslog_peer(lab_network: Lab) -> Callable[[Host, Forwarding], Rsyslog]:
    """A started rsyslog for `host` (its /dev/log), forwarding to pairwatch as told."""

    def start(host: Host, forwarding: Forwarding = Forwarding()) -> Rsyslog:
        rs = Rsyslog(host, forwarding)
        rs.start()
        return rs

    return start


def _server_hosts(lab: Lab, names: tuple[str, str], rsyslog_peer: Callable[[Host, Forwarding], Rsyslog],
                  forwarding: tuple[Forwarding, Forwarding]) -> tuple[Rsyslog, Rsyslog]:
    """Two anchored server hosts (.1 and .2), each with its rsyslog running."""
    hosts = [lab.add_host(name, f"{SUBNET}.{n}", anchored=True) for n, name in enumerate(names, 1)]
    return rsyslog_peer(hosts[0], forwarding[0]), rsyslog_peer(hosts[1], forwarding[1])


@pytest.fixture
def dhcpd_pair(lab_network: Lab, rsyslog_peer: Callable[[Host, Forwarding], Rsyslog]) -> Callable[..., DhcpdPair]:
    """A started dhcpd failover pair (dhcp1 primary, dhcp2 secondary) with MCLT `mclt`."""

    def start(mclt: int = 30, max_response_delay: int = 6,
              forwarding: tuple[Forwarding, Forwarding] = (Forwarding(), Forwarding())) -> DhcpdPair:
        syslogs = _server_hosts(lab_network, ("dhcp1", "dhcp2"), rsyslog_peer, forwarding)
        pair = DhcpdPair(syslogs, FailoverTimers(mclt, max_response_delay))
        pair.start()
        return pair

    return start


@pytest.fixture
def kea_pair(lab_network: Lab, rsyslog_peer: Callable[[Host, Forwarding], Rsyslog]) -> Callable[..., KeaPair]:
    """A started Kea HA pair (kea1 primary, kea2 secondary or standby) in `mode`."""
    for hook in ("libdhcp_lease_cmds.so", "libdhcp_ha.so"):
        need((KEA_HOOKS / hook).exists(), f"the Kea lab needs {KEA_HOOKS / hook} (Debian package kea-dhcp4-server)")

    def start(mode: str = "load-balancing",
              forwarding: tuple[Forwarding, Forwarding] = (Forwarding(), Forwarding())) -> KeaPair:
        pair = KeaPair(_server_hosts(lab_network, ("kea1", "kea2"), rsyslog_peer, forwarding), mode)
        pair.start()
        return pair

    return start


@pytest.fixture
def clients(lab_network: Lab) -> Clients:
    """The client namespace; `clients.ask(n)` starts n dhclients (one MAC each)."""
    return Clients(lab_network.add_host("cl", None, anchored=False))
