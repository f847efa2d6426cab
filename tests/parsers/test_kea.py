"""Tests for `parsers.kea.parse_kea`.

Every line is built from a Kea format string of log-messages.md (sections 7-10)
or, for the pre-2.5.5 HA wordings the catalog does not list, from the message
table of a Kea 2.2 build; the values are synthetic (servers kea-a/kea-b,
addresses 192.0.2.x, MACs 00:00:5e:00:53:xx).
"""

from __future__ import annotations

import dataclasses
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.events import (
    KEA_STATES,
    FailoverHA,
    FailoverState,
    KeaOther,
    LeaseAck,
    LeaseDecline,
    LeaseDiscover,
    LeaseInform,
    LeaseNak,
    LeaseNoFree,
    LeaseOffer,
    LeaseRelease,
    LeaseRequest,
    Payload,
    ServerLifecycle,
)
from parsers.kea import parse_kea

SELF = "kea-a"
PEER = "kea-b"
PEER_URL = "http://192.0.2.12:8000/"
PEER_LABEL = f"{PEER} ({PEER_URL})"  # Kea's `name (url)` form of a peer
MAC = "00:00:5e:00:53:01"
IP = "192.0.2.10"
LABEL = f"[hwtype=1 {MAC}], cid=[01:{MAC}], tid=0x1a2b3c4d"


def kea(msgid: str, text: str, *args: str) -> str:
    """`<msgid> <text>` with Kea's `%1..%n` replaced by `args`."""
    return f"{msgid} " + re.sub(r"%(\d)", lambda m: args[int(m[1]) - 1], text)


# --- HA state transitions --------------------------------------------------

STATE_LABELS = (
    "BACKUP",
    "COMMUNICATION-RECOVERY",
    "HOT-STANDBY",
    "LOAD-BALANCING",
    "IN-MAINTENANCE",
    "PARTNER-DOWN",
    "PARTNER-IN-MAINTENANCE",
    "PASSIVE-BACKUP",
    "READY",
    "SYNCING",
    "TERMINATED",
    "WAITING",
    "UNAVAILABLE",
    "UNDEFINED",
)
TRANSITION_OLD = "server transitions from %1 to %2 state, partner state is %3"
TRANSITION_NEW = "%1: server transitions from %2 to %3 state, partner state is %4"


def test_state_labels_cover_the_vocabulary() -> None:
    assert {label.lower() for label in STATE_LABELS} == KEA_STATES


def _transition_cases() -> list[object]:
    cases = []
    for i, state in enumerate(STATE_LABELS):
        to_state = STATE_LABELS[(i + 1) % len(STATE_LABELS)]
        partner = STATE_LABELS[(i + 2) % len(STATE_LABELS)]
        for ha_name, line in (
            (None, kea("HA_STATE_TRANSITION", TRANSITION_OLD, state, to_state, partner)),
            (SELF, kea("HA_STATE_TRANSITION", TRANSITION_NEW, SELF, state, to_state, partner)),
        ):
            expected = FailoverState(
                relationship=None,
                side="self",
                from_state=state.lower(),
                to_state=to_state.lower(),
                ha_name=ha_name,
                partner_state=partner.lower(),
            )
            form = "prefix" if ha_name else "no-prefix"
            cases.append(pytest.param(line, expected, id=f"{state}-{form}"))
    return cases


@pytest.mark.parametrize(("line", "expected"), _transition_cases())
def test_state_transition(line: str, expected: FailoverState) -> None:
    assert parse_kea(line) == expected


@pytest.mark.parametrize(
    ("line", "ha_name"),
    [
        pytest.param(
            kea("HA_STATE_TRANSITION_PASSIVE_BACKUP", "server transitions from %1 to %2 state",
                "WAITING", "PASSIVE-BACKUP"),
            None,
            id="pre-2.5.5",
        ),
        pytest.param(
            kea("HA_STATE_TRANSITION_PASSIVE_BACKUP", "%1: server transitions from %2 to %3 state",
                SELF, "WAITING", "PASSIVE-BACKUP"),
            SELF,
            id="2.5.5+",
        ),
    ],
)
def test_state_transition_passive_backup(line: str, ha_name: str | None) -> None:
    assert parse_kea(line) == FailoverState(
        relationship=None,
        side="self",
        from_state="waiting",
        to_state="passive-backup",
        ha_name=ha_name,
        partner_state=None,
    )


# --- other HA messages ------------------------------------------------------


def ha(event: str, partner: str | None = None, ha_name: str | None = None,
       detail: str | None = None) -> FailoverHA:
    return FailoverHA(event=event, partner=partner, ha_name=ha_name, detail=detail)


REFUSED = "Connection refused"
FORWARD_ERROR = (
    "unable to forward command to the dhcp4 service: Connection refused."
    " The server is likely to be offline, error code 1"
)
TERMINATED_TAIL = (
    "service terminated due to an unrecoverable condition."
    " Check previous error message(s), address the problem and restart!"
)
PAGE_ERROR = "'lease4-get-page' command not supported"

