"""`pairwatch analyze` output: the readable table (bands, incidents, diagnoses) and the JSON lines."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

import pytest

from collector.cli import main
from collector.config import parse_config
from collector.correlator import Correlator
from collector.domain import Incident
from collector.replay import Replay, replay
from collector.report import WIDTH, diagnose, duration, pair_reports, render_table
from parsers import ParseOptions
from tests.collector.scenario import OPTIONS, REL, ack, at, every, line, run
from tests.collector.test_correlator_dhcpd import (
    A,
    B,
    normal_pair,
    partitioned,
    restart_empty,
)
from tests.collector.test_correlator_kea import partner_death, started, transition

MCLT_60 = {"limits": {"mclt": 60}}


def recover_wait_stuck() -> list[str]:
    """restart_empty, but dhcp2's recover-wait timer never fires (log-messages.md 4.3)."""
    lines = restart_empty("communications-interrupted")
    cut = next(i for i, text in enumerate(lines) if "recover-wait to recover-done" in text)
    lines = lines[:cut] + every("10:04:00", "10:10:00", 30, lambda c, i: line(
        c, B, f"DHCPDISCOVER from 00:00:5e:00:53:{i:02x} via eth0: not responding (recover wait)"))
    return lines + every("10:04:00", "10:10:00", 60, lambda c, i: ack(c, A, i))


def partner_dead_for_days() -> list[str]:
    """dhcp2 dies; dhcp1 sits in communications-interrupted for two days until its own share runs out."""
    return normal_pair() + [ack("08:00:30", B, 1)] + [
        line("10:00:01", A, f"peer {REL}: disconnected"),
        line("10:00:01", A, f"failover peer {REL}: I move from normal to communications-interrupted"),
    ] + every("10:05:00", "+2d 10:00:00", 3600, lambda c, i: ack(c, A, i)) + [
        line("+2d 10:00:01", A, "DHCPDISCOVER from 00:00:5e:00:53:99 via eth0: peer holds all free leases"),
    ]


def split_brain() -> list[str]:
    return normal_pair() + partitioned() + [
        line("10:05:00", A, f"failover peer {REL}: I move from communications-interrupted to partner-down"),
        line("10:05:02", B, f"failover peer {REL}: I move from communications-interrupted to partner-down"),
    ] + every("10:05:10", "10:20:00", 60, lambda c, i: ack(c, (A, B)[i % 2], i))


def pool_exhaustion() -> list[str]:
    return normal_pair() + every("08:01:00", "10:00:00", 120, lambda c, i: ack(c, (A, B)[i % 2], 1000 + i)) + [
        line("09:10:00", A, "DHCPDISCOVER from 00:00:5e:00:53:01 via eth0: network 192.0.2.0/24: no free leases"),
        line("09:30:00", B, "balanced pool 77aa 198.51.100.0/24  total 100  free 50  backup 0  lts 25  max-misbal 15"),
        line("09:40:00", B, "balanced pool 77aa 198.51.100.0/24  total 100  free 25  backup 25  lts 0  max-misbal 15"),
    ]


LONG_A = "dhcp-primary-01.frankfurt-datacenter-east.infrastructure.example.net"
LONG_B = "dhcp-" + "secondary-" * 11 + "02.example.net"  # 129 characters
LONG_REL = "campus-failover-" + "x" * 48


def long_names() -> list[str]:
    """Long host and relationship names."""
    def say(clock: str, host: str, text: str) -> str:
        return line(clock, host, text.replace(REL, LONG_REL))

    lines = [say("08:00:00", h, f"failover peer {REL}: I move from startup to normal") for h in (LONG_A, LONG_B)]
    lines += [say("08:00:00", h, f"failover peer {REL}: peer moves from startup to normal") for h in (LONG_A, LONG_B)]
    lines += [ack("08:00:30", LONG_B)]
    lines += [say("10:00:01", LONG_A, f"failover peer {REL}: I move from normal to communications-interrupted")]
    lines += every("10:05:00", "11:00:00", 300, lambda c, i: ack(c, LONG_A, i))
    lines += [say("11:00:30", LONG_A, f"failover peer {REL}: I move from communications-interrupted to partner-down")]
    lines += [line("11:01:00", LONG_A, "DHCPDISCOVER from 00:00:5e:00:53:77 via eth0: peer holds all free leases")]
    return lines


