"""dhcpd failover scenarios (log-messages.md section 4.3), each with its exact incidents."""

from __future__ import annotations

from collector.config import parse_config
from collector.correlator import Correlator
from collector.replay import replay
from tests.collector.scenario import OPTIONS, REL, ack, at, every, incidents, line, run

A, B = "dhcp1", "dhcp2"


def chatter(start: str, end: str, hosts: tuple[str, ...] = (A, B)) -> list[str]:
    """Client traffic answered by each host every few minutes: nobody is silent."""
    return every(start, end, 120, lambda c, i: ack(c, hosts[i % len(hosts)], 1000 + i))


def normal_pair(clock: str = "08:00:00") -> list[str]:
    """Both servers come up and reach normal, each seeing the other."""
    return [
        line(clock, A, f"failover peer {REL}: I move from startup to normal"),
        line(clock, B, f"failover peer {REL}: I move from startup to normal"),
        line(clock, A, f"failover peer {REL}: peer moves from startup to normal"),
        line(clock, B, f"failover peer {REL}: peer moves from startup to normal"),
        line(clock, A, f"failover peer {REL}: Both servers normal"),
    ]


def test_partner_death_without_auto_partner_down():
    lines = normal_pair() + [ack("08:00:30", B, 1)] + [
        line("10:00:01", A, f"peer {REL}: disconnected"),
        line("10:00:01", A, f"failover peer {REL}: I move from normal to communications-interrupted"),
    ] + every("10:05:00", "+2d 10:00:00", 3600, lambda c, i: ack(c, A, i))
    result = run(lines)
    assert incidents(result) == [
        ("communications_interrupted", (A,), at("10:00:01"), None),
        ("server_silent", (B,), at("10:10:01"), None),
    ]
    interrupted = result.incidents[0]
    assert interrupted.evidence == [line("10:00:01", A, f"failover peer {REL}: I move from normal to communications-interrupted")]


def test_partner_death_then_manual_partner_down():
    lines = normal_pair() + [
        line("10:00:01", A, f"peer {REL}: disconnected"),
        line("10:00:01", A, f"failover peer {REL}: I move from normal to communications-interrupted"),
        line("10:30:00", A, f"failover peer {REL}: I move from communications-interrupted to partner-down"),
    ] + every("10:31:00", "11:30:00", 300, lambda c, i: ack(c, A, i))
    result = run(lines)
    assert incidents(result) == [
        ("communications_interrupted", (A,), at("10:00:01"), at("10:30:00")),
        ("server_silent", (B,), at("10:10:01"), None),
        ("partner_down", (A,), at("10:30:00"), None),
    ]
    closed = result.incidents[0]
    assert closed.evidence[-1] == line("10:30:00", A, f"failover peer {REL}: I move from communications-interrupted to partner-down")


def restart_empty(survivor_state: str) -> list[str]:
    """dhcp2 dies, comes back with an empty lease file, waits out MCLT 60 s in recover-wait."""
    return normal_pair() + [
        line("10:00:01", A, f"peer {REL}: disconnected"),
        line("10:00:01", A, f"failover peer {REL}: I move from normal to communications-interrupted"),
        ack("10:02:00", A, 1),
        line("10:03:00", B, "Internet Systems Consortium DHCP Server 4.4.3-P1"),
        line("10:03:00", B, f"failover peer {REL}: I move from recover to startup"),
        line("10:03:01", B, "Server starting service."),
        line("10:03:02", B, f"failover peer {REL}: I move from startup to recover"),
        line("10:03:02", B, f"Sent update request all message to {REL}"),
        line("10:03:02", A, f"failover peer {REL}: peer moves from unknown-state to recover"),
        line("10:03:02", A, f"failover peer {REL}: I move from {survivor_state} to partner-down"),
        line("10:03:02", B, f"failover peer {REL}: peer moves from communications-interrupted to partner-down"),
        line("10:03:03", A, f"Update request all from {REL}: sending update"),
        line("10:03:03", A, f"Sent update done message to {REL}"),
        line("10:03:03", B, f"failover peer {REL}: peer update completed."),
        line("10:03:03", B, f"failover peer {REL}: I move from recover to recover-wait"),
        line("10:03:03", A, f"failover peer {REL}: peer moves from recover to recover-wait"),
        line("10:03:30", B, "DHCPDISCOVER from 00:00:5e:00:53:07 via eth0: not responding (recover wait)"),
        ack("10:03:30", A, 7),
        line("10:04:01", B, f"failover peer {REL}: I move from recover-wait to recover-done"),
        line("10:04:01", A, f"failover peer {REL}: peer moves from recover-wait to recover-done"),
        line("10:04:01", A, f"failover peer {REL}: I move from partner-down to normal"),
        line("10:04:01", B, f"failover peer {REL}: peer moves from partner-down to normal"),
        line("10:04:01", B, f"failover peer {REL}: I move from recover-done to normal"),
        line("10:04:01", A, f"failover peer {REL}: peer moves from recover-done to normal"),
        line("10:04:01", A, f"failover peer {REL}: Both servers normal"),
        ack("10:05:00", B, 9),
    ]