HA_CASES = [
    # heartbeat_failed
    pytest.param(
        kea("HA_HEARTBEAT_FAILED", "heartbeat to %1 failed: %2", PEER_LABEL, FORWARD_ERROR),
        ha("heartbeat_failed", PEER, None, FORWARD_ERROR),
        id="heartbeat-failed-pre-2.5.5",
    ),
    pytest.param(
        kea("HA_HEARTBEAT_FAILED", "heartbeat to %1 failed: %2", f" ({PEER_URL})", FORWARD_ERROR),
        ha("heartbeat_failed", "192.0.2.12", None, FORWARD_ERROR),
        id="heartbeat-failed-1.4-empty-name",
    ),
    pytest.param(
        kea("HA_HEARTBEAT_FAILED", "heartbeat to %1 failed: %2", " (http://kea-b.example.net:8000/)",
            FORWARD_ERROR),
        ha("heartbeat_failed", "kea-b.example.net", None, FORWARD_ERROR),
        id="heartbeat-failed-empty-name-host-url",
    ),
    pytest.param(
        kea("HA_HEARTBEAT_FAILED", "heartbeat to %1 failed: %2", " (http://[2001:db8::12]:8000/)",
            FORWARD_ERROR),
        ha("heartbeat_failed", "2001:db8::12", None, FORWARD_ERROR),
        id="heartbeat-failed-empty-name-ipv6-url",
    ),
    pytest.param(
        kea("HA_HEARTBEAT_FAILED", "%1: heartbeat to %2 failed: %3", SELF, PEER_LABEL, FORWARD_ERROR),
        ha("heartbeat_failed", PEER, SELF, FORWARD_ERROR),
        id="heartbeat-failed-2.5.5+",
    ),
    pytest.param(
        kea("HA_HEARTBEAT_COMMUNICATIONS_FAILED", "failed to send heartbeat to %1: %2",
            PEER_LABEL, REFUSED),
        ha("heartbeat_failed", PEER, None, REFUSED),
        id="heartbeat-communications-failed-pre-2.5.5",
    ),
    pytest.param(
        kea("HA_HEARTBEAT_COMMUNICATIONS_FAILED", "%1: failed to send heartbeat to %2: %3",
            SELF, PEER_LABEL, REFUSED),
        ha("heartbeat_failed", PEER, SELF, REFUSED),
        id="heartbeat-communications-failed-2.5.5+",
    ),
    pytest.param(
        kea("HA_HEARTBEAT_COMMUNICATIONS_FAILED", "%1: failed to send heartbeat to %2: %3",
            SELF, f"{PEER} (http://[2001:db8::12]:8000/)", REFUSED),
        ha("heartbeat_failed", PEER, SELF, REFUSED),
        id="heartbeat-communications-failed-ipv6-url",
    ),
    # communication_interrupted
    pytest.param(
        kea("HA_COMMUNICATION_INTERRUPTED", "communication with %1 is interrupted", PEER),
        ha("communication_interrupted", PEER),
        id="communication-interrupted-1.7.8-2.5.4",
    ),
    pytest.param(
        kea("HA_COMMUNICATION_INTERRUPTED", "%1: communication with %2 is interrupted", SELF, PEER),
        ha("communication_interrupted", PEER, SELF),
        id="communication-interrupted-2.5.5+",
    ),
    pytest.param(
        kea("HA_COMMUNICATION_INTERRUPTED", "%1: communication with %2 is interrupted", SELF, SELF),
        ha("communication_interrupted", SELF, SELF),
        id="communication-interrupted-with-self",
    ),
    # sync_started / sync_failed / sync_done
    pytest.param(
        kea("HA_SYNC_START", "starting lease database synchronization with %1", PEER),
        ha("sync_started", PEER),
        id="sync-start-pre-2.5.5",
    ),
    pytest.param(
        kea("HA_SYNC_START", "%1: starting lease database synchronization with %2", SELF, PEER),
        ha("sync_started", PEER, SELF),
        id="sync-start-2.5.5+",
    ),
    pytest.param(
        kea("HA_SYNC_FAILED", "lease database synchronization with %1 failed: %2", PEER, PAGE_ERROR),
        ha("sync_failed", PEER, None, PAGE_ERROR),
        id="sync-failed-pre-2.5.5",
    ),
    pytest.param(
        kea("HA_SYNC_FAILED", "%1: lease database synchronization with %2 failed: %3",
            SELF, PEER, PAGE_ERROR),
        ha("sync_failed", PEER, SELF, PAGE_ERROR),
        id="sync-failed-2.5.5+",
    ),
    pytest.param(
        kea("HA_LEASES_SYNC_FAILED", "failed to synchronize leases with %1: %2", PEER_LABEL, PAGE_ERROR),
        ha("sync_failed", PEER, None, PAGE_ERROR),
        id="leases-sync-failed-pre-2.5.5",
    ),
    pytest.param(
        kea("HA_LEASES_SYNC_FAILED", "%1: failed to synchronize leases with %2: %3",
            SELF, PEER_LABEL, PAGE_ERROR),
        ha("sync_failed", PEER, SELF, PAGE_ERROR),
        id="leases-sync-failed-2.5.5+",
    ),
    pytest.param(
        kea("HA_LEASES_SYNC_COMMUNICATIONS_FAILED", "failed to communicate with %1 while syncing leases: %2",
            PEER_LABEL, REFUSED),
        ha("sync_failed", PEER, None, REFUSED),
        id="leases-sync-communications-failed-pre-2.5.5",
    ),
    pytest.param(
        kea("HA_LEASES_SYNC_COMMUNICATIONS_FAILED",
            "%1: failed to communicate with %2 while syncing leases: %3", SELF, PEER_LABEL, REFUSED),
        ha("sync_failed", PEER, SELF, REFUSED),
        id="leases-sync-communications-failed-2.5.5+",
    ),
    pytest.param(
        kea("HA_SYNC_SUCCESSFUL", "lease database synchronization with %1 completed successfully in %2",
            PEER, "12.345 ms"),
        ha("sync_done", PEER, None, "12.345 ms"),
        id="sync-successful-pre-2.5.5",
    ),
    pytest.param(
        kea("HA_SYNC_SUCCESSFUL", "%1: lease database synchronization with %2 completed successfully in %3",
            SELF, PEER, "1.234 s"),
        ha("sync_done", PEER, SELF, "1.234 s"),
        id="sync-successful-2.5.5+",
    ),
    # terminated
    pytest.param(
        kea("HA_TERMINATED",
            "HA service terminated because of the unacceptable clock skew; fix the problem and restart!"),
        ha("terminated"),
        id="terminated-1.4-1.5",
    ),
    pytest.param(kea("HA_TERMINATED", "HA " + TERMINATED_TAIL), ha("terminated"), id="terminated-1.6-2.5.4"),
    pytest.param(
        kea("HA_TERMINATED", "HA %1: " + TERMINATED_TAIL, SELF), ha("terminated", None, SELF),
        id="terminated-2.5.5+",
    ),
    # maintenance
    pytest.param(
        kea("HA_MAINTENANCE_STARTED",
            "the server is now in the partner-in-maintenance state and the partner is in-maintenance state"),
        ha("maintenance"),
        id="maintenance-started-pre-2.5.5",
    ),
    pytest.param(
        kea("HA_MAINTENANCE_STARTED",
            "%1: the server is now in the partner-in-maintenance state and the partner is in-maintenance state",
            SELF),
        ha("maintenance", None, SELF),
        id="maintenance-started-2.5.5+",
    ),
    pytest.param(
        kea("HA_MAINTENANCE_STARTED_IN_PARTNER_DOWN",
            "the server is now in the partner-down mode as a result of requested maintenance"),
        ha("maintenance"),
        id="maintenance-started-in-partner-down-pre-2.5.5",
    ),
    pytest.param(
        kea("HA_MAINTENANCE_STARTED_IN_PARTNER_DOWN",
            "%1: the server is now in the partner-down mode as a result of requested maintenance", SELF),
        ha("maintenance", None, SELF),
        id="maintenance-started-in-partner-down-2.5.5+",
    ),
    pytest.param(
        kea("HA_MAINTENANCE_SHUTDOWN_SAFE",
            "the server can now be shutdown for maintenance as the partner has taken over the DHCP traffic"),
        ha("maintenance"),
        id="maintenance-shutdown-safe-pre-2.5.5",
    ),
    pytest.param(
        kea("HA_MAINTENANCE_SHUTDOWN_SAFE",
            "%1: the server can now be shutdown for maintenance as the partner has taken over the DHCP traffic",
            SELF),
        ha("maintenance", None, SELF),
        id="maintenance-shutdown-safe-2.5.5+",
    ),
    # local DHCP service (same text in every version)
    pytest.param(
        kea("HA_LOCAL_DHCP_DISABLE", "local DHCP service is disabled while the %1 is in the %2 state",
            SELF, "WAITING"),
        ha("dhcp_disabled", None, SELF, "waiting"),
        id="local-dhcp-disable",
    ),
    pytest.param(
        kea("HA_LOCAL_DHCP_ENABLE", "local DHCP service is enabled while the %1 is in the %2 state",
            SELF, "PARTNER-DOWN"),
        ha("dhcp_enabled", None, SELF, "partner-down"),
        id="local-dhcp-enable",
    ),
    # service started
    pytest.param(
        kea("HA_SERVICE_STARTED", "started high availability service in %1 mode as %2 server",
            "hot-standby", "standby"),
        ha("service_started", None, None, "hot-standby standby"),
        id="service-started-pre-2.5.5",
    ),
    pytest.param(
        kea("HA_SERVICE_STARTED", "%1: started high availability service in %2 mode as %3 server",
            SELF, "load-balancing", "primary"),
        ha("service_started", None, SELF, "load-balancing primary"),
        id="service-started-2.5.5+",
    ),
    # generic event names
    pytest.param(
        kea("HA_HIGH_CLOCK_SKEW_CAUSED_TERMINATION", "%1: %2, causing HA service to terminate", SELF,
            "my time: 2025-03-03 08:15:02, partner's time: 2025-03-03 08:16:40, partner's clock is 98s ahead"),
        ha("high_clock_skew_caused_termination", None, SELF,
           "my time: 2025-03-03 08:15:02, partner's time: 2025-03-03 08:16:40,"
           " partner's clock is 98s ahead, causing HA service to terminate"),
        id="generic-clock-skew-2.5.5+",
    ),
    pytest.param(
        kea("HA_HIGH_CLOCK_SKEW_CAUSES_TERMINATION", "%1, causing HA service to terminate",
            "my time: 2025-03-03 08:15:02, partner's time: 2025-03-03 08:16:40, partner's clock is 98s ahead"),
        ha("high_clock_skew_causes_termination", None, None,
           "my time: 2025-03-03 08:15:02, partner's time: 2025-03-03 08:16:40,"
           " partner's clock is 98s ahead, causing HA service to terminate"),
        id="generic-clock-skew-pre-2.5.5",
    ),
    pytest.param(
        kea("HA_COMMUNICATION_INTERRUPTED_CLIENT4_UNACKED",
            "%1: partner server failed to respond to %2, %3 clients unacked so far,"
            " %4 clients left before transitioning to the partner-down state", SELF, LABEL, "3", "7"),
        ha("communication_interrupted_client4_unacked", None, SELF,
           f"partner server failed to respond to {LABEL}, 3 clients unacked so far,"
           " 7 clients left before transitioning to the partner-down state"),
        id="generic-unacked-2.5.5+",
    ),
    pytest.param(
        kea("HA_COMMUNICATION_INTERRUPTED_CLIENT4_UNACKED",
            "%1: partner server failed to respond, %2 clients unacked so far,"
            " %3 clients left before transitioning to the partner-down state", LABEL, "3", "7"),
        ha("communication_interrupted_client4_unacked", None, None,
           f"{LABEL}: partner server failed to respond, 3 clients unacked so far,"
           " 7 clients left before transitioning to the partner-down state"),
        id="generic-unacked-pre-2.5.5-label-first",
    ),
    pytest.param(
        kea("HA_COMMUNICATION_INTERRUPTED_CLIENT6_UNACKED",
            "%1: partner server failed to respond to %2, %3 clients unacked so far,"
            " %4 clients left before transitioning to the partner-down state",
            SELF, "duid=[00:01:00:01:2b:3c:4d:5e:00:00:5e:00:53:01], [no hwaddr info], tid=0x1a2b3c", "1", "9"),
        ha("communication_interrupted_client6_unacked", None, SELF,
           "partner server failed to respond to duid=[00:01:00:01:2b:3c:4d:5e:00:00:5e:00:53:01],"
           " [no hwaddr info], tid=0x1a2b3c, 1 clients unacked so far,"
           " 9 clients left before transitioning to the partner-down state"),
        id="generic-dhcpv6-twin",
    ),
    pytest.param(
        kea("HA_BUFFER4_RECEIVE_NOT_FOR_US", "%1: dropping query to be processed by another server",
            "[no hwaddr info], cid=[no info], tid=0x5"),
        ha("buffer4_receive_not_for_us", None, None,
           "[no hwaddr info], cid=[no info], tid=0x5: dropping query to be processed by another server"),
        id="generic-no-hwaddr-label-first",
    ),
    pytest.param(
        kea("HA_STATE_MACHINE_PAUSED", "%1: state machine paused in state %2", SELF, "WAITING"),
        ha("state_machine_paused", None, SELF, "state machine paused in state WAITING"),
        id="generic-paused",
    ),
    pytest.param(
        kea("HA_CONFIGURATION_SUCCESSFUL", "HA hook library has been successfully configured"),
        ha("configuration_successful", None, None, "HA hook library has been successfully configured"),
        id="generic-no-argument",
    ),
    pytest.param(
        kea("HA_LEASE_UPDATES_ENABLED", "%1: lease updates will be sent to the partner while in %2 state",
            SELF, "LOAD-BALANCING"),
        ha("lease_updates_enabled", None, SELF,
           "lease updates will be sent to the partner while in LOAD-BALANCING state"),
        id="generic-opnsense-example",
    ),
    pytest.param("HA_DEINIT_OK", ha("deinit_ok"), id="generic-id-only"),
]

