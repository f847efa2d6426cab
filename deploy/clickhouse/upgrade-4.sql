-- Schema version 4 for a pairwatch cluster made with an earlier cluster.sql: incidents gets the
-- column `retracted` (an incident that lines arriving late showed never happened is kept and
-- marked, not deleted). On a single node pairwatch does this itself (collector/schema.py,
-- migration 4); on replicated tables collectors refuse to start and name this file, since one
-- collector cannot alter every shard and the Distributed table over them.
--
-- Adding a column with a default rewrites nothing: it can run while collectors of the old
-- version keep writing (their rows get `false`). Run once, on any node, after upgrade-3.sql:
--   clickhouse-client --multiquery < upgrade-4.sql
-- and start the upgraded collectors: their migration finds the column and records version 4.

ALTER TABLE pairwatch.incidents ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS retracted Bool DEFAULT false;

ALTER TABLE pairwatch_all.incidents ON CLUSTER '{cluster}' ADD COLUMN IF NOT EXISTS retracted Bool DEFAULT false;