def test_restart_with_empty_lease_file():
    result = run(restart_empty("communications-interrupted"), {"limits": {"mclt": 60}})
    assert incidents(result) == [
        ("communications_interrupted", (A,), at("10:00:01"), at("10:03:02")),
        ("partner_down", (A,), at("10:03:02"), at("10:04:01")),
    ]
    states = [(s.server, s.side, s.state) for s in result.states if s.server == B and s.side == "self"]
    assert states == [(B, "self", "normal"), (B, "self", "startup"), (B, "self", "recover"), (B, "self", "recover-wait"),
                      (B, "self", "recover-done"), (B, "self", "normal")]


def test_recover_wait_past_mclt_is_stuck():
    lines = restart_empty("communications-interrupted")
    # the recover-wait timer never fires: dhcp2 stays in recover-wait, refusing clients
    cut = next(i for i, text in enumerate(lines) if "recover-wait to recover-done" in text)
    lines = lines[:cut] + every("10:04:00", "10:10:00", 30, lambda c, i: line(
        c, B, f"DHCPDISCOVER from 00:00:5e:00:53:{i:02x} via eth0: not responding (recover wait)"))
    lines += every("10:04:00", "10:10:00", 60, lambda c, i: ack(c, A, i))
    result = run(lines, {"limits": {"mclt": 60, "recover_wait_grace": 60}})
    assert ("stuck", (B,), at("10:05:03"), None) in incidents(result)
    stuck = next(i for i in result.incidents if i.condition == "stuck")
    assert stuck.evidence == [line("10:03:03", B, f"failover peer {REL}: I move from recover to recover-wait")]
    # dhcp1 serves alone meanwhile: the pair is not "not serving"
    assert "not_serving" not in [i.condition for i in result.incidents]


def test_both_lease_files_wiped_is_quiet():
    both = (A, B)
    lines = []
    for h in both:
        lines += [line("09:00:00", h, f"failover peer {REL}: I move from recover to startup"),
                  line("09:00:15", h, f"failover peer {REL}: I move from startup to recover"),
                  line("09:00:15", h, f"Sent update request all message to {REL}")]
    for h in both:
        lines += [line("09:00:16", h, f"failover peer {REL}: peer moves from unknown-state to recover"),
                  line("09:00:16", h, f"failover peer {REL}: requesting full update from peer"),
                  line("09:00:16", h, f"bind update on 192.0.2.20 from {REL} rejected: incoming update is less critical than outgoing update"),
                  line("09:00:17", h, f"failover peer {REL}: peer update completed."),
                  line("09:00:17", h, f"failover peer {REL}: I move from recover to recover-done")]
    for h in both:
        lines += [line("09:00:17", h, f"failover peer {REL}: peer moves from recover to recover-done"),
                  line("09:00:17", h, "Both servers have entered recover-done!"),
                  line("09:00:17", h, f"failover peer {REL}: I move from recover-done to normal")]
    for h in both:
        lines += [line("09:00:17", h, f"failover peer {REL}: peer moves from recover-done to normal"),
                  line("09:00:17", h, f"failover peer {REL}: Both servers normal"),
                  line("09:00:18", h, "balancing pool 5612a0c3e0a0 192.0.2.0/24  total 240  free 240  backup 0  lts 120  max-own (+/-)24"),
                  line("09:00:18", h, "balanced pool 5612a0c3e0a0 192.0.2.0/24  total 240  free 120  backup 120  lts 0  max-misbal 36")]
    lines += every("09:01:00", "09:30:00", 120, lambda c, i: ack(c, both[i % 2], i))
    lines += [line("09:31:00", A, f"failover peer {REL}: peer moves from normal to normal")]
    assert incidents(run(lines)) == []