# Generic event names for HA texts that name the partner: `partner` is filled too.
UPDATE_LABEL = f"[hwtype=1 {MAC}], cid=[no info], tid=0x2b3c4d5e"
PEER_CASES = [
    pytest.param(
        "HA_DHCP_DISABLE_COMMUNICATIONS_FAILED",
        "failed to send request to disable DHCP service of %1: %2", (PEER_LABEL, REFUSED), id="dhcp-disable-comm",
    ),
    pytest.param("HA_DHCP_DISABLE_FAILED", "failed to disable DHCP service of %1: %2", (PEER, "x"),
                 id="dhcp-disable"),
    pytest.param(
        "HA_DHCP_ENABLE_COMMUNICATIONS_FAILED",
        "failed to send request to enable DHCP service of %1: %2", (PEER_LABEL, REFUSED), id="dhcp-enable-comm",
    ),
    pytest.param("HA_DHCP_ENABLE_FAILED", "failed to enable DHCP service of %1: %2", (PEER, "x"),
                 id="dhcp-enable"),
    pytest.param(
        "HA_LEASES_BACKLOG_COMMUNICATIONS_FAILED",
        "failed to communicate with %1 while sending lease updates backlog: %2", (PEER_LABEL, REFUSED),
        id="backlog-comm",
    ),
    pytest.param("HA_LEASES_BACKLOG_FAILED", "failed to send lease updates backlog to %1: %2",
                 (PEER_LABEL, "x"), id="backlog-failed"),
    pytest.param("HA_LEASES_BACKLOG_START", "starting to send %1 outstanding lease updates to %2",
                 ("42", PEER_LABEL), id="backlog-start"),
    pytest.param("HA_LEASES_BACKLOG_SUCCESS", "sending lease updates backlog to %1 successful in %2",
                 (PEER_LABEL, "3.210 ms"), id="backlog-success"),
    pytest.param("HA_LEASES_SYNC_LEASE_PAGE_RECEIVED", "received %1 leases from %2", ("500", PEER_LABEL),
                 id="lease-page-received"),
    pytest.param("HA_LEASE_UPDATE_CONFLICT", "lease update %1 sent to %2 returned conflict status code: %3",
                 (UPDATE_LABEL, PEER_LABEL, "lease exists"), id="lease-update-conflict"),
    pytest.param(
        "HA_MAINTENANCE_NOTIFY_CANCEL_COMMUNICATIONS_FAILED",
        "failed to send ha-maintenance-notify to %1 in attempt to cancel its maintenance: %2",
        (PEER_LABEL, REFUSED), id="maintenance-notify-cancel-comm",
    ),
    pytest.param(
        "HA_MAINTENANCE_NOTIFY_CANCEL_FAILED",
        "error returned while processing ha-maintenance-notify by %1 in attempt to cancel its maintenance: %2",
        (PEER_LABEL, "x"), id="maintenance-notify-cancel",
    ),
    pytest.param("HA_MAINTENANCE_NOTIFY_COMMUNICATIONS_FAILED", "failed to send ha-maintenance-notify to %1: %2",
                 (PEER_LABEL, REFUSED), id="maintenance-notify-comm"),
    pytest.param("HA_MAINTENANCE_NOTIFY_FAILED",
                 "error returned while processing ha-maintenance-notify by %1: %2", (PEER_LABEL, "x"),
                 id="maintenance-notify"),
    pytest.param("HA_RESET_COMMUNICATIONS_FAILED", "failed to send ha-reset command to %1: %2",
                 (PEER_LABEL, REFUSED), id="reset-comm"),
    pytest.param("HA_RESET_FAILED", "failed to reset HA state machine of %1: %2", (PEER_LABEL, "x"),
                 id="reset"),
    pytest.param("HA_SYNC_COMPLETE_NOTIFY_COMMUNICATIONS_FAILED",
                 "failed to send ha-sync-complete-notify to %1: %2", (PEER_LABEL, REFUSED),
                 id="sync-complete-notify-comm"),
    pytest.param("HA_SYNC_COMPLETE_NOTIFY_FAILED", "error processing ha-sync-complete-notify command on %1: %2",
                 (PEER_LABEL, "x"), id="sync-complete-notify"),
]


