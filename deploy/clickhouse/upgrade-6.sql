-- Schema version 6 for a pairwatch cluster made with an earlier cluster.sql: messages merges
-- about 20 parts at a time instead of ClickHouse's default of 5, so a row written in one of the
-- collectors' many small inserts is rewritten fewer times on its way into a large part (on a
-- single node about a fifth less CPU per stored row; bench/README.md). On a single node pairwatch
-- does this itself (collector/schema.py, migration 6); replicated tables are left as they are,
-- and nothing breaks without it: it is tuning, not a change of what is stored.
--
-- A setting changes no data: it can run while collectors keep writing. Run once, on any node,
-- after upgrade-5.sql:
--   clickhouse-client --multiquery < upgrade-6.sql

ALTER TABLE pairwatch.messages ON CLUSTER '{cluster}' MODIFY SETTING merge_selector_base = 20;