def test_peer_unreachable_at_startup_loops_and_stays_in_recover():
    lines = [line("09:00:00", A, "Internet Systems Consortium DHCP Server 4.4.3-P1"),
             line("09:00:00", A, f"failover peer {REL}: I move from recover to startup"),
             line("09:00:15", A, f"failover peer {REL}: I move from startup to recover")]
    lines += every("09:01:45", "09:30:00", 90, lambda c, i: line(c, A, f"failover peer {REL}: connection refused"))
    lines += every("09:00:30", "09:30:00", 20, lambda c, i: line(
        c, A, f"DHCPDISCOVER from 00:00:5e:00:53:{i % 256:02x} via eth0: not responding (recovering)"))
    result = run(lines)
    assert incidents(result) == [
        ("not_serving", (A,), at("09:00:30"), None),
        ("stuck", (A,), at("09:15:15"), None),
    ]


def test_startup_loop_with_saved_normal_is_communications_interrupted():
    lines = []
    for minute in range(0, 30, 5):
        m = f"09:{minute:02d}"
        lines += [line(f"{m}:00", A, f"failover peer {REL}: I move from communications-interrupted to startup"),
                  line(f"{m}:15", A, f"failover peer {REL}: I move from startup to communications-interrupted"),
                  line(f"{m}:16", A, f"failover peer {REL}: connection refused"),
                  ack(f"{m}:20", A, minute)]
    result = run(lines)
    assert [(c, s) for c, s, _, _ in incidents(result)] == [("communications_interrupted", (A,))] * 6
    first = result.incidents[0]
    assert (first.start, first.end) == (at("09:00:15"), at("09:05:00"))
    assert result.incidents[-1].end is None


def partitioned(clock: str = "10:00:08") -> list[str]:
    return [line(clock, h, f"peer {REL}: disconnected") for h in (A, B)] + [
        line(clock, h, f"failover peer {REL}: I move from normal to communications-interrupted") for h in (A, B)]


def test_split_brain_both_partner_down_then_conflict_resolution():
    lines = normal_pair() + partitioned() + [
        line("10:05:00", A, f"failover peer {REL}: I move from communications-interrupted to partner-down"),
        line("10:05:02", B, f"failover peer {REL}: I move from communications-interrupted to partner-down"),
    ] + every("10:05:10", "10:20:00", 60, lambda c, i: ack(c, (A, B)[i % 2], i)) + [
        line("10:20:05", A, f"failover peer {REL}: peer moves from normal to partner-down"),
        line("10:20:05", B, f"failover peer {REL}: peer moves from normal to partner-down"),
        line("10:20:05", A, f"failover peer {REL}: I move from partner-down to potential-conflict"),
        line("10:20:05", B, f"failover peer {REL}: I move from partner-down to potential-conflict"),
        line("10:20:05", A, f"failover peer {REL}: I move from potential-conflict to conflict-done"),
        line("10:20:05", B, f"failover peer {REL}: I move from potential-conflict to normal"),
        line("10:20:05", A, f"failover peer {REL}: I move from conflict-done to normal"),
        line("10:20:05", A, f"failover peer {REL}: peer moves from potential-conflict to normal"),
        line("10:20:05", B, f"failover peer {REL}: peer moves from conflict-done to normal"),
        line("10:20:05", A, f"failover peer {REL}: Both servers normal"),
    ] + [ack("10:21:00", A, 99)]
    assert incidents(run(lines)) == [
        ("communications_interrupted", (A, B), at("10:00:08"), at("10:05:02")),
        ("partner_down", (A, B), at("10:05:00"), at("10:20:05")),
        ("split_brain", (A, B), at("10:05:02"), at("10:20:05")),
    ]


