"""`pairwatch ingest`: old files through parse, correlate and store, into a real chdb store.

In-process tests use the session store (tests/conftest.py) with their own database; the
command-line tests run `pairwatch ingest` as a subprocess on a store directory of their own
(one embedded directory per process)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from collector.config import parse_config
from collector.correlator import Correlator
from collector.ingest import Ingested, Source, ingest, progress_line
from collector.replay import replay
from tests.collector.scenario import OPTIONS, REL, ack, at, line
from tests.conftest import OnThread
from tests.serving import ROOT, serving

CONFIG = parse_config({"pair": [{"name": "campus", "hosts": ["dhcp1", "dhcp2"], "relationship": REL}]})
KEEP = 3_650

DHCP1 = [
    line("08:00:00", "dhcp1", f"failover peer {REL}: I move from normal to communications-interrupted"),
    ack("08:00:05", "dhcp1", 1),
    line("08:10:00", "dhcp1", f"failover peer {REL}: I move from communications-interrupted to normal"),
]
DHCP2 = [
    line("08:00:01", "dhcp2", f"failover peer {REL}: I move from normal to communications-interrupted"),
    ack("08:00:05", "dhcp2", 2),
    line("08:10:01", "dhcp2", f"failover peer {REL}: I move from communications-interrupted to normal"),
]


def sources(*files: tuple[str, list[str]]) -> list[Source]:
    return [Source(name, list(lines), OPTIONS, at("00:00:00")) for name, lines in files]


def run_ingest(store: OnThread, store_thread: Any, srcs: list[Source], **kwargs: Any) -> Ingested:
    kwargs.setdefault("messages_ttl_days", KEEP)
    kwargs.setdefault("states_ttl_days", KEEP)
    return ingest(srcs, Correlator(CONFIG), store_thread, store.obj, **kwargs)


def stored(store: OnThread, store_admin: Any, column: str) -> list[Any]:
    return [r[0] for r in store_admin.query(f"SELECT {column} FROM {store.database}.messages ORDER BY received_at, id").result_rows]


@pytest.mark.integration
def test_two_files_merge_by_time_and_keep_what_the_replay_finds(store: OnThread, store_thread: Any, store_admin: Any) -> None:
    done = run_ingest(store, store_thread, sources(("/var/log/dhcp1.log", DHCP1), ("/var/log/dhcp2.log", DHCP2)),
                      batch_rows=2)
    assert (done.lines, done.stored, done.expired) == (6, 6, 0)

    rows = store.timeline(limit=100)
    assert [r["message"] for r in rows] == [
        DHCP1[0].split(": ", 1)[1], DHCP2[0].split(": ", 1)[1],
        DHCP1[1].split(": ", 1)[1], DHCP2[1].split(": ", 1)[1],  # same second: file order
        DHCP1[2].split(": ", 1)[1], DHCP2[2].split(": ", 1)[1],
    ]
    assert [r["received_at"] for r in rows] == [r["ts"] for r in rows]  # stored at the lines' own time
    assert set(stored(store, store_admin, "transport")) == {"file"}
    assert stored(store, store_admin, "sender")[:2] == ["/var/log/dhcp1.log", "/var/log/dhcp2.log"]

    expected = replay([(DHCP1, OPTIONS), (DHCP2, OPTIONS)], Correlator(CONFIG))
    got = store.incidents()
    assert [(i["condition"], i["start"], i["end"]) for i in got] == [
        (i.condition, datetime.fromtimestamp(i.start, UTC).isoformat().replace("+00:00", "Z"),
         datetime.fromtimestamp(i.end, UTC).isoformat().replace("+00:00", "Z") if i.end else None)
        for i in expected.incidents
    ]
    assert done.incidents == len(expected.incidents) >= 1 and done.still_open == 0
    assert done.states == len(expected.states)
    last = {(s["server"], s["side"]): s["state"] for s in store.last_states()}
    assert last[("dhcp1", "self")] == "normal" and last[("dhcp2", "self")] == "normal"


@pytest.mark.integration
def test_ingesting_the_same_input_again_stores_nothing_twice(store: OnThread, store_thread: Any) -> None:
    files = (("dhcp1.log", DHCP1), ("dhcp2.log", DHCP2))
    run_ingest(store, store_thread, sources(*files), batch_rows=4)
    run_ingest(store, store_thread, sources(*files), batch_rows=4)
    assert len(store.timeline(limit=100)) == 6
    assert len(store.incidents()) == len(replay([(DHCP1, OPTIONS), (DHCP2, OPTIONS)], Correlator(CONFIG)).incidents)


@pytest.mark.integration
def test_lines_older_than_the_retention_are_counted_not_stored(store: OnThread, store_thread: Any) -> None:
    now = at("+40d 08:05:00")  # DHCP1 is 40 days old, the +5d line 35
    done = run_ingest(store, store_thread, sources(("dhcp1.log", DHCP1 + [ack("+5d 00:00:00", "dhcp1", 3)])),
                      now=now, messages_ttl_days=39, states_ttl_days=KEEP)
    assert (done.lines, done.stored, done.expired) == (4, 1, 3)
    assert [r["message"] for r in store.timeline(limit=100)] == [ack("+5d 00:00:00", "dhcp1", 3).split(": ", 1)[1]]
    assert done.incidents >= 1  # states and incidents have their own (longer) retention


@pytest.mark.integration
def test_lines_without_time_or_host_are_stored_too(store: OnThread, store_thread: Any) -> None:
    lines = ["Internet Systems Consortium DHCP Server 4.4.3-P1", DHCP1[0], "    continued text"]
    done = run_ingest(store, store_thread, sources(("dhcpd.out", lines)))
    assert done.stored == 3
    rows = store.timeline(limit=100)
    assert rows[0]["received_at"] == "2025-03-03T00:00:00Z"  # before any timestamp: the file's mtime
    assert rows[0]["host"] is None
    assert [r["received_at"] for r in rows[1:]] == ["2025-03-03T08:00:00Z"] * 2  # the previous line's time


def test_progress_line() -> None:
    assert progress_line(50, 200, 1234567) == "ingest: 25% (1,234,567 lines)"
    assert progress_line(300, 200, 9) == "ingest: 100% (9 lines)"
    assert progress_line(10, None, 9) == "ingest: 9 lines"


# --- the command, as a subprocess --------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "collector.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.integration
def test_ingest_command_then_timeline_from_the_store(tmp_path: Path) -> None:
    one, two = tmp_path / "dhcp1.log", tmp_path / "dhcp2.log"
    one.write_text("\n".join(DHCP1) + "\n")
    two.write_text("\r\n".join(DHCP2) + "\r\n")
    store = f"embedded:{tmp_path / 'store'}"
    config = tmp_path / "pairwatch.toml"
    config.write_text(f'[store]\nmessages_ttl = "3650d"\nstates_ttl = "3650d"\nurl = "{store}"\n'
                      f'[[pair]]\nname = "campus"\nhosts = ["dhcp1", "dhcp2"]\nrelationship = "{REL}"\n')
    done = _cli("ingest", str(one), str(two), "--config", str(config), "--reference", "2025-03-10T00:00:00")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"ingested 6 lines from 2 inputs into {store}: 6 sent to the store, 0 older")
    assert done.stderr == ""  # no progress output when stderr is not a terminal

    shown = _cli("timeline", "--store", store, "--pair", "campus", "--json")
    assert shown.returncode == 0, shown.stderr
    assert len(shown.stdout.splitlines()) == 6


@pytest.mark.integration
def test_ingest_into_a_store_a_service_holds_says_so(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    log = tmp_path / "dhcp1.log"
    log.write_text(DHCP1[0] + "\n")
    with serving(tmp_path_factory) as serve:
        done = _cli("ingest", str(log), "--store", f"embedded:{serve.store}")
    assert done.returncode == 1
    (err,) = done.stderr.splitlines()
    assert err.startswith("pairwatch ingest: ") and "is `pairwatch serve` using it? stop it first" in err


@pytest.mark.integration
def test_ingest_missing_file_exits_1_naming_it(tmp_path: Path) -> None:
    done = _cli("ingest", str(tmp_path / "absent.log"), "--store", f"embedded:{tmp_path / 'store'}")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [f"pairwatch ingest: [Errno 2] No such file or directory: '{tmp_path / 'absent.log'}'"]


@pytest.mark.integration
def test_a_pairs_hosts_are_found_under_every_spelling(store: OnThread, store_thread: Any) -> None:
    """Servers are compared as `host_key` ("dhcp1"), lines keep the name as logged
    ("DHCP1.example.net"): the hosts table joins the two, so the pair's timeline has every line."""
    config = parse_config({"hosts": {"strip_domain": True},
                           "pair": [{"name": "campus", "hosts": ["dhcp1", "dhcp2"], "relationship": REL}]})
    one = [x.replace(" dhcp1 ", " DHCP1.example.net ") for x in DHCP1]
    two = [x.replace(" dhcp2 ", " dhcp2.example.net ") for x in DHCP2]
    ingest(sources(("a.log", one), ("b.log", two)), Correlator(config), store_thread, store.obj,
           messages_ttl_days=KEEP, states_ttl_days=KEEP, strip_domain=True)
    hosts = store.pair_hosts("campus")
    assert hosts == sorted(["DHCP1.example.net", "dhcp1", "dhcp2", "dhcp2.example.net"])
    assert len(store.timeline(hosts, limit=100)) == 6
