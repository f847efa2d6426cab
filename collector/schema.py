"""The store's schema and queries: SQL text only, the same for chdb and a ClickHouse server.

Nothing here talks to a database. `collector.store` formats these templates and runs them
through clickhouse-connect, whichever engine is behind it (DESIGN.md "Dependencies": same
SQL, same schema, same code path), so every statement is plain ClickHouse SQL a server
accepts over HTTP unchanged.

Placeholders (`str.format`): `{db}` (the database, a checked identifier),
`{messages_ttl_days}` and `{states_ttl_days}` (positive integers, baked into the DDL when a
migration runs: changing them later needs an `ALTER TABLE ... MODIFY TTL`, which no
migration here does), and `{where}` in the query skeletons (built by `collector.store` from
fixed fragments). Values are never formatted in: queries bind them with clickhouse-connect's
`%(name)s` parameters, and times travel as integer microseconds since the epoch
(`fromUnixTimestamp64Micro` in, `toUnixTimestamp64Micro` out), exact whatever time zone
the client or server runs in.

Migrations are an ordered tuple of `(version, name, steps)`. A migration's steps
are idempotent, so a migration interrupted anywhere (between two statements, or between its
last statement and its `schema_migrations` row) simply runs again: a statement is either
idempotent itself (`IF NOT EXISTS`, `IF EXISTS`) or a `When`, which runs only while a query
on the system tables says the work is still to do; a `Refuse` stops the migration with a
message (a state it must not touch). Add new versions at the end; never edit an applied one.

Tables (all times `DateTime64(6, 'UTC')`):

* `messages`: every received line, raw, one row per line. `id` is the collector-assigned
  message id (unique per host and receive instant; it also orders lines that arrived in
  the same microsecond). `at` is the line's event time (DESIGN.md "Event time"; built by
  `collector.rows.line_rows`), the timeline's order; migration 3 added it and rebuilt the
  table on the key (host, at, received_at, id).
* `events`: the parsed event of each message (same `host`, `received_at`, `id`), its fields
  as JSON text.
* `states`: one row per correlator `StateChanged`.
* `incidents`: one row per incident version (open, then closed, then corrected or
  `retracted` when late lines re-decide it); ReplacingMergeTree keeps the latest by
  `updated_at`, so reads use `FINAL`.
* `schema_migrations`: which migrations ran.

Every data table has `non_replicated_deduplication_window`, so a batch retried with the same
`insert_deduplication_token` is stored once (DESIGN.md "Reliability rules").
"""

from __future__ import annotations

from typing import Final, NamedTuple

DEFAULT_MESSAGES_TTL_DAYS: Final = 90
DEFAULT_STATES_TTL_DAYS: Final = 400
MAX_TTL_DAYS: Final = 10_000
"""About 27 years: TTLs are computed as `DateTime`, which ends in 2106 (see `check_ttl_days`)."""


class When(NamedTuple):
    """A migration statement run only while `check` (a query giving one number) gives non-zero."""

    check: str
    statement: str


class Refuse(NamedTuple):
    """A migration step that stops the migration with `message` when `check` gives non-zero."""

    check: str
    message: str


Step = str | When | Refuse
"""One step of a migration: a statement that is idempotent itself, or a guarded one."""

# --- bootstrap: what must exist before the migrations table can be read ------------------

BOOTSTRAP: Final[tuple[str, ...]] = (
    "CREATE DATABASE IF NOT EXISTS {db}",
    """CREATE TABLE IF NOT EXISTS {db}.schema_migrations
(
    version    UInt32,
    name       String,
    applied_at DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY version""",
)

# --- migrations --------------------------------------------------------------------------