def test_resolution_interrupted_is_stuck_and_not_serving():
    lines = normal_pair() + partitioned() + [
        line("10:01:00", h, f"failover peer {REL}: I move from communications-interrupted to potential-conflict") for h in (A, B)
    ] + [line("10:01:05", h, f"failover peer {REL}: I move from potential-conflict to resolution-interrupted") for h in (A, B)]
    lines += every("10:01:10", "10:10:00", 30, lambda c, i: line(
        c, (A, B)[i % 2], f"DHCPDISCOVER from 00:00:5e:00:53:{i:02x} via eth0: not responding (resolving conflicts)"))
    result = run(lines)
    assert incidents(result) == [
        ("communications_interrupted", (A, B), at("10:00:08"), at("10:01:00")),
        ("not_serving", (A, B), at("10:01:40"), None),
        ("stuck", (A, B), at("10:06:05"), None),
    ]


def test_one_view_disagreeing():
    """dhcp2 falls to communications-interrupted, but dhcp1 (still talking) keeps seeing it normal."""
    lines = normal_pair() + [
        line("10:00:00", B, f"failover peer {REL}: I move from normal to communications-interrupted"),
    ] + every("10:00:30", "10:05:00", 30, lambda c, i: ack(c, (A, B)[i % 2], i)) + [
        line("10:05:10", A, f"failover peer {REL}: peer moves from normal to communications-interrupted"),
    ]
    result = run(lines)
    assert incidents(result) == [
        ("communications_interrupted", (B,), at("10:00:00"), None),
        ("views_disagree", (A, B), at("10:01:00"), at("10:05:10")),
    ]
    disagree = result.incidents[1]
    assert disagree.evidence == [
        line("08:00:00", A, f"failover peer {REL}: peer moves from startup to normal"),
        line("10:00:00", B, f"failover peer {REL}: I move from normal to communications-interrupted"),
        line("10:05:10", A, f"failover peer {REL}: peer moves from normal to communications-interrupted"),
    ]


def test_server_going_silent_and_coming_back():
    lines = normal_pair() + every("08:01:00", "09:00:00", 60, lambda c, i: ack(c, A, i)) + [
        ack("08:05:00", B, 500), ack("08:15:00", B, 501), ack("08:45:30", B, 502)]
    result = run(lines)
    assert incidents(result) == [
        ("server_silent", (B,), at("08:25:00"), at("08:45:30")),
        ("server_silent", (B,), at("08:55:30"), None),  # quiet again while dhcp1 goes on to 09:00
    ]
    assert result.incidents[0].evidence == [ack("08:15:00", B, 501), ack("08:45:30", B, 502)]


def test_pair_refusing_all_clients():
    lines = normal_pair() + chatter("08:01:00", "08:59:00")
    lines += [line("09:00:00", h, f"failover peer {REL}: I move from normal to recover-wait") for h in (A, B)]
    lines += [line("09:00:00", h, f"failover peer {REL}: peer moves from normal to recover-wait") for h in (A, B)]
    lines += every("09:00:10", "09:03:00", 10, lambda c, i: line(
        c, (A, B)[i % 2], f"DHCPDISCOVER from 00:00:5e:00:53:{i:02x} via eth0: not responding (recover wait)"))
    lines += [line("09:03:20", h, f"failover peer {REL}: I move from recover-wait to normal") for h in (A, B)]
    lines += [line("09:03:20", h, f"failover peer {REL}: peer moves from recover-wait to normal") for h in (A, B)]
    lines += [ack("09:03:30", A, 1)]
    assert incidents(run(lines)) == [("not_serving", (A, B), at("09:00:20"), at("09:03:30"))]


