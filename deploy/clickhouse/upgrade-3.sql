-- Schema version 3 for a pairwatch cluster made with an earlier cluster.sql (pairwatch.messages
-- without the column `at`): messages gets the event time `at` and the sort key
-- (host, at, received_at, id), the timeline's order. On a single node pairwatch does this itself
-- (collector/schema.py, migration 3); on replicated tables collectors refuse to start and name
-- this file, since one collector cannot rebuild every shard's replicas.
--
-- A MergeTree's sort key can only be extended by columns added in the same ALTER, and `at` must
-- come before received_at, so the table is rebuilt: a new replicated table, filled on every shard
-- from that shard's own rows (parallel_distributed_insert_select = 2: the INSERT ... SELECT
-- between the two Distributed tables runs locally on each shard, so each pair's rows stay on
-- its shard), swapped in with EXCHANGE, the old one dropped; pairwatch_all.messages gets the
-- column. Existing rows get `at` from the column's DEFAULT: their header time `ts`, or
-- `received_at` where they have none or it lies more than a day ahead.
--
-- Stop every collector (rsyslog queues the lines meanwhile), then run once, on any node:
--   clickhouse-client --multiquery < upgrade-3.sql
-- and start the collectors: their migration finds `at` and records version 3. A run that stopped
-- part-way can be run again: it starts from the old table while the EXCHANGE has not happened,
-- and copies the already swapped table again otherwise. If the INSERT fails with "no sharding
-- key", the server does not run it per shard: run instead, on one replica of EACH shard,
--   INSERT INTO pairwatch.messages_v3 (received_at, ...) SELECT ... FROM pairwatch.messages
-- with the same columns, then the statements after the INSERT below.
-- Needs room for a second copy of messages while it runs. The TTL (90 days) is pairwatch's
-- default: keep what cluster.sql said.

DROP TABLE IF EXISTS pairwatch_all.messages_v3 ON CLUSTER '{cluster}' SYNC;

DROP TABLE IF EXISTS pairwatch.messages_v3 ON CLUSTER '{cluster}' SYNC;

CREATE TABLE IF NOT EXISTS pairwatch.messages_v3 ON CLUSTER '{cluster}'
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
    at              DateTime64(6, 'UTC') DEFAULT if(ts IS NULL OR ts > received_at + INTERVAL 1 DAY, received_at, assumeNotNull(ts))
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toYYYYMM(received_at)
ORDER BY (host, at, received_at, id)
TTL toDateTime(received_at) + INTERVAL 90 DAY
SETTINGS replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS pairwatch_all.messages_v3 ON CLUSTER '{cluster}' AS pairwatch.messages_v3
ENGINE = Distributed('{cluster}', pairwatch, messages_v3);

INSERT INTO pairwatch_all.messages_v3
    (received_at, id, ts, host, program, pid, facility, severity, msgid, structured_data, message, raw, transport, sender, kind)
SELECT received_at, id, ts, host, program, pid, facility, severity, msgid, structured_data, message, raw, transport, sender, kind
FROM pairwatch_all.messages
SETTINGS parallel_distributed_insert_select = 2;

EXCHANGE TABLES pairwatch.messages AND pairwatch.messages_v3 ON CLUSTER '{cluster}';

DROP TABLE IF EXISTS pairwatch_all.messages_v3 ON CLUSTER '{cluster}' SYNC;

DROP TABLE IF EXISTS pairwatch.messages_v3 ON CLUSTER '{cluster}' SYNC;

-- the Distributed table took its columns from the old table when it was made
ALTER TABLE pairwatch_all.messages ON CLUSTER '{cluster}'
    ADD COLUMN IF NOT EXISTS at DateTime64(6, 'UTC') DEFAULT if(ts IS NULL OR ts > received_at + INTERVAL 1 DAY, received_at, assumeNotNull(ts));
