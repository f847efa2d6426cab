"""The store: messages, events, states and incidents in ClickHouse, embedded or on a server.

Everything goes through clickhouse-connect: `interface="chdb"` for the embedded store
(`embedded:PATH`, the default) or HTTP(S) to a ClickHouse server (`clickhouse://`,
`clickhouses://`); same SQL (`collector.schema`), same code path. Where the store is:
`collector.store_url`; the embedded engine's settings, threads and lock: `collector.store_engine`.

Threading: a `Store` is used from the one thread that opened it (it refuses calls from any
other); the asyncio service reaches it only through `collector.store_thread.StoreThread`.

Rows are built by the pure functions of `collector.rows` in the column order of the
`*_COLUMNS` tuples, times as integer microseconds since the epoch; `Store.insert` sends one
batch with an `insert_deduplication_token`, so a batch retried (from memory or the spool)
with the same token is stored once.

Exceptions: clickhouse-connect and chdb errors never leave this module as they are: they
become `collector.store_errors`' `StoreError` or `StoreUnavailable`, and a URL or database name
that cannot be used a `collector.store_url.StoreConfigError` (CLI exit 2). Errors in the
caller's own data (a row of the wrong shape) are programming errors and are not mapped.
"""

from __future__ import annotations

import functools
import json
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final, TypeVar

from collector import schema
from collector.rows import FUTURE_SKEW_US, event_time_us, iso_micros, micros
from collector.store_engine import EngineThreads, check_unlocked, engine_options, without_pandas
from collector.store_errors import StoreError, StoreUnavailable, map_store_errors
from collector.store_url import IDENTIFIER, StoreConfigError, StoreTarget, parse_store_url
from parsers.events import LEASE_LINES, LINE_KINDS

__all__ = [
    "EVENTS",
    "COLUMNS",
    "EVENT_COLUMNS",
    "INCIDENTS",
    "HOSTS",
    "HOST_COLUMNS",
    "INCIDENT_COLUMNS",
    "MESSAGES",
    "MESSAGE_COLUMNS",
    "STATES",
    "STATE_COLUMNS",
    "Store",
    "TimelineCursor",
    "arrow_messages",
]

DEFAULT_CONNECT_TIMEOUT: Final = 10.0
DEFAULT_QUERY_TIMEOUT: Final = 300.0
DEFAULT_TIMELINE_LIMIT: Final = 1000

MESSAGES: Final = "messages"
EVENTS: Final = "events"
STATES: Final = "states"
INCIDENTS: Final = "incidents"
HOSTS: Final = "hosts"

MESSAGE_COLUMNS: Final = tuple(name for name, _ in schema.MESSAGE_COLUMNS)
EVENT_COLUMNS: Final = tuple(name for name, _ in schema.EVENT_COLUMNS)
STATE_COLUMNS: Final = tuple(name for name, _ in schema.STATE_COLUMNS)
INCIDENT_COLUMNS: Final = tuple(name for name, _ in schema.INCIDENT_COLUMNS)
HOST_COLUMNS: Final = tuple(name for name, _ in schema.HOST_COLUMNS)
COLUMNS: Final = {MESSAGES: MESSAGE_COLUMNS, EVENTS: EVENT_COLUMNS, STATES: STATE_COLUMNS, INCIDENTS: INCIDENT_COLUMNS,
                  HOSTS: HOST_COLUMNS}
"""Each data table's insert columns, in row order."""

INSERT_BLOCK_ROWS: Final = 1024
"""Rows per Native block of an insert. clickhouse-connect writes each block's string column
in one C call that holds the GIL; with its own, larger blocks the event loop's thread waited
that long (bench/latency.py). The engine squashes the blocks into one part again."""
_ENGINE_MEMORY: Final = "SELECT value FROM system.metrics WHERE metric = 'MemoryTracking'"
_LEASE_KINDS: Final = frozenset(cls.kind for cls in LINE_KINDS[:LEASE_LINES])
"""Kinds whose fields are the message's lease columns (`schema.LEASE_COLUMNS`)."""


