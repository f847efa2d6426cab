"""Issue 17, acceptance: a real forwarder cut off from the collector during a split brain.

Both servers' rsyslogs forward with the action of the shipped snippet
(deploy/rsyslog/60-pairwatch.conf: disk-assisted LinkedList queue, retry forever every 10 s).
dhcp2 is cut off from the collector (a blackhole route to the collector's address in its
namespace, and its established forwarding connection aborted, see
`harness.cut_off_from_collector`) before a partition between the peers that ends in split
brain (both put into partner-down by omshell). The partition heals, the pair is back in
normal, and only then is dhcp2 reconnected: its rsyslog's queue flushes every line of the
partition at once, tens of seconds late. Once pairwatch's timeline holds every line both
servers wrote locally, the stored incidents must be what `analyze` finds in the two local
logs, and the live metrics must show the states the servers' last lines say.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.lab.harness import (
    DHCPD_PAIR,
    DhcpdPair,
    Lab,
    Pairwatch,
    ShippedForwarding,
    analyze_local,
    assert_timeline_complete,
    cut_off_from_collector,
    dhcpd_decl,
    epoch_text,
    forwarding_connections,
    ground_truth_problems,
    incidents_diff,
    iso_epoch,
    last_logged_states,
    reconnect_to_collector,
    shipped_parameters,
    wait_logged,
)

pytestmark = pytest.mark.lab

MCLT = 30
SPLIT = 10.0
"""Seconds both servers stay in partner-down: past the 5 s `split_brain_hold`."""
TOLERANCE = 1.0
"""Stored start and end may differ from analyze's by this much (the issue's bound)."""
SETTLE = 15.0
"""After the flush, the store gets this long to show the corrected incidents (it is written
within about a second)."""


def state_is(pw: Pairwatch, server: str, side: str, state: str) -> bool:
    return pw.value("dhcp_failover_state", pair=DHCPD_PAIR, server=server, side=side, state=state) == 1


def partition(lab: Lab, pair: DhcpdPair, on: bool) -> None:
    for dhcpd in (pair.primary, pair.secondary):
        lab.isolate(dhcpd.host, on)


def metrics_problems(pw: Pairwatch, pair: DhcpdPair, open_conditions: set[str]) -> list[str]:
    """Where /metrics disagrees with the servers' last local lines (`dhcp_failover_state`) or
    with analyze's open incidents (`dhcp_failover_condition`)."""
    samples = pw.samples()
    problems = []
    for rs in pair.syslogs:
        server = rs.host.name
        for side, want in last_logged_states(rs).items():
            if want is None:
                continue  # the server said it does not know (disconnected), or never said
            ones = sorted(dict(labels)["state"] for (name, labels), v in samples.items()
                          if name == "dhcp_failover_state" and v == 1 and dict(labels).get("pair") == DHCPD_PAIR
                          and dict(labels).get("server") == server and dict(labels).get("side") == side)
            if ones != [want]:
                problems.append(f"dhcp_failover_state{{server={server},side={side}}}: state(s) {ones} are 1, "
                                f"{server}'s last line says {want}")
    shown = {dict(labels)["condition"]: v for (name, labels), v in samples.items()
             if name == "dhcp_failover_condition" and dict(labels).get("pair") == DHCPD_PAIR}
    for cond in sorted(set(shown) | open_conditions):
        want_value = 1.0 if cond in open_conditions else 0.0
        if shown.get(cond, 0.0) != want_value:
            problems.append(f"dhcp_failover_condition{{condition={cond}}} is {shown.get(cond)}, analyze has it "
                            f"{'open' if want_value else 'closed'}")
    return problems


