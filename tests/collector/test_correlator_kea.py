"""Kea HA scenarios (log-messages.md section 8): the same conditions from Kea's words."""

from __future__ import annotations

from tests.collector.scenario import at, every, incidents, kea, line, run

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
