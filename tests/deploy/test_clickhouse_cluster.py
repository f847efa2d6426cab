"""deploy/clickhouse/cluster.sql against the real schema (collector/schema.py's migrations).

No ClickHouse cluster with Keeper exists here, so two checks with the session's chdb engine:
every statement, exactly as shipped, parses as ClickHouse SQL (`EXPLAIN AST`); and its
single-node equivalent (no ON CLUSTER, each Replicated engine as its plain MergeTree, the
replicated deduplication window as the non-replicated one, Distributed as a Merge table over
the same table) creates tables whose `SHOW CREATE TABLE` is identical to the migrated schema's:
same columns and types, keys, partitioning, TTLs and settings. The same for upgrade-3.sql,
which brings a cluster of schema version 2 to that schema and keeps its rows (its INSERT
between Distributed tables, run per shard by the server, is the local INSERT on one node).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from collector import schema
from collector.store import Store
from collector.store_thread import StoreThread
from collector.store_url import StoreTarget
from tests.deploy.files import CLUSTER_SQL

UPGRADE_3_SQL = CLUSTER_SQL.with_name("upgrade-3.sql")

TABLES = ("schema_migrations", *schema.TABLE_COLUMNS)
REPLICATED = re.compile(r"Replicated(\w*MergeTree)\('(/clickhouse/tables/\{shard\}/[^']*)', '\{replica\}'(?:, )?")
DISTRIBUTED = re.compile(r"Distributed\('\{cluster\}', (\w+), (\w+)\)")


def statements(path: Path = CLUSTER_SQL) -> list[str]:
    body = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


def single_node(statement: str, db: str, all_db: str) -> str:
    statement = re.sub(r"\bpairwatch_all\b", all_db, statement)
    statement = re.sub(r"\bpairwatch\b", db, statement)
    statement = statement.replace(" ON CLUSTER '{cluster}'", "")
    statement = REPLICATED.sub(r"\1(", statement)
    statement = statement.replace("replicated_deduplication_window", "non_replicated_deduplication_window")
    return DISTRIBUTED.sub(r"Merge(\1, '^\2$')", statement)


@pytest.fixture
def databases(store_admin: Any) -> Iterator[tuple[str, str, str]]:
    """Three fresh database names (the real schema, the cluster's local and its `_all`), dropped after."""
    base = f"t_{uuid.uuid4().hex[:10]}"
    names = (f"{base}_real", f"{base}_cl", f"{base}_cl_all")
    try:
        yield names
    finally:
        for name in names:
            store_admin.command(f"DROP DATABASE IF EXISTS {name} SYNC")


@pytest.mark.integration
def test_every_statement_is_clickhouse_sql_and_runs_on_the_cluster(store_admin: Any) -> None:
    found = statements()
    assert len(found) == 2 + len(TABLES) + len(schema.TABLE_COLUMNS) + 1  # (+ migration 6's ALTER)
    for statement in found:
        assert "ON CLUSTER '{cluster}'" in statement, statement[:80]
        store_admin.query(f"EXPLAIN AST {statement}")  # raises on a syntax error


def test_local_tables_are_replicated_per_shard_and_distributed_tables_read_them() -> None:
    engines = {}
    for statement in statements():
        m = re.match(r"CREATE TABLE IF NOT EXISTS (\w+)\.(\w+)", statement)
        if m is None:
            continue
        replicated = REPLICATED.search(statement)
        distributed = DISTRIBUTED.search(statement)
        if m.group(1) == "pairwatch":
            assert replicated is not None, statement[:80]
            assert "{replica}" in statement
        else:
            assert m.group(1) == "pairwatch_all" and distributed is not None, statement[:80]
            assert distributed.groups() == ("pairwatch", m.group(2))
            assert f"AS pairwatch.{m.group(2)}" in statement
        engines[(m.group(1), m.group(2))] = statement
    assert {t for db, t in engines if db == "pairwatch"} == set(TABLES)
    assert {t for db, t in engines if db == "pairwatch_all"} == set(schema.TABLE_COLUMNS)


def migrate(target: StoreTarget, thread: StoreThread, db: str) -> None:
    """The real schema in `db`, made by the store's own migrations (default TTLs, as cluster.sql)."""
    store = thread.submit(Store.open, target, db).result()
    try:
        thread.submit(store.migrate).result()
    finally:
        thread.submit(store.close).result()


def assert_same_schema(admin: Any, real: str, local: str, local_all: str) -> None:
    def show(db: str, table: str) -> str:
        text = admin.query(f"SHOW CREATE TABLE {db}.{table}").result_rows[0][0]
        return str(text).replace(f"{db}.", "DB.")

    for table in TABLES:
        assert show(local, table) == show(real, table), table
    for table, columns in schema.TABLE_COLUMNS.items():
        described = admin.query(f"DESCRIBE TABLE {local_all}.{table}").result_rows
        assert [(row[0], row[1]) for row in described] == list(columns), table
    assert {t for (t,) in admin.query(f"SHOW TABLES FROM {local}").result_rows} == set(TABLES)
    assert {t for (t,) in admin.query(f"SHOW TABLES FROM {local_all}").result_rows} == set(schema.TABLE_COLUMNS)


@pytest.mark.integration
def test_single_node_equivalent_is_the_migrated_schema(
    store_admin: Any, store_target: StoreTarget, store_thread: StoreThread, databases: tuple[str, str, str]
) -> None:
    real, local, local_all = databases
    migrate(store_target, store_thread, real)
    for statement in statements():
        translated = single_node(statement, local, local_all)
        assert "Replicated" not in translated and "Distributed" not in translated
        store_admin.command(translated)
    assert_same_schema(store_admin, real, local, local_all)


UPGRADE_5_SQL = CLUSTER_SQL.with_name("upgrade-5.sql")
UPGRADE_6_SQL = CLUSTER_SQL.with_name("upgrade-6.sql")
_LEASE_COLUMNS = re.compile(r",\n    ip +Nullable\(String\),\n(?:    \w+ +Nullable\(String\),?\n)+")
_WIDER_MERGES = "ALTER TABLE pairwatch.messages ON CLUSTER '{cluster}' MODIFY SETTING merge_selector_base"


def v5_cluster_statements() -> list[str]:
    """cluster.sql as schema version 5 had it: messages with the engine's own merge setting."""
    found = statements()
    kept = [s for s in found if not s.startswith(_WIDER_MERGES)]
    assert len(kept) == len(found) - 1
    return kept


def v4_cluster_statements() -> list[str]:
    """cluster.sql as schema version 4 had it: messages without the lease columns."""
    out = []
    for statement in v5_cluster_statements():
        if statement.startswith("CREATE TABLE IF NOT EXISTS pairwatch.messages "):
            statement, n = _LEASE_COLUMNS.subn("\n", statement)
            assert n == 1
        out.append(statement)
    return out


def run_on_one_node(store_admin: Any, found: list[str], local: str, local_all: str) -> None:
    """Cluster statements, each as its single-node equivalent, in order."""
    for statement in found:
        store_admin.command(single_node(statement, local, local_all))


def upgrade_5(store_admin: Any, local: str, local_all: str) -> None:
    """upgrade-5.sql, then the upgrades after it."""
    run_on_one_node(store_admin, statements(UPGRADE_5_SQL), local, local_all)
    upgrade_6(store_admin, local, local_all)


def upgrade_6(store_admin: Any, local: str, local_all: str) -> None:
    run_on_one_node(store_admin, statements(UPGRADE_6_SQL), local, local_all)


def v2_cluster_statements() -> list[str]:
    """cluster.sql as schema version 2 had it: messages without `at` (nor the lease columns),
    keyed by receive time."""
    out = []
    for statement in v4_cluster_statements():
        if statement.startswith("CREATE TABLE IF NOT EXISTS pairwatch.messages "):
            statement, n = re.subn(r",\n    at +DateTime64[^\n]*\n", "\n", statement)
            assert n == 1
            statement = statement.replace("ORDER BY (host, at, received_at, id)", "ORDER BY (host, received_at, id)")
        out.append(statement)
    return out


@pytest.mark.integration
def test_upgrade_3_is_clickhouse_sql_and_runs_on_the_cluster(store_admin: Any) -> None:
    found = statements(UPGRADE_3_SQL)
    assert any(s.startswith("EXCHANGE TABLES pairwatch.messages AND pairwatch.messages_v3") for s in found)
    for statement in found:
        if not statement.startswith("INSERT"):  # (the copy runs on every shard through the Distributed tables)
            assert "ON CLUSTER '{cluster}'" in statement, statement[:80]
        store_admin.query(f"EXPLAIN AST {statement}")


@pytest.mark.integration
def test_upgrade_3_brings_a_version_2_cluster_to_the_migrated_schema(
    store_admin: Any, store_target: StoreTarget, store_thread: StoreThread, databases: tuple[str, str, str]
) -> None:
    real, local, local_all = databases
    migrate(store_target, store_thread, real)
    run_on_one_node(store_admin, v2_cluster_statements(), local, local_all)
    base = datetime.now(UTC).replace(microsecond=0, tzinfo=None) - timedelta(days=1)  # (within the 90-day TTL)

    def t(seconds: int) -> str:
        return str(base + timedelta(seconds=seconds))

    store_admin.command(
        f"INSERT INTO {local}.messages (received_at, id, ts, host, raw) VALUES"
        f" ('{t(9)}', 1, '{t(0)}', 'dhcp-a', 'late'),"
        f" ('{t(5)}', 2, NULL, 'dhcp-a', 'no header'),"
        f" ('{t(1)}', 3, '{t(3 * 86400)}', 'dhcp-b', 'clock ahead')")
    for _ in range(2):  # run twice: a second run (as after a run that stopped part-way) changes nothing
        for statement in statements(UPGRADE_3_SQL):
            if statement.startswith("INSERT"):
                statement = statement.replace("pairwatch_all.", "pairwatch.")
            translated = single_node(statement, local, local_all)
            assert "Replicated" not in translated and "Distributed" not in translated
            store_admin.command(translated)
        upgrade_5(store_admin, local, local_all)
        assert_same_schema(store_admin, real, local, local_all)
        rows = store_admin.query(f"SELECT raw, toString(at) FROM {local_all}.messages ORDER BY host, at, received_at, id")
        assert rows.result_rows == [("late", f"{t(0)}.000000"), ("no header", f"{t(5)}.000000"),
                                    ("clock ahead", f"{t(1)}.000000")]


UPGRADE_4_SQL = CLUSTER_SQL.with_name("upgrade-4.sql")


@pytest.mark.integration
def test_upgrade_4_is_clickhouse_sql_and_runs_on_the_cluster(store_admin: Any) -> None:
    found = statements(UPGRADE_4_SQL)
    assert [s.split(" ON CLUSTER")[0] for s in found] == ["ALTER TABLE pairwatch.incidents",
                                                          "ALTER TABLE pairwatch_all.incidents"]
    for statement in found:
        store_admin.query(f"EXPLAIN AST {statement}")


@pytest.mark.integration
def test_upgrade_4_brings_a_version_3_cluster_to_the_migrated_schema(
    store_admin: Any, store_target: StoreTarget, store_thread: StoreThread, databases: tuple[str, str, str]
) -> None:
    """cluster.sql without `retracted` (schema version 3) plus upgrade-4.sql is the migrated schema;
    the incidents stored before read as not retracted."""
    real, local, local_all = databases
    migrate(store_target, store_thread, real)
    for statement in v4_cluster_statements():
        if statement.startswith("CREATE TABLE IF NOT EXISTS pairwatch.incidents "):
            statement, n = re.subn(r"updated_at DateTime64\(6, 'UTC'\),\n    retracted +Bool DEFAULT false\n",
                                   "updated_at DateTime64(6, 'UTC')\n", statement)
            assert n == 1
        store_admin.command(single_node(statement, local, local_all))
    store_admin.command(f"INSERT INTO {local}.incidents (id, condition, pair, start, updated_at)"
                        " VALUES ('a', 'split_brain', 'p', now64(6), now64(6))")
    for _ in range(2):  # a second run changes nothing
        run_on_one_node(store_admin, statements(UPGRADE_4_SQL), local, local_all)
        upgrade_5(store_admin, local, local_all)
        assert_same_schema(store_admin, real, local, local_all)
    assert store_admin.query(f"SELECT id, retracted FROM {local_all}.incidents").result_rows == [("a", False)]


@pytest.mark.integration
def test_upgrade_5_is_clickhouse_sql_and_runs_on_the_cluster(store_admin: Any) -> None:
    found = statements(UPGRADE_5_SQL)
    assert [s.split(" ON CLUSTER")[0] for s in found] == ["ALTER TABLE pairwatch.messages",
                                                          "ALTER TABLE pairwatch_all.messages"]
    for statement in found:
        assert all(f"ADD COLUMN IF NOT EXISTS {name} Nullable(String)" in statement for name in schema.LEASE_COLUMNS)
        store_admin.query(f"EXPLAIN AST {statement}")


@pytest.mark.integration
def test_upgrade_5_brings_a_version_4_cluster_to_the_migrated_schema(
    store_admin: Any, store_target: StoreTarget, store_thread: StoreThread, databases: tuple[str, str, str]
) -> None:
    """cluster.sql without the lease columns (schema version 4) plus upgrade-5.sql is the migrated
    schema; the messages stored before have null lease fields."""
    real, local, local_all = databases
    migrate(store_target, store_thread, real)
    run_on_one_node(store_admin, v4_cluster_statements(), local, local_all)
    store_admin.command(f"INSERT INTO {local}.messages (received_at, id, host, raw) VALUES (now64(6), 1, 'dhcp-a', 'old')")
    for _ in range(2):  # a second run changes nothing
        upgrade_5(store_admin, local, local_all)
        assert_same_schema(store_admin, real, local, local_all)
    assert store_admin.query(f"SELECT raw, ip, detail FROM {local_all}.messages").result_rows == [("old", None, None)]


@pytest.mark.integration
def test_upgrade_6_is_clickhouse_sql_and_runs_on_the_cluster(store_admin: Any) -> None:
    found = statements(UPGRADE_6_SQL)
    assert len(found) == 1 and found[0].startswith(_WIDER_MERGES)
    assert found[0].endswith(f"= {schema.MERGE_SELECTOR_BASE}")
    store_admin.query(f"EXPLAIN AST {found[0]}")


@pytest.mark.integration
def test_upgrade_6_brings_a_version_5_cluster_to_the_migrated_schema(
    store_admin: Any, store_target: StoreTarget, store_thread: StoreThread, databases: tuple[str, str, str]
) -> None:
    real, local, local_all = databases
    migrate(store_target, store_thread, real)
    run_on_one_node(store_admin, v5_cluster_statements(), local, local_all)
    for _ in range(2):  # a second run changes nothing
        upgrade_6(store_admin, local, local_all)
        assert_same_schema(store_admin, real, local, local_all)