def test_pool_exhaustion():
    lines = normal_pair() + chatter("08:01:00", "10:00:00") + [
        line("09:00:00", A, "balancing pool 5612a0c3e0a0 192.0.2.0/24  total 240  free 240  backup 0  lts 120  max-own (+/-)24"),
        line("09:00:00", A, "balanced pool 5612a0c3e0a0 192.0.2.0/24  total 240  free 120  backup 120  lts 0  max-misbal 36"),
        line("09:10:00", A, "DHCPDISCOVER from 00:00:5e:00:53:01 via eth0: network 192.0.2.0/24: no free leases"),
        line("09:12:00", B, "DHCPDISCOVER from 00:00:5e:00:53:02 via eth0: peer holds all free leases"),
        ack("09:13:00", A, 5),
        line("09:30:00", B, "balanced pool 77aa 198.51.100.0/24  total 100  free 50  backup 0  lts 25  max-misbal 15"),
        line("09:40:00", B, "balanced pool 77aa 198.51.100.0/24  total 100  free 25  backup 25  lts 0  max-misbal 15"),
        ack("09:41:00", B, 6),
    ]
    assert incidents(run(lines)) == [
        ("pool_exhausted", (A, B), at("09:10:00"), at("09:17:00")),
        ("pool_exhausted", (B,), at("09:30:00"), at("09:40:00")),
    ]


def test_normal_operation_has_no_incident():
    lines = normal_pair() + every("08:01:00", "12:00:00", 45, lambda c, i: ack(c, (A, B)[i % 2], i))
    lines += [line("09:00:00", A, f"peer {REL}: disconnected"),
              line("09:00:00", A, f"failover peer {REL}: I move from normal to communications-interrupted"),
              line("09:00:00", B, f"peer {REL}: disconnected"),
              line("09:00:00", B, f"failover peer {REL}: I move from normal to communications-interrupted"),
              line("09:00:01", A, f"failover peer {REL}: I move from communications-interrupted to normal"),
              line("09:00:01", B, f"failover peer {REL}: I move from communications-interrupted to normal"),
              line("09:00:01", A, f"failover peer {REL}: peer moves from normal to normal"),
              line("09:00:01", B, f"failover peer {REL}: peer moves from normal to normal"),
              line("09:00:01", A, f"Sending updates to {REL}.")]
    result = run(lines)
    # a one-second blip of communications-interrupted is reported as what it was, nothing else
    assert incidents(result) == [("communications_interrupted", (A, B), at("09:00:00"), at("09:00:01"))]


def test_bulk_resync_that_never_completes_is_slow_then_stuck():
    lines = normal_pair() + chatter("08:01:00", "09:40:00", (A,)) + [
        line("09:00:00", B, f"failover peer {REL}: I move from recover to startup"),
        line("09:00:15", B, f"failover peer {REL}: I move from startup to recover"),
        line("09:00:15", B, f"Sent update request all message to {REL}"),
        line("09:00:15", A, f"Update request all from {REL}: sending update"),
    ] + every("09:01:00", "09:40:00", 60, lambda c, i: line(
        c, B, f"DHCPDISCOVER from 00:00:5e:00:53:{i:02x} via eth0: not responding (recovering)"))
    result = run(lines)
    assert [(c, s, st) for c, s, st, _ in incidents(result) if c in ("sync_slow", "stuck")] == [
        ("sync_slow", (B,), at("09:10:15")),
        ("stuck", (B,), at("09:15:15")),
    ]


def test_configured_pair_name_and_a_host_in_two_relationships():
    other = "failover-ac"
    lines = normal_pair() + chatter("08:01:00", "09:00:00", (A, B, "dhcp3")) + [
        line("08:00:00", A, f"failover peer {other}: I move from startup to normal"),
        line("08:00:00", "dhcp3", f"failover peer {other}: I move from startup to normal"),
        line("08:30:00", A, f"failover peer {other}: I move from normal to communications-interrupted"),
    ]
    config = {"pair": [{"name": "campus", "hosts": [A, B], "relationship": REL}]}
    result = run(lines, config)
    assert [(i.pair, i.condition, i.servers) for i in result.incidents] == [(other, "communications_interrupted", (A,))]
    assert {s.pair for s in result.states} == {"campus", other}


def test_host_names_without_domain_when_configured():
    lines = [line("08:00:00", "DHCP1.example.net", f"failover peer {REL}: I move from startup to normal"),
             line("08:00:00", B, f"failover peer {REL}: I move from startup to normal"),
             line("09:00:00", "dhcp1", f"failover peer {REL}: I move from normal to partner-down")]
    plain = run(lines)
    assert {s.server for s in plain.states} == {"dhcp1.example.net", "dhcp1", B}
    stripped = run(lines, {"hosts": {"strip_domain": True}})
    assert {s.server for s in stripped.states} == {"dhcp1", B}
    assert [(i.condition, i.servers) for i in stripped.incidents] == [("partner_down", ("dhcp1",))]


