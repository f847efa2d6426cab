"""Header decoding: every variant of log-messages.md section 11, one table row each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from parsers.syslog import HeaderDecoder, ParseOptions, decode

REF = ParseOptions(reference=datetime(2025, 3, 5, 12, 0, tzinfo=UTC))
T = datetime(2025, 3, 3, 8, 15, 2, tzinfo=UTC)
MS = T.replace(microsecond=76000)

# (line, ts, host, program, pid, facility, severity, msgid, structured_data, message)
CASES = [
    pytest.param(
        "Mar  3 08:15:02 dhcp-a dhcpd: DHCPDISCOVER from 00:00:5e:00:53:01 via eth0",
        T, "dhcp-a", "dhcpd", None, None, None, None, None, "DHCPDISCOVER from 00:00:5e:00:53:01 via eth0",
        id="rfc3164-padded-day",
    ),
    pytest.param(
        "Mar 3 08:15:02 dhcp-a dhcpd: DHCPDISCOVER from 00:00:5e:00:53:01 via eth0",
        T, "dhcp-a", "dhcpd", None, None, None, None, None, "DHCPDISCOVER from 00:00:5e:00:53:01 via eth0",
        id="rfc3164-collapsed-day",
    ),
    pytest.param(
        "Mar  3 08:15:02 dhcp-a.example.net dhcpd[1234]: failover peer failover-ab: I move from recover to startup",
        T, "dhcp-a.example.net", "dhcpd", 1234, None, None, None, None, "failover peer failover-ab: I move from recover to startup",
        id="rfc3164-pid-fqdn",
    ),
    pytest.param(
        "Mar  3 08:15:02 dhcp-a dhcpd[4294967296]: DHCPDISCOVER from 00:00:5e:00:53:01 via eth0",
        T, "dhcp-a", "dhcpd", None, None, None, None, None, "DHCPDISCOVER from 00:00:5e:00:53:01 via eth0",
        id="rfc3164-pid-beyond-32-bits",
    ),
    pytest.param(
        "Mar  3 08:15:02 dhcpd: [ID 123456 local5.error] uid lease 192.0.2.51 for client 00:00:5e:00:53:01 is duplicate on vlan10",
        T, None, "dhcpd", None, 21, 3, "123456", None, "uid lease 192.0.2.51 for client 00:00:5e:00:53:01 is duplicate on vlan10",
        id="solaris-no-host-id-tag",
    ),
    pytest.param(
        "<190>Mar  3 08:15:02 dhcpd: DHCPACK on 192.0.2.10 to 00:00:5e:00:53:01 via igb1",
        T, None, "dhcpd", None, 23, 6, None, None, "DHCPACK on 192.0.2.10 to 00:00:5e:00:53:01 via igb1",
        id="pri-no-hostname",
    ),
    pytest.param(
        "<13>Mar  3 08:15:02 192.0.2.2 dhcpd: DHCPDISCOVER from 00:00:5e:00:53:02 via 198.51.100.1",
        T, "192.0.2.2", "dhcpd", None, 1, 5, None, None, "DHCPDISCOVER from 00:00:5e:00:53:02 via 198.51.100.1",
        id="pri-ip-as-hostname",
    ),
    pytest.param(
        "<30>Mar  3 08:15:02 2001:db8::2 dhcpd[7]: DHCPNAK on 192.0.2.9 to 00:00:5e:00:53:09 via eth0",
        T, "2001:db8::2", "dhcpd", 7, 3, 6, None, None, "DHCPNAK on 192.0.2.9 to 00:00:5e:00:53:09 via eth0",
        id="ipv6-as-hostname",
    ),
    pytest.param(
        "2025-03-03T08:15:02-05:00 dhcp-b dhcpd: DHCPRELEASE of 198.51.100.20 from 00:00:5e:00:53:03 (host-c) via eth0 (found)",
        T + timedelta(hours=5), "dhcp-b", "dhcpd", None, None, None, None, None,
        "DHCPRELEASE of 198.51.100.20 from 00:00:5e:00:53:03 (host-c) via eth0 (found)",
        id="rfc3339-offset",
    ),
    pytest.param(
        "2025-03-03T08:15:02.076000+00:00 dhcp-b dhcpd[99]: Server starting service.",
        MS, "dhcp-b", "dhcpd", 99, None, None, None, None, "Server starting service.",
        id="rsyslog-file-format",
    ),
    pytest.param(
        "<30>2025-03-03T08:15:02.076Z dhcp-b dhcpd[99]: Server starting service.",
        MS, "dhcp-b", "dhcpd", 99, 3, 6, None, None, "Server starting service.",
        id="rsyslog-forward-format",
    ),
    pytest.param(
        '<134>1 2025-03-03T08:15:02+00:00 kea-a.example.net kea-dhcp4 1234 - [meta sequenceId="42"] INFO  '
        "[kea-dhcp4.leases.0x8a1c3e000] DHCP4_LEASE_ALLOC [hwtype=1 00:00:5e:00:53:01], cid=[01:00:00:5e:00:53:01], "
        "tid=0x1a2b3c4d: lease 192.0.2.10 has been allocated for 3600 seconds",
        T, "kea-a.example.net", "kea-dhcp4", 1234, 16, 6, "DHCP4_LEASE_ALLOC", '[meta sequenceId="42"]',
        "DHCP4_LEASE_ALLOC [hwtype=1 00:00:5e:00:53:01], cid=[01:00:00:5e:00:53:01], tid=0x1a2b3c4d: "
        "lease 192.0.2.10 has been allocated for 3600 seconds",
        id="rfc5424-structured-data-kea",
    ),
    pytest.param(
        '<134>1 2025-03-03T08:15:02+00:00  kea-a.example.net kea-dhcp4 1234 - [meta sequenceId="43"] INFO  '
        "[kea-dhcp4.leases.0x8a1c3e000] DHCP4_LEASE_REUSE x",
        T, "kea-a.example.net", "kea-dhcp4", 1234, 16, 6, "DHCP4_LEASE_REUSE", '[meta sequenceId="43"]',
        "DHCP4_LEASE_REUSE x",
        id="rfc5424-two-spaces-before-host",
    ),
    pytest.param(
        "<30>1 2025-03-03T08:15:02.076Z dhcp-a dhcpd 321 - - peer failover-ab: disconnected",
        MS, "dhcp-a", "dhcpd", 321, 3, 6, None, None, "peer failover-ab: disconnected",
        id="rfc5424-nil-sd",
    ),
    pytest.param(
        "<30>1 - - - - - -",
        None, None, None, None, 3, 6, None, None, "",
        id="rfc5424-all-nil",
    ),
    pytest.param(
        '<30>1 2025-03-03T08:15:02Z dhcp-a dhcpd - ID47 [a@1 x="a\\]b"][b@2 y="2"] \ufeffexiting.',
        T, "dhcp-a", "dhcpd", None, 3, 6, "ID47", '[a@1 x="a\\]b"][b@2 y="2"]', "exiting.",
        id="rfc5424-escaped-sd-bom",
    ),
    pytest.param(
        "<190>Mar  3 08:15:02 dhcpd:DHCPREQUEST for 192.0.2.11 from 00:00:5e:00:53:04 via igb1",
        T, None, "dhcpd", None, 23, 6, None, None, "DHCPREQUEST for 192.0.2.11 from 00:00:5e:00:53:04 via igb1",
        id="tag-without-space",
    ),
    pytest.param(
        "Mar  3 08:16:10  dhcpd: last message repeated 4 times",
        T.replace(minute=16, second=10), None, "dhcpd", None, None, None, None, None, "last message repeated 4 times",
        id="repeat-empty-host",
    ),
    pytest.param(
        "failover peer failover-ab: I move from recover to startup",
        None, None, None, None, None, None, None, None, "failover peer failover-ab: I move from recover to startup",
        id="headerless-foreground",
    ),
    pytest.param(
        "dhcpd: DHCPDISCOVER from 00:00:5e:00:53:05 via eth0: peer holds all free leases",
        None, None, "dhcpd", None, None, None, None, None, "DHCPDISCOVER from 00:00:5e:00:53:05 via eth0: peer holds all free leases",
        id="headerless-tag-only",
    ),
    pytest.param(
        "failover: link startup timeout",
        None, None, None, None, None, None, None, None, "failover: link startup timeout",
        id="headerless-colon-is-not-a-tag",
    ),
    pytest.param(
        "Mar  3 08:15:02 kea-a kea-dhcp4[1234]: 2025-03-03 08:15:02.076 INFO  [kea-dhcp4.ha-hooks/1234.139887825118784] "
        "HA_STATE_TRANSITION kea-a: server transitions from WAITING to SYNCING state, partner state is READY",
        T, "kea-a", "kea-dhcp4", 1234, None, 6, "HA_STATE_TRANSITION", None,
        "HA_STATE_TRANSITION kea-a: server transitions from WAITING to SYNCING state, partner state is READY",
        id="journald-double-header",
    ),
    pytest.param(
        "gw # [   12.345678] kea-dhcp4[1234]: 2025-03-03 08:15:02.076 INFO  [kea-dhcp4.dhcpsrv/1234.281473000869920] "
        "DHCPSRV_CFGMGR_ADD_IFACE listening on interface eth0",
        MS, "gw", "kea-dhcp4", 1234, None, 6, "DHCPSRV_CFGMGR_ADD_IFACE", None,
        "DHCPSRV_CFGMGR_ADD_IFACE listening on interface eth0",
        id="serial-console",
    ),
    pytest.param(
        "2025-03-03 08:15:02.076 WARN  [kea-dhcp4.ha-hooks/1234] HA_HEARTBEAT_COMMUNICATIONS_FAILED failed to send "
        "heartbeat to kea-b (http://192.0.2.12:8000/): Connection refused",
        MS, None, "kea-dhcp4", 1234, None, 4, "HA_HEARTBEAT_COMMUNICATIONS_FAILED", None,
        "HA_HEARTBEAT_COMMUNICATIONS_FAILED failed to send heartbeat to kea-b (http://192.0.2.12:8000/): Connection refused",
        id="kea-pre-1.8-file-layout",
    ),
    pytest.param(
        "2025-03-03 08:15:02.076 INFO [kea-dhcp4.ha-hooks/1234] HA_LOCAL_DHCP_DISABLE local DHCP service is disabled "
        "while the kea-a is in the WAITING state",
        MS, None, "kea-dhcp4", 1234, None, 6, "HA_LOCAL_DHCP_DISABLE", None,
        "HA_LOCAL_DHCP_DISABLE local DHCP service is disabled while the kea-a is in the WAITING state",
        id="kea-collapsed-padding",
    ),
    pytest.param(
        "2025-03-03 08:15:02.076 INFO  [kea-dhcp4.ha-hooks/1234.139887825118784] HA_SERVICE_STARTED kea-a: started",
        MS, None, "kea-dhcp4", 1234, None, 6, "HA_SERVICE_STARTED", None, "HA_SERVICE_STARTED kea-a: started",
        id="kea-decimal-thread",
    ),
    pytest.param(
        "025-03-03 08:15:02.076 WARN  [kea-dhcp4.ha-hooks/1234.139887825118784] HA_COMMUNICATION_INTERRUPTED kea-a: x",
        MS, None, "kea-dhcp4", 1234, None, 4, "HA_COMMUNICATION_INTERRUPTED", None, "HA_COMMUNICATION_INTERRUPTED kea-a: x",
        id="kea-damaged-year",
    ),
    pytest.param(
        "Mar  3 08:15:02 kea-a kea-dhcp4[1234]: INFO  [kea-dhcp4.ha-hooks.139887825118784] HA_SYNC_START kea-a: x",
        T, "kea-a", "kea-dhcp4", 1234, None, 6, "HA_SYNC_START", None, "HA_SYNC_START kea-a: x",
        id="kea-syslog-layout",
    ),
    pytest.param(
        "Mar  3 08:15:02 kea-a kea-dhcp4[1234]: INFO  [kea-dhcp4.ha-hooks] HA_SYNC_START x",
        T, "kea-a", "kea-dhcp4", 1234, None, 6, "HA_SYNC_START", None, "HA_SYNC_START x",
        id="kea-pre-1.8-syslog-layout",
    ),
    pytest.param(
        "2025-03-03T08:15:02\tWarning\tkea-dhcp4\tWARN [kea-dhcp4.ha-hooks.0x8a1c3e000] HA_COMMUNICATION_INTERRUPTED "
        "communication with kea-b is interrupted\t",
        T, None, "kea-dhcp4", None, None, 4, "HA_COMMUNICATION_INTERRUPTED", None,
        "HA_COMMUNICATION_INTERRUPTED communication with kea-b is interrupted",
        id="opnsense-tab-export",
    ),
    pytest.param(
        "Informational kea-dhcp4 INFO [kea-dhcp4.ha-hooks.0x8a1c3e000] HA_LEASE_UPDATES_ENABLED kea-a: lease updates "
        "will be sent to the partner while in LOAD-BALANCING state",
        None, None, "kea-dhcp4", None, None, 6, "HA_LEASE_UPDATES_ENABLED", None,
        "HA_LEASE_UPDATES_ENABLED kea-a: lease updates will be sent to the partner while in LOAD-BALANCING state",
        id="opnsense-space-export",
    ),
    pytest.param(
        "Mar  3 08:15:02 fw-a kea-dhcp4[1234]: DHCP4_LEASE_REUSE [hwtype=1 00:00:5e:00:53:07], cid=[no info], "
        "tid=0x5e6f7a8b: lease 192.0.2.12 has been reused for 5400 seconds",
        T, "fw-a", "kea-dhcp4", 1234, None, None, "DHCP4_LEASE_REUSE", None,
        "DHCP4_LEASE_REUSE [hwtype=1 00:00:5e:00:53:07], cid=[no info], tid=0x5e6f7a8b: lease 192.0.2.12 has been "
        "reused for 5400 seconds",
        id="pfsense-lease-without-logger",
    ),
    pytest.param(
        "Mar  3 08:15:02 ##### dhcpd: uid lease 192.0.2.51 for client xx:xx:xx:xx:xx:xx is duplicate on eth0",
        T, "#####", "dhcpd", None, None, None, None, None, "uid lease 192.0.2.51 for client xx:xx:xx:xx:xx:xx is duplicate on eth0",
        id="obfuscated-host",
    ),
    pytest.param(
        "Mar  3 08:15:02 dhcp-a /usr/sbin/dhcpd[12]: exiting.",
        T, "dhcp-a", "dhcpd", 12, None, None, None, None, "exiting.",
        id="ident-with-path",
    ),
    pytest.param(
        "Mar  3 08:15:02 dhcp-a no tag here",
        T, "dhcp-a", None, None, None, None, None, None, "no tag here",
        id="no-tag",
    ),
    pytest.param("", None, None, None, None, None, None, None, None, "", id="empty"),
]


@pytest.mark.parametrize("line,ts,host,program,pid,facility,severity,msgid,sd,message", CASES)
def test_header_variants(line, ts, host, program, pid, facility, severity, msgid, sd, message):
    r = decode(line, REF)
    assert (r.ts, r.host, r.program, r.pid) == (ts, host, program, pid)
    assert (r.facility, r.severity, r.msgid, r.structured_data) == (facility, severity, msgid, sd)
    assert r.message == message


def test_yearless_date_in_the_future_is_last_year():
    opts = ParseOptions(reference=datetime(2026, 1, 2, 0, 30, tzinfo=UTC))
    assert decode("Dec 31 23:59:59 h dhcpd: x", opts).ts == datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)
    # a few days ahead (clock skew) stays in the reference year
    assert decode("Jan  4 00:00:00 h dhcpd: x", opts).ts == datetime(2026, 1, 4, tzinfo=UTC)
    assert decode("Jan  9 00:00:00 h dhcpd: x", opts).ts == datetime(2025, 1, 9, tzinfo=UTC)


def test_february_29_finds_a_leap_year():
    opts = ParseOptions(reference=datetime(2025, 3, 1, tzinfo=UTC))
    assert decode("Feb 29 10:00:00 h dhcpd: x", opts).ts == datetime(2024, 2, 29, 10, tzinfo=UTC)


def test_without_reference_a_yearless_line_has_no_ts():
    assert decode("Mar  3 08:15:02 h dhcpd: x").ts is None
    # but a line that carries its year and zone does
    assert decode("2025-03-03T08:15:02Z h dhcpd: x").ts == T


def test_zone_per_sender():
    opts = ParseOptions(
        reference=datetime(2025, 7, 5, tzinfo=UTC),
        tz=ZoneInfo("Europe/Berlin"),
        host_tz={"dhcp-ny": ZoneInfo("America/New_York")},
    )
    assert decode("Jul  3 08:15:02 dhcp-de dhcpd: x", opts).ts == datetime(2025, 7, 3, 6, 15, 2, tzinfo=UTC)
    assert decode("Jul  3 08:15:02 dhcp-ny dhcpd: x", opts).ts == datetime(2025, 7, 3, 12, 15, 2, tzinfo=UTC)
    # the Kea layout's own timestamp is the sender's wall time too
    kea = "2025-07-03 08:15:02.000 INFO  [kea-dhcp4.ha-hooks/1] HA_X y"
    assert decode(kea, opts).ts == datetime(2025, 7, 3, 6, 15, 2, tzinfo=UTC)


def test_the_stamp_memo_keeps_zones_per_sender_apart():
    """One decoder, one timestamp text, two senders in different zones: the memo of resolved
    stamps must not hand the first sender's instant to the second (nor lose it without zones)."""
    opts = ParseOptions(reference=datetime(2025, 7, 5, tzinfo=UTC), tz=ZoneInfo("Europe/Berlin"),
                        host_tz={"dhcp-ny": ZoneInfo("America/New_York")})
    decoder = HeaderDecoder(opts)
    for _ in range(2):
        assert decoder.decode("Jul  3 08:15:02 dhcp-de dhcpd: x").ts == datetime(2025, 7, 3, 6, 15, 2, tzinfo=UTC)
        assert decoder.decode("Jul  3 08:15:02 dhcp-ny dhcpd: x").ts == datetime(2025, 7, 3, 12, 15, 2, tzinfo=UTC)
    plain = HeaderDecoder(ParseOptions(reference=datetime(2025, 7, 5, tzinfo=UTC)))
    for host in ("a", "b", "a"):
        assert plain.decode(f"Jul  3 08:15:02 {host} dhcpd: x").ts == datetime(2025, 7, 3, 8, 15, 2, tzinfo=UTC)


def test_explicit_offsets_ignore_the_zone_option():
    opts = ParseOptions(reference=datetime(2025, 3, 5, tzinfo=UTC), tz=timezone(timedelta(hours=3)))
    assert decode("2025-03-03T08:15:02Z h dhcpd: x", opts).ts == T