T = TypeVar("T")


def _native_body(context: Any) -> bytes:
    """An insert's Native blocks, encoded in memory (clickhouse-connect's own encoder).

    For the embedded engine the client writes an insert to a temporary file that the engine
    then reads; given the blocks one by one it makes one write per block. Each write lets go
    of the GIL, and while the event loop's thread is busy, taking it back costs the store
    thread a switch interval (5 ms) or more: inserts took 130-360 ms under load and 45-65 ms
    idle (bench/README.md). The whole body is one write."""
    from clickhouse_connect.driver.transform import NativeTransform

    chunks = list(NativeTransform.build_insert(context))
    if context.insert_exception is not None:  # (a value its column's type cannot take)
        raise context.insert_exception
    # the first block follows the INSERT statement (for an HTTP body); the engine's query names the columns
    chunks[0] = chunks[0][chunks[0].index(b"\n") + 1:]
    return b"".join(chunks)


ARROW_BLOCK_ROWS: Final = 16_384
"""Rows per Arrow record batch: each column of a batch is converted in one C call that holds
the GIL, 25-50 ns a value, so a batch holds it for about a millisecond at most."""
_ARROW_ERRORS: Final = (TypeError, ValueError, OverflowError)
"""What pyarrow raises for a value its column's type cannot take (its ArrowInvalid and
ArrowTypeError derive from ValueError and TypeError)."""


@functools.cache
def _arrow_type(type_name: str) -> tuple[Any, Any, bool]:
    """(Arrow type the values convert to, Arrow type the engine reads, nullable) for a column
    type of the messages table.

    Times are kept as integer microseconds: int64, viewed as a UTC timestamp in µs (a
    zero-copy cast), which is what `DateTime64(6, 'UTC')` holds, as clickhouse-connect writes
    an int there."""
    import pyarrow as pa  # type: ignore[import-untyped]

    inner = type_name
    if inner.startswith("LowCardinality("):
        inner = inner[len("LowCardinality("):-1]
    nullable = inner.startswith("Nullable(")
    if nullable:
        inner = inner[len("Nullable("):-1]
    if inner == "DateTime64(6, 'UTC')":
        return pa.int64(), pa.timestamp("us", tz="UTC"), nullable
    arrow = {"String": pa.string(), "UInt8": pa.uint8(), "UInt32": pa.uint32(), "UInt64": pa.uint64()}[inner]
    return arrow, arrow, nullable


def _arrow_table(type_names: Sequence[str], column_names: Sequence[str], data: Sequence[Sequence[Any]],
                 between: Callable[[], object] | None) -> Any | None:
    """A messages batch as an Arrow table, or None when a value does not convert (a datetime
    or an ISO string for a time, None in a column that is not Nullable): the caller then
    encodes the batch as Native, which converts what it can and raises for the rest, as
    before. Only for messages, the table with nearly all the rows, whose values the row
    builders make as ints and strs (`collector.rows`; pyarrow would take a float for an int).

    Why: converting Python values holds the GIL, which the line path needs too, and
    clickhouse-connect's Native encoder took 2.2-2.4 µs a row, pyarrow 1.4-1.5
    (bench/README.md). pyarrow is loaded by chdb already. Writing the table as a stream is
    left to `_arrow_stream`, which lets go of the GIL."""
    import pyarrow as pa

    types = [_arrow_type(name) for name in type_names]
    arrow_schema = pa.schema([pa.field(name, target, nullable=nullable)
                              for name, (_, target, nullable) in zip(column_names, types, strict=True)])
    batches = []
    size = len(data[0])
    try:
        for start in range(0, size, ARROW_BLOCK_ROWS):
            arrays = []
            for values, (source, target, nullable) in zip(data, types, strict=True):
                # (a batch of one block is converted from its columns as they are: a slice
                # copies every reference, about 6 ns a value where converting it takes 25-50)
                block = values if size <= ARROW_BLOCK_ROWS else values[start:start + ARROW_BLOCK_ROWS]
                array = pa.array(block, type=source)
                if array.null_count and not nullable:
                    return None
                arrays.append(array if source == target else array.view(target))
                if between is not None:
                    between()
            batches.append(pa.record_batch(arrays, schema=arrow_schema))
    except _ARROW_ERRORS:
        return None
    return pa.Table.from_batches(batches, schema=arrow_schema)