def test_restore_after_a_restart_keeps_partner_down_and_times_the_old_states():
    from collector.config import parse_config
    from collector.correlator import Correlator
    from collector.domain import IncidentClosed, IncidentOpened
    from parsers import parse_line
    from tests.collector.scenario import OPTIONS

    states = [
        {"ts": "2025-03-03T08:00:00Z", "pair": REL, "server": A, "side": "self", "state": "partner-down", "previous": "normal"},
        {"ts": "2025-03-03T09:00:00Z", "pair": REL, "server": B, "side": "self", "state": "recover-wait", "previous": "recover"},
    ]
    incidents = [{"condition": "partner_down", "pair": REL, "servers": [A], "start": "2025-03-03T08:00:00Z", "end": None,
                  "evidence": ["Mar  3 08:00:00 dhcp1 dhcpd: failover peer failover-ab: I move from normal to partner-down"]}]
    correlator = Correlator(parse_config({"limits": {"mclt": 600}}))
    correlator.restore(states, incidents, at("10:00:00"))
    changes = correlator.tick(at("10:00:00"))
    opened = [c.incident for c in changes if isinstance(c, IncidentOpened)]
    # the restored incident is still the one open; the old recover-wait is past MCLT + grace
    assert [(i.condition, i.servers, i.start) for i in opened] == [("stuck", (B,), at("09:11:00"))]
    assert [i.condition for i in correlator.open_incidents()] == ["partner_down", "stuck"]
    # a line of the restored pair lands in it and closes the restored incident
    event = parse_line(line("10:00:05", A, f"failover peer {REL}: I move from partner-down to normal"), OPTIONS)
    closed = [c.incident for c in correlator.feed(event, at("10:00:05"), "x") if isinstance(c, IncidentClosed)]
    assert [(i.condition, i.start, i.end) for i in closed] == [("partner_down", at("08:00:00"), at("10:00:05"))]


def test_an_open_incident_reports_the_second_server_that_joins_it():
    """Seen in the lab: a partition makes both servers log communications-interrupted 20 ms
    apart. The incident opens for the first and must then say both (a change, so the API and
    the store show it)."""
    from collector.config import parse_config
    from collector.correlator import Correlator
    from collector.domain import IncidentOpened, IncidentWidened
    from parsers import parse_line
    from tests.collector.scenario import OPTIONS

    correlator = Correlator(parse_config({}))
    for host in (A, B):
        correlator.feed(parse_line(line("08:00:00", host, f"failover peer {REL}: I move from startup to normal"),
                                   OPTIONS), at("08:00:00"), "x")
    kinds = []
    for offset, host in ((1.0, B), (1.02, A)):
        text = line("08:00:01", host, f"failover peer {REL}: I move from normal to communications-interrupted")
        changes = correlator.feed(parse_line(text, OPTIONS), at("08:00:00") + offset, text)
        kinds += [(type(c).__name__, c.incident.servers) for c in changes if isinstance(c, IncidentOpened | IncidentWidened)]
    assert kinds == [("IncidentOpened", (B,)), ("IncidentWidened", (A, B))]
    (open_,) = [i for i in correlator.open_incidents() if i.condition == "communications_interrupted"]
    assert open_.servers == (A, B)


def test_a_fresh_secondarys_backup_0_until_its_next_balancing_run_is_not_exhaustion():
    """Lab, dhcpd 4.4.3, both lease files empty: at recover-done -> normal the secondary logs
    `backup 0` and only its next balancing run, a minute later, shows the half the primary
    sent it at once. One side's share at zero counts after SHARE_HOLD; nothing left at all
    (free 0 backup 0) after COUNT_HOLD."""
    lines = normal_pair() + chatter("08:01:00", "09:00:00") + [
        line("08:02:00", B, "balanced pool 55f5468c1fa0 198.18.0.0/24  total 180  free 180  backup 0  lts -90  max-misbal 27"),
        line("08:03:00", B, "balanced pool 55f5468c1fa0 198.18.0.0/24  total 180  free 90  backup 90  lts 0  max-misbal 27"),
        line("08:30:00", A, "balanced pool 5612a0c3e0a0 192.0.2.0/24  total 240  free 0  backup 0  lts 0  max-misbal 36"),
        line("08:40:00", A, "balanced pool 5612a0c3e0a0 192.0.2.0/24  total 240  free 20  backup 20  lts 0  max-misbal 36"),
    ]
    assert incidents(run(lines)) == [("pool_exhausted", (A,), at("08:30:00"), at("08:40:00"))]