@pytest.mark.parametrize(("line", "expected"), HA_CASES)
def test_ha_message(line: str, expected: FailoverHA) -> None:
    assert parse_kea(line) == expected


@pytest.mark.parametrize(("msgid", "text", "args"), PEER_CASES)
@pytest.mark.parametrize("prefixed", [False, True], ids=["pre-2.5.5", "2.5.5+"])
def test_ha_message_naming_the_partner(msgid: str, text: str, args: tuple[str, ...], prefixed: bool) -> None:
    body = kea(msgid, text, *args).partition(" ")[2]
    line = f"{msgid} {SELF}: {body}" if prefixed else f"{msgid} {body}"
    event = msgid.removeprefix("HA_").lower()
    assert parse_kea(line) == ha(event, PEER, SELF if prefixed else None, body)


@pytest.mark.parametrize(
    ("line", "expected_ha_name", "expected_detail"),
    [
        pytest.param(
            kea("HA_LEASE_UPDATE_FAILED", "%1: lease update to %2 failed: %3", UPDATE_LABEL, PEER_LABEL, "x"),
            None,
            f"{UPDATE_LABEL}: lease update to {PEER_LABEL} failed: x",
            id="lease-update-failed-pre-2.5.5",
        ),
        pytest.param(
            kea("HA_LEASE_UPDATE_FAILED", "%1: lease update %2 sent to %3 failed: %4",
                SELF, UPDATE_LABEL, PEER_LABEL, "x"),
            SELF,
            f"lease update {UPDATE_LABEL} sent to {PEER_LABEL} failed: x",
            id="lease-update-failed-2.5.5+",
        ),
        pytest.param(
            kea("HA_LEASE_UPDATE_COMMUNICATIONS_FAILED", "%1: failed to communicate with %2: %3",
                UPDATE_LABEL, PEER_LABEL, REFUSED),
            None,
            f"{UPDATE_LABEL}: failed to communicate with {PEER_LABEL}: {REFUSED}",
            id="lease-update-communications-failed-pre-2.5.5",
        ),
        pytest.param(
            kea("HA_LEASE_UPDATE_COMMUNICATIONS_FAILED", "%1: failed to send lease update %2 to %3: %4",
                SELF, UPDATE_LABEL, PEER_LABEL, REFUSED),
            SELF,
            f"failed to send lease update {UPDATE_LABEL} to {PEER_LABEL}: {REFUSED}",
            id="lease-update-communications-failed-2.5.5+",
        ),
    ],
)
def test_ha_lease_update(line: str, expected_ha_name: str | None, expected_detail: str) -> None:
    event = line.partition(" ")[0].removeprefix("HA_").lower()
    assert parse_kea(line) == ha(event, PEER, expected_ha_name, expected_detail)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param(
            "HA_STATE_TRANSITION kea-a: server transitions from WAITING to SYNCING state, partner st",
            ha("state_transition", None, SELF, "server transitions from WAITING to SYNCING state, partner st"),
            id="state-transition-truncated",
        ),
        pytest.param(
            "HA_STATE_TRANSITION server transitions from WAITING to SYNCING state",
            ha("state_transition", None, None, "server transitions from WAITING to SYNCING state"),
            id="state-transition-without-partner-state",
        ),
        pytest.param(
            "HA_SYNC_SUCCESSFUL kea-a: lease database synchronization with kea-b completed",
            ha("sync_successful", None, SELF, "lease database synchronization with kea-b completed"),
            id="sync-successful-truncated",
        ),
        pytest.param(
            "HA_HEARTBEAT_COMMUNICATIONS_FAILED failed to send heartbeat to kea-b",
            ha("heartbeat_communications_failed", None, None, "failed to send heartbeat to kea-b"),
            id="heartbeat-truncated",
        ),
        pytest.param("HA_SYNC_START", ha("sync_start"), id="id-only"),
        pytest.param("HA_LOCAL_DHCP_ENABLE   ", ha("local_dhcp_enable"), id="id-and-spaces"),
    ],
)
def test_mangled_ha_message_falls_back_to_generic_event(line: str, expected: FailoverHA) -> None:
    assert parse_kea(line) == expected