WIDE_NAME = "\u5ba2\u6237\u7aef\u7535\u8111\u540d\u79f0\u975e\u5e38\u957f\u7684\u540d\u5b57\u4e00\u4e8c\u4e09\u56db"


def wide_evidence() -> list[str]:
    """dhcp2's last line (the evidence of its silence) has a wide client name and a tab."""
    return normal_pair() + [
        line("08:00:30", B, f"DHCPINFORM from 192.0.2.9\t({WIDE_NAME}{WIDE_NAME})"),
    ] + every("08:05:00", "09:00:00", 300, lambda c, i: ack(c, A, i))


SCENARIOS = {
    "restart_empty": (lambda: restart_empty("communications-interrupted"), MCLT_60),
    "recover_wait_stuck": (recover_wait_stuck, {"limits": {"mclt": 60, "recover_wait_grace": 60}}),
    "partner_dead_for_days": (partner_dead_for_days, None),
    "split_brain": (split_brain, None),
    "pool_exhaustion": (pool_exhaustion, None),
    "kea_partner_death": (lambda: partner_death("load-balancing", "kea-a", "kea-b"), None),
    "long_names": (long_names, None),
    "wide_evidence": (wide_evidence, None),
}


def table(name: str) -> str:
    make, config = SCENARIOS[name]
    return render_table(run(make(), config))


def incident_block(text: str, condition: str) -> str:
    """The lines of the first incident of `condition`, up to the next incident or pair."""
    lines = text.splitlines()
    first = next(n for n, t in enumerate(lines) if t.startswith(f"  * {condition}:"))
    rest = next((n for n in range(first + 1, len(lines)) if not lines[n].startswith("    ")), len(lines))
    return "\n".join(lines[first:rest])


def prose(block: str) -> str:
    """An incident's diagnosis, unwrapped (the lines after the time span, before the evidence)."""
    lines = block.splitlines()[2:]
    return " ".join(t.strip() for t in lines if not t.startswith("    |"))


def evidence(text: str) -> list[str]:
    """The evidence rows of a table or an incident block."""
    return [r for r in text.splitlines() if r.startswith("    |")]


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_line_fits_in_80_columns(name):
    text = table(name)
    assert text.endswith("\n")
    for row in text.split("\n"):
        assert len(row) <= WIDTH, row
        assert "\t" not in row


def test_long_names_wrap_and_evidence_keeps_its_words():
    text = table("long_names")
    rows = text.split("\n")
    assert evidence(incident_block(text, "communications_interrupted")) == [
        "    | 10:00:01.000 dhcp-primary-01  I move from normal to",
        "    |                               communications-interrupted",
        "    | 11:00:30.000 dhcp-primary-01  I move from communications-interrupted to",
        "    |                               partner-down",
    ]
    # a first label too long for its column is cut, not the message
    assert "    | 08:00:30.000 dhcp-secondary-second...  DHCPACK on 192.0.2.11 to" in rows
    assert LONG_A in text and LONG_REL in text  # short enough to stay whole
    assert not any(LONG_B in r for r in rows)  # too long for a line: broken, not lost
    assert f"  {LONG_B[:78]}\n    {LONG_B[78:]}\n" in text


def test_wide_characters_count_two_columns():
    rows = evidence(table("wide_evidence"))
    assert rows[0] == "    | 08:00:30.000 dhcp2  DHCPINFORM from 192.0.2.9"
    (wide,) = [r for r in rows if WIDE_NAME[0] in r]
    assert wide.startswith(f"    |                     ({WIDE_NAME[0]}") and wide.endswith("...")
    assert len(wide) + sum(1 for c in wide if "\u4e00" <= c <= "\u9fff") <= WIDTH


