"""deploy/clickhouse/cluster.sql against the real schema (collector/schema.py's migrations).

No ClickHouse cluster with Keeper exists here, so two checks with the session's chdb engine:
every statement, exactly as shipped, parses as ClickHouse SQL (`EXPLAIN AST`); and its
single-node equivalent (no ON CLUSTER, each Replicated engine as its plain MergeTree, the
replicated deduplication window as the non-replicated one, Distributed as a Merge table over
the same table) creates tables whose `SHOW CREATE TABLE` is identical to the migrated schema's:
same columns and types, keys, partitioning, TTLs and settings.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from collector import schema
from tests.deploy.files import CLUSTER_SQL

TABLES = ("schema_migrations", *schema.TABLE_COLUMNS)
REPLICATED = re.compile(r"Replicated(\w*MergeTree)\('(/clickhouse/tables/\{shard\}/[^']*)', '\{replica\}'(?:, )?")
DISTRIBUTED = re.compile(r"Distributed\('\{cluster\}', (\w+), (\w+)\)")


def statements() -> list[str]:
    body = "\n".join(line for line in CLUSTER_SQL.read_text().splitlines() if not line.lstrip().startswith("--"))
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


def test_every_statement_is_clickhouse_sql_and_runs_on_the_cluster(store_admin: Any) -> None:
    found = statements()
    assert len(found) == 2 + len(TABLES) + len(schema.TABLE_COLUMNS)
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


def test_single_node_equivalent_is_the_migrated_schema(store_admin: Any, databases: tuple[str, str, str]) -> None:
    real, local, local_all = databases
    ttl = {"messages_ttl_days": schema.DEFAULT_MESSAGES_TTL_DAYS, "states_ttl_days": schema.DEFAULT_STATES_TTL_DAYS}
    for statement in schema.BOOTSTRAP:
        store_admin.command(schema.render(statement, real, **ttl))
    for _, _, ddl in schema.MIGRATIONS:
        for statement in ddl:
            store_admin.command(schema.render(statement, real, **ttl))
    for statement in statements():
        translated = single_node(statement, local, local_all)
        assert "Replicated" not in translated and "Distributed" not in translated
        store_admin.command(translated)

    def show(db: str, table: str) -> str:
        text = store_admin.query(f"SHOW CREATE TABLE {db}.{table}").result_rows[0][0]
        return str(text).replace(f"{db}.", "DB.")

    for table in TABLES:
        assert show(local, table) == show(real, table), table
    for table, columns in schema.TABLE_COLUMNS.items():
        described = store_admin.query(f"DESCRIBE TABLE {local_all}.{table}").result_rows
        assert [(row[0], row[1]) for row in described] == list(columns), table