# --- DHCPv4 lease messages ----------------------------------------------------

CLIENT_LABELS = [
    pytest.param(LABEL, MAC, id="label"),
    pytest.param(f"[hwtype=1 {MAC}], cid=[no info], tid=0x1a2b3c4d", MAC, id="cid-no-info"),
    pytest.param("[no hwaddr info], cid=[01:00:00:5e:00:53:02], tid=0x1a2b3c4d", None, id="no-hwaddr"),
    pytest.param(f"[hwtype=1 {MAC}], cid=[no info], tid=0xbeef (malformed client-id)", MAC, id="malformed-cid"),
    pytest.param("[hwtype=1 ], cid=[no info], tid=0x0", None, id="empty-hwaddr"),
]

LEASE_CASES = [
    pytest.param("DHCP4_LEASE_OFFER", "%1: lease %2 will be offered", (IP,), LeaseOffer(ip=IP),
                 id="lease-offer-2.5.5+"),
    pytest.param("DHCP4_LEASE_ADVERT", "%1: lease %2 will be advertised", (IP,), LeaseOffer(ip=IP),
                 id="lease-advert-pre-2.5.5"),
    pytest.param("DHCP4_LEASE_ALLOC", "%1: lease %2 has been allocated for %3 seconds", (IP, "3600"),
                 LeaseAck(ip=IP), id="lease-alloc"),
    pytest.param("DHCP4_LEASE_ALLOC", "%1: lease %2 has been allocated", (IP,), LeaseAck(ip=IP),
                 id="lease-alloc-1.4-1.5"),
    pytest.param("DHCP4_LEASE_REUSE", "%1: lease %2 has been reused for %3 seconds", (IP, "1800"),
                 LeaseAck(ip=IP, detail="reused"), id="lease-reuse"),
    pytest.param("DHCP4_INIT_REBOOT", "%1: client is in INIT-REBOOT state and requests address %2", (IP,),
                 LeaseRequest(ip=IP), id="init-reboot"),
    pytest.param("DHCP4_RELEASE", "%1: address %2 was released properly.", (IP,),
                 LeaseRelease(ip=IP, detail="released"), id="release"),
    pytest.param("DHCP4_RELEASE_EXPIRED", "%1: address %2 expired on release.", (IP,),
                 LeaseRelease(ip=IP, detail="expired"), id="release-expired"),
    pytest.param("DHCP4_RELEASE_DELETED", "%1: address %2 was deleted on release.", (IP,),
                 LeaseRelease(ip=IP, detail="deleted"), id="release-deleted"),
    pytest.param(
        "DHCP4_SERVER_INITIATED_DECLINE",
        "%1: Lease for addr %2 has been found to be already in use. The lease will be unavailable for %3 seconds.",
        (IP, "86400"), LeaseDecline(ip=IP), id="server-initiated-decline",
    ),
    pytest.param("DHCP4_PACKET_NAK_0001", "%1: failed to select a subnet for incoming packet, src %2, type %3",
                 ("198.51.100.1", "DHCPREQUEST"),
                 LeaseNak(detail="failed to select a subnet for incoming packet, src 198.51.100.1, type DHCPREQUEST"),
                 id="nak-0001"),
    pytest.param("DHCP4_PACKET_NAK_0002", "%1: invalid address %2 requested by INIT-REBOOT", (IP,),
                 LeaseNak(ip=IP, detail=f"invalid address {IP} requested by INIT-REBOOT"), id="nak-0002"),
    pytest.param("DHCP4_PACKET_NAK_0003",
                 "%1: failed to advertise a lease, client sent ciaddr %2, requested-ip-address %3",
                 ("0.0.0.0", IP),
                 LeaseNak(ip=IP, detail=f"failed to advertise a lease, client sent ciaddr 0.0.0.0,"
                                        f" requested-ip-address {IP}"),
                 id="nak-0003"),
    pytest.param("DHCP4_PACKET_NAK_0004",
                 "%1: failed to grant a lease, client sent ciaddr %2, requested-ip-address %3",
                 (IP, "(no address)"),
                 LeaseNak(ip=IP, detail=f"failed to grant a lease, client sent ciaddr {IP},"
                                        " requested-ip-address (no address)"),
                 id="nak-0004-ciaddr-only"),
    pytest.param("DHCP4_PACKET_NAK_0004",
                 "%1: failed to grant a lease, client sent ciaddr %2, requested-ip-address %3",
                 ("0.0.0.0", "0.0.0.0"),
                 LeaseNak(detail="failed to grant a lease, client sent ciaddr 0.0.0.0,"
                                 " requested-ip-address 0.0.0.0"),
                 id="nak-0004-no-address"),
]