# messages as migration 1 created it; migration 3 rebuilt it on an event-time key (`_MESSAGES_V3`,
# whose comment explains the key now in use)
_MESSAGES = """CREATE TABLE IF NOT EXISTS {db}.messages
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
-- The one read is "the timeline of these hosts (the two servers of a pair, or all) over a time
-- range, in time order". host first: a fleet has tens of hosts, so the index narrows to the granules
-- of each asked host and then, within each, to the time range (an unfiltered timeline is
-- one range scan per host). received_at, not ts: it is never null, it is one clock for every
-- host (header times drift and lie), and the month partition already prunes by it. id last
-- makes the key unique, so (received_at, id) is a total order and a pagination cursor.
ORDER BY (host, received_at, id)
TTL toDateTime(received_at) + INTERVAL {messages_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000"""

_EVENTS = """CREATE TABLE IF NOT EXISTS {db}.events
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
ENGINE = MergeTree
PARTITION BY toYYYYMM(received_at)
-- The same key as messages: the timeline join reads both tables through the same
-- (hosts, time range) predicate, and (host, received_at, id) identifies the message.
ORDER BY (host, received_at, id)
TTL toDateTime(received_at) + INTERVAL {messages_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000"""

_STATES = """CREATE TABLE IF NOT EXISTS {db}.states
(
    ts       DateTime64(6, 'UTC'),
    pair     LowCardinality(String),
    server   LowCardinality(String),
    side     LowCardinality(String),
    state    LowCardinality(String),
    previous LowCardinality(Nullable(String))
)
ENGINE = MergeTree
-- Read as "latest state per (pair, server, side)" at restart and "the history of a pair":
-- both are prefixes of this key.
ORDER BY (pair, server, side, ts)
TTL toDateTime(ts) + INTERVAL {states_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000"""

_INCIDENTS = """CREATE TABLE IF NOT EXISTS {db}.incidents
(
    id         String,
    condition  LowCardinality(String),
    pair       LowCardinality(String),
    servers    Array(String),
    start      DateTime64(6, 'UTC'),
    `end`      Nullable(DateTime64(6, 'UTC')),
    evidence   Array(String),
    updated_at DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
-- An incident is written when it opens and again when it closes; both rows share this key
-- (start never changes), so merges and FINAL keep only the row with the latest updated_at.
-- pair first: the API lists the incidents of a pair.
ORDER BY (pair, condition, start, id)
TTL toDateTime(start) + INTERVAL {states_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000"""

_HOSTS = """CREATE TABLE IF NOT EXISTS {db}.hosts
(
    key        LowCardinality(String),
    host       String,
    first_seen DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree
-- Every spelling a host's lines carry (`host` as in messages.host: "DHCP1", "dhcp1.example.net")
-- under the form the correlator compares (`key`, as in states.server: "dhcp1"), so a pair's
-- timeline finds all of its hosts' lines. A row per spelling, written again after a restart
-- (the merge keeps one); no TTL: a host that keeps logging must keep its row.
ORDER BY (key, host)
SETTINGS non_replicated_deduplication_window = 1000"""

_EVENT_TIME = "if(ts IS NULL OR ts > received_at + INTERVAL 1 DAY, received_at, assumeNotNull(ts))"
"""A line's event time from its own columns (`collector.rows.line_rows`' rule, whose one day
is `FUTURE_SKEW_US`): the header time, unless there is none or it lies more than a day ahead
of the receive time. The column's DEFAULT: what the migration's copy and any insert without
`at` (a collector not yet upgraded, beside upgraded ones on a server) store."""

_MESSAGES_V3 = """CREATE TABLE IF NOT EXISTS {db}.messages_v3
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
    at              DateTime64(6, 'UTC') DEFAULT """ + _EVENT_TIME + """
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(received_at)
-- The one read is "the timeline of these hosts (the two servers of a pair, or all) over a time
-- range, in the order things happened" (DESIGN.md "Event time"). host first: a fleet has tens of
-- hosts, so the index narrows to the granules of each asked host and then, within each, to the
-- range of event times `at` (an unfiltered timeline is one range scan per host), read in the
-- timeline's own order. at, not received_at: a line that arrives late (a forwarder's queue
-- flushed after an outage, a file ingested beside live traffic) belongs where it happened; at is
-- never null (no header time: the receive time). received_at then id break ties and make the key
-- unique, so (at, received_at, id) is a total order and the pagination cursor; with host they
-- also identify the message for the events join. The partitions and the TTL stay on
-- received_at: an event time can be anything a sender's clock says, a receive time cannot, and
-- at is never more than a day after received_at, so a lower bound on at bounds received_at too
-- and still prunes months.
ORDER BY (host, at, received_at, id)
TTL toDateTime(received_at) + INTERVAL {messages_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000"""

