"""Kea HA scenarios (log-messages.md section 8): the same conditions from Kea's words."""

from __future__ import annotations

import pytest

from collector.config import parse_config
from collector.correlator import Correlator
from collector.replay import replay
from tests.collector.scenario import OPTIONS, at, every, incidents, kea, line, run

A, B = "kea-a", "kea-b"
PAIR = "kea-a+kea-b"


def transition(clock: str, host: str, old: str, new: str, partner: str) -> str:
    return kea(clock, host, f"HA_STATE_TRANSITION {host}: server transitions from {old.upper()} to {new.upper()} state, "
                            f"partner state is {partner.upper()}")


def lease(clock: str, host: str, n: int) -> str:
    return line(clock, host, f"INFO  [kea-dhcp4.leases.139887825118784] DHCP4_LEASE_ALLOC [hwtype=1 00:00:5e:00:53:{n % 256:02x}], "
                             f"cid=[no info], tid=0x{n:08x}: lease 192.0.2.{10 + n % 200} has been allocated for 3600 seconds",
                "kea-dhcp4")


def started(mode: str = "load-balancing", clock: str = "08:00") -> list[str]:
    """Both servers start, sync and reach `mode`."""
    out = []
    for host, partner in ((A, B), (B, A)):
        out += [
            kea(f"{clock}:00", host, f"HA_SERVICE_STARTED {host}: started high availability service in {mode} mode as primary server"),
            transition(f"{clock}:01", host, "waiting", "syncing", "waiting"),
            kea(f"{clock}:01", host, f"HA_SYNC_START {host}: starting lease database synchronization with {partner}"),
            kea(f"{clock}:02", host, f"HA_SYNC_SUCCESSFUL {host}: lease database synchronization with {partner} completed successfully in 12.5 ms"),
            transition(f"{clock}:02", host, "syncing", "ready", "syncing"),
        ]
    out += [transition(f"{clock}:03", A, "ready", mode, "ready"), transition(f"{clock}:04", B, "ready", mode, mode)]
    return out


def traffic(start: str, end: str, hosts: tuple[str, ...] = (A, B)) -> list[str]:
    return every(start, end, 90, lambda c, i: lease(c, hosts[i % len(hosts)], i))


def partner_death(mode: str, survivor: str, dead: str) -> list[str]:
    lines = started(mode) + traffic("08:01:00", "09:59:00")
    lines += every("10:00:02", "10:00:18", 2, lambda c, i: kea(
        c, survivor, f"HA_HEARTBEAT_COMMUNICATIONS_FAILED {survivor}: failed to send heartbeat to {dead} (http://192.0.2.12:8000/): Connection refused", "WARN"))
    lines += every("10:00:06", "10:00:18", 2, lambda c, i: kea(
        c, survivor, f"HA_COMMUNICATION_INTERRUPTED {survivor}: communication with {dead} is interrupted", "WARN"))
    lines += [transition("10:00:20", survivor, mode, "partner-down", "unavailable")]
    lines += traffic("10:01:00", "10:29:00", (survivor,))
    lines += [
        transition("10:30:00", dead, "waiting", "syncing", "partner-down"),
        kea("10:30:00", dead, f"HA_SYNC_START {dead}: starting lease database synchronization with {survivor}"),
        kea("10:30:01", dead, f"HA_SYNC_SUCCESSFUL {dead}: lease database synchronization with {survivor} completed successfully in 40 ms"),
        transition("10:30:01", dead, "syncing", "ready", "partner-down"),
        transition("10:30:03", survivor, "partner-down", mode, "ready"),
        transition("10:30:04", dead, "ready", mode, mode),
    ]
    return lines + traffic("10:31:00", "10:40:00")


def test_load_balancing_partner_death_and_return():
    result = run(partner_death("load-balancing", A, B))
    assert incidents(result) == [
        ("communications_interrupted", (A,), at("10:00:06"), at("10:00:20")),
        ("partner_down", (A,), at("10:00:20"), at("10:30:03")),
        ("server_silent", (B,), at("10:06:30"), at("10:30:00")),
    ]
    assert {i.pair for i in result.incidents} == {PAIR}


def test_hot_standby_primary_death():
    result = run(partner_death("hot-standby", B, A))
    assert [(c, s) for c, s, _, _ in incidents(result)] == [
        ("communications_interrupted", (B,)), ("partner_down", (B,)), ("server_silent", (A,))]


