"""Scenario 8: a real Kea 2.2 HA pair (load-balancing, then hot-standby): one server killed,
the survivor's partner-down in pairwatch, the restart and the way back."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import pytest

from tests.lab.conftest import capture
from tests.lab.harness import (
    KEA_PAIR,
    Clients,
    KeaPair,
    Pairwatch,
    address_in_pool,
    analyze_local,
    assert_timeline_complete,
    ha_name,
    iso_epoch,
    kea_decl,
    leased,
    line_time,
    wait_for,
)

pytestmark = pytest.mark.lab

PROMPT = 1.0


def in_state(pw: Pairwatch, server: str, state: str) -> bool:
    return pw.value("dhcp_failover_state", pair=KEA_PAIR, server=server, side="self", state=state) == 1


@pytest.mark.parametrize(("mode", "victim"), [("load-balancing", "kea2"), ("hot-standby", "kea1")])
def test_kea_ha_partner_down_and_back(
    mode: str, victim: str, pairwatch_service: Callable[..., Pairwatch], kea_pair: Callable[..., KeaPair],
    clients: Clients,
) -> None:
    """Kea 2.2.0 (heartbeat 1 s, max-response-delay 3 s) logged at start, on each server,
    `HA_STATE_TRANSITION server transitions from WAITING to SYNCING state`, `HA_SYNC_START`,
    `HA_SYNC_SUCCESSFUL`, `SYNCING to READY`, `READY to LOAD-BALANCING` (or `HOT-STANDBY`).
    After SIGKILL of one server the survivor logged `HA_HEARTBEAT_COMMUNICATIONS_FAILED`
    every second; in load-balancing `LOAD-BALANCING to COMMUNICATION-RECOVERY` at once, in
    hot-standby none; `HA_COMMUNICATION_INTERRUPTED` and `... to PARTNER-DOWN state` after
    3 s. After the restart: the victim `WAITING -> SYNCING -> READY -> <mode>`, the survivor
    `PARTNER-DOWN to <mode>` within about 3 s.
    """
    pw = pairwatch_service([kea_decl()])
    pair = kea_pair(mode)
    hosts = ("kea1", "kea2")
    survivor = next(h for h in hosts if h != victim)
    pw.wait(lambda: all(in_state(pw, h, mode) for h in hosts), f"both Kea servers in {mode}", 60)
    view = pw.pair(KEA_PAIR)
    assert view is not None and view["implementation"] == "kea"
    assert {s["host"]: s["ha_name"] for s in view["servers"]} == {h: ha_name(h) for h in hosts}
    files = clients.ask(2)
    addresses = wait_for(lambda: all(leased(files)) and leased(files), "2 Kea clients to hold leases", 60)
    assert all(address_in_pool(a) for a in addresses), addresses

    victim_kea = pair.servers[hosts.index(victim)]
    victim_kea.stop(signal.SIGKILL)
    down = pw.wait_incident("partner_down", KEA_PAIR, 30, servers=[survivor])
    rs = pair.syslogs[hosts.index(survivor)]
    logged = line_time(rs, "to PARTNER-DOWN state")
    assert -0.05 <= iso_epoch(down["start"]) - logged < PROMPT, (down, logged)
    assert in_state(pw, survivor, "partner-down")
    assert pw.value("dhcp_failover_condition", pair=KEA_PAIR, condition="partner_down") == 1

    more = clients.ask(1)  # the survivor alone serves a new client
    wait_for(lambda: all(leased(more)), f"a lease from {survivor} alone", 60)

    # come back well after the split-brain hold (5 s) has passed since the partner-down, as an
    # operator's restart does: before, the start lines counted as a live server in its old state
    time.sleep(max(0.0, logged + 8.0 - time.time()))
    victim_kea.start()
    pw.wait(lambda: all(in_state(pw, h, mode) for h in hosts), f"both Kea servers back in {mode}", 60)
    stored = pw.wait_closed(("partner_down", "communications_interrupted", "split_brain", "stuck"))
    kinds = {i["condition"] for i in stored}
    assert {"partner_down", "communications_interrupted"} <= kinds, stored
    assert "split_brain" not in kinds, stored
    interrupted = min(iso_epoch(i["start"]) for i in stored if i["condition"] == "communications_interrupted")
    # hot-standby logs HA_COMMUNICATION_INTERRUPTED and the move to PARTNER-DOWN in the same
    # millisecond: both may carry the same receive time (1 µs apart after ISO rounding)
    assert interrupted <= iso_epoch(down["start"]) + 0.001, "communication trouble is seen before partner-down"
    assert_timeline_complete(pw, pair.syslogs)
    capture(f"kea-{mode}-{victim}-killed", pw, pair.syslogs)

    # the servers' own logs, replayed: Kea 2.2's start lines (a new PID; HA_CONFIGURATION_SUCCESSFUL,
    # HA_INIT_OK, HA_LOCAL_DHCP_DISABLE in WAITING, HA_SERVICE_STARTED, DHCP4_STARTED) come while
    # its partner is in partner-down and before its first transition; they reset it: no split brain
    found = analyze_local(pair.syslogs, pw.config.read_text())
    assert "split_brain" not in {i.condition for i in found}, [i.as_dict() for i in found]
    (partner_down,) = [i for i in found if i.condition == "partner_down"]
    assert partner_down.servers == (survivor,)
    assert partner_down.start == pytest.approx(logged, abs=0.001)
    back = line_time(rs, f"from PARTNER-DOWN to {mode.upper()} state")
    assert partner_down.end == pytest.approx(back, abs=0.001)