_MESSAGES_V2_COLUMNS = ("received_at, id, ts, host, program, pid, facility, severity, msgid, structured_data, message,"
                        " raw, transport, sender, kind")
_LACKS_AT = ("SELECT count() = 0 FROM system.columns"
             " WHERE database = '{db}' AND table = 'messages' AND name = 'at'")
_V3_IS_LOCAL = ("SELECT count() FROM system.tables"
                " WHERE database = '{db}' AND name = 'messages_v3' AND engine = 'MergeTree'")
_SHARED_WITHOUT_AT = ("SELECT count() FROM system.tables WHERE database = '{db}' AND name = 'messages'"
                      " AND engine != 'MergeTree' AND (" + _LACKS_AT + ")")

_EVENT_TIME_ORDER = (
    # a ClickHouse server's replicated tables (deploy/clickhouse/cluster.sql) are not rebuilt
    # from one node: their upgrade is deploy/clickhouse/upgrade-3.sql, run once per cluster
    Refuse(_SHARED_WITHOUT_AT, "table {db}.messages is replicated and has no column `at`: upgrade it with "
                               "deploy/clickhouse/upgrade-3.sql (collectors stopped), then start again"),
    # a copy left by an interrupted run (or, after the exchange, the old table): start afresh
    When(_V3_IS_LOCAL, "DROP TABLE IF EXISTS {db}.messages_v3 SYNC"),
    When(_LACKS_AT, _MESSAGES_V3),
    When(_LACKS_AT, f"INSERT INTO {{db}}.messages_v3 ({_MESSAGES_V2_COLUMNS})"
                    f" SELECT {_MESSAGES_V2_COLUMNS} FROM {{db}}.messages"),
    When(_LACKS_AT, "EXCHANGE TABLES {db}.messages AND {db}.messages_v3"),
    When(_V3_IS_LOCAL, "DROP TABLE IF EXISTS {db}.messages_v3 SYNC"),
)
"""Migration 3: messages gets `at` and the key (host, at, received_at, id). A sort key can
only be extended by columns added in the same ALTER, and `at` must come before received_at,
so the table is rebuilt: a copy with the new key, filled from the old one (`at` by its
DEFAULT), swapped in atomically (EXCHANGE: an Atomic database, ClickHouse's default), the old
one dropped. Until the swap the old table is whole and the copy is dropped and made again by a
rerun; after it, only the drop remains. Nothing may write to messages meanwhile: the service
and `ingest` migrate before they write, but collectors of an older version sharing one server's
database must be stopped while the first upgraded one starts (rows they insert during the copy
would stay in the old table)."""

_LACKS_RETRACTED = ("SELECT count() = 0 FROM system.columns"
                    " WHERE database = '{db}' AND table = 'incidents' AND name = 'retracted'")
_RETRACTION = (
    Refuse("SELECT count() FROM system.tables WHERE database = '{db}' AND name = 'incidents'"
           " AND engine != 'ReplacingMergeTree' AND (" + _LACKS_RETRACTED + ")",
           "table {db}.incidents is replicated and has no column `retracted`: upgrade it with "
           "deploy/clickhouse/upgrade-4.sql, then start again"),
    "ALTER TABLE {db}.incidents ADD COLUMN IF NOT EXISTS retracted Bool DEFAULT false",
)
"""Migration 4: an incident that lines arriving late showed never happened is kept, marked
`retracted` (`collector.history`), rather than left standing or deleted. On replicated tables
(every shard, and the Distributed table over them) that is deploy/clickhouse/upgrade-4.sql."""