RECEIVED = "%1: %2 (type %3) received from %4 to %5 on interface %6"
for _name, _code, _kind in (
    ("DHCPDISCOVER", "1", LeaseDiscover),
    ("DHCPREQUEST", "3", LeaseRequest),
    ("DHCPDECLINE", "4", LeaseDecline),
    ("DHCPRELEASE", "7", LeaseRelease),
    ("DHCPINFORM", "8", LeaseInform),
):
    LEASE_CASES.append(
        pytest.param("DHCP4_PACKET_RECEIVED", RECEIVED, (_name, _code, "0.0.0.0", "255.255.255.255", "eth0"),
                     _kind(via="eth0"), id=f"packet-received-{_name}")
    )


@pytest.mark.parametrize(("label", "mac"), CLIENT_LABELS)
@pytest.mark.parametrize(("msgid", "text", "args", "expected"), LEASE_CASES)
def test_lease_message(msgid: str, text: str, args: tuple[str, ...], expected: Payload,
                       label: str, mac: str | None) -> None:
    assert parse_kea(kea(msgid, text, label, *args)) == dataclasses.replace(expected, mac=mac)


DECLINE = "Received DHCPDECLINE for addr %1 from client %2. The lease will be unavailable for %3 seconds."


@pytest.mark.parametrize(
    ("client", "mac"),
    [
        *CLIENT_LABELS,
        pytest.param(f"hwtype=1 {MAC}", MAC, id="hwaddr-text"),
        pytest.param(MAC, MAC, id="bare-mac"),
    ],
)
def test_decline_lease(client: str, mac: str | None) -> None:
    assert parse_kea(kea("DHCP4_DECLINE_LEASE", DECLINE, IP, client, "86400")) == LeaseDecline(ip=IP, mac=mac)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param(
            kea("ALLOC_ENGINE_V4_ALLOC_FAIL", "%1: failed to allocate an IPv4 address after %2 attempt(s)",
                LABEL, "101"),
            LeaseNoFree(network=None, reason="no free leases"),
            id="alloc-fail",
        ),
        pytest.param(
            kea("ALLOC_ENGINE_V4_ALLOC_FAIL_NO_POOLS", "%1: no pools were available for the address allocation",
                "[hwtype=1 00:00:5e:00:53:08], cid=[no info], tid=0x11223344"),
            LeaseNoFree(network=None, reason="no pools"),
            id="alloc-fail-no-pools",
        ),
        pytest.param(
            kea("ALLOC_ENGINE_V4_ALLOC_FAIL_SHARED_NETWORK",
                "%1: failed to allocate an IPv4 address in the shared network %2:"
                " %3 subnets have no available addresses, %4 subnets have no matching pools",
                LABEL, "campus-net", "2", "0"),
            LeaseNoFree(network="campus-net", reason="no free leases"),
            id="alloc-fail-shared-network",
        ),
        pytest.param(
            kea("ALLOC_ENGINE_V4_ALLOC_FAIL_SUBNET",
                "%1: failed to allocate an IPv4 lease in the subnet %2, subnet-id %3, shared network %4",
                LABEL, "192.0.2.0/24", "1", "(none)"),
            LeaseNoFree(network="192.0.2.0/24", reason="no free leases"),
            id="alloc-fail-subnet",
        ),
        pytest.param(
            kea("ALLOC_ENGINE_V4_ALLOC_FAIL_SUBNET",
                "%1: failed to allocate an IPv4 lease in the subnet %2, subnet-id %3, shared network %4",
                "[no hwaddr info], cid=[no info], tid=0x7 (malformed client-id)", "192.0.2.0/24", "1", "campus-net"),
            LeaseNoFree(network="192.0.2.0/24", reason="no free leases"),
            id="alloc-fail-subnet-in-shared-network",
        ),
        pytest.param(
            kea("ALLOC_ENGINE_V4_ALLOC_FAIL_CLASSES",
                "%1: Failed to allocate an IPv4 address for client with classes: %2", LABEL, "ALL, UNKNOWN"),
            LeaseNoFree(network=None, reason="no matching class"),
            id="alloc-fail-classes",
        ),
    ],
)
def test_no_free_leases(line: str, expected: LeaseNoFree) -> None:
    assert parse_kea(line) == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param(
            kea("DHCP4_STARTING", "Kea DHCPv4 server version %1 (%2) starting", "2.6.1", "stable"),
            ServerLifecycle(event="start", version="2.6.1"),
            id="starting",
        ),
        pytest.param(
            kea("DHCP4_STARTED", "Kea DHCPv4 server version %1 started", "2.2.0"),
            ServerLifecycle(event="serving", version="2.2.0"),
            id="started",
        ),
        pytest.param(kea("DHCP4_SHUTDOWN", "server shutdown"), ServerLifecycle(event="exit"), id="shutdown"),
        # kea-dhcp6's start and exit reset a server as kea-dhcp4's do
        pytest.param(
            kea("DHCP6_STARTING", "Kea DHCPv6 server version %1 (%2) starting", "2.6.1", "stable"),
            ServerLifecycle(event="start", version="2.6.1"),
            id="dhcpv6-starting",
        ),
        pytest.param(
            kea("DHCP6_STARTED", "Kea DHCPv6 server version %1 started", "2.6.1"),
            ServerLifecycle(event="serving", version="2.6.1"),
            id="dhcpv6-started",
        ),
        pytest.param(kea("DHCP6_SHUTDOWN", "server shutdown"), ServerLifecycle(event="exit"), id="dhcpv6-shutdown"),
    ],
)
def test_lifecycle(line: str, expected: ServerLifecycle) -> None:
    assert parse_kea(line) == expected


