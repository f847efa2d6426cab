"""The store against a real embedded chdb engine (fixtures in conftest.py: one store
directory per process, a database per test, every call on the store thread)."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import clickhouse_connect.driver.exceptions as chx
import pytest

from collector import schema
from collector.config import ConfigError
from collector.correlator import Correlator
from collector.domain import Incident, IncidentClosed, IncidentOpened, StateChanged
from collector.rows import (
    FUTURE_SKEW_US,
    MessageIds,
    event_time_us,
    incident_id,
    incident_row,
    line_rows,
    state_row,
)
from collector.store import (
    EVENT_COLUMNS,
    INCIDENT_COLUMNS,
    INSERT_BLOCK_ROWS,
    MESSAGE_COLUMNS,
    STATE_COLUMNS,
    Store,
    TimelineCursor,
)
from collector.store_engine import ENGINE_NICE
from collector.store_errors import StoreError, StoreUnavailable, map_store_errors
from collector.store_thread import StoreThread
from collector.store_url import DEFAULT_STORE_URL, PASSWORD_ENV, StoreConfigError, StoreTarget, parse_store_url
from parsers import Event, ParseOptions, parse_line
from parsers.jsonl import payload_fields
from tests.conftest import KEEP_DAYS, OnThread

OPTIONS = ParseOptions(reference=datetime(2025, 3, 10, tzinfo=UTC))
T0 = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
REL = "failover-ab"


def syslog(host: str, second: int, message: str, program: str = "dhcpd") -> str:
    ts = T0 + timedelta(seconds=second)
    return f"{ts:%b} {ts.day:2d} {ts:%H:%M:%S} {host} {program}[812]: {message}"


LINES = [
    syslog("dhcp-a", 0, f"failover peer {REL}: I move from normal to communications-interrupted"),
    "<30>1 2025-03-03T10:00:01.250000Z dhcp-b dhcpd 99 - - DHCPDISCOVER from 00:00:5e:00:53:01 via eth0",
    syslog("dhcp-b", 2, f"failover peer {REL}: peer moves from normal to communications-interrupted"),
    syslog("kea-1", 3, "INFO  [kea-dhcp4.ha-hooks.1] HA_STATE_TRANSITION server1: server transitions from"
           " WAITING to SYNCING state, partner state is READY", program="kea-dhcp4"),
    "dhcpd:  no header, two leading spaces",
    syslog("dhcp-a", 5, "DHCPACK on 192.0.2.10 to 00:00:5e:00:53:02 via eth0"),
]


def ingest(store: Any, lines: list[str], received: list[datetime], ids: MessageIds, token: str = "b1") -> list[Event]:
    """Parse `lines` for real and store them (message and event rows) as one batch."""
    events = [parse_line(text, OPTIONS) for text in lines]
    messages, evs = [], []
    for text, event, at in zip(lines, events, received, strict=True):
        ident = ids()
        message, ev = line_rows(event, id=ident, received_at=at, raw=text, transport="udp", sender="192.0.2.1")
        messages.append(message)
        if ev is not None:
            evs.append(ev)
    assert store.insert("messages", messages, MESSAGE_COLUMNS, f"{token}-m") == len(lines)
    assert store.insert("events", evs, EVENT_COLUMNS, f"{token}-e") == len(evs)
    return events


def received(n: int, start: datetime = T0, step: float = 1.5) -> list[datetime]:
    return [start + timedelta(seconds=step * i, microseconds=7) for i in range(n)]


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def count(admin: Any, db: str, table: str) -> int:
    return admin.query(f"SELECT count() FROM {db}.{table}").result_rows[0][0]


# --- URLs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("embedded:/var/lib/pairwatch", StoreTarget(kind="embedded", path="/var/lib/pairwatch")),
        ("embedded:/var/lib/pairwatch/", StoreTarget(kind="embedded", path="/var/lib/pairwatch")),
        (
            "clickhouse://pw:secret@ch.example:8123/dhcp",
            StoreTarget(kind="clickhouse", host="ch.example", port=8123, username="pw", password="secret", database="dhcp"),
        ),
        (
            "clickhouses://pw:s%40c%3Aret@ch.example/dhcp",
            StoreTarget(kind="clickhouse", host="ch.example", port=8443, username="pw", password="s@c:ret", secure=True,
                        database="dhcp"),
        ),
        ("clickhouse://ch.example", StoreTarget(kind="clickhouse", host="ch.example", port=8123, database="pairwatch")),
        ("CLICKHOUSE://[2001:db8::1]:9000/", StoreTarget(kind="clickhouse", host="2001:db8::1", port=9000)),
    ],
    ids=["embedded-abs", "embedded-slash", "http-full", "tls-quoted-password", "http-defaults", "ipv6"],
)
def test_parse_store_url(url: str, expected: StoreTarget) -> None:
    assert parse_store_url(url, env={}) == expected


def test_embedded_paths_are_made_absolute(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert parse_store_url(DEFAULT_STORE_URL, env={}).path == str(tmp_path / "pairwatch-data")
    assert parse_store_url("embedded:data/../store", env={}).path == str(tmp_path / "store")


def test_password_from_environment_only_when_url_has_none() -> None:
    env = {PASSWORD_ENV: "from-env"}
    assert parse_store_url("clickhouse://pw@ch:8123/db", env=env).password == "from-env"
    assert parse_store_url("clickhouse://pw:in-url@ch:8123/db", env=env).password == "in-url"
    assert parse_store_url("clickhouse://pw@ch:8123/db", env={}).password == ""


def test_target_text_hides_the_password() -> None:
    target = parse_store_url("clickhouses://pw:secret@ch:8443/db", env={})
    assert str(target) == "clickhouses://pw@ch:8443/db"
    assert "secret" not in repr(target)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "empty store URL"),
        ("   ", "empty store URL"),
        ("./pairwatch-data", "unsupported store URL"),
        ("postgres://pw:secret@db/x", "unsupported store URL 'postgres'"),
        ("http://ch:8123/db", "unsupported store URL 'http'"),
        ("embedded:", "needs a directory path"),
        ("embedded://host/dir", "takes a path, not //HOST"),
        ("clickhouse:ch:8123/db", "must look like clickhouse://"),
        ("clickhouse://pw:secret@:8123/db", "no host"),
        ("clickhouse://pw:secret@ch:99999/db", "port is not a number"),
        ("clickhouse://pw:secret@ch:http/db", "port is not a number"),
        ("clickhouse://pw:secret@ch:0/db", "port is not a number"),
        ("clickhouse://pw:secret@ch/db/extra", "one database name"),
        ("clickhouse://pw:secret@ch/dhcp-logs", "not a plain identifier"),
        ("clickhouse://pw:secret@ch/db?secure=1", "no query string"),
    ],
)
def test_bad_store_urls(url: str, problem: str) -> None:
    with pytest.raises(StoreConfigError) as info:
        parse_store_url(url, env={})
    text = str(info.value)
    assert isinstance(info.value, ConfigError)  # the CLI turns ConfigError into exit 2
    assert text.startswith("--store: ")
    assert problem in text
    assert "\n" not in text
    assert "secret" not in text


# --- schema and migrations -------------------------------------------------------------------


def test_migrations_are_ordered_and_every_data_table_deduplicates() -> None:
    versions = [version for version, _, _ in schema.MIGRATIONS]
    assert versions == sorted(set(versions)) and versions[0] == 1
    ddl = "\n".join(step if isinstance(step, str) else step.statement
                    for _, _, steps in schema.MIGRATIONS for step in steps if not isinstance(step, schema.Refuse))
    for table in [*schema.TABLE_COLUMNS, "messages_v3"]:  # (messages_v3: messages since migration 3)
        block = ddl.split(f"{{db}}.{table}\n", 1)[1].split("CREATE TABLE", 1)[0]
        assert "non_replicated_deduplication_window = 1000" in block, table
        assert ("TTL " in block) == (table != "hosts"), table  # hosts: one row per spelling, kept
    assert schema.DEFAULT_MESSAGES_TTL_DAYS == 90 and schema.DEFAULT_STATES_TTL_DAYS == 400


@pytest.mark.parametrize("days", [0, -1, 1.5, True, "90", schema.MAX_TTL_DAYS + 1])
def test_render_rejects_bad_ttls(days: Any) -> None:
    with pytest.raises(ValueError, match="messages_ttl_days"):
        schema.render(schema.MIGRATIONS[0][2][0], "db", messages_ttl_days=days, states_ttl_days=400)


@pytest.mark.integration
def test_migrate_is_idempotent_and_records_versions(store: Any, store_admin: Any, store_database: str) -> None:
    latest = [version for version, _, _ in schema.MIGRATIONS]
    assert store.migrate() == latest  # the fixture migrated once already
    assert store.migrate() == latest
    rows = store_admin.query(f"SELECT version, name FROM {store_database}.schema_migrations ORDER BY version").result_rows
    assert rows == [(v, n) for v, n, _ in schema.MIGRATIONS]
    tables = store_admin.query(f"SHOW TABLES FROM {store_database}").result_rows
    assert sorted(t for (t,) in tables) == sorted([*schema.TABLE_COLUMNS, "schema_migrations"])


@pytest.mark.integration
def test_migration_6_widens_the_merges_of_a_plain_messages_table_only(
    store: Any, store_target: StoreTarget, store_thread: StoreThread, store_admin: Any, store_database: str
) -> None:
    create = store_admin.query(f"SHOW CREATE TABLE {store_database}.messages").result_rows[0][0]
    assert f"merge_selector_base = {schema.MERGE_SELECTOR_BASE}" in create
    (steps,) = [steps for version, _, steps in schema.MIGRATIONS if version == 6]
    for step in steps:  # run again: the setting is there, nothing to do
        store._run_step(step)
    assert store_admin.query(f"SHOW CREATE TABLE {store_database}.messages").result_rows[0][0] == create
    shared_db = f"{store_database}_shared"  # a cluster's table (here a ReplacingMergeTree) is the operator's
    store_admin.command(f"CREATE DATABASE {shared_db}")
    try:
        store_admin.command(f"CREATE TABLE {shared_db}.messages (id UInt64) ENGINE = ReplacingMergeTree ORDER BY id")
        shared = open_store(store_target, store_thread, shared_db)
        try:
            for step in steps:
                shared._run_step(step)
        finally:
            shared.close()
        shared_create = store_admin.query(f"SHOW CREATE TABLE {shared_db}.messages").result_rows[0][0]
        assert "merge_selector_base" not in shared_create
    finally:
        store_admin.command(f"DROP DATABASE IF EXISTS {shared_db} SYNC")


@pytest.mark.integration
def test_column_constants_match_the_created_tables(store: Any, store_admin: Any, store_database: str) -> None:
    for table, columns in schema.TABLE_COLUMNS.items():
        described = store_admin.query(f"DESCRIBE TABLE {store_database}.{table}").result_rows
        assert [(row[0], row[1]) for row in described] == list(columns), table
    assert (MESSAGE_COLUMNS, EVENT_COLUMNS, STATE_COLUMNS, INCIDENT_COLUMNS) == tuple(
        tuple(name for name, _ in schema.TABLE_COLUMNS[t]) for t in ("messages", "events", "states", "incidents")
    )


@pytest.mark.integration
def test_ttl_days_are_applied(
    store_target: StoreTarget, store_thread: StoreThread, store_database: str, store_admin: Any
) -> None:
    opened = store_thread.submit(Store.open, store_target, store_database, messages_ttl_days=7, states_ttl_days=30)
    store = OnThread(opened.result(), store_thread)
    store.migrate()
    store.close()
    create = store_admin.query(f"SHOW CREATE TABLE {store_database}.messages").result_rows[0][0]
    assert "toIntervalDay(7)" in create or "INTERVAL 7 DAY" in create
    create = store_admin.query(f"SHOW CREATE TABLE {store_database}.incidents").result_rows[0][0]
    assert "toIntervalDay(30)" in create or "INTERVAL 30 DAY" in create


# messages as schema version 2 left it (migration 1's DDL, its comment left out), to build a
# store the way the previous release did
V2_MESSAGES = """CREATE TABLE IF NOT EXISTS {db}.messages
(
    received_at     DateTime64(6, 'UTC'),
    id              UInt64,
    ts              Nullable(DateTime64(6, 'UTC')),
    host            LowCardinality(String),
    program         LowCardinality(String),
    pid             Nullable(UInt32),
    facility        Nullable(UInt8),
    severity        Nullable(UInt8),
    msgid           String,
    structured_data String,
    message         String,
    raw             String,
    transport       LowCardinality(String),
    sender          String,
    kind            LowCardinality(String)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (host, received_at, id)
TTL toDateTime(received_at) + INTERVAL {messages_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000"""
V2_TYPES = dict(schema.MESSAGE_COLUMNS)

# lines of two servers whose times say more than their arrival: dhcp-b's arrive last but
# happened between dhcp-a's; one header time lies two days ahead (a broken clock), one has none
FUTURE = (T0 + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
MIGRATED_LINES = [
    syslog("dhcp-a", 0, "DHCPACK on 192.0.2.1 to 00:00:5e:00:53:01 via eth0"),
    syslog("dhcp-a", 10, "DHCPACK on 192.0.2.3 to 00:00:5e:00:53:03 via eth0"),
    syslog("dhcp-a", 20, f"failover peer {REL}: I move from normal to communications-interrupted"),
    "dhcpd:  no header, two leading spaces",
    syslog("dhcp-b", 5, "DHCPACK on 192.0.2.2 to 00:00:5e:00:53:02 via eth0"),
    f"<30>1 {FUTURE} dhcp-b dhcpd 99 - - DHCPACK on 192.0.2.4 to 00:00:5e:00:53:04 via eth0",
    syslog("dhcp-b", 15, f"failover peer {REL}: peer moves from normal to communications-interrupted"),
]
MIGRATED_RECEIVED = [T0 + timedelta(seconds=s, microseconds=3) for s in (1, 11, 21, 22, 30, 30, 30)]


def version_2_rows(event: Event, **kw: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """The rows a version 2 collector stored: every line had an events row, a lease line's
    fields in it as JSON, and its message row had no lease columns."""
    message, ev = line_rows(event, **kw)
    if ev is None:
        fields = payload_fields(event)
        fields.pop("message", None)
        ev = (*message[:5], event.payload.kind, "", json.dumps(fields, separators=(",", ":"), ensure_ascii=False))
    return message[:-len(schema.LEASE_COLUMNS)], ev


def build_v2_store(admin: Any, db: str) -> list[tuple[tuple[Any, ...], tuple[Any, ...]]]:
    """A database at schema version 2 holding `MIGRATED_LINES`; their (messages, events) rows
    as the current code builds them."""
    ttl = {"messages_ttl_days": KEEP_DAYS, "states_ttl_days": KEEP_DAYS}
    assert [v for v, _, _ in schema.MIGRATIONS[:2]] == [1, 2]
    applied = [line for line in schema.MIGRATIONS[0][2][0].splitlines() if not line.startswith("--")]
    assert "\n".join(line for line in applied if not line.startswith("# ")) == V2_MESSAGES  # migration 1 unchanged
    for statement in schema.BOOTSTRAP:
        admin.command(schema.render(statement, db, **ttl))
    for version, name, steps in schema.MIGRATIONS[:2]:
        for step in steps:
            assert isinstance(step, str)
            admin.command(schema.render(V2_MESSAGES if "{db}.messages\n" in step else step, db, **ttl))
        admin.insert("schema_migrations", [[version, name, datetime.now(UTC)]], database=db,
                     column_names=("version", "name", "applied_at"))
    ids = MessageIds(start=500)
    rows = [version_2_rows(parse_line(t, OPTIONS), id=ids(), received_at=r, raw=t, transport="tcp")
            for t, r in zip(MIGRATED_LINES, MIGRATED_RECEIVED, strict=True)]
    old = MESSAGE_COLUMNS[:-len(schema.LEASE_COLUMNS) - 1]
    assert MESSAGE_COLUMNS[len(old)] == "at"
    admin.insert("messages", [m[:len(old)] for m, _ in rows], database=db, column_names=old,
                 column_type_names=[V2_TYPES[c] for c in old])
    admin.insert("events", [e for _, e in rows], database=db, column_names=EVENT_COLUMNS,
                 column_type_names=[t for _, t in schema.EVENT_COLUMNS])
    return rows


def open_store(target: StoreTarget, thread: StoreThread, db: str) -> Any:
    opened = thread.submit(Store.open, target, db, messages_ttl_days=KEEP_DAYS, states_ttl_days=KEEP_DAYS).result()
    return OnThread(opened, thread)


def check_migrated(store: Any, admin: Any, db: str, rows: list[tuple[tuple[Any, ...], tuple[Any, ...]]]) -> None:
    """Every row of the version-2 store once, readable in event-time order, `at` as line_rows
    computes it (the column's DEFAULT filled it), the events still joined."""
    assert store.migrate() == [1, 2, 3, 4, 5, 6]
    tables = sorted(t for (t,) in admin.query(f"SHOW TABLES FROM {db}").result_rows)
    assert tables == sorted([*schema.TABLE_COLUMNS, "schema_migrations"])  # no messages_v3 left
    described = admin.query(f"DESCRIBE TABLE {db}.messages").result_rows
    assert [(r[0], r[1]) for r in described] == list(schema.MESSAGE_COLUMNS)
    create = admin.query(f"SHOW CREATE TABLE {db}.messages").result_rows[0][0]
    assert "ORDER BY (host, at, received_at, id)" in create
    at, received, ident = (MESSAGE_COLUMNS.index(c) for c in ("at", "received_at", "id"))
    expected = sorted((m for m, _ in rows), key=lambda m: (m[at], m[received], m[ident]))
    timeline = store.timeline(limit=100)
    assert [(r["id"], r["at"], r["received_at"]) for r in timeline] == [
        (m[ident], iso(T0 + timedelta(microseconds=m[at] - int(T0.timestamp() * 1e6))), iso(
            T0 + timedelta(microseconds=m[received] - int(T0.timestamp() * 1e6)))) for m in expected]
    assert [r.get("ip") for r in timeline] == [
        "192.0.2.1", "192.0.2.2", "192.0.2.3", None, None, None, "192.0.2.4"]
    assert [r["host"] for r in timeline] == ["dhcp-a", "dhcp-b", "dhcp-a", "dhcp-b", "dhcp-a", None, "dhcp-b"]
    future = timeline[-1]  # its header time two days ahead: the receive time is its time
    assert future["ts"] == FUTURE and future["at"] == future["received_at"] == iso(MIGRATED_RECEIVED[5])
    assert timeline[4]["relationship"] == REL and timeline[4]["side"] == "self"  # events still joined
    assert count(admin, db, "messages") == len(rows)
    # new rows go in beside the migrated ones
    text = syslog("dhcp-b", 25, "DHCPACK on 192.0.2.9 to 00:00:5e:00:53:09 via eth0")
    ingest(store, [text], [T0 + timedelta(hours=1)], MessageIds(start=1), token="after-migration")
    assert [r.get("ip") for r in store.timeline(since=T0 + timedelta(seconds=21))] == [None, "192.0.2.9", "192.0.2.4"]


@pytest.mark.integration
def test_a_version_2_store_is_migrated_to_event_time_order(
    store_target: StoreTarget, store_thread: StoreThread, store_admin: Any, store_database: str
) -> None:
    nothing = open_store(store_target, store_thread, f"{store_database}_none")
    assert nothing.pending_migrations() == [v for v, _, _ in schema.MIGRATIONS]  # no database: everything
    nothing.close()
    rows = build_v2_store(store_admin, store_database)
    store = open_store(store_target, store_thread, store_database)
    try:
        assert store.pending_migrations() == [3, 4, 5, 6]
        check_migrated(store, store_admin, store_database, rows)
        assert store.pending_migrations() == []
        assert store.migrate() == [1, 2, 3, 4, 5, 6]  # and again: nothing to do
        assert count(store_admin, store_database, "messages") == len(rows) + 1
    finally:
        store.close()


@pytest.mark.integration
@pytest.mark.parametrize("done", [2, 3, 4, 5], ids=["dropped", "created", "copied", "exchanged"])
def test_an_interrupted_migration_3_runs_again(
    store_target: StoreTarget, store_thread: StoreThread, store_admin: Any, store_database: str, done: int
) -> None:
    """Migration 3 stopped after its first `done` steps (before its schema_migrations row):
    the next start finishes it, with every row exactly once."""
    rows = build_v2_store(store_admin, store_database)
    store = open_store(store_target, store_thread, store_database)
    try:
        (version, _, steps), = [m for m in schema.MIGRATIONS if m[0] == 3]
        for step in steps[:done]:
            store._run_step(step)
        if done == 4:  # the copy is there, the old table still in use
            assert count(store_admin, store_database, "messages_v3") == len(rows)
        if done == 5:  # swapped: the old table under the copy's name
            assert count(store_admin, store_database, "messages_v3") == len(rows)
            assert store_admin.query(f"SELECT min(at) FROM {store_database}.messages").result_rows[0][0] is not None
        check_migrated(store, store_admin, store_database, rows)
    finally:
        store.close()


@pytest.mark.integration
def test_migration_3_leaves_a_shared_table_to_the_operator(
    store_target: StoreTarget, store_thread: StoreThread, store_admin: Any, store_database: str
) -> None:
    """A messages table that is not a plain MergeTree (on a cluster: ReplicatedMergeTree) is
    not rebuilt from one node: the migration stops and names the upgrade script."""
    build_v2_store(store_admin, store_database)
    store_admin.command(f"DROP TABLE {store_database}.messages SYNC")
    store_admin.command(schema.render(V2_MESSAGES.replace("ENGINE = MergeTree", "ENGINE = ReplacingMergeTree"),
                                      store_database, messages_ttl_days=KEEP_DAYS, states_ttl_days=KEEP_DAYS))
    store = open_store(store_target, store_thread, store_database)
    try:
        with pytest.raises(StoreError, match=r"upgrade-3\.sql"):
            store.migrate()
        tables = {t for (t,) in store_admin.query(f"SHOW TABLES FROM {store_database}").result_rows}
        assert "messages_v3" not in tables
    finally:
        store.close()


@pytest.mark.integration
def test_migration_4_leaves_a_shared_incidents_table_to_the_operator(
    store_target: StoreTarget, store_thread: StoreThread, store_admin: Any, store_database: str
) -> None:
    """An incidents table that is not a plain ReplacingMergeTree (on a cluster: replicated,
    with a Distributed table over it) gets `retracted` from upgrade-4.sql, not from one node."""
    build_v2_store(store_admin, store_database)
    incidents = next(step for step in schema.MIGRATIONS[0][2] if isinstance(step, str) and ".incidents\n" in step)
    store_admin.command(f"DROP TABLE {store_database}.incidents SYNC")
    store_admin.command(schema.render(incidents.replace("ReplacingMergeTree(updated_at)", "MergeTree"), store_database,
                                      messages_ttl_days=KEEP_DAYS, states_ttl_days=KEEP_DAYS))
    store = open_store(store_target, store_thread, store_database)
    try:
        with pytest.raises(StoreError, match=r"upgrade-4\.sql"):
            store.migrate()
        assert store.pending_migrations() == [4, 5, 6]  # migration 3 went through
    finally:
        store.close()


# --- rows ------------------------------------------------------------------------------------


def test_row_builders_follow_the_column_constants() -> None:
    event = parse_line(LINES[0], OPTIONS)
    message, event_fields = line_rows(event, id=7, received_at=1.5, raw=LINES[0], transport="tcp")
    row = dict(zip(MESSAGE_COLUMNS, message, strict=True))
    assert row["received_at"] == 1_500_000  # µs since the epoch
    assert row["ts"] == int(T0.timestamp()) * 1_000_000
    assert (row["id"], row["host"], row["program"], row["pid"], row["kind"]) == (7, "dhcp-a", "dhcpd", 812, "failover.state")
    assert (row["raw"], row["transport"], row["sender"], row["msgid"]) == (LINES[0], "tcp", "", "")
    ev = dict(zip(EVENT_COLUMNS, event_fields, strict=True))
    assert ev["relationship"] == REL
    assert json.loads(ev["fields"]) == {"relationship": REL, "side": "self", "from_state": "normal",
                                        "to_state": "communications-interrupted"}
    bare = parse_line(LINES[4], OPTIONS)
    row = dict(zip(MESSAGE_COLUMNS, line_rows(bare, id=8, received_at=T0, raw=LINES[4], transport="file")[0], strict=True))
    assert (row["ts"], row["host"], row["message"]) == (None, "", "no header, two leading spaces")


def test_event_time_is_the_header_time_unless_absent_or_too_far_ahead() -> None:
    at = MESSAGE_COLUMNS.index("at")
    assert at == MESSAGE_COLUMNS.index("kind") + 1  # after version 2's columns: row[0] received_at and row[2] ts stay
    assert FUTURE_SKEW_US == 86_400_000_000  # the messages DDL's `INTERVAL 1 DAY`

    def row(text: str, received: datetime, **kw: Any) -> dict[str, Any]:
        message = line_rows(parse_line(text, OPTIONS), id=1, received_at=received, raw=text, transport="tcp", **kw)[0]
        return dict(zip(MESSAGE_COLUMNS, message, strict=True))

    def us(t: datetime) -> int:
        return int(t.timestamp()) * 1_000_000 + t.microsecond

    header = syslog("dhcp-a", 0, "DHCPACK on 192.0.2.1 to 00:00:5e:00:53:01 via eth0")  # T0
    late = row(header, T0 + timedelta(hours=5))  # a late line keeps its time, however late
    assert late["at"] == late["ts"] == us(T0) and late["received_at"] == us(T0 + timedelta(hours=5))
    ahead = row(header, T0 - timedelta(hours=23))  # ahead, within the limit: still its time
    assert ahead["at"] == us(T0)
    skewed = row(header, T0 - timedelta(days=1, microseconds=1))  # beyond it: the receive time
    assert skewed["at"] == skewed["received_at"] and skewed["ts"] == us(T0)
    exact = row(header, T0 - timedelta(days=1))
    assert exact["at"] == us(T0)
    bare = row(LINES[4], T0)
    assert bare["ts"] is None and bare["at"] == us(T0)
    # given (the line stage's previous line's time), `at` is used: a datetime or epoch seconds
    assert row(LINES[4], T0, at=T0 - timedelta(seconds=3))["at"] == us(T0) - 3_000_000
    assert row(header, T0 + timedelta(seconds=9), at=T0.timestamp() + 2)["at"] == us(T0) + 2_000_000
    assert row(LINES[4], T0, at=T0 + timedelta(days=2))["at"] == us(T0)  # never beyond the limit either
    assert event_time_us(5, None) == 5 and event_time_us(5, 3) == 3
    assert event_time_us(5, 5 + FUTURE_SKEW_US) == 5 + FUTURE_SKEW_US and event_time_us(5, 6 + FUTURE_SKEW_US) == 5


def test_incident_ids_are_stable() -> None:
    a = Incident(condition="partner_down", pair=REL, servers=("dhcp-a",), start=100.25)
    same = Incident(condition="partner_down", pair=REL, servers=("dhcp-a", "dhcp-b"), start=100.25, end=200.0)
    assert incident_id(a) == incident_id(same) and len(incident_id(a)) == 16
    assert incident_id(a) != incident_id(Incident(condition="partner_down", pair=REL, servers=(), start=100.5))
    assert incident_id(a) != incident_id(Incident(condition="stuck", pair=REL, servers=(), start=100.25))


def test_message_ids_increase() -> None:
    ids = MessageIds(start=10)
    assert [ids(), ids(), ids()] == [10, 11, 12]
    assert MessageIds()() > 1_700_000_000_000_000  # starts at the current time in microseconds


# --- timeline ----------------------------------------------------------------------------------


@pytest.mark.integration
def test_timeline_is_oldest_first_with_event_fields(store: Any) -> None:
    at = received(len(LINES))
    ingest(store, LINES[::-1], at[::-1], MessageIds(start=1))  # stored newest first
    rows = store.timeline()
    # by event time: the header time, else (the bare line 4) the receive time, 10:00:06.000007,
    # which is after line 5's header time 10:00:05
    order = [0, 1, 2, 3, 5, 4]
    assert [r["received_at"] for r in rows] == [iso(at[i]) for i in order]
    assert [r["at"] for r in rows] == [r["ts"] or r["received_at"] for r in rows]
    assert rows[0]["received_at"] == "2025-03-03T10:00:00.000007Z"
    first = rows[0]
    assert {k: first[k] for k in ("ts", "host", "program", "pid", "kind")} == {
        "ts": "2025-03-03T10:00:00Z", "host": "dhcp-a", "program": "dhcpd", "pid": 812, "kind": "failover.state"}
    assert (first["relationship"], first["side"], first["from_state"], first["to_state"]) == (
        REL, "self", "normal", "communications-interrupted")
    assert first["message"] == f"failover peer {REL}: I move from normal to communications-interrupted"
    assert rows[1]["ts"] == "2025-03-03T10:00:01.250000Z" and rows[1]["mac"] == "00:00:5e:00:53:01"
    kea = rows[3]
    assert (kea["kind"], kea["ha_name"], kea["partner_state"], kea["to_state"]) == (
        "failover.state", "server1", "ready", "syncing")
    bare = rows[5]
    assert (bare["ts"], bare["host"], bare["kind"], bare["message"]) == (
        None, None, "dhcpd.other", "no header, two leading spaces")
    assert bare["at"] == bare["received_at"] == iso(at[4])
    json.dumps(rows)  # what `timeline --json` prints


@pytest.mark.integration
def test_timeline_filters_by_host_and_time(store: Any) -> None:
    at = received(len(LINES))
    ingest(store, LINES, at, MessageIds(start=1))
    assert [r["host"] for r in store.timeline(hosts=["dhcp-b", "kea-1"])] == ["dhcp-b", "dhcp-b", "kea-1"]
    assert [r["host"] for r in store.timeline(hosts=("dhcp-a",))] == ["dhcp-a", "dhcp-a"]
    assert store.timeline(hosts=[]) == []
    assert store.timeline(hosts=["nobody"]) == []
    # since inclusive, until exclusive, both on the event time `at` (the header times 10:00:00,
    # :01.25, :02, :03, none (received :06.000007), :05), not on the receive time
    window = store.timeline(since=at[1], until=at[3])
    assert [r["at"] for r in window] == ["2025-03-03T10:00:02Z", "2025-03-03T10:00:03Z"]
    assert [r["received_at"] for r in window] == [iso(at[2]), iso(at[3])]
    assert [r["at"] for r in store.timeline(since=T0 + timedelta(seconds=2), until=T0 + timedelta(seconds=3))] == [
        "2025-03-03T10:00:02Z"]
    naive = store.timeline(since=at[4].replace(tzinfo=None))  # naive means UTC
    assert [r["message"] for r in naive] == ["no header, two leading spaces"]
    assert [r["received_at"] for r in store.timeline(hosts=["dhcp-a"], since=at[1])] == [iso(at[5])]


@pytest.mark.integration
def test_timeline_pages_with_a_cursor(store: Any) -> None:
    ids = MessageIds(start=1000)
    lines = [syslog(f"dhcp-{'ab'[i % 2]}", i, f"DHCPACK on 192.0.2.{i} to 00:00:5e:00:53:01 via eth0") for i in range(23)]
    at = received(len(lines), step=0.5)
    at[10] = at[11] = at[12] = at[9]  # one TCP read: four lines share their receive instant
    ingest(store, lines, at, ids)
    everything = store.timeline(limit=100)
    assert len(everything) == 23
    pages: list[list[dict[str, Any]]] = []
    cursor = None
    while True:
        page = store.timeline(limit=5, after=cursor)
        if not page:
            break
        pages.append(page)
        cursor = TimelineCursor.after(page[-1])
        assert TimelineCursor.parse(str(cursor)) == cursor
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    assert [r for p in pages for r in p] == everything
    assert [r["ip"] for r in everything] == [f"192.0.2.{i}" for i in range(23)]  # same instant: arrival (id) order
    only_b = store.timeline(hosts=["dhcp-b"], limit=4, after=TimelineCursor.after(everything[8]))
    assert [r["ip"] for r in only_b] == ["192.0.2.9", "192.0.2.11", "192.0.2.13", "192.0.2.15"]


@pytest.mark.integration
def test_the_cursor_pages_through_ties_of_event_time_and_receive_time(store: Any) -> None:
    """Lines of two hosts with the same header time (a burst logged in one second), some also
    received in the same microsecond: the order is (at, received_at, id), and every page size
    gives every row once, in that order."""
    ids = MessageIds(start=7000)
    lines, received_at = [], []
    for i in range(17):
        host = f"dhcp-{'ab'[i % 2]}"
        lines.append(syslog(host, i // 6, f"DHCPACK on 192.0.2.{i} to 00:00:5e:00:53:01 via eth0"))  # 6 per second
        received_at.append(T0 + timedelta(seconds=60 - (i % 4)))  # arrived late, four receive instants, reversed
    ingest(store, lines, received_at, ids)
    everything = store.timeline(limit=100)
    key = [(r["at"], r["received_at"], r["id"]) for r in everything]
    assert key == sorted(key) and len(set(key)) == 17
    assert len({r["at"] for r in everything}) == 3 and len({r["received_at"] for r in everything}) == 4
    assert everything[0]["at"] == iso(T0) and everything[0]["received_at"] == iso(T0 + timedelta(seconds=57))
    for size in (1, 2, 3, 5):
        seen: list[dict[str, Any]] = []
        cursor = None
        while page := store.timeline(limit=size, after=cursor):
            seen += page
            cursor = TimelineCursor.after(page[-1])
            assert TimelineCursor.parse(str(cursor)) == cursor
        assert seen == everything, size
    only_b = store.timeline(hosts=["dhcp-b"], after=TimelineCursor.after(everything[4]))
    assert [r["id"] for r in only_b] == [r["id"] for r in everything[5:] if r["host"] == "dhcp-b"]
    tie = TimelineCursor.after(everything[0])
    assert str(tie) == f"{tie.at_us}-{tie.received_at_us}-{tie.id}"


def test_cursor_text() -> None:
    cursor = TimelineCursor(1_741_000_000_000_000, 1_741_000_060_000_007, 42)
    assert str(cursor) == "1741000000000000-1741000060000007-42"
    assert TimelineCursor.parse(str(cursor)) == cursor
    before_1970 = TimelineCursor(-5_000_000, -1, 3)
    assert str(before_1970) == "-5000000--1-3" and TimelineCursor.parse(str(before_1970)) == before_1970
    for bad in ("", "12-34", "1741000060000007-42", "a-b-c", "1-2-3-4", "1-2--3", " 1-2-3"):
        with pytest.raises(ValueError, match="not a timeline cursor"):
            TimelineCursor.parse(bad)


@pytest.mark.integration
def test_rows_of_the_previous_shape_get_their_event_time(store: Any) -> None:
    """A batch spooled by an earlier version is stored on replay: message rows without `at`
    (version 2; `at` computed by the same rule) or without the lease columns (version 4: null)."""
    ids = MessageIds(start=1)
    rows = [line_rows(parse_line(t, OPTIONS), id=ids(), received_at=r, raw=t, transport="tcp")[0]
            for t, r in zip(LINES, received(len(LINES)), strict=True)]
    at = MESSAGE_COLUMNS.index("at")
    assert store.insert("messages", [list(r[:at]) for r in rows], MESSAGE_COLUMNS, "spooled-v2") == len(rows)
    assert [r["at"] for r in store.timeline()] == [r["ts"] or r["received_at"] for r in store.timeline()]
    stored = store.timeline()
    assert sorted(r["id"] for r in stored) == [r[MESSAGE_COLUMNS.index("id")] for r in rows]
    assert [r["at"] for r in stored] == [iso(T0 + timedelta(microseconds=v - int(T0.timestamp()) * 1_000_000))
                                         for v in sorted(r[at] for r in rows)]
    with pytest.raises(ValueError, match="values"):
        store.insert("messages", [r[:at - 1] for r in rows], MESSAGE_COLUMNS, "too-short")
    later = [(r[0] + 10**9, r[1] + 100, *r[2:at + 1]) for r in rows]  # version 4: `at`, no lease columns
    assert store.insert("messages", later, MESSAGE_COLUMNS, "spooled-v4") == len(rows)
    leases = [r for r in store.timeline() if r["id"] > 100 and r["kind"].startswith("lease.")]
    assert leases and all(r["ip"] is None and r["mac"] is None for r in leases)


@pytest.mark.integration
def test_a_lease_line_is_one_message_row_with_its_fields(store: Any) -> None:
    """A lease line (migration 5) has no events row: its fields are the message's columns, and
    the timeline shows them as it showed the events row's."""
    event = parse_line(LINES[1], OPTIONS)
    message, ev = line_rows(event, id=1, received_at=T0, raw=LINES[1], transport="udp")
    assert ev is None
    store.insert("messages", [message], MESSAGE_COLUMNS, "m")
    (row,) = store.timeline()
    assert row["kind"] == "lease.discover" and row["message"].startswith("DHCPDISCOVER")
    assert {k: row[k] for k in schema.LEASE_COLUMNS} == {
        "ip": None, "mac": "00:00:5e:00:53:01", "client_name": None, "via": "eth0", "server_id": None,
        "refused": None, "detail": None}


@pytest.mark.integration
def test_timeline_keeps_messages_without_an_event_row(store: Any) -> None:
    event = parse_line(LINES[0], OPTIONS)
    store.insert("messages", [line_rows(event, id=1, received_at=T0, raw=LINES[0], transport="udp")[0]], MESSAGE_COLUMNS, "m")
    (row,) = store.timeline()
    assert row["kind"] == "failover.state" and "relationship" not in row and "mac" not in row


@pytest.mark.integration
@pytest.mark.parametrize("limit", [0, -5, True, 2.5])
def test_timeline_rejects_bad_limits(store: Any, limit: Any) -> None:
    with pytest.raises(ValueError, match="limit"):
        store.timeline(limit=limit)


# --- deduplication ---------------------------------------------------------------------------


@pytest.mark.integration
def test_a_retried_batch_is_stored_once(store: Any, store_admin: Any, store_database: str) -> None:
    events = [parse_line(text, OPTIONS) for text in LINES]
    ids = MessageIds(start=1)
    rows = [line_rows(e, id=ids(), received_at=T0, raw=t, transport="udp")[0] for e, t in zip(events, LINES, strict=True)]
    assert store.insert("messages", rows, MESSAGE_COLUMNS, "batch-1") == 6
    assert store.insert("messages", rows, MESSAGE_COLUMNS, "batch-1") == 6  # a retry after a lost answer
    assert count(store_admin, store_database, "messages") == 6
    store.insert("messages", rows, MESSAGE_COLUMNS, "batch-2")  # a new batch that happens to be equal
    assert count(store_admin, store_database, "messages") == 12
    assert store.insert("messages", [], MESSAGE_COLUMNS, "batch-3") == 0


@pytest.mark.integration
def test_a_batch_by_column_stores_the_same_rows(store: Any) -> None:
    """`column_oriented`: one sequence of values per column (the service's writer keeps its
    batches so) stores the rows; columns of different lengths are refused."""
    ids = MessageIds(start=1)
    rows = [line_rows(parse_line(t, OPTIONS), id=ids(), received_at=at, raw=t, transport="udp")[0]
            for t, at in zip(LINES, received(len(LINES)), strict=True)]
    assert store.insert("messages", list(zip(*rows, strict=True)), MESSAGE_COLUMNS, "by-column",
                        column_oriented=True) == len(LINES)
    stored = store.timeline()
    message, host, kind, at = (MESSAGE_COLUMNS.index(c) for c in ("message", "host", "kind", "at"))
    assert [(r["message"], r["host"], r["kind"]) for r in stored] == [(row[message], row[host] or None, row[kind])
                                                                       for row in sorted(rows, key=lambda r: r[at])]
    assert store.insert("messages", [], MESSAGE_COLUMNS, "nothing", column_oriented=True) == 0
    with pytest.raises(ValueError, match="different lengths"):
        store.insert("states", [(T0, T0), ("p",)], ("ts", "pair"), "t", column_oriented=True)


@pytest.mark.integration
def _message_columns(n: int, texts: list[str] = LINES) -> list[tuple[Any, ...]]:
    """`n` messages rows of real parsed lines, by column."""
    ids = MessageIds(start=1)
    at = received(n, step=0.01)
    rows = [line_rows(parse_line(texts[i % len(texts)], OPTIONS), id=ids(), received_at=at[i],
                      raw=texts[i % len(texts)], transport="tcp")[0] for i in range(n)]
    return list(zip(*rows, strict=True))


def test_a_batch_goes_as_arrow_in_blocks_and_a_retry_of_it_is_stored_once(
    store: Any, store_admin: Any, store_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded store sends a batch as Arrow record batches: no column is converted in one
    piece longer than a block (each conversion holds the GIL), a batch of one block is converted
    from its columns as they are (no copy), and the whole batch retried with its token is still
    stored once."""
    import pyarrow as pa

    from collector import store as store_module

    lengths: list[int] = []
    given: list[Any] = []
    array = pa.array

    def counted(values: Any, *args: Any, **kwargs: Any) -> Any:
        lengths.append(len(values))
        given.append(values)
        return array(values, *args, **kwargs)

    monkeypatch.setattr(pa, "array", counted)
    monkeypatch.setattr(store_module, "ARROW_BLOCK_ROWS", 1000)
    n = 2500
    columns = _message_columns(n)
    assert store.insert("messages", columns, MESSAGE_COLUMNS, "big-1", column_oriented=True) == n
    assert sorted(set(lengths)) == [500, 1000]  # (two full blocks and the rest, for each column)
    store.insert("messages", columns, MESSAGE_COLUMNS, "big-1", column_oriented=True)  # a retry
    assert count(store_admin, store_database, "messages") == n
    store.insert("messages", columns, MESSAGE_COLUMNS, "big-2", column_oriented=True)
    assert count(store_admin, store_database, "messages") == 2 * n
    given.clear()
    small = [list(column) for column in _message_columns(800)]  # (lists, as the writer joins them)
    store.insert("messages", small, MESSAGE_COLUMNS, "small-1", column_oriented=True)
    assert [id(values) for values in given] == [id(column) for column in small]
    assert count(store_admin, store_database, "messages") == 2 * n + 800


def test_a_batch_arrow_cannot_take_goes_as_native_in_blocks(
    store: Any, store_admin: Any, store_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Times given as datetimes (as an older spool may hold them) do not convert to Arrow's
    integers: the batch goes as Native, whose string columns are written a block at a time,
    and a retry of it is stored once too."""
    from clickhouse_connect.datatypes import string

    lengths: list[int] = []
    write_str_col = string.data_conv.write_str_col

    def counted(column: Any, *args: Any) -> Any:
        lengths.append(len(column))
        return write_str_col(column, *args)

    monkeypatch.setattr(string.data_conv, "write_str_col", counted)
    n = INSERT_BLOCK_ROWS * 5 // 2
    columns = _message_columns(n)
    columns[0] = tuple(received(n, step=0.01))  # received_at as datetimes
    assert store.insert("messages", columns, MESSAGE_COLUMNS, "big-1", column_oriented=True) == n
    assert max(lengths) == INSERT_BLOCK_ROWS
    store.insert("messages", columns, MESSAGE_COLUMNS, "big-1", column_oriented=True)  # a retry
    assert count(store_admin, store_database, "messages") == n


def test_arrow_and_native_store_the_same_rows(store: Any, store_admin: Any, store_database: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Every column of a messages batch (NULL pids, times, lease fields, text that is not ASCII)
    reads back the same whether the batch went as Arrow or as Native."""
    from collector import store as store_module

    texts = [*LINES, "<30>Mar  3 10:00:09 dhcp-a dhcpd[7]: DHCPOFFER on 192.0.2.9 to 00:00:5e:00:53:09 (Zoë phone) via eth0",
             "<13>Mar  3 10:00:10 dhcp-a pairwatch-test: ünïcödé ☃ and a tab\there"]
    columns = _message_columns(len(texts), texts)
    as_arrow = list(columns)
    as_arrow[1] = (1,) * len(texts)  # (the id tells the two copies apart)
    as_native = list(columns)
    as_native[1] = (2,) * len(texts)
    store.insert("messages", as_arrow, MESSAGE_COLUMNS, "arrow", column_oriented=True)
    monkeypatch.setattr(store_module, "_arrow_table", lambda *args: None)
    store.insert("messages", as_native, MESSAGE_COLUMNS, "native", column_oriented=True)

    def read(ident: int) -> bytes:
        return store_admin.raw_query(f"SELECT * EXCEPT id FROM {store_database}.messages WHERE id = {ident} "
                                     "ORDER BY received_at FORMAT TSV")

    arrow = read(1)
    assert arrow.count(b"\n") == len(texts)
    assert "Zoë phone".encode() in arrow and b"\\N" in arrow  # (a client name; NULLs)
    assert arrow == read(2)


@pytest.mark.integration
def test_the_embedded_engine_threads_run_below_the_python_ones(store: Any) -> None:
    """After an insert, every thread the embedded engine started runs `ENGINE_NICE` steps below
    the process (so its merges cannot keep the event loop's thread off a core), and the Python
    threads, the store thread among them, keep the process's priority."""
    ids = MessageIds(start=1)
    rows = [line_rows(parse_line(t, OPTIONS), id=ids(), received_at=T0, raw=t, transport="udp")[0] for t in LINES]
    store.insert("messages", rows, MESSAGE_COLUMNS, "nice-1")
    # the threads alive before the second insert (chdb may start more at any time: those are
    # lowered by a later insert, so only these are certain to have been seen)
    tids = {int(name) for name in os.listdir("/proc/self/task")}
    store.insert("messages", rows, MESSAGE_COLUMNS, "nice-2")
    base = os.getpriority(os.PRIO_PROCESS, threading.main_thread().native_id)
    python = {t.native_id for t in threading.enumerate()}
    engine = tids - python
    assert engine, "chdb started no thread of its own"
    nice = {}
    for tid in tids:
        try:
            nice[tid] = os.getpriority(os.PRIO_PROCESS, tid)
        except ProcessLookupError:  # ended meanwhile
            pass
    assert {tid: n for tid, n in nice.items() if tid in python} == {tid: base for tid in python if tid in nice}
    assert {tid: n for tid, n in nice.items() if tid in engine} == {tid: min(19, base + ENGINE_NICE)
                                                                  for tid in engine if tid in nice}


@pytest.mark.integration
def test_insert_refuses_unknown_tables_columns_and_tokens(store: Any) -> None:
    with pytest.raises(ValueError, match="unknown table"):
        store.insert("schema_migrations", [(1,)], ("version",), "t")
    with pytest.raises(ValueError, match="unknown column"):
        store.insert("states", [(1,)], ("nope",), "t")
    with pytest.raises(ValueError, match="dedup_token"):
        store.insert("states", [(T0,)], ("ts",), "")
    with pytest.raises(ValueError, match="rows have 2 values"):
        store.insert("states", [(T0, "p")], ("ts",), "t")


@pytest.mark.integration
def test_a_value_its_column_cannot_take_refuses_the_whole_batch(store: Any, store_admin: Any,
                                                                store_database: str) -> None:
    """The encoder's error (here a ValueError, which the writer answers by setting the batch
    aside), and no row of the batch is stored: the encoding fails before the engine sees any."""
    rows = [(text, "pair", "server", "primary", "normal", None) for text in ("2025-03-03T08:00:00", "not a time")]
    before = count(store_admin, store_database, "states")
    with pytest.raises(ValueError, match="isoformat"):
        store.insert("states", rows, STATE_COLUMNS, "bad-value")
    assert count(store_admin, store_database, "states") == before


# --- states and incidents from a real correlator ------------------------------------------------


def correlate(lines: list[str]) -> list[tuple[Any, float]]:
    correlator = Correlator()
    out = []
    for text in lines:
        event = parse_line(text, OPTIONS)
        assert event.record.ts is not None
        now = event.record.ts.timestamp()
        out.extend((change, now) for change in correlator.feed(event, now, text))
    return out


PAIR_LINES = [
    syslog("dhcp-a", 0, f"failover peer {REL}: I move from startup to normal"),
    syslog("dhcp-b", 0, f"failover peer {REL}: I move from startup to normal"),
    syslog("dhcp-a", 10, f"failover peer {REL}: I move from normal to communications-interrupted"),
    syslog("dhcp-a", 70, f"failover peer {REL}: I move from communications-interrupted to partner-down"),
    syslog("dhcp-b", 80, f"failover peer {REL}: I move from normal to recover"),
    syslog("dhcp-a", 90, f"failover peer {REL}: peer moves from partner-down to recover"),
]


@pytest.mark.integration
def test_last_states_are_the_latest_per_pair_server_side(store: Any) -> None:
    changes = [c for c, _ in correlate(PAIR_LINES) if isinstance(c, StateChanged)]
    assert len(changes) >= 5
    for i, change in enumerate(changes):  # one batch per change, as a live writer might
        store.insert("states", [state_row(change)], STATE_COLUMNS, f"s{i}")
    latest: dict[tuple[str, str, str], StateChanged] = {}
    for change in changes:
        latest[(change.pair, change.server, change.side)] = change
    expected = [
        {"ts": iso(datetime.fromtimestamp(c.ts, UTC)), "pair": c.pair,
         "server": c.server, "side": c.side, "state": c.state, "previous": c.previous}
        for _, c in sorted(latest.items())
    ]
    assert store.last_states() == expected
    a_self = next(s for s in expected if s["server"] == "dhcp-a" and s["side"] == "self")
    assert (a_self["state"], a_self["previous"]) == ("partner-down", "communications-interrupted")
    assert store.pair_hosts(REL) == ["dhcp-a", "dhcp-b"]
    assert store.pair_hosts("other") == []


@pytest.mark.integration
def test_a_windows_states_start_with_the_state_in_force_at_its_start(store: Any) -> None:
    """What the page's bands are drawn from: each (server, side)'s state at `since`, then the
    changes inside [since, until), none after."""
    changes = [c for c, _ in correlate(PAIR_LINES) if isinstance(c, StateChanged)]
    store.insert("states", [state_row(c) for c in changes], STATE_COLUMNS, "window")
    start = min(c.ts for c in changes)
    since, until = datetime.fromtimestamp(start + 5, UTC), datetime.fromtimestamp(start + 85, UTC)
    in_force: dict[tuple[str, str], StateChanged] = {}
    for c in sorted(changes, key=lambda c: c.ts):
        if c.ts < since.timestamp():
            in_force[(c.server, c.side)] = c
    inside = sorted((c for c in changes if since.timestamp() <= c.ts < until.timestamp()),
                    key=lambda c: (c.ts, c.server, c.side))
    expected = [{"ts": iso(datetime.fromtimestamp(c.ts, UTC)), "server": c.server, "side": c.side, "state": c.state,
                 "previous": c.previous} for c in [*(in_force[k] for k in sorted(in_force)), *inside]]
    assert in_force and inside and len(expected) < len(changes)  # the window cuts both ends
    assert store.states(REL, since, until) == expected
    assert store.states("other", since, until) == []


@pytest.mark.integration
def test_an_incident_written_open_then_closed_reads_back_once_closed(store: Any) -> None:
    written = 0
    for change, now in correlate(PAIR_LINES):
        if isinstance(change, IncidentOpened | IncidentClosed):  # the row as it stands right now
            store.insert("incidents", [incident_row(change.incident, updated_at=now)], INCIDENT_COLUMNS, f"i{written}")
            written += 1
    incidents = store.incidents()
    by_condition = {i["condition"]: i for i in incidents}
    assert written > len(incidents)  # some incidents were written twice
    interrupted = by_condition["communications_interrupted"]
    assert interrupted["start"] == "2025-03-03T10:00:10Z"
    assert interrupted["end"] == "2025-03-03T10:01:10Z"
    assert interrupted["pair"] == REL and "dhcp-a" in interrupted["servers"]
    assert any("communications-interrupted" in line for line in interrupted["evidence"])
    assert [i["id"] for i in incidents].count(interrupted["id"]) == 1
    still_open = [i for i in incidents if i["end"] is None]
    assert store.open_incidents() == still_open == store.incidents(open_only=True)
    assert still_open and all(i["condition"] != "communications_interrupted" for i in still_open)
    assert store.incidents(pair="other") == []
    assert store.incidents(pair=REL) == incidents


@pytest.mark.integration
def test_a_later_closed_row_wins_whatever_the_insert_order(store: Any) -> None:
    incident = Incident(condition="partner_down", pair=REL, servers=("dhcp-a",), start=T0.timestamp(), evidence=["opened"])
    opened = incident_row(incident, updated_at=T0)
    incident.end, incident.evidence = T0.timestamp() + 60, ["opened", "closed"]
    closed = incident_row(incident, updated_at=T0 + timedelta(seconds=60))
    store.insert("incidents", [closed], INCIDENT_COLUMNS, "late-1")
    store.insert("incidents", [opened], INCIDENT_COLUMNS, "late-2")  # a spool replay, out of order
    (only,) = store.incidents()
    assert (only["end"], only["evidence"], only["updated_at"]) == (
        "2025-03-03T10:01:00Z", ["opened", "closed"], "2025-03-03T10:01:00Z")
    assert store.open_incidents() == []


# --- threads ---------------------------------------------------------------------------------


@pytest.mark.integration
def test_store_thread_runs_everything_on_one_named_thread(store_thread: StoreThread, store: Any) -> None:
    def where() -> str:
        return threading.current_thread().name

    names = {store_thread.submit(where).result() for _ in range(5)}

    async def from_the_loop() -> list[Any]:
        return [await store_thread.call(where), await store_thread.call(store.obj.ping)]

    loop_names = asyncio.run(from_the_loop())
    assert len(names) == 1 and names == {loop_names[0]}
    assert loop_names[0].startswith("pairwatch-store") and loop_names[0] != threading.current_thread().name
    assert loop_names[1] is True


def test_a_closed_store_thread_refuses_work() -> None:
    thread = StoreThread()
    assert thread.submit(lambda x: x + 1, 1).result() == 2
    thread.close()
    with pytest.raises(StoreError, match="closed"):
        thread.submit(print)

    async def late() -> None:
        await thread.call(print)

    with pytest.raises(StoreError, match="closed"):
        asyncio.run(late())


@pytest.mark.integration
def test_the_store_refuses_calls_from_another_thread(store: Any) -> None:
    with pytest.raises(StoreError, match="thread"):
        store.obj.timeline()  # called here, not on the store thread


@pytest.mark.integration
def test_ping_close_and_use_after_close(store_target: StoreTarget, store_thread: StoreThread, store_database: str) -> None:
    store = OnThread(store_thread.submit(Store.open, store_target, store_database).result(), store_thread)
    assert store.ping() is True
    assert store.database == store_database and store.target == store_target
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        store.migrate()


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.integration
def test_a_query_on_a_dropped_database_raises_store_error(store: Any, store_admin: Any, store_database: str) -> None:
    store_admin.command(f"DROP DATABASE {store_database} SYNC")
    with pytest.raises(StoreError) as info:
        store.timeline()
    assert not isinstance(info.value, StoreUnavailable)
    assert isinstance(info.value.__cause__, chx.DatabaseError)
    assert "UNKNOWN_DATABASE" in str(info.value) and str(info.value).startswith("read timeline: ")
    with pytest.raises(StoreError):
        store.insert("states", [(T0, "p", "s", "self", "normal", None)], STATE_COLUMNS, "t")
    assert store.migrate() == [v for v, _, _ in schema.MIGRATIONS]  # migrate creates the database again


def _clickhouse_errors() -> list[type[BaseException]]:
    seen, todo = [], [chx.ClickHouseError]
    while todo:
        cls = todo.pop()
        seen.append(cls)
        todo.extend(cls.__subclasses__())
    return [c for c in seen if c.__module__ == chx.__name__]


@pytest.mark.parametrize("cls", _clickhouse_errors(), ids=lambda c: c.__name__)
def test_every_clickhouse_connect_error_is_mapped(cls: type[BaseException]) -> None:
    original = cls() if cls is chx.StreamClosedError else cls("Code: 1. boom\nsecond line")
    with pytest.raises(StoreError) as info:
        with map_store_errors("do it"):
            raise original
    assert info.value.__cause__ is original
    assert "\n" not in str(info.value) and str(info.value).startswith("do it: ")
    assert isinstance(info.value, StoreUnavailable) == issubclass(cls, chx.OperationalError)


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (ConnectionRefusedError(111, "Connection refused"), StoreUnavailable),
        (TimeoutError("timed out"), StoreUnavailable),
        (PermissionError(13, "Permission denied"), StoreUnavailable),
        (chx.OperationalError("HTTPConnectionPool: Max retries exceeded"), StoreUnavailable),
        (chx.ProgrammingError("Unable to open the chdb engine at '/x': filesystem error: File exists"), StoreUnavailable),
        (chx.ProgrammingError("Unable to open the chdb engine at '/y': EmbeddedServer already initialized with path '/x'"),
         StoreError),
        (chx.DatabaseError("Code: 60. Unknown table (UNKNOWN_TABLE)"), StoreError),
        (StoreUnavailable("already ours"), StoreUnavailable),
    ],
    ids=["refused", "timeout", "permission", "http-down", "chdb-dir", "chdb-second-path", "sql", "ours"],
)
def test_error_mapping(raised: BaseException, expected: type[StoreError]) -> None:
    with pytest.raises(StoreError) as info:
        with map_store_errors("x"):
            raise raised
    assert type(info.value) is expected
    assert info.value is raised or info.value.__cause__ is raised


def test_other_errors_are_not_mapped() -> None:
    with pytest.raises(KeyError):
        with map_store_errors("x"):
            raise KeyError("a bug of ours")


def test_unusable_store_directory_is_unavailable(tmp_path: Any, store_thread: StoreThread) -> None:
    a_file = tmp_path / "not-a-directory"
    a_file.write_text("")
    with pytest.raises(StoreUnavailable, match="not-a-directory"):
        store_thread.submit(Store.open, f"embedded:{a_file}/data").result()


def test_unreachable_server_is_unavailable() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(StoreUnavailable) as info:
        Store.open(f"clickhouse://pw:secret@127.0.0.1:{port}/db", connect_timeout=2)
    assert isinstance(info.value.__cause__, chx.OperationalError)
    assert "secret" not in str(info.value)


def test_open_refuses_bad_database_names_and_ttls(store_target: StoreTarget) -> None:
    with pytest.raises(StoreConfigError, match="plain identifier"):
        Store.open(store_target, "drop table; --")
    with pytest.raises(StoreConfigError, match="messages_ttl_days"):
        Store.open(store_target, "ok", messages_ttl_days=0)


@pytest.mark.integration
def test_a_retracted_incident_reads_back_marked_and_is_not_open(store: Any) -> None:
    """Late lines showed an open incident never happened: its retracted row replaces it; it
    is listed with `retracted` true and no longer counts as open (a restart must not take it back)."""
    incident = Incident(condition="split_brain", pair=f"{REL}-r", servers=("dhcp-a", "dhcp-b"), start=T0.timestamp())
    store.insert("incidents", [incident_row(incident, updated_at=T0)], INCIDENT_COLUMNS, "retract-1")
    assert [i["retracted"] for i in store.incidents(pair=f"{REL}-r")] == [False]
    assert len(store.open_incidents()) == 1
    store.insert("incidents", [incident_row(incident, updated_at=T0 + timedelta(seconds=1), retracted=True)],
                 INCIDENT_COLUMNS, "retract-2")
    (only,) = store.incidents(pair=f"{REL}-r")
    assert only["retracted"] is True and only["end"] is None
    assert store.open_incidents() == []


@pytest.mark.integration
def test_an_insert_frees_its_batch_when_it_returns(store: Any) -> None:
    """No reference cycle outlives an insert. The service runs the cyclic garbage collector
    rarely, so a cycle that holds a batch keeps it for minutes: one per insert made the
    service's memory grow by hundreds of MiB a minute (issue 20)."""
    gc.collect()
    gc.disable()
    try:
        ingest(store, LINES, received(len(LINES)), MessageIds())
        assert gc.collect() == 0
    finally:
        gc.enable()


@pytest.mark.integration
def test_the_store_never_imports_pandas(tmp_path: Any) -> None:
    """Writing and reading the embedded store leaves pandas unimported (43 MiB of resident
    memory the collector's budget would pay for nothing; `collector.store_engine.without_pandas`).
    A fresh interpreter, since other tests may import it."""
    script = f"""
import sys
from datetime import UTC, datetime
from collector.rows import line_rows
from collector.store import MESSAGE_COLUMNS, Store
from parsers import parse_line
store = Store.open("embedded:{tmp_path}/db")
store.migrate()
line = "<30>Mar  3 08:00:00 dhcp1 dhcpd[12]: DHCPDISCOVER from 00:00:5e:00:53:01 via eth0"
row, _ = line_rows(parse_line(line), id=1, received_at=datetime.now(UTC), raw=line, transport="tcp")
store.insert("messages", [row], MESSAGE_COLUMNS, "one")
assert len(store.timeline()) == 1
store.incidents(), store.last_states(), store.states("p", datetime(2025, 1, 1, tzinfo=UTC), datetime.now(UTC))
print(sorted(m for m in sys.modules if m.split(".")[0] == "pandas"))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_server_store_loads_neither_pyarrow_nor_pandas() -> None:
    """pyarrow is the embedded store's (chdb loads it, its inserts use it): opening a store on a
    ClickHouse server, here one that does not answer, leaves both unimported. A fresh
    interpreter, since other tests import them."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    script = f"""
import sys
from collector.store import Store
from collector.store_errors import StoreUnavailable
try:
    Store.open("clickhouse://u:p@127.0.0.1:{port}/pw", connect_timeout=1)
except StoreUnavailable:
    pass
print(sorted(m for m in sys.modules if m.split(".")[0] in ("pyarrow", "pandas")))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_pyarrow_without_its_pandas_shim_does_not_stop_the_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """`without_pandas` reads a private name of pyarrow: should a later pyarrow move it, the
    embedded store still opens (pandas may then be imported: memory, nothing worse)."""
    import pyarrow

    from collector.store_engine import without_pandas

    monkeypatch.delattr(pyarrow.lib, "_pandas_api")
    monkeypatch.delitem(sys.modules, "pandas", raising=False)
    without_pandas(True)


def test_held_merges_wait_until_they_are_let_go(store: OnThread) -> None:
    """`hold_merges` holds the embedded engine's merges of `messages` (a merge asked for is
    cancelled) until it lets them go; the other tables merge as before."""
    database = store.obj.database

    def merge(table: str) -> None:
        store.obj._client.command(f"OPTIMIZE TABLE {database}.{table}")

    store.hold_merges(True)
    try:
        with pytest.raises(chx.DatabaseError, match="Cancelled merging parts"):
            store._thread.submit(merge, "messages").result(timeout=60)
        store._thread.submit(merge, "events").result(timeout=60)
    finally:
        store.hold_merges(False)
    store._thread.submit(merge, "messages").result(timeout=60)
