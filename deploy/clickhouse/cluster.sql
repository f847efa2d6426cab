-- pairwatch's store on a ClickHouse cluster: replicated tables per shard, Distributed tables to
-- read them all. The same tables, columns, keys and TTLs as the single-node schema that pairwatch
-- creates itself (collector/schema.py, as its migrations leave it), with Replicated engines.
-- A cluster made with an earlier version of this file is brought up to date by the upgrade-N.sql
-- files it lacks, in order (3: messages without `at`; 4: incidents without `retracted`; 5:
-- messages without the lease columns): collectors refuse to start on it until then.
--
-- Layout (README, "Beyond one machine"):
--   * database `pairwatch` on every node: the tables pairwatch writes and reads, under the names
--     it uses. Collectors are sharded by pair: each collector takes a fixed set of pairs (both
--     servers of a pair forward to the same collector) and writes to a node of ITS shard:
--         pairwatch serve --store clickhouse://pairwatch@ch-shard1-a:8123/pairwatch
--     A shard therefore holds whole pairs, so a restarted collector finds its pairs' last states
--     and open incidents on its own shard, and every version of an incident lands on one shard
--     (incidents is a ReplacingMergeTree read with FINAL). Retried batches are deduplicated by
--     their insert_deduplication_token, as on a single node.
--   * database `pairwatch_all`: Distributed tables over `pairwatch` on every shard, for Grafana
--     (dashboards/pairwatch-timeline.json, variable `database` = pairwatch_all) and fleet-wide
--     queries. They have no sharding key: they are for reading; collectors never write to them.
--
-- Every server needs the macros {cluster}, {shard} and {replica} in its configuration, e.g.
--   <macros><cluster>pairwatch</cluster><shard>01</shard><replica>ch-shard1-a</replica></macros>
-- and ClickHouse Keeper (or ZooKeeper). Run once, on any node:
--   clickhouse-client --multiquery < cluster.sql
-- then start the collectors: their migration finds the tables in place and records itself in
-- each shard's schema_migrations. The TTLs (90 days of messages and events, 400 days of states
-- and incidents) are pairwatch's defaults; change them here before running the file.

CREATE DATABASE IF NOT EXISTS pairwatch ON CLUSTER '{cluster}';

CREATE DATABASE IF NOT EXISTS pairwatch_all ON CLUSTER '{cluster}';

CREATE TABLE IF NOT EXISTS pairwatch.schema_migrations ON CLUSTER '{cluster}'
(
    version    UInt32,
    name       String,
    applied_at DateTime64(3, 'UTC')
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
ORDER BY version;

CREATE TABLE IF NOT EXISTS pairwatch.messages ON CLUSTER '{cluster}'
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
    kind            LowCardinality(String),
    at              DateTime64(6, 'UTC') DEFAULT if(ts IS NULL OR ts > received_at + INTERVAL 1 DAY, received_at, assumeNotNull(ts)),
    ip              Nullable(String),
    mac             Nullable(String),
    client_name     Nullable(String),
    via             Nullable(String),
    server_id       Nullable(String),
    refused         Nullable(String),
    detail          Nullable(String)
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toYYYYMM(received_at)
-- The timeline's order (event time `at`, then receive time, then id; see collector/schema.py)
ORDER BY (host, at, received_at, id)
TTL toDateTime(received_at) + INTERVAL 90 DAY
SETTINGS replicated_deduplication_window = 1000;

-- Wider merges: many small inserts, each row rewritten fewer times (collector/schema.py, migration 6)
ALTER TABLE pairwatch.messages ON CLUSTER '{cluster}' MODIFY SETTING merge_selector_base = 20;

CREATE TABLE IF NOT EXISTS pairwatch.events ON CLUSTER '{cluster}'
(
    received_at  DateTime64(6, 'UTC'),
    id           UInt64,
    ts           Nullable(DateTime64(6, 'UTC')),
    host         LowCardinality(String),
    program      LowCardinality(String),
    kind         LowCardinality(String),
    relationship LowCardinality(String),
    fields       String
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toYYYYMM(received_at)
ORDER BY (host, received_at, id)
TTL toDateTime(received_at) + INTERVAL 90 DAY
SETTINGS replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS pairwatch.states ON CLUSTER '{cluster}'
(
    ts       DateTime64(6, 'UTC'),
    pair     LowCardinality(String),
    server   LowCardinality(String),
    side     LowCardinality(String),
    state    LowCardinality(String),
    previous LowCardinality(Nullable(String))
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
ORDER BY (pair, server, side, ts)
TTL toDateTime(ts) + INTERVAL 400 DAY
SETTINGS replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS pairwatch.incidents ON CLUSTER '{cluster}'
(
    id         String,
    condition  LowCardinality(String),
    pair       LowCardinality(String),
    servers    Array(String),
    start      DateTime64(6, 'UTC'),
    `end`      Nullable(DateTime64(6, 'UTC')),
    evidence   Array(String),
    updated_at DateTime64(6, 'UTC'),
    retracted  Bool DEFAULT false
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', updated_at)
ORDER BY (pair, condition, start, id)
TTL toDateTime(start) + INTERVAL 400 DAY
SETTINGS replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS pairwatch.hosts ON CLUSTER '{cluster}'
(
    key        LowCardinality(String),
    host       String,
    first_seen DateTime64(6, 'UTC')
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
ORDER BY (key, host)
SETTINGS replicated_deduplication_window = 1000;

-- Read-only views of every shard.

CREATE TABLE IF NOT EXISTS pairwatch_all.messages ON CLUSTER '{cluster}' AS pairwatch.messages
ENGINE = Distributed('{cluster}', pairwatch, messages);

CREATE TABLE IF NOT EXISTS pairwatch_all.events ON CLUSTER '{cluster}' AS pairwatch.events
ENGINE = Distributed('{cluster}', pairwatch, events);

CREATE TABLE IF NOT EXISTS pairwatch_all.states ON CLUSTER '{cluster}' AS pairwatch.states
ENGINE = Distributed('{cluster}', pairwatch, states);

CREATE TABLE IF NOT EXISTS pairwatch_all.incidents ON CLUSTER '{cluster}' AS pairwatch.incidents
ENGINE = Distributed('{cluster}', pairwatch, incidents);

CREATE TABLE IF NOT EXISTS pairwatch_all.hosts ON CLUSTER '{cluster}' AS pairwatch.hosts
ENGINE = Distributed('{cluster}', pairwatch, hosts);