LEASE_COLUMNS: Final = ("ip", "mac", "client_name", "via", "server_id", "refused", "detail")
"""A lease line's fields (`parsers.events.Lease`), as columns of its message (migration 5)."""
_LACKS_LEASE = ("SELECT count() = 0 FROM system.columns"
                " WHERE database = '{db}' AND table = 'messages' AND name = 'detail'")
_LEASE_FIELDS = (
    Refuse("SELECT count() FROM system.tables WHERE database = '{db}' AND name = 'messages'"
           " AND engine != 'MergeTree' AND (" + _LACKS_LEASE + ")",
           "table {db}.messages is replicated and has no lease columns: upgrade it with "
           "deploy/clickhouse/upgrade-5.sql, then start again"),
    "ALTER TABLE {db}.messages " + ", ".join(f"ADD COLUMN IF NOT EXISTS {name} Nullable(String)"
                                             for name in LEASE_COLUMNS),
)
"""Migration 5: a lease line's fields go in typed columns of its message, and its `events` row
(JSON text, one per line: most of the work of storing a line) is no longer written; `events`
keeps the lines that carry more (state changes, pools, ...). Rows stored before keep their
`events` rows and read as before (`Store.timeline` takes the fields from both)."""

MERGE_SELECTOR_BASE: Final = 20
"""ClickHouse merges a MergeTree's parts in ranges of about this many (its default is 5)."""
_MERGES_NARROW = ("SELECT count() FROM system.tables WHERE database = '{db}' AND name = 'messages'"
                  " AND engine = 'MergeTree' AND position(create_table_query, 'merge_selector_base') = 0"
                  " AND (SELECT count() FROM system.merge_tree_settings WHERE name = 'merge_selector_base') > 0")
_WIDER_MERGES = (
    When(_MERGES_NARROW, f"ALTER TABLE {{db}}.messages MODIFY SETTING merge_selector_base = {MERGE_SELECTOR_BASE}"),
)
"""Migration 6: messages, written in many small inserts, merges more parts at a time, so each
row is rewritten fewer times on its way to a large part: about a fifth less CPU per stored row
(bench/README.md). Only a plain MergeTree whose engine knows the setting; on replicated tables
it is deploy/clickhouse/upgrade-6.sql, optional (cluster.sql sets it for new clusters)."""

STOP_MERGES: Final = "SYSTEM STOP MERGES {db}.messages"
START_MERGES: Final = "SYSTEM START MERGES {db}.messages"
"""The engine's background merges of `messages`, held and let go (`Store.hold_merges`)."""

MIGRATIONS: Final[tuple[tuple[int, str, tuple[Step, ...]], ...]] = (
    (1, "initial tables: messages, events, states, incidents", (_MESSAGES, _EVENTS, _STATES, _INCIDENTS)),
    (2, "hosts: the spellings of each host name", (_HOSTS,)),
    (3, "messages: event time `at`, the timeline's order", _EVENT_TIME_ORDER),
    (4, "incidents: `retracted`, for incidents late lines showed never happened", _RETRACTION),
    (5, "messages: lease fields as columns; events only for lines that carry more", _LEASE_FIELDS),
    (6, "messages: wider merges, each row rewritten fewer times", _WIDER_MERGES),
)

# --- column order for inserts, with the types (so an insert needs no DESCRIBE round trip) --

