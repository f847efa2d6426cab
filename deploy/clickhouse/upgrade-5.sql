-- Schema version 5 for a pairwatch cluster made with an earlier cluster.sql: messages gets a lease
-- line's fields as columns (ip, mac, client_name, via, server_id, refused, detail), and upgraded
-- collectors stop writing an `events` row for every lease line. On a single node pairwatch does
-- this itself (collector/schema.py, migration 5); on replicated tables collectors refuse to start
-- and name this file, since one collector cannot alter every shard and the Distributed table
-- over them.
--
-- Adding nullable columns rewrites nothing: it can run while collectors of the old version keep
-- writing (their rows get nulls, and their events rows as before). Run once, on any node, after
-- upgrade-4.sql:
--   clickhouse-client --multiquery < upgrade-5.sql
-- and start the upgraded collectors: their migration finds the columns and records version 5.

ALTER TABLE pairwatch.messages ON CLUSTER '{cluster}'
    ADD COLUMN IF NOT EXISTS ip Nullable(String),
    ADD COLUMN IF NOT EXISTS mac Nullable(String),
    ADD COLUMN IF NOT EXISTS client_name Nullable(String),
    ADD COLUMN IF NOT EXISTS via Nullable(String),
    ADD COLUMN IF NOT EXISTS server_id Nullable(String),
    ADD COLUMN IF NOT EXISTS refused Nullable(String),
    ADD COLUMN IF NOT EXISTS detail Nullable(String);

ALTER TABLE pairwatch_all.messages ON CLUSTER '{cluster}'
    ADD COLUMN IF NOT EXISTS ip Nullable(String),
    ADD COLUMN IF NOT EXISTS mac Nullable(String),
    ADD COLUMN IF NOT EXISTS client_name Nullable(String),
    ADD COLUMN IF NOT EXISTS via Nullable(String),
    ADD COLUMN IF NOT EXISTS server_id Nullable(String),
    ADD COLUMN IF NOT EXISTS refused Nullable(String),
    ADD COLUMN IF NOT EXISTS detail Nullable(String);