def test_bands_and_durations_of_the_restart_scenario():
    rows = table("restart_empty").splitlines()
    assert rows[:18] == [
        f"pair {REL}: dhcp1, dhcp2",
        "  dhcp1",
        "    2025-03-03 08:00:00  normal                      2h 0m",
        "               10:00:01  communications-interrupted  3m 1s",
        "               10:03:02  partner-down                59s",
        "               10:04:01  normal                      59s+",
        "    sees its partner: 2025-03-03 08:00:00 normal, 10:03:02 recover, 10:03:03",
        "      recover-wait, 10:04:01 recover-done, 10:04:01 normal",
        "  dhcp2",
        "    2025-03-03 08:00:00  normal                      2h 3m",
        "               10:03:00  startup                     2s",
        "               10:03:02  recover                     1s",
        "               10:03:03  recover-wait                58s",
        "               10:04:01  recover-done                0s",
        "               10:04:01  normal                      59s+",
        "    sees its partner: 2025-03-03 08:00:00 normal, 10:03:02 partner-down,",
        "      10:04:01 normal",
        "  incidents:",
    ]
    assert "  * partner_down: dhcp1" in rows
    assert "    2025-03-03 10:03:02 -> 10:04:01, 59s" in rows
    assert rows[-1] == "1 pair, 2 incidents, 0 open (31 lines read)"


def test_recover_wait_past_mclt_diagnosis_names_the_restart_the_state_and_its_duration():
    block = incident_block(table("recover_wait_stuck"), "stuck")
    assert block.splitlines()[:2] == ["  * stuck: dhcp2", "    2025-03-03 10:05:03 -> open, 4m 57s+"]
    text = prose(block)
    assert text.startswith("dhcp2 restarted with an empty lease file at 10:03:00 and has been in recover-wait "
                           "for 6m 57s+, past MCLT plus grace")
    assert "dhcp1 served clients alone meanwhile, in partner-down" in text
    assert block.splitlines()[-1] == "    | 10:03:03.000 dhcp2  I move from recover to recover-wait"


def test_diagnose_is_a_function_of_the_incident_and_the_bands():
    result = run(recover_wait_stuck(), {"limits": {"mclt": 60, "recover_wait_grace": 60}})
    (report,) = pair_reports(result)
    stuck = next(i for i in report.incidents if i.condition == "stuck")
    text = diagnose(stuck, report.bands)
    assert "restarted with an empty lease file" in text and "recover-wait for 6m 57s+" in text
    # a later end of input lengthens the durations, nothing else
    later = diagnose(stuck, report.bands, end=stuck.start + 300)
    assert "recover-wait for 7m 0s+" in later
    assert later.replace("7m 0s+", "6m 57s+") == text


def test_long_communications_interrupted_says_what_to_do():
    text = table("partner_dead_for_days")
    assert text.splitlines()[5:8] == [
        "  dhcp2",
        "    2025-03-03 08:00:00  normal                      2d 2h+",
        "    silent (server_silent from 10:10:01): the state above is its last word",
    ]
    block = incident_block(text, "communications_interrupted")
    assert block.splitlines()[1] == "    2025-03-03 10:00:01 -> open, 2d 0h+"
    assert prose(block) == (
        "dhcp1 lost contact with dhcp2 at 10:00:01 and has been serving only its own free leases for 2d 0h+; "
        "dhcp2 fell silent (server_silent from 10:10:01). Auto-partner-down is off or longer: if dhcp2 is "
        "really down, put dhcp1 in partner-down.")
    pool = prose(incident_block(text, "pool_exhausted"))
    assert pool.startswith("Peer holds all free leases: dhcp1 has used up its own share; dhcp2 holds the rest "
                           "(unreachable while in communications-interrupted).")
    assert text.splitlines()[-1] == "1 pair, 3 incidents, 3 open (57 lines read)"


def test_open_incidents_are_printed_as_open_and_closed_ones_with_their_end():
    text = table("partner_dead_for_days")
    spans = [r for r in text.splitlines() if " -> " in r]
    assert spans == [
        "    2025-03-03 10:00:01 -> open, 2d 0h+",
        "    2025-03-03 10:10:01 -> open, 1d 23h+",
        "    2025-03-05 10:00:01 -> open, 0s+",
    ]
    closed = table("split_brain")
    assert "    2025-03-03 10:00:08 -> 10:05:02, 4m 54s" in closed.splitlines()