MESSAGE_COLUMNS: Final = (
    ("received_at", "DateTime64(6, 'UTC')"),
    ("id", "UInt64"),
    ("ts", "Nullable(DateTime64(6, 'UTC'))"),
    ("host", "LowCardinality(String)"),
    ("program", "LowCardinality(String)"),
    ("pid", "Nullable(UInt32)"),
    ("facility", "Nullable(UInt8)"),
    ("severity", "Nullable(UInt8)"),
    ("msgid", "String"),
    ("structured_data", "String"),
    ("message", "String"),
    ("raw", "String"),
    ("transport", "LowCardinality(String)"),
    ("sender", "String"),
    ("kind", "LowCardinality(String)"),
    ("at", "DateTime64(6, 'UTC')"),
    *((name, "Nullable(String)") for name in LEASE_COLUMNS),
)
EVENT_COLUMNS: Final = (
    ("received_at", "DateTime64(6, 'UTC')"),
    ("id", "UInt64"),
    ("ts", "Nullable(DateTime64(6, 'UTC'))"),
    ("host", "LowCardinality(String)"),
    ("program", "LowCardinality(String)"),
    ("kind", "LowCardinality(String)"),
    ("relationship", "LowCardinality(String)"),
    ("fields", "String"),
)
STATE_COLUMNS: Final = (
    ("ts", "DateTime64(6, 'UTC')"),
    ("pair", "LowCardinality(String)"),
    ("server", "LowCardinality(String)"),
    ("side", "LowCardinality(String)"),
    ("state", "LowCardinality(String)"),
    ("previous", "LowCardinality(Nullable(String))"),
)
INCIDENT_COLUMNS: Final = (
    ("id", "String"),
    ("condition", "LowCardinality(String)"),
    ("pair", "LowCardinality(String)"),
    ("servers", "Array(String)"),
    ("start", "DateTime64(6, 'UTC')"),
    ("end", "Nullable(DateTime64(6, 'UTC'))"),
    ("evidence", "Array(String)"),
    ("updated_at", "DateTime64(6, 'UTC')"),
    ("retracted", "Bool"),
)
HOST_COLUMNS: Final = (
    ("key", "LowCardinality(String)"),
    ("host", "String"),
    ("first_seen", "DateTime64(6, 'UTC')"),
)
TABLE_COLUMNS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "messages": MESSAGE_COLUMNS,
    "events": EVENT_COLUMNS,
    "states": STATE_COLUMNS,
    "incidents": INCIDENT_COLUMNS,
    "hosts": HOST_COLUMNS,
}
"""The data tables, each with its columns in DDL order and their types."""

# --- statements the store runs -----------------------------------------------------------

APPLIED_VERSIONS: Final = "SELECT DISTINCT version FROM {db}.schema_migrations ORDER BY version"

TIMELINE: Final = """SELECT
    id,
    toUnixTimestamp64Micro(received_at),
    toUnixTimestamp64Micro(ts),
    host,
    program,
    pid,
    kind,
    message,
    toUnixTimestamp64Micro(at),
    """ + ",\n    ".join(LEASE_COLUMNS) + """
FROM {db}.messages
WHERE {where}
ORDER BY at, received_at, id
LIMIT %(limit)s"""
"""One page of messages in event-time order; `{where}` is built from the `TIMELINE_*` fragments."""

TIMELINE_EVENTS: Final = """SELECT host, toUnixTimestamp64Micro(received_at), id, fields
FROM {db}.events
WHERE host IN %(hosts)s
    AND received_at >= fromUnixTimestamp64Micro(%(first)s, 'UTC')
    AND received_at <= fromUnixTimestamp64Micro(%(last)s, 'UTC')
    AND id IN %(ids)s"""
"""The events of one page of messages: the page's hosts and time span bound the index range
(a join would read every event the page's filter matches, the whole table when unfiltered)."""

TIMELINE_HOSTS: Final = "host IN %(hosts)s"
TIMELINE_SINCE: Final = (
    "at >= fromUnixTimestamp64Micro(%(since)s, 'UTC')"
    " AND received_at >= fromUnixTimestamp64Micro(%(since_received)s, 'UTC')"
)
"""By event time; `since_received` is `since` less the future skew limit (a row's `at` is never
later than that after its `received_at`): the same rows, with the month partitions pruned."""
TIMELINE_UNTIL: Final = "at < fromUnixTimestamp64Micro(%(until)s, 'UTC')"
TIMELINE_AFTER: Final = (
    "at >= fromUnixTimestamp64Micro(%(after_at)s, 'UTC')"
    " AND received_at >= fromUnixTimestamp64Micro(%(after_received_min)s, 'UTC')"
    " AND (at, received_at, id) > (fromUnixTimestamp64Micro(%(after_at)s, 'UTC'),"
    " fromUnixTimestamp64Micro(%(after_received)s, 'UTC'), %(after_id)s)"
)
"""Rows after a cursor (at, received_at, id); the two range conditions let the index and the
partitions skip what lies before it (the tuple comparison alone is not used by the index)."""