# --- everything else ---------------------------------------------------------

OTHER_LINES = [
    pytest.param("", id="empty"),
    pytest.param(" ", id="space"),
    pytest.param("garbage", id="word"),
    pytest.param("\x00\xff\u2028", id="control-and-separators"),
    pytest.param(
        kea("DHCP6_LEASE_ALLOC", "%1: lease for address %2 and iaid=%3 has been allocated for %4 seconds",
            "duid=[00:01:00:01:2b:3c:4d:5e:00:00:5e:00:53:01], [no hwaddr info], tid=0x1a2b3c",
            "2001:db8::10", "1", "3600"),
        id="dhcpv6-lease",
    ),
    pytest.param(kea("DHCP4_QUERY_LABEL", "received query: %1", LABEL), id="unmapped-dhcp4"),
    pytest.param(kea("DHCPSRV_CFGMGR_ADD_IFACE", "listening on interface %1", "eth0"), id="dhcpsrv"),
    pytest.param(kea("DHCP4_SHUTDOWN_REQUEST", "shutdown of server requested"), id="shutdown-request"),
    pytest.param(kea("DHCP4_PACKET_RECEIVED", RECEIVED, LABEL, "DHCPLEASEQUERY", "10", "192.0.2.1",
                     "192.0.2.2", "eth0"), id="packet-received-other-type"),
    pytest.param(f"DHCP4_LEASE_ALLOC {LABEL}: lease 192.0.2.10 has been alloc", id="lease-truncated"),
    pytest.param("DHCP4_LEASE_ALLOC", id="lease-id-only"),
    pytest.param(f"DHCP4_LEASE_ALLOC {LABEL}", id="lease-label-only"),
    pytest.param(f"DHCP4_LEASE_ALLOC lease {IP} has been allocated for 3600 seconds", id="lease-without-label"),
    pytest.param("DHCP4_STARTED Kea DHCPv4 server version started", id="lifecycle-without-version"),
    pytest.param(f" HA_STATE_TRANSITION {TRANSITION_OLD}", id="leading-space"),
    pytest.param("HA_STATE_TRANSITION\tserver transitions", id="tab-after-id"),
    pytest.param("HA_", id="ha-prefix-only"),
    pytest.param("HA_lowercase text", id="ha-lowercase-id"),
    pytest.param("ha_state_transition server transitions from WAITING to SYNCING state", id="lowercase-id"),
]