def test_cut_off_forwarder_catches_up_after_split_brain(
    lab_network: Lab, pairwatch_service: Callable[..., Pairwatch], dhcpd_pair: Callable[..., DhcpdPair]
) -> None:
    """dhcp2 cut off from the collector through a whole split brain, reconnected after the heal.

    Seen (dhcpd 4.4.3, rsyslog 8.2302, max-response-delay 6): both peers `I move from normal
    to communications-interrupted` ~5 s after the partition, each `... to partner-down` at its
    omshell, after the heal both `potential-conflict` and back to `normal` within ~40 ms.
    dhcp2's rsyslog logged locally `omfwd: remote server ... seems to have closed connection`,
    `action 'pairwatch' suspended`, `cannot connect to 198.18.0.254:5514: Invalid argument`
    every retry, and flushed its queue at the first retry after the reconnect (within the 10 s
    `action.resumeInterval`). `analyze` of the local logs: communications_interrupted,
    partner_down and split_brain, each naming both servers.
    """
    began = time.monotonic()
    params = shipped_parameters()
    assert params["queue.filename"] and params["action.resumeRetryCount"] == "-1", params
    resume_interval = float(params["action.resumeInterval"])

    pw = pairwatch_service([dhcpd_decl(MCLT)])
    pair = dhcpd_pair(mclt=MCLT, forwarding=(ShippedForwarding(), ShippedForwarding()))
    dhcp1, dhcp2 = pair.syslogs
    for rs in pair.syslogs:
        assert 'queue.filename="pairwatch"' in rs.conf.read_text(), "the shipped action is in use"
    pw.wait(lambda: all(state_is(pw, s, side, "normal") for s in ("dhcp1", "dhcp2") for side in ("self", "peer")),
            "both servers normal, both sides", 60)
    assert_timeline_complete(pw, pair.syslogs)  # nothing in flight when dhcp2 is cut off
    assert "ESTAB" in forwarding_connections(dhcp2.host), "dhcp2's rsyslog is connected before the cut"

    # dhcp2 loses the collector (not its partner, not the clients)
    cut_off_from_collector(dhcp2.host)
    cut_at = time.time()
    mark2 = len(dhcp2.lines())

    # the peers lose each other: both communications-interrupted
    partition(lab_network, pair, True)
    pw.wait(lambda: state_is(pw, "dhcp1", "self", "communications-interrupted"),
            "dhcp1 in communications-interrupted", 30)
    wait_logged(dhcp2, "I move from normal to communications-interrupted", 30, mark2)

    # split brain: both in partner-down, each serving the whole pool
    pair.primary.omshell_local_state(4)
    pw.wait(lambda: state_is(pw, "dhcp1", "self", "partner-down"), "dhcp1 in partner-down", 20)
    pair.secondary.omshell_local_state(4)
    wait_logged(dhcp2, "I move from communications-interrupted to partner-down", 20, mark2)
    time.sleep(SPLIT)

    # the partition heals while dhcp2 is still cut off: pairwatch hears only dhcp1 meanwhile
    partition(lab_network, pair, False)
    pw.wait(lambda: state_is(pw, "dhcp1", "self", "normal"), "dhcp1 back in normal", 60)
    wait_logged(dhcp2, "Both servers normal", 60, mark2)
    assert ground_truth_problems(pw, [dhcp2]), "dhcp2's partition lines have not reached pairwatch yet"
    suspended = [line["msg"] for line in dhcp2.lines()[mark2:]
                 if line["program"] == "rsyslogd" and "suspended" in line["msg"]]
    assert suspended, "dhcp2's rsyslog suspended its forwarding action (its queue holds the lines)"

    # dhcp2 reaches the collector again: its queue flushes at the next retry
    reconnect_to_collector(dhcp2.host)
    reconnected = time.time()
    assert_timeline_complete(pw, pair.syslogs, deadline=2 * resume_interval + 20)
    flushed = time.time()
    partition_rows = [row for row in pw.timeline("dhcp2") if row["program"] == "dhcpd"
                      and cut_at <= iso_epoch(row["at"]) <= reconnected]
    assert partition_rows, "dhcp2 logged during the cut-off"
    lateness = sorted(iso_epoch(row["received_at"]) - iso_epoch(row["at"]) for row in partition_rows)
    timing = (f"dhcp2 cut off at {epoch_text(cut_at)}, reconnected {reconnected - cut_at:.1f} s later; its "
              f"{len(partition_rows)} dhcpd lines of that time were all stored {flushed - reconnected:.1f} s after "
              f"the reconnect, {lateness[0]:.1f} to {lateness[-1]:.1f} s after their header times")
    early = [row["message"] for row in partition_rows if iso_epoch(row["received_at"]) < reconnected]
    assert not early, f"dhcp2's lines of the cut-off reached pairwatch only after the reconnect: {early}; {timing}"

    expected = analyze_local(pair.syslogs, pw.config.read_text())
    assert {"communications_interrupted", "partner_down", "split_brain"} <= {i.condition for i in expected}, (
        f"analyze of the local logs finds the scenario (a partition ending in split brain): {expected}")

    def stored() -> list[dict]:
        return [row for row in pw.incidents(every=True) if not row.get("retracted")]

    diff = incidents_diff(expected, stored(), TOLERANCE, origin=cut_at)
    settle_until = time.monotonic() + SETTLE
    while diff and time.monotonic() < settle_until:
        time.sleep(0.5)
        diff = incidents_diff(expected, stored(), TOLERANCE, origin=cut_at)
    open_conditions = {i.condition for i in expected if i.end is None and i.pair == DHCPD_PAIR}
    metric_problems = metrics_problems(pw, pair, open_conditions)

    timing += f"; test ran {time.monotonic() - began:.0f} s"
    print(timing)
    problems = []
    if diff:
        problems.append("stored incidents (retracted ones left out) are not analyze's of the local logs:\n" + diff)
    if metric_problems:
        problems.append("live metrics are not the pair's current state:\n  " + "\n  ".join(metric_problems))
    assert not problems, timing + "\n" + "\n".join(problems)