def test_date_is_shown_on_the_first_band_and_when_the_day_changes():
    lines = normal_pair("23:59:00") + [
        line("+1d 00:10:00", A, f"failover peer {REL}: I move from normal to communications-interrupted"),
        line("+1d 00:20:00", A, f"failover peer {REL}: I move from communications-interrupted to normal"),
    ]
    rows = render_table(run(lines)).splitlines()
    assert rows[2:5] == [
        "    2025-03-03 23:59:00  normal                      11m 0s",
        "    2025-03-04 00:10:00  communications-interrupted  10m 0s",
        "               00:20:00  normal                      0s+",
    ]
    assert "    2025-03-04 00:10:00 -> 00:20:00, 10m 0s" in rows


def test_split_brain_diagnosis():
    text = prose(incident_block(table("split_brain"), "split_brain"))
    assert text.startswith("Both servers in partner-down since 10:05:02 (")
    assert "each hands out the whole pool, so an address can be given twice until they talk again" in text
    assert text.endswith("Restore the failover link now, or stop one of them.")


def test_not_serving_quotes_the_refusal():
    lines = normal_pair() + every("08:01:00", "08:59:00", 120, lambda c, i: ack(c, (A, B)[i % 2], i))
    lines += [line("09:00:00", h, f"failover peer {REL}: I move from normal to recover-wait") for h in (A, B)]
    lines += every("09:00:10", "09:03:00", 10, lambda c, i: line(
        c, (A, B)[i % 2], f"DHCPDISCOVER from 00:00:5e:00:53:{i:02x} via eth0: not responding (recover wait)"))
    text = prose(incident_block(render_table(run(lines)), "not_serving"))
    assert text.startswith("No server of the pair answered a client from 09:00:20 on (2m 40s+); they refused "
                           "with 'not responding (recover wait)'; dhcp1 and dhcp2 are in recover-wait.")


def test_server_silent_and_pool_counts():
    silent = prose(incident_block(table("partner_dead_for_days"), "server_silent"))
    assert silent.startswith("dhcp2 has been silent past the limit since 10:10:01 (1d 23h+; its last line is below) "
                             "while dhcp1 kept logging: dhcp2 is down, or its syslog forwarding is.")
    text = table("pool_exhaustion")
    assert prose(incident_block(text, "pool_exhausted")) == "No free leases in 192.0.2.0/24."
    blocks = text.split("  * pool_exhausted: ")
    assert prose("  * " + blocks[2]).startswith(
        "dhcp2 reports 198.51.100.0/24: no free lease left for the secondary (free 50 of 100).")


def test_kea_states_and_a_provisional_pair_folded_into_the_real_one():
    text = table("kea_partner_death")
    assert [r for r in text.splitlines() if r.startswith("pair ")] == ["pair kea-a+kea-b: kea-a, kea-b"]
    assert "    2025-03-03 08:00:01  syncing         1s" in text.splitlines()
    assert "serving the partner's scopes too; kea-b fell silent" in prose(incident_block(text, "partner_down"))
    skew = started() + [
        line("10:59:59", "kea-a", "WARN  [kea-dhcp4.ha-hooks.1] HA_HIGH_CLOCK_SKEW_CAUSED_TERMINATION kea-a: "
                                  "clock skew too high", "kea-dhcp4"),
        transition("11:00:00", "kea-a", "load-balancing", "terminated", "load-balancing"),
    ]
    stuck = prose(incident_block(render_table(run(skew)), "stuck"))
    assert stuck.startswith("kea-a went to terminated at 11:00:00")
    assert stuck.endswith("needs a restart after fixing the cause (clock skew, rejected lease updates).")