@pytest.mark.parametrize("line", OTHER_LINES)
def test_other(line: str) -> None:
    assert parse_kea(line) == KeaOther(message=line)


@pytest.mark.parametrize("tail", ["\t", "\r", "  ", "\n"])
def test_trailing_whitespace_is_ignored(tail: str) -> None:
    line = kea("HA_SYNC_SUCCESSFUL", "%1: lease database synchronization with %2 completed successfully in %3",
               SELF, PEER, "1.234 s")
    assert parse_kea(line + tail) == parse_kea(line)


MEGABYTE = 1 << 20


@pytest.mark.parametrize(
    "line",
    [
        pytest.param("A" * MEGABYTE, id="one-word"),
        pytest.param("HA_STATE_TRANSITION " + "x: " * (MEGABYTE // 3), id="ha-colons"),
        pytest.param("HA_HEARTBEAT_FAILED heartbeat to " + "(" * MEGABYTE, id="ha-parens"),
        pytest.param("HA_LEASE_UPDATE_FAILED " + ", tid=0x1: " * (MEGABYTE // 11), id="ha-labels"),
        pytest.param("HA_LEASE_UPDATE_FAILED lease update " + ", tid=0x1 sent " * (MEGABYTE // 15), id="ha-sent"),
        pytest.param("HA_LOCAL_DHCP_DISABLE local DHCP service is disabled while the "
                     + " is in the " * (MEGABYTE // 11), id="ha-is-in"),
        pytest.param("DHCP4_DECLINE_LEASE Received DHCPDECLINE for addr 192.0.2.10 from client "
                     + ". The lease" * (MEGABYTE // 11), id="decline-repeats"),
        pytest.param(f"DHCP4_LEASE_ALLOC {LABEL}: " + " " * MEGABYTE + "x", id="lease-spaces"),
        pytest.param(f"ALLOC_ENGINE_V4_ALLOC_FAIL_SHARED_NETWORK {LABEL}: failed to allocate an IPv4 address"
                     " in the shared network " + "n: " * (MEGABYTE // 3), id="shared-network-colons"),
    ],
)
def test_megabyte_lines(line: str) -> None:
    assert isinstance(parse_kea(line), Payload)


# --- properties ---------------------------------------------------------------


def _valid_lines() -> list[str]:
    lines = [p.values[0] for p in (*_transition_cases(), *HA_CASES)]
    lines += [kea(m, t, *a) for m, t, a in (p.values for p in PEER_CASES)]
    lines += [kea(m, t, LABEL, *a) for m, t, a, _ in (p.values for p in LEASE_CASES)]
    lines.append(kea("DHCP4_DECLINE_LEASE", DECLINE, IP, LABEL, "86400"))
    return lines


VALID_LINES = _valid_lines()


def test_valid_lines_are_recognised() -> None:
    assert not [line for line in VALID_LINES if isinstance(parse_kea(line), KeaOther)]


def _check(line: str) -> None:
    payload = parse_kea(line)
    assert isinstance(payload, Payload)
    if isinstance(payload, KeaOther):
        assert payload.message == line


@given(st.text())
def test_never_raises_on_any_text(line: str) -> None:
    _check(line)


@given(st.sampled_from(sorted({line.partition(" ")[0] for line in VALID_LINES})), st.text())
def test_never_raises_after_a_known_id(msgid: str, text: str) -> None:
    _check(f"{msgid} {text}")


@st.composite
def mutated_lines(draw: st.DrawFn) -> str:
    chars = list(draw(st.sampled_from(VALID_LINES)))
    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        position = draw(st.integers(min_value=0, max_value=len(chars)))
        if draw(st.booleans()) and position < len(chars):
            del chars[position]
        else:
            chars.insert(position, draw(st.sampled_from(" :,.()[]-_xX0\t\n") | st.characters()))
    return "".join(chars)


@settings(max_examples=500)
@given(mutated_lines())
def test_never_raises_on_mutated_valid_lines(line: str) -> None:
    _check(line)