def test_restart_while_partner_down_is_not_split_brain():
    """dhcp2 is killed; dhcp1 is put into partner-down by hand. dhcp2 comes back and reads a
    big lease file for 8 s between its banner and its first failover line. Before, its old
    `normal` and the lines of its start counted as a server serving beside a partner-down one:
    split brain after the 5 s hold, on a plain restart."""
    pid = "dhcpd[4242]"
    lines = normal_pair() + [
        line("10:00:01", A, f"peer {REL}: disconnected"),
        line("10:00:01", A, f"failover peer {REL}: I move from normal to communications-interrupted"),
        line("10:00:30", A, f"failover peer {REL}: I move from communications-interrupted to partner-down"),
        ack("10:01:00", A, 1),
        line("10:02:00", B, "Internet Systems Consortium DHCP Server 4.4.3-P1", pid),
        line("10:02:00", B, "Copyright 2004-2022 Internet Systems Consortium.", pid),
        line("10:02:08", B, "Wrote 1048576 leases to leases file.", pid),
        line("10:02:08", B, f"failover peer {REL}: I move from normal to startup", pid),
        line("10:02:08", B, "Server starting service.", pid),
        line("10:02:09", B, f"failover peer {REL}: I move from startup to normal", pid),
        line("10:02:09", A, f"failover peer {REL}: peer moves from startup to normal"),
        line("10:02:09", A, f"failover peer {REL}: I move from partner-down to normal"),
        line("10:02:09", B, f"failover peer {REL}: peer moves from partner-down to normal", pid),
    ]
    result = run(lines)
    assert incidents(result) == [
        ("communications_interrupted", (A,), at("10:00:01"), at("10:00:30")),
        ("partner_down", (A,), at("10:00:30"), at("10:02:09")),
    ]
    own = [(s.ts, s.state) for s in result.states if s.server == B and s.side == "self"]
    assert own == [(at("08:00:00"), "normal"), (at("10:02:08"), "startup"), (at("10:02:09"), "normal")]


def test_exit_and_a_new_pid_reset_the_server():
    """`exiting.` leaves the server's state unknown; a line from a new dhcpd process (no
    banner: dhcpd logs it before it reads `log-facility`, so a forwarder of local7 only never
    sees it) resets what was known of the server, as a start does."""
    correlator = Correlator(parse_config({}))
    old, new = "dhcpd[100]", "dhcpd[200]"
    replay([(normal_pair() + [line("09:00:00", B, f"failover peer {REL}: I move from normal to normal", old),
                              line("10:00:00", B, "exiting.", old)], OPTIONS)], correlator)
    servers = {s.host: s for s in correlator.snapshot()[0].servers}
    assert (servers[B].state, servers[B].since, servers[B].peer_state) == (None, at("10:00:00"), None)
    replay([([line("10:01:00", B, f"failover peer {REL}: I move from startup to recover", new),
              line("10:02:00", B, f"failover peer {REL}: peer moves from normal to normal", new),
              line("10:03:00", B, "DHCPACK on 192.0.2.10 to 00:00:5e:00:53:01 via eth0", new),
              line("10:03:30", B, "execute: /usr/local/bin/on-commit exit status 256", "dhcpd[250]")], OPTIONS)],
           correlator)
    servers = {s.host: s for s in correlator.snapshot()[0].servers}
    assert (servers[B].state, servers[B].peer_state) == ("recover", "normal")  # a child's PID is not a restart
    replay([([line("10:04:00", B, "DHCPACK on 192.0.2.11 to 00:00:5e:00:53:02 via eth0", "dhcpd[300]")], OPTIONS)],
           correlator)
    servers = {s.host: s for s in correlator.snapshot()[0].servers}
    assert (servers[B].state, servers[B].since, servers[B].peer_state) == (None, at("10:04:00"), None)