def test_communication_recovery_and_backlog():
    lines = started() + traffic("08:01:00", "09:30:00") + [
        kea("09:00:10", A, f"HA_COMMUNICATION_INTERRUPTED {A}: communication with {B} is interrupted", "WARN"),
        transition("09:00:10", A, "load-balancing", "communication-recovery", "unavailable"),
        kea("09:00:40", A, f"HA_LEASES_BACKLOG_START {A}: starting to send 5 outstanding lease updates to {B}"),
        kea("09:00:41", A, f"HA_LEASES_BACKLOG_SUCCESS {A}: sending lease updates backlog to {B} successful in 0.02 s"),
        transition("09:00:41", A, "communication-recovery", "load-balancing", "load-balancing"),
    ]
    assert incidents(run(lines)) == [("communications_interrupted", (A,), at("09:00:10"), at("09:00:41"))]


def test_terminated_by_clock_skew():
    lines = started() + traffic("08:01:00", "11:30:00") + [
        kea("11:00:00", A, f"HA_HIGH_CLOCK_SKEW_CAUSED_TERMINATION {A}: my time: 2025-03-03 11:00:00, partner's time: "
                           "2025-03-03 11:01:30, partner's clock is 90s ahead, causing HA service to terminate", "ERROR"),
        transition("11:00:00", A, "load-balancing", "terminated", "load-balancing"),
        kea("11:00:00", A, f"HA_TERMINATED HA {A}: service terminated due to an unrecoverable condition. Check previous "
                           "error message(s), address the problem and restart!", "ERROR"),
        transition("11:00:02", B, "load-balancing", "terminated", "terminated"),
    ]
    result = run(lines)
    assert incidents(result) == [("stuck", (A, B), at("11:00:00"), None)]


def test_both_stuck_waiting_with_dhcp_disabled():
    lines = []
    for host in (A, B):
        lines += [kea("09:00:00", host, f"HA_SERVICE_STARTED {host}: started high availability service in load-balancing mode as primary server"),
                  transition("09:00:00", host, "waiting", "waiting", "unavailable"),
                  kea("09:00:00", host, f"HA_LOCAL_DHCP_DISABLE local DHCP service is disabled while the {host} is in the WAITING state")]
    lines += every("09:00:30", "09:20:00", 30, lambda c, i: kea(
        c, (A, B)[i % 2], f"HA_HEARTBEAT_COMMUNICATIONS_FAILED {(A, B)[i % 2]}: failed to send heartbeat to {(B, A)[i % 2]} "
                          "(http://192.0.2.12:8000/): Connection timed out", "WARN"))
    result = run(lines)
    assert incidents(result) == [
        ("not_serving", (A, B), at("09:01:00"), None),
        ("stuck", (A, B), at("09:05:00"), None),
    ]


def test_normal_kea_operation_has_no_incident():
    lines = started() + traffic("08:01:00", "12:00:00")
    assert incidents(run(lines)) == []
    hot = started("hot-standby") + traffic("08:01:00", "09:00:00")
    assert incidents(run(hot)) == []


def test_sync_loop_is_slow_and_stuck_in_syncing():
    lines = started() + traffic("08:01:00", "09:30:00", (A,)) + [
        transition("09:00:00", B, "waiting", "syncing", "load-balancing"),
    ] + every("09:00:00", "09:20:00", 30, lambda c, i: kea(c, B, f"HA_SYNC_START {B}: starting lease database synchronization with {A}")) + every(
        "09:00:05", "09:20:05", 30, lambda c, i: kea(c, B, f"HA_SYNC_FAILED {B}: lease database synchronization with {A} failed: "
                                                        "'lease4-get-page' command not supported", "ERROR"))
    result = run(lines)
    assert [(c, s, st) for c, s, st, _ in incidents(result) if c in ("sync_slow", "stuck")] == [
        ("stuck", (B,), at("09:05:00")),
        ("sync_slow", (B,), at("09:10:00")),
    ]