def _arrow_stream(table: Any) -> memoryview:
    """An Arrow table as the ArrowStream body an embedded store inserts, without a copy into
    bytes. pyarrow writes it without the GIL, so on the store's thread it costs the event loop
    nothing; on the loop's thread, the write and the copy took 160-330 ns of the 2 µs a row for
    which a batch's encoding held the loop (bench/README.md)."""
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as stream:
        stream.write_table(table)
    return memoryview(sink.getvalue())


def arrow_messages(data: Sequence[Sequence[Any]], columns: Sequence[str] = MESSAGE_COLUMNS,
                   between: Callable[[], object] | None = None) -> Any | None:
    """A messages batch by column as the Arrow table an embedded store inserts (`Store.insert`'s
    `arrow`), or None when a value does not convert (the store then encodes the batch as
    Native). It touches no store, so any thread may build it: the service's writer builds the
    next batch's on the event loop's thread while the store's thread inserts the one before,
    and has `between` called after each column."""
    known = dict(schema.MESSAGE_COLUMNS)
    return _arrow_table([known[c] for c in columns], columns, data, between)


# --- timeline cursor -----------------------------------------------------------------------


_CURSOR = re.compile(r"(-?[0-9]{1,20})-(-?[0-9]{1,20})-([0-9]{1,20})")


@dataclass(frozen=True, slots=True)
class TimelineCursor:
    """Where a timeline page ended: the last row's place in the timeline's order, its event
    time `at`, receive time (both µs since the epoch) and message id.

    `str()` / `parse()` give a compact text form for the HTTP API (`?after=`):
    `AT-RECEIVED_AT-ID`, three integers (the times may be negative: before 1970).
    """

    at_us: int
    received_at_us: int
    id: int

    @classmethod
    def after(cls, row: Mapping[str, Any]) -> TimelineCursor:
        """The cursor that continues after a row `Store.timeline` returned."""
        return cls(micros(datetime.fromisoformat(row["at"])), micros(datetime.fromisoformat(row["received_at"])),
                   int(row["id"]))

    @classmethod
    def parse(cls, text: str) -> TimelineCursor:
        m = _CURSOR.fullmatch(text)
        if m is None:
            raise ValueError(f"not a timeline cursor: {text!r}")
        return cls(int(m[1]), int(m[2]), int(m[3]))

    def __str__(self) -> str:
        return f"{self.at_us}-{self.received_at_us}-{self.id}"


# --- the store -----------------------------------------------------------------------------