def test_dead_end_states_say_they_never_end_by_themselves():
    lines = normal_pair() + [
        line("10:00:00", A, f"failover peer {REL}: peer moves from normal to potential-conflict"),
        line("10:00:00", A, f"Peer {REL}: Invalid state transition from normal to potential-conflict"),
        line("10:00:00", A, f"failover peer {REL}: I move from normal to shutdown"),
        ack("10:05:00", B, 1),
    ]
    text = prose(incident_block(render_table(run(lines)), "stuck"))
    assert text.startswith("dhcp1 entered shutdown at 10:00:00 and has been there for")
    assert "dhcpd never leaves this state by itself" in text


def test_no_pairs():
    result = run([line("08:00:00", A, "Server starting service."), "no header at all"])
    assert render_table(result) == (
        "no failover/HA events found in 2 lines read (1 without a timestamp or host)\n"
        "0 pairs, 0 incidents, 0 open (2 lines read)\n")
    assert render_table(run([])).splitlines()[0] == "no failover/HA events found in 0 lines read"


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (58, "58s"), (59.9, "59s"), (60, "1m 0s"), (843, "14m 3s"), (3600, "1h 0m"),
    (8040, "2h 14m"), (86399, "23h 59m"), (86400, "1d 0h"), (266400, "3d 2h"),
])
def test_duration(seconds, text):
    assert duration(seconds) == text
    assert duration(seconds, open=True) == text + "+"


def test_cli_json_lines_follow_the_contract(tmp_path, capsys):
    log = tmp_path / "pair.log"
    log.write_text("\n".join(recover_wait_stuck()) + "\n")
    config = tmp_path / "pairwatch.toml"
    config.write_text("[limits]\nmclt = 60\nrecover_wait_grace = 60\n")
    assert main(["analyze", "--json", "--reference", "2025-03-10T00:00:00Z", "--config", str(config), str(log)]) == 0
    rows = [json.loads(r) for r in capsys.readouterr().out.splitlines()]
    states = [r for r in rows if r["type"] == "state"]
    incidents = [r for r in rows if r["type"] == "incident"]
    assert states and incidents and len(states) + len(incidents) == len(rows)
    assert all(list(r) == ["type", "ts", "pair", "server", "side", "state"] for r in states)
    assert all(list(r) == ["type", "condition", "pair", "servers", "start", "end", "evidence"] for r in incidents)
    instants = [r["ts"] if r["type"] == "state" else r["start"] for r in rows]
    assert all(t.endswith("Z") for t in instants)
    assert instants == sorted(instants)
    stuck = next(r for r in incidents if r["condition"] == "stuck")
    assert stuck == {
        "type": "incident", "condition": "stuck", "pair": REL, "servers": ["dhcp2"],
        "start": "2025-03-03T10:05:03Z", "end": None,
        "evidence": [line("10:03:03", B, f"failover peer {REL}: I move from recover to recover-wait")],
    }


def test_cli_table_is_render_table(tmp_path, capsys):
    log = tmp_path / "pair.log"
    log.write_text("\n".join(partner_dead_for_days()) + "\n")
    assert main(["analyze", "--reference", "2025-03-10T00:00:00Z", str(log)]) == 0
    assert capsys.readouterr().out == render_table(run(partner_dead_for_days()))


# --- evidence rows -------------------------------------------------------------------------

EDGE = "edge-pair"