INCIDENTS: Final = """SELECT
    id,
    condition,
    pair,
    servers,
    toUnixTimestamp64Micro(start),
    toUnixTimestamp64Micro(`end`),
    evidence,
    toUnixTimestamp64Micro(updated_at),
    retracted
FROM {db}.incidents FINAL
WHERE {where}
ORDER BY start, pair, condition, id"""
INCIDENTS_PAIR: Final = "pair = %(pair)s"
INCIDENTS_OPEN: Final = "`end` IS NULL AND NOT retracted"

LAST_STATES: Final = """SELECT
    pair,
    server,
    side,
    argMax(state, ts),
    argMax(previous, ts),
    toUnixTimestamp64Micro(max(ts))
FROM {db}.states
GROUP BY pair, server, side
ORDER BY pair, server, side"""
"""The latest state per (pair, server, side): what a restarted collector starts from."""

PAIR_HOSTS: Final = """SELECT DISTINCT host FROM
(
    SELECT host FROM {db}.hosts WHERE key IN (SELECT server FROM {db}.states WHERE pair = %(pair)s)
    UNION ALL
    SELECT server AS host FROM {db}.states WHERE pair = %(pair)s
)
ORDER BY host"""
"""Every spelling of the pair's hosts (the servers themselves too, for lines stored before the
hosts table existed)."""

STATES_BEFORE: Final = """SELECT
    server,
    side,
    argMax(state, ts),
    argMax(previous, ts),
    toUnixTimestamp64Micro(max(ts))
FROM {db}.states
WHERE pair = %(pair)s AND ts < fromUnixTimestamp64Micro(%(since)s, 'UTC')
GROUP BY server, side
ORDER BY server, side"""
"""Each of a pair's (server, side) state in force at `since`: where its band in a window begins."""

STATES_WINDOW: Final = """SELECT server, side, state, previous, toUnixTimestamp64Micro(ts)
FROM {db}.states
WHERE pair = %(pair)s
    AND ts >= fromUnixTimestamp64Micro(%(since)s, 'UTC')
    AND ts < fromUnixTimestamp64Micro(%(until)s, 'UTC')
ORDER BY ts, server, side"""
"""A pair's state changes within [since, until), in time order."""


def check_ttl_days(name: str, days: object) -> int:
    """`days` if it is a usable TTL, else ValueError naming `name`.

    The TTL expressions are `DateTime` (seconds, up to 2106), so a row's expiry must stay
    below that: a TTL past it wraps around and the row expires at once.
    """
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_TTL_DAYS:
        raise ValueError(f"{name} must be a whole number of days from 1 to {MAX_TTL_DAYS}, not {days!r}")
    return days


def render(statement: str, db: str, *, messages_ttl_days: int, states_ttl_days: int) -> str:
    """A DDL template with its database and TTLs formatted in."""
    check_ttl_days("messages_ttl_days", messages_ttl_days)
    check_ttl_days("states_ttl_days", states_ttl_days)
    return statement.format(db=db, messages_ttl_days=messages_ttl_days, states_ttl_days=states_ttl_days)


def render_step(step: Step, db: str, *, messages_ttl_days: int, states_ttl_days: int) -> Step:
    """A migration step with its database and TTLs formatted into each of its texts."""
    ttl = {"messages_ttl_days": messages_ttl_days, "states_ttl_days": states_ttl_days}
    if isinstance(step, str):
        return render(step, db, **ttl)
    return type(step)(*(render(text, db, **ttl) for text in step))