class Store:
    """A synchronous store on one database; not thread-safe: use it from the thread that
    opened it (through `StoreThread` in the service). Build one with `Store.open`.
    """

    def __init__(
        self,
        client: Any,
        target: StoreTarget,
        database: str,
        *,
        messages_ttl_days: int,
        states_ttl_days: int,
    ) -> None:
        self._client = client
        self._target = target
        self._db = database
        self._messages_ttl_days = messages_ttl_days
        self._states_ttl_days = states_ttl_days
        self._owner = threading.get_ident()
        self._closed = False
        self._engine_threads = EngineThreads() if target.kind == "embedded" else None

    @classmethod
    def open(
        cls,
        target: StoreTarget | str,
        database: str | None = None,
        *,
        messages_ttl_days: int = schema.DEFAULT_MESSAGES_TTL_DAYS,
        states_ttl_days: int = schema.DEFAULT_STATES_TTL_DAYS,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        query_timeout: float = DEFAULT_QUERY_TIMEOUT,
        memory_limit: int | None = None,
    ) -> Store:
        """Connect (or start the embedded engine); `database` defaults to the target's.

        `memory_limit`: the process's memory budget in bytes; the embedded engine gets its
        share (`engine_options`). A ClickHouse server keeps its own configuration.

        Creates no database or table (only the embedded directory): call `migrate()` next. Raises
        `StoreConfigError` for a bad URL or database name, `StoreUnavailable` when the store cannot be reached or
        the directory cannot be created, `StoreError` otherwise.
        """
        if isinstance(target, str):
            target = parse_store_url(target)
        database = target.database if database is None else database
        if not IDENTIFIER.fullmatch(database):
            raise StoreConfigError(f"database name {database!r} is not a plain identifier ([A-Za-z_][A-Za-z0-9_]*)")
        for name, days in (("messages_ttl_days", messages_ttl_days), ("states_ttl_days", states_ttl_days)):
            try:
                schema.check_ttl_days(name, days)
            except ValueError as exc:
                raise StoreConfigError(str(exc), key=name) from None
        import clickhouse_connect

        without_pandas(target.kind == "embedded")
        with map_store_errors(f"open {target}"):
            if target.kind == "embedded":
                assert target.path is not None
                os.makedirs(target.path, exist_ok=True)
                if not os.access(target.path, os.W_OK | os.X_OK):
                    raise StoreUnavailable(f"open {target}: directory is not writable")
                check_unlocked(target)
                client = clickhouse_connect.get_client(
                    interface="chdb", path=target.path,
                    chdb_options=None if memory_limit is None else engine_options(memory_limit))
            else:
                client = clickhouse_connect.get_client(
                    host=target.host,
                    port=target.port,
                    username=target.username,
                    password=target.password,
                    secure=target.secure,
                    connect_timeout=connect_timeout,
                    send_receive_timeout=query_timeout,
                    autogenerate_session_id=False,
                )
        return cls(client, target, database, messages_ttl_days=messages_ttl_days, states_ttl_days=states_ttl_days)

    def engine_memory(self) -> int | None:
        """Bytes the embedded engine's allocator tracks now (its `MemoryTracking`); None for a
        ClickHouse server, whose memory is its own. Just after start the tracker can read below
        zero (it saw frees of memory allocated before it began): that counts as 0."""
        if self.target.kind != "embedded":
            return None
        with map_store_errors("engine memory"):
            rows = self._client.query(_ENGINE_MEMORY).result_rows
        return max(0, int(rows[0][0])) if rows else None

    def hold_merges(self, held: bool) -> None:
        """Hold (True) or let go (False) the embedded engine's background merges of `messages`;
        a ClickHouse server's are left alone (they are its administrator's, and its CPU not
        ours). Held, a burst's inserts have the CPU to themselves and the merges catch up
        afterwards (`collector.writer`). Only in the engine's memory: a new process merges."""
        if self.target.kind != "embedded":
            return
        self._check()
        with map_store_errors("hold merges" if held else "let merges go"):
            self._client.command(self._render(schema.STOP_MERGES if held else schema.START_MERGES))

    # -- lifecycle --

    @property
    def database(self) -> str:
        return self._db

    @property
    def target(self) -> StoreTarget:
        return self._target

    def close(self) -> None:
        """Release the client (idempotent). The embedded engine stays up for the process."""
        if self._closed:
            return
        self._check_thread()
        self._closed = True
        with map_store_errors("close"):
            self._client.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def ping(self) -> bool:
        """True when the store answers (never raises for an unreachable store)."""
        self._check()
        try:
            with map_store_errors("ping"):
                return bool(self._client.ping())
        except StoreError:
            return False

    # -- schema --

    def migrate(self) -> list[int]:
        """Create the database if needed and apply pending migrations in order.

        Returns every applied version, oldest first (the same list on a second call).
        """
        self._check()
        with map_store_errors(f"migrate {self._db}"):
            for statement in schema.BOOTSTRAP:
                self._client.command(self._render(statement))
            applied = {int(v) for (v,) in self._client.query(self._render(schema.APPLIED_VERSIONS)).result_rows}
            for version, name, steps in schema.MIGRATIONS:
                if version in applied:
                    continue
                for step in steps:
                    self._run_step(step)
                self._client.insert(
                    "schema_migrations",
                    [[version], [name], [datetime.now(timezone.utc)]],
                    column_names=("version", "name", "applied_at"),
                    column_type_names=("UInt32", "String", "DateTime64(3, 'UTC')"),
                    database=self._db,
                    column_oriented=True,
                )
                applied.add(version)
        return sorted(applied)

    def pending_migrations(self) -> list[int]:
        """The versions `migrate()` would still apply, oldest first (all of them where no schema
        exists yet). Only reads: a reader checks before it migrates."""
        self._check()
        try:
            with map_store_errors(f"read schema versions of {self._db}"):
                rows = self._client.query(self._render(schema.APPLIED_VERSIONS)).result_rows
        except StoreUnavailable:
            raise
        except StoreError:  # no database or no schema_migrations table yet
            rows = []
        applied = {int(v) for (v,) in rows}
        return [version for version, _, _ in schema.MIGRATIONS if version not in applied]

    def _run_step(self, step: schema.Step) -> None:
        step = schema.render_step(step, self._db, messages_ttl_days=self._messages_ttl_days,
                                  states_ttl_days=self._states_ttl_days)
        if isinstance(step, str):
            self._client.command(step)
            return
        if not self._client.query(step.check).result_rows[0][0]:
            return
        if isinstance(step, schema.Refuse):
            raise StoreError(f"migrate {self._db}: {step.message}")
        self._client.command(step.statement)

    # -- writing --

    def insert(self, table: str, data: Sequence[Sequence[Any]], columns: Sequence[str], dedup_token: str, *,
               column_oriented: bool = False, arrow: Any | None = None) -> int:
        """Insert one batch into a data table; returns the number of rows sent.

        `data` holds rows in the order of `columns`, or with `column_oriented` one sequence of
        values per column (what the service's writer keeps). A batch sent again with the same
        non-empty `dedup_token` (a retry, a spool replay) is not stored twice; use a new token
        for new data. `arrow`: the table `arrow_messages(data, columns)` gave, built beforehand
        (an embedded store's messages by column; otherwise it is not used).
        """
        self._check()
        types = schema.TABLE_COLUMNS.get(table)
        if types is None:
            raise ValueError(f"unknown table {table!r}; expected one of {sorted(schema.TABLE_COLUMNS)}")
        if not dedup_token:
            raise ValueError("dedup_token must be a non-empty string")
        size = (len(data[0]) if data else 0) if column_oriented else len(data)
        if not size:
            return 0
        known = dict(types)
        try:
            type_names = [known[c] for c in columns]
        except KeyError as exc:
            raise ValueError(f"unknown column {exc.args[0]!r} for table {table}") from None
        if column_oriented:
            if any(len(values) != size for values in data):
                raise ValueError("columns of different lengths")
        else:
            data = list(zip(*data, strict=True)) if len(columns) else []
            if table == MESSAGES and tuple(columns) == MESSAGE_COLUMNS and len(data) < len(columns):
                # rows spooled by an earlier version: before `at` (its rule), before the lease columns
                if len(data) == len(columns) - len(schema.LEASE_COLUMNS) - 1:
                    data.append([event_time_us(r, t) for r, t in zip(data[0], data[2], strict=True)])
                if len(data) == len(columns) - len(schema.LEASE_COLUMNS):
                    data.extend([None] * size for _ in schema.LEASE_COLUMNS)
        if len(data) != len(columns):
            raise ValueError(f"rows have {len(data)} values, columns name {len(columns)}")
        with map_store_errors(f"insert into {table}"):
            context = self._client.create_insert_context(
                table,
                column_names=list(columns),
                column_type_names=type_names,
                database=self._db,
                column_oriented=True,
                settings={"insert_deduplication_token": dedup_token},
            )
            context.req_block_size = INSERT_BLOCK_ROWS
            try:
                if self._target.kind == "embedded":
                    if table != MESSAGES:
                        arrow = None  # (only messages go as Arrow)
                    elif arrow is None:
                        arrow = _arrow_table(type_names, columns, data, None)
                    body: bytes | memoryview
                    if arrow is not None:
                        body, fmt = _arrow_stream(arrow), "ArrowStream"
                    else:
                        context.data = data
                        body, fmt = _native_body(context), "Native"
                    self._client.raw_insert(context.table, context.column_names, insert_block=body,
                                            settings=context.settings, fmt=fmt)
                else:
                    self._client.insert(context=context, data=data)
            finally:
                # The context keeps one of its own bound methods: a reference cycle that holds
                # the whole batch until a full garbage collection, which the service runs
                # rarely. Emptying it frees the batch now (issue 20: without it RSS grew by the minute).
                vars(context).clear()
        if self._engine_threads is not None:
            self._engine_threads.lower()
        return size

    # -- reading --

    def timeline(
        self,
        hosts: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = DEFAULT_TIMELINE_LIMIT,
        after: TimelineCursor | None = None,
    ) -> list[dict[str, Any]]:
        """Stored messages in event-time order (DESIGN.md "Event time": by `at`, then
        `received_at`, then `id`), each merged with its event's fields.

        `hosts` None means every host; `since` (inclusive) and `until` (exclusive) bound the
        event time `at` (naive datetimes are UTC): "what happened in the last hour", late
        arrivals included, lines that arrived in it about earlier times not; `after`
        continues a previous page (`TimelineCursor.after(row)`). Each dict: `ts`,
        `received_at`, `at` (ISO 8601 UTC, `ts` null when the line had none), `host`,
        `program`, `pid`, `kind`, the event's fields, `message`, and `id` (the message id,
        for the cursor).
        """
        self._check()
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive integer, not {limit!r}")
        where: list[str] = []
        params: dict[str, Any] = {"limit": limit}
        if hosts is not None:
            hosts = list(hosts)
            if not hosts:
                return []
            where.append(schema.TIMELINE_HOSTS)
            params["hosts"] = tuple(hosts)
        if since is not None:
            where.append(schema.TIMELINE_SINCE)
            params["since"] = micros(since)
            params["since_received"] = params["since"] - FUTURE_SKEW_US
        if until is not None:
            where.append(schema.TIMELINE_UNTIL)
            params["until"] = micros(until)
        if after is not None:
            where.append(schema.TIMELINE_AFTER)
            params["after_at"] = after.at_us
            params["after_received"] = after.received_at_us
            params["after_received_min"] = after.at_us - FUTURE_SKEW_US
            params["after_id"] = after.id
        sql = schema.TIMELINE.format(db=self._db, where=" AND ".join(where) or "1")
        with map_store_errors("read timeline"):
            rows = self._client.query(sql, parameters=params).result_rows
            fields = self._page_fields(rows) if rows else {}
        out: list[dict[str, Any]] = []
        for ident, received_us, ts_us, host, program, pid, kind, message, at_us, *lease in rows:
            item: dict[str, Any] = {
                "ts": iso_micros(ts_us),
                "received_at": iso_micros(received_us),
                "at": iso_micros(at_us),
                "host": host or None,
                "program": program or None,
                "pid": pid,
                "kind": kind,
            }
            text = fields.get((host, received_us, ident))
            if text:  # (a lease line stored before migration 5 has its fields here too)
                item.update(json.loads(text))
            elif kind in _LEASE_KINDS:
                item.update(zip(schema.LEASE_COLUMNS, lease))
            item["message"] = message
            item["id"] = ident
            out.append(item)
        return out

    def _page_fields(self, rows: Sequence[Sequence[Any]]) -> dict[tuple[str, int, int], str]:
        """(host, received_at µs, id) -> the event fields (JSON text) of a page of messages."""
        params = {
            "hosts": tuple({row[3] for row in rows}),
            "first": min(row[1] for row in rows),
            "last": max(row[1] for row in rows),
            "ids": tuple({row[0] for row in rows}),
        }
        found = self._client.query(self._render(schema.TIMELINE_EVENTS), parameters=params).result_rows
        return {(host, received_us, ident): text for host, received_us, ident, text in found}

    def incidents(self, pair: str | None = None, open_only: bool = False) -> list[dict[str, Any]]:
        """Incidents (latest version of each) by start time: `id`, `condition`, `pair`,
        `servers`, `start`, `end` (null while open), `evidence`, `updated_at`, `retracted`
        (late lines showed it never happened; `open_only` leaves those out)."""
        self._check()
        where: list[str] = []
        params: dict[str, Any] = {}
        if pair is not None:
            where.append(schema.INCIDENTS_PAIR)
            params["pair"] = pair
        if open_only:
            where.append(schema.INCIDENTS_OPEN)
        sql = schema.INCIDENTS.format(db=self._db, where=" AND ".join(where) or "1")
        with map_store_errors("read incidents"):
            rows = self._client.query(sql, parameters=params).result_rows
        return [
            {
                "id": ident,
                "condition": condition,
                "pair": pair_name,
                "servers": list(servers),
                "start": iso_micros(start),
                "end": iso_micros(end),
                "evidence": list(evidence),
                "updated_at": iso_micros(updated),
                "retracted": bool(retracted),
            }
            for ident, condition, pair_name, servers, start, end, evidence, updated, retracted in rows
        ]

    def open_incidents(self) -> list[dict[str, Any]]:
        """Incidents still open, as `incidents()` gives them (for rebuilding at restart)."""
        return self.incidents(open_only=True)

    def last_states(self) -> list[dict[str, Any]]:
        """The latest state per (pair, server, side): `ts`, `pair`, `server`, `side`,
        `state`, `previous` (for rebuilding the correlator at restart)."""
        self._check()
        with map_store_errors("read last states"):
            rows = self._client.query(self._render(schema.LAST_STATES)).result_rows
        return [
            {"ts": iso_micros(ts), "pair": pair, "server": server, "side": side, "state": state, "previous": previous}
            for pair, server, side, state, previous, ts in rows
        ]

    def pair_hosts(self, pair: str) -> list[str]:
        """Every host name, as logged, of the servers the store has seen in `pair` (for
        `timeline --pair`: "DHCP1" and "dhcp1.example.net" are both server "dhcp1")."""
        self._check()
        with map_store_errors("read pair hosts"):
            rows = self._client.query(self._render(schema.PAIR_HOSTS), parameters={"pair": pair}).result_rows
        return [server for (server,) in rows]

    def states(self, pair: str, since: datetime, until: datetime) -> list[dict[str, Any]]:
        """A pair's stored state changes in [since, until), each (server, side) led by the one
        in force at `since` (its `ts` earlier), so a window's bands start at its left edge:
        `ts`, `server`, `side`, `state`, `previous`; those leading rows first, then the
        changes in time order."""
        self._check()
        params = {"pair": pair, "since": micros(since), "until": micros(until)}
        with map_store_errors("read states"):
            before = self._client.query(self._render(schema.STATES_BEFORE), parameters=params).result_rows
            within = self._client.query(self._render(schema.STATES_WINDOW), parameters=params).result_rows
        return [
            {"ts": iso_micros(ts), "server": server, "side": side, "state": state, "previous": previous}
            for server, side, state, previous, ts in (*before, *within)
        ]

    # -- internals --

    def _render(self, statement: str) -> str:
        return schema.render(
            statement, self._db, messages_ttl_days=self._messages_ttl_days, states_ttl_days=self._states_ttl_days
        )

    def _check(self) -> None:
        if self._closed:
            raise StoreError(f"store {self._target} is closed")
        self._check_thread()

    def _check_thread(self) -> None:
        if threading.get_ident() != self._owner:
            raise StoreError(
                f"store used from thread {threading.current_thread().name!r}; it belongs to the thread that opened it"
            )