def edge_excerpt() -> list[str]:
    """Issue 16's pair in rsyslog's file format (RSYSLOG_FileFormat: RFC 3339, microseconds):
    the link between edge1 and edge2 breaks at 18:54 and comes back after midnight."""
    def say(stamp: str, host: str, text: str) -> str:
        pid = {"edge1": 24533, "edge2": 1187}[host]
        return f"2026-11-{stamp}+00:00 {host} dhcpd[{pid}]: {text}"

    return [
        say("25T18:40:02.117204", "edge1", f"failover peer {EDGE}: I move from startup to normal"),
        say("25T18:40:02.118020", "edge1", f"failover peer {EDGE}: peer moves from startup to normal"),
        say("25T18:40:02.131877", "edge2", f"failover peer {EDGE}: I move from startup to normal"),
        say("25T18:40:02.132410", "edge2", f"failover peer {EDGE}: peer moves from startup to normal"),
        say("25T18:41:10.513002", "edge2", "DHCPACK on 198.51.100.23 to 40:61:86:e3:f7:7f via eth0"),
        say("25T18:54:23.218802", "edge1", f"peer {EDGE}: disconnected"),
        say("25T18:54:23.218921", "edge1", f"failover peer {EDGE}: I move from normal to communications-interrupted"),
        say("25T18:54:23.301554", "edge2", f"peer {EDGE}: disconnected"),
        say("25T18:54:23.301687", "edge2", f"failover peer {EDGE}: I move from normal to communications-interrupted"),
        say("25T23:58:40.020311", "edge1", "DHCPACK on 198.51.100.40 to 40:61:86:e3:f7:80 via eth0"),
        say("25T23:59:59.870114", "edge2", "DHCPACK on 198.51.100.41 to 40:61:86:e3:f7:81 via eth0"),
        say("26T00:00:01.005377", "edge1", f"failover peer {EDGE}: I move from communications-interrupted to normal"),
        say("26T00:00:01.005912", "edge1", f"failover peer {EDGE}: peer moves from communications-interrupted to normal"),
        say("26T00:00:01.007040", "edge2", f"failover peer {EDGE}: I move from communications-interrupted to normal"),
        say("26T00:00:01.007342", "edge2", f"failover peer {EDGE}: peer moves from communications-interrupted to normal"),
        say("26T00:00:01.009115", "edge1", f"failover peer {EDGE}: Both servers normal"),
    ]


def test_evidence_rows_are_time_host_and_the_words_that_matter():
    """Milliseconds, the date only off the incident's day, the host, and the message without
    the tag and the `failover peer NAME:` prefix, so the state names stay in the 80 columns."""
    block = incident_block(render_table(run(edge_excerpt())), "communications_interrupted")
    assert block.splitlines()[1] == "    2026-11-25 18:54:23 -> 2026-11-26 00:00:01, 5h 5m"
    assert evidence(block) == [
        "    |       18:54:23.218 edge1  I move from normal to communications-interrupted",
        "    | 11-26 00:00:01.007 edge2  I move from communications-interrupted to normal",
    ]


def test_evidence_of_kea_lines_drops_the_severity_and_the_logger():
    block = incident_block(table("kea_partner_death"), "communications_interrupted")
    rows = evidence(block)
    assert rows[0].startswith("    | 10:00:06.000 kea-a  HA_")
    assert not any("[kea-dhcp4." in r or "WARN" in r or "kea-dhcp4:" in r for r in rows)


def test_a_long_message_wraps_under_itself_instead_of_being_cut():
    block = incident_block(table("pool_exhaustion"), "pool_exhausted")
    assert evidence(block) == [
        "    | 09:10:00.000 dhcp1  DHCPDISCOVER from 00:00:5e:00:53:01 via eth0: network",
        "    |                     192.0.2.0/24: no free leases",
    ]


def test_evidence_times_are_utc_like_the_rest_of_the_report():
    """RFC 3164 stamps carry no zone: analyze --tz says which; the report prints UTC."""
    berlin = ZoneInfo("Europe/Berlin")
    result = replay([(restart_empty("communications-interrupted"), ParseOptions(reference=OPTIONS.reference, tz=berlin))],
                    Correlator(parse_config(MCLT_60)))
    block = incident_block(render_table(result, tz=berlin), "partner_down")
    assert block.splitlines()[1].startswith("    2025-03-03 09:03:02 -> 09:04:01")
    assert evidence(block)[0] == "    | 09:03:02.000 dhcp1  I move from communications-interrupted to partner-down"


def test_evidence_that_cannot_be_parsed_keeps_the_raw_line():
    raw = "no header at all: " + "x" * 100
    incident = Incident(condition="server_silent", pair="p", servers=("dhcp1",), start=at("08:00:00"),
                        evidence=[raw, line("08:00:00", A, "exiting.")])
    text = render_table(Replay(states=[], incidents=[incident], lines=2, unplaced=0, end=at("09:00:00")))
    assert evidence(text) == ["    | " + raw[:71] + "...", "    | 08:00:00.000 dhcp1  exiting."]