def restart(mode: str, survivor: str, dead: str, shutdown: bool) -> list[str]:
    """The dead server comes back 10 s after its partner took over, with the start lines Kea
    2.2 logged in the lab (HOOKS_LIBRARY_*, HA_CONFIGURATION_SUCCESSFUL, HA_INIT_OK,
    HA_LOCAL_DHCP_DISABLE in WAITING, HA_SERVICE_STARTED, DHCP4_STARTED); its first
    HA_STATE_TRANSITION comes 15 s later (a slow partner heartbeat and a lease sync first)."""
    lines = started(mode) + traffic("08:01:00", "09:59:00")
    if shutdown:
        lines.append(kea("09:59:59", dead, "DHCP4_SHUTDOWN server shutdown"))
    lines += every("10:00:02", "10:00:18", 2, lambda c, i: kea(
        c, survivor, f"HA_HEARTBEAT_COMMUNICATIONS_FAILED {survivor}: failed to send heartbeat to {dead} (http://192.0.2.12:8000/): Connection refused", "WARN"))
    lines += every("10:00:06", "10:00:18", 2, lambda c, i: kea(
        c, survivor, f"HA_COMMUNICATION_INTERRUPTED {survivor}: communication with {dead} is interrupted", "WARN"))
    lines += [transition("10:00:20", survivor, mode, "partner-down", "unavailable")]
    lines += traffic("10:00:21", "10:00:59", (survivor,))
    lines += [
        kea("10:00:30", dead, "HOOKS_LIBRARY_CLOSED hooks library /usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_ha.so successfully closed"),
        kea("10:00:30", dead, "HA_CONFIGURATION_SUCCESSFUL HA hook library has been successfully configured"),
        kea("10:00:30", dead, "HA_INIT_OK loading High Availability hooks library successful"),
        kea("10:00:30", dead, f"HA_LOCAL_DHCP_DISABLE local DHCP service is disabled while the {dead} is in the WAITING state"),
        kea("10:00:30", dead, f"HA_SERVICE_STARTED started high availability service in {mode} mode as secondary server"),
        kea("10:00:30", dead, "DHCP4_STARTED Kea DHCPv4 server version 2.2.0 started"),
        transition("10:00:45", dead, "waiting", "syncing", "partner-down"),
        kea("10:00:45", dead, f"HA_SYNC_START {dead}: starting lease database synchronization with {survivor}"),
        kea("10:00:46", dead, f"HA_SYNC_SUCCESSFUL {dead}: lease database synchronization with {survivor} completed successfully in 40 ms"),
        transition("10:00:46", dead, "syncing", "ready", "partner-down"),
        transition("10:00:48", survivor, "partner-down", mode, "ready"),
        transition("10:00:49", dead, "ready", mode, mode),
    ]
    return lines + traffic("10:01:00", "10:10:00")


@pytest.mark.parametrize("shutdown", [False, True], ids=["killed", "shut-down"])
@pytest.mark.parametrize(("mode", "survivor", "dead"), [("load-balancing", A, B), ("hot-standby", B, A)])
def test_partner_restart_is_not_split_brain(mode: str, survivor: str, dead: str, shutdown: bool):
    """Before its first transition the restarted server still held its old `load-balancing`
    (or `hot-standby`), and its start lines counted as signs of life: split brain from the
    start lines until the transition, on every restart."""
    result = run(restart(mode, survivor, dead, shutdown))
    assert incidents(result) == [
        ("communications_interrupted", (survivor,), at("10:00:06"), at("10:00:20")),
        ("partner_down", (survivor,), at("10:00:20"), at("10:00:48")),
    ]
    own = [(s.ts, s.state) for s in result.states if s.server == dead and s.side == "self"]
    assert own[-4:] == [(at("10:00:30"), "waiting"), (at("10:00:45"), "syncing"), (at("10:00:46"), "ready"),
                        (at("10:00:49"), mode)]


def test_start_resets_the_view_and_the_state():
    """After a start the server's own state is the one its start lines name (Kea: waiting),
    its view of the partner unknown; after an exit its state is unknown."""
    correlator = Correlator(parse_config({}))
    lines = started() + [
        kea("09:00:00", B, "DHCP4_STARTED Kea DHCPv4 server version 2.2.0 started"),
    ]
    replay([(lines, OPTIONS)], correlator)
    view = {s.host: s for s in correlator.snapshot()[0].servers}
    assert (view[B].state, view[B].peer_state) == (None, None)
    assert (view[A].state, view[A].peer_state) == ("load-balancing", "ready")
    replay([([kea("09:00:01", B, f"HA_LOCAL_DHCP_DISABLE local DHCP service is disabled while the {B} is in the WAITING state"),
              kea("09:00:02", B, "DHCP4_SHUTDOWN server shutdown"),
              kea("09:00:03", B, "DHCP4_STARTED Kea DHCPv4 server version 2.2.0 started")], OPTIONS)], correlator)
    view = {s.host: s for s in correlator.snapshot()[0].servers}
    assert (view[B].state, view[B].since, view[B].peer_state) == (None, at("09:00:02"), None)
