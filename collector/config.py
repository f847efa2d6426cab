"""Configuration: one TOML file -> frozen `Config` values, checked completely before use.

The collector runs for months; a typo in its configuration must stop it at start-up (and in
`pairwatch check-config`) instead of silently meaning "use the default". So every key is
known, every unknown key is an error, and every error is a `ConfigError` whose text is one
line that starts with the path of the offending key:

    pair[1].limits.server_silent: expected a duration (seconds or "5m"), got "soon"
    limits.bogus: unknown key

`[[pair]]` tables are numbered from 0 in these paths, in file order (`pair[0]` is the first),
the way jq and JSONPath count. Keys that are not bare TOML keys are shown quoted.

Every table and key, with its default and what it does: README "Configuration";
`pairwatch check-config` prints the effective configuration in the same form
(`collector.config_render`).

Rules beyond the types:
- Durations are greater than 0 and finite; true/false is not a number. A string needs its
  unit: a bare "90" is rejected, write 90.
- Host names are compared by `host_key`: case-insensitively, and without their domain when
  `hosts.strip_domain` is true. The two hosts of a pair must differ under that comparison.
- A host may be in several pairs only when it takes part in several failover relationships:
  every pair sharing a host must then name its `relationship`, and the names must differ,
  so that each log line of that host belongs to exactly one pair.
- Listener addresses are unique per transport; `http` is not also a TCP or TLS listener.
- A pair's `limits` are the global `[limits]` with the pair's own keys (and its `mclt`)
  applied, so consumers read `pair.limits` only; `PairConfig.mclt` keeps what the pair said.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import math
import re
import tomllib
from dataclasses import dataclass, fields, replace
from datetime import date, datetime, time
from typing import Any, Final

from collector.domain import LISTENER_TRANSPORTS, host_key
from collector.errors import ConfigError
from collector.framing import DEFAULT_MAX_MESSAGE
from collector.schema import (
    DEFAULT_MESSAGES_TTL_DAYS,
    DEFAULT_STATES_TTL_DAYS,
    MAX_TTL_DAYS,
)
from collector.store_url import DEFAULT_STORE_URL, parse_store_url

TOP_LEVEL_TABLES: tuple[str, ...] = ("hosts", "limits", "pair", "store", "serve")
"""Accepted top-level keys; a later feature adds its table here and parses it in `parse_config`."""

HOSTS_KEYS: tuple[str, ...] = ("strip_domain",)
PAIR_KEYS: tuple[str, ...] = ("name", "hosts", "relationship", "implementation", "mclt", "limits")
IMPLEMENTATIONS: tuple[str, ...] = ("dhcpd", "kea")
STORE_KEYS: tuple[str, ...] = ("url", "messages_ttl", "states_ttl", "memory_limit")
SERVE_KEYS: tuple[str, ...] = (
    "udp", "tcp", "tls", "http", "allow", "max_message", "queue_size", "udp_receive_buffer",
    "batch_rows", "batch_interval", "memory_rows", "spool_directory", "spool_max_bytes",
    "max_connections", "max_connections_per_sender", "idle_timeout", "shutdown_timeout",
    "tls_cert", "tls_key", "tls_client_ca",
)
LISTENER_KEYS: tuple[str, ...] = ("address", "allow")

DEFAULT_STRIP_DOMAIN = False
DEFAULT_MCLT = 3600.0
DEFAULT_RECOVER_WAIT_GRACE = 60.0
DEFAULT_STARTUP = 120.0
DEFAULT_RECOVER = 900.0
DEFAULT_RECOVER_DONE = 300.0
DEFAULT_POTENTIAL_CONFLICT = 300.0
DEFAULT_RESOLUTION_INTERRUPTED = 300.0
DEFAULT_CONFLICT_DONE = 300.0
DEFAULT_KEA_WAITING = 300.0
DEFAULT_KEA_SYNCING = 300.0
DEFAULT_KEA_READY = 300.0
DEFAULT_VIEWS_DISAGREE = 60.0
DEFAULT_SERVER_SILENT = 600.0
DEFAULT_NOT_SERVING_WINDOW = 60.0
DEFAULT_SYNC_SLOW = 600.0
DEFAULT_POOL_EXHAUSTED_WINDOW = 300.0
DEFAULT_SPLIT_BRAIN_HOLD = 5.0
DEFAULT_MAX_LATENESS = 3600.0

DEFAULT_SYSLOG_PORT = 5514
DEFAULT_HTTP_PORT = 9874
# HTTP default port. The Prometheus project keeps default ports for exporters in the
# 9100-9999 range on its wiki page "Default port allocations"
# (https://github.com/prometheus/prometheus/wiki/Default-port-allocations). A 2023 note
# (utcc.utoronto.ca/~cks/.../PrometheusExportersFixedPorts, quoting Scott Laird) says the
# range is now fully listed, and the copies of the page available while this was written
# were old (2016), so 9874 is PROVISIONAL: check the live page and register pairwatch there
# before a release. Always overridable with --http or serve.http.
DEFAULT_QUEUE_SIZE = 100_000
DEFAULT_UDP_RECEIVE_BUFFER = 4 * 1024 * 1024
DEFAULT_BATCH_ROWS = 10_000
DEFAULT_BATCH_INTERVAL = 1.0
DEFAULT_SHUTDOWN_TIMEOUT = 9.0
DEFAULT_MAX_CONNECTIONS = 1000
DEFAULT_MAX_CONNECTIONS_PER_SENDER = 32
_CONNECTIONS_RANGE = (1, 1_000_000)
DEFAULT_MEMORY_ROWS = 200_000
DEFAULT_SPOOL_MAX_BYTES = 1 << 30
_MEMORY_ROWS_RANGE = (1, 100_000_000)
_SPOOL_RANGE = (1 << 20, 1 << 50)
_MAX_MESSAGE_RANGE = (480, 16 * 1024 * 1024)  # RFC 5424 receivers must take 480 bytes; 16 MiB is plenty
_QUEUE_RANGE = (1, 10_000_000)
_RCVBUF_RANGE = (0, 1 << 30)  # 0: leave the kernel default
_BATCH_ROWS_RANGE = (1, 1_000_000)

_PAIR_NAME = re.compile(r"[A-Za-z0-9_.:+-]{1,64}")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smhd])")
_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_TOML_POSITION = re.compile(r"(?s)(.*) \(at (?:line (\d+), column (\d+)|end of document)\)")
_DURATION_EXPECTED = 'expected a duration (seconds or "5m")'


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """How long (in seconds) a pair may sit in a condition before pairwatch reports it."""

    mclt: float = DEFAULT_MCLT
    recover_wait_grace: float = DEFAULT_RECOVER_WAIT_GRACE
    startup: float = DEFAULT_STARTUP
    recover: float = DEFAULT_RECOVER
    recover_done: float = DEFAULT_RECOVER_DONE
    potential_conflict: float = DEFAULT_POTENTIAL_CONFLICT
    resolution_interrupted: float = DEFAULT_RESOLUTION_INTERRUPTED
    conflict_done: float = DEFAULT_CONFLICT_DONE
    kea_waiting: float = DEFAULT_KEA_WAITING
    kea_syncing: float = DEFAULT_KEA_SYNCING
    kea_ready: float = DEFAULT_KEA_READY
    views_disagree: float = DEFAULT_VIEWS_DISAGREE
    server_silent: float = DEFAULT_SERVER_SILENT
    not_serving_window: float = DEFAULT_NOT_SERVING_WINDOW
    sync_slow: float = DEFAULT_SYNC_SLOW
    pool_exhausted_window: float = DEFAULT_POOL_EXHAUSTED_WINDOW
    split_brain_hold: float = DEFAULT_SPLIT_BRAIN_HOLD
    max_lateness: float = DEFAULT_MAX_LATENESS


@dataclass(frozen=True, slots=True, kw_only=True)
class HostsConfig:
    """How syslog host names are compared (see `host_key`)."""

    strip_domain: bool = DEFAULT_STRIP_DOMAIN


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A socket address to listen on; `str()` is the form the configuration takes."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Listener:
    """One syslog listener; `allow` empty means any sender."""

    transport: str  # "udp", "tcp" or "tls"
    endpoint: Endpoint
    allow: tuple[Network, ...] = ()

    def __str__(self) -> str:
        return f"{self.transport} {self.endpoint}"


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsConfig:
    """Server certificate and key (PEM files), and the CA that client certificates must chain to."""

    cert: str
    key: str
    client_ca: str | None = None


DEFAULT_MEMORY_LIMIT: Final = 1 << 30
"""`[store] memory_limit`: the process's memory budget, bytes (the embedded engine gets a share)."""
_MEMORY_LIMIT_RANGE: Final = (128 << 20, 1 << 40)
_SIZE = re.compile(r"([0-9]+)\s*(B|KiB|MiB|GiB|TiB)")
SIZE_UNITS: Final = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreConfig:
    url: str = DEFAULT_STORE_URL
    messages_ttl_days: int = DEFAULT_MESSAGES_TTL_DAYS
    states_ttl_days: int = DEFAULT_STATES_TTL_DAYS
    memory_limit: int = DEFAULT_MEMORY_LIMIT


_ANY = Endpoint("0.0.0.0", DEFAULT_SYSLOG_PORT)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServeConfig:
    listeners: tuple[Listener, ...] = (Listener("udp", _ANY), Listener("tcp", _ANY))
    http: Endpoint = Endpoint("127.0.0.1", DEFAULT_HTTP_PORT)
    allow: tuple[Network, ...] = ()
    tls: TlsConfig | None = None
    max_message: int = DEFAULT_MAX_MESSAGE
    queue_size: int = DEFAULT_QUEUE_SIZE
    udp_receive_buffer: int = DEFAULT_UDP_RECEIVE_BUFFER
    batch_rows: int = DEFAULT_BATCH_ROWS
    batch_interval: float = DEFAULT_BATCH_INTERVAL
    memory_rows: int = DEFAULT_MEMORY_ROWS
    spool_directory: str | None = None  # None: next to the store (see `spool_directory`)
    spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_connections_per_sender: int = DEFAULT_MAX_CONNECTIONS_PER_SENDER
    idle_timeout: float | None = None  # None: never close a quiet connection
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT


DEFAULT_LIMITS = Limits()
DEFAULT_HOSTS = HostsConfig()
LIMIT_KEYS: tuple[str, ...] = tuple(f.name for f in fields(Limits))
PAIR_LIMIT_KEYS: tuple[str, ...] = tuple(k for k in LIMIT_KEYS if k != "mclt")


@dataclass(frozen=True, slots=True, kw_only=True)
class PairConfig:
    """One declared pair; `limits` already includes the pair's overrides and its `mclt`."""

    name: str
    hosts: tuple[str, str]
    relationship: str | None = None
    implementation: str | None = None
    mclt: float | None = None
    limits: Limits = DEFAULT_LIMITS


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """The whole configuration; `Config()` is what runs when no file is given."""

    hosts: HostsConfig = DEFAULT_HOSTS
    limits: Limits = DEFAULT_LIMITS
    pairs: tuple[PairConfig, ...] = ()
    store: StoreConfig = StoreConfig()
    serve: ServeConfig = ServeConfig()


DEFAULT_CONFIG = Config()


def load_config(path: str | None) -> Config:
    """Read and check the TOML file at `path`; None means no file, i.e. `DEFAULT_CONFIG`.

    Every failure, including a missing file or a TOML syntax error, is a `ConfigError`:
    to the operator they are all "the configuration is wrong" (exit status 2).
    """
    if path is None:
        return DEFAULT_CONFIG
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise ConfigError(path, f"cannot read: {exc.strerror or exc}", path) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(path, f"not UTF-8 text (byte {exc.start}); TOML files are UTF-8", path) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, _syntax_message(str(exc), text), path) from exc
    return parse_config(data, path)


def parse_config(data: dict[str, Any], source: str = "<config>") -> Config:
    """Check an already decoded TOML document and build its `Config`.

    `source` names the document in the errors' `source` attribute; the error text itself
    stays `key: message`.
    """
    try:
        _reject_unknown(data, "", TOP_LEVEL_TABLES)
        hosts = _parse_hosts(_table(data.get("hosts", {}), "hosts"))
        limits = _parse_limits(_table(data.get("limits", {}), "limits"), "limits", DEFAULT_LIMITS, LIMIT_KEYS)
        pairs = _parse_pairs(data.get("pair", []), limits, hosts.strip_domain)
        store = _parse_store(_table(data.get("store", {}), "store"))
        serve = _parse_serve(_table(data.get("serve", {}), "serve"), store.memory_limit)
    except ConfigError as exc:
        exc.source = source
        raise
    return Config(hosts=hosts, limits=limits, pairs=pairs, store=store, serve=serve)


def parse_duration(value: object) -> float:
    """Seconds from a TOML value: an int or float of seconds, or "90s", "5m", "1.5h", "2d".

    Raises ValueError with a one-line message. A unit-less string is refused on purpose:
    "90" in quotes is more likely a slip than a wish for seconds.
    """
    if isinstance(value, str):
        match = _DURATION.fullmatch(value)
        if match is None:
            raise ValueError(f"{_DURATION_EXPECTED}, got {_describe(value)}")
        seconds = float(match[1]) * _UNIT_SECONDS[match[2]]
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except OverflowError:  # an integer beyond float range: "forever" is not a limit either
            seconds = math.inf
    else:
        raise ValueError(f"{_DURATION_EXPECTED}, got {_describe(value)}")
    if not math.isfinite(seconds):
        raise ValueError(f"expected a finite duration, got {_describe(value)}")
    if seconds <= 0:
        raise ValueError(f"expected a duration greater than 0, got {_describe(value)}")
    return seconds


def _parse_hosts(table: dict[str, Any]) -> HostsConfig:
    _reject_unknown(table, "hosts", HOSTS_KEYS)
    strip_domain = table.get("strip_domain", DEFAULT_STRIP_DOMAIN)
    if not isinstance(strip_domain, bool):
        raise ConfigError("hosts.strip_domain", f"expected true or false, got {_describe(strip_domain)}")
    return HostsConfig(strip_domain=strip_domain)


def _parse_limits(table: dict[str, Any], path: str, base: Limits, allowed: tuple[str, ...]) -> Limits:
    if "mclt" in table and "mclt" not in allowed:
        raise ConfigError(_join(path, "mclt"), "a pair sets its MCLT with its own mclt key, not in its limits")
    _reject_unknown(table, path, allowed)
    return replace(base, **{key: _duration(value, _join(path, key)) for key, value in table.items()})


def _parse_pairs(value: object, limits: Limits, strip_domain: bool) -> tuple[PairConfig, ...]:
    if not isinstance(value, list):
        raise ConfigError("pair", f"expected an array of tables ([[pair]]), got {_describe(value)}")
    pairs: list[PairConfig] = []
    for index, item in enumerate(value):
        path = f"pair[{index}]"
        pair = _parse_pair(_table(item, path), path, limits, strip_domain)
        _check_against_earlier(pair, path, pairs, strip_domain)
        pairs.append(pair)
    return tuple(pairs)


def _parse_pair(table: dict[str, Any], path: str, limits: Limits, strip_domain: bool) -> PairConfig:
    _reject_unknown(table, path, PAIR_KEYS)
    name = _required(table, "name", path)
    if not isinstance(name, str) or not _PAIR_NAME.fullmatch(name):
        raise ConfigError(f"{path}.name", f"expected 1-64 of A-Z a-z 0-9 _ . : + -, got {_describe(name)}")
    hosts = _parse_pair_hosts(_required(table, "hosts", path), f"{path}.hosts", strip_domain)
    relationship = table.get("relationship")
    if relationship is not None and (
        not isinstance(relationship, str) or not relationship or relationship != relationship.strip()
    ):
        raise ConfigError(
            f"{path}.relationship",
            f"expected a failover peer name without leading or trailing spaces, got {_describe(relationship)}",
        )
    implementation = table.get("implementation")
    if implementation is not None and implementation not in IMPLEMENTATIONS:
        raise ConfigError(f"{path}.implementation", f'expected "dhcpd" or "kea", got {_describe(implementation)}')
    mclt = _duration(table["mclt"], f"{path}.mclt") if "mclt" in table else None
    base = limits if mclt is None else replace(limits, mclt=mclt)
    limits_path = f"{path}.limits"
    return PairConfig(
        name=name,
        hosts=hosts,
        relationship=relationship,
        implementation=implementation,
        mclt=mclt,
        limits=_parse_limits(_table(table.get("limits", {}), limits_path), limits_path, base, PAIR_LIMIT_KEYS),
    )


def _parse_pair_hosts(value: object, path: str, strip_domain: bool) -> tuple[str, str]:
    if not isinstance(value, list) or len(value) != 2:
        raise ConfigError(path, f"expected an array of exactly 2 host names, got {_describe(value)}")
    for index, host in enumerate(value):
        # A syslog header's host field ends at a space, so such a name could never match.
        if not isinstance(host, str) or not host or not host.isprintable() or " " in host:
            raise ConfigError(f"{path}[{index}]", f"expected a host name (non-empty, no spaces), got {_describe(host)}")
    first, second = value
    if host_key(first, strip_domain) == host_key(second, strip_domain):
        how = "with strip_domain" if strip_domain else "ignoring case"
        raise ConfigError(path, f"{_describe(first)} and {_describe(second)} are the same host ({how})")
    return first, second


def _check_against_earlier(pair: PairConfig, path: str, earlier: list[PairConfig], strip_domain: bool) -> None:
    """Pair names are unique, and a shared host must be told apart by its relationship:
    otherwise a line from that host could belong to either pair."""
    keys = [host_key(h, strip_domain) for h in pair.hosts]
    for other in earlier:
        if other.name == pair.name:
            raise ConfigError(f"{path}.name", f"duplicate pair name {_describe(pair.name)}")
        other_keys = {host_key(h, strip_domain) for h in other.hosts}
        shared = next((host for host, key in zip(pair.hosts, keys) if key in other_keys), None)
        if shared is None:
            continue
        if pair.relationship is None or other.relationship is None or pair.relationship == other.relationship:
            raise ConfigError(
                f"{path}.relationship",
                f"host {_describe(shared)} is also in pair {_describe(other.name)}; "
                "pairs sharing a host must each name a different relationship",
            )


def parse_endpoint(text: object) -> Endpoint:
    """`HOST:PORT` or `[V6]:PORT` -> Endpoint; ValueError with a one-line message otherwise."""
    if not isinstance(text, str):
        raise ValueError(f"expected HOST:PORT or [IPV6]:PORT, got {_describe(text)}")
    host, sep, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        valid_host = bool(host) and ":" in host
    else:
        valid_host = bool(host) and ":" not in host and "[" not in host and "]" not in host
    if not sep or not valid_host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"expected HOST:PORT or [IPV6]:PORT, got {_describe(text)}")
    return Endpoint(host, int(port_text))


def parse_cidrs(value: object) -> tuple[Network, ...]:
    """A list of CIDRs ("192.0.2.0/24", "2001:db8::/32", or one address) -> networks.

    Host bits set ("192.0.2.7/24") are refused: such an entry is usually a typo for
    either the host or the network, and guessing would widen or narrow the allowlist."""
    if not isinstance(value, list):
        raise ValueError(f"expected an array of CIDRs, got {_describe(value)}")
    out = []
    for item in value:
        if not isinstance(item, str):
            raise ValueError(f"expected a CIDR such as \"192.0.2.0/24\", got {_describe(item)}")
        try:
            out.append(ipaddress.ip_network(item.strip(), strict=True))
        except ValueError as exc:
            raise ValueError(f"not a CIDR: {_describe(item)} ({exc})") from None
    return tuple(out)


def check_serve(serve: ServeConfig) -> None:
    """Rules across keys (also after command-line flags replaced some): ConfigError."""
    seen: dict[tuple[str, Endpoint], Listener] = {}
    for listener in serve.listeners:
        kind = "udp" if listener.transport == "udp" else "stream"  # TCP and TLS share the port space
        if (kind, listener.endpoint) in seen:
            raise ConfigError(f"serve.{listener.transport}", f"{listener.endpoint} is listed twice")
        seen[(kind, listener.endpoint)] = listener
    if ("stream", serve.http) in seen:
        raise ConfigError("serve.http", f"{serve.http} is also a syslog listener")
    tls = [str(listener) for listener in serve.listeners if listener.transport == "tls"]
    if tls and serve.tls is None:
        raise ConfigError("serve.tls_cert", f"the TLS listener {tls[0]} needs serve.tls_cert and serve.tls_key")


def budget_share(default: int, memory_limit: int) -> int:
    """A Python-side bound (`queue_size`, `memory_rows`) for a process budget of `memory_limit`:
    its default at the default budget, scaled in proportion. The lines and rows these hold are
    what the process's own memory grows with when inserts lag (a busy box, a slow store), so a
    smaller budget must hold fewer of them for the process to stay within it."""
    return max(1, default * memory_limit // DEFAULT_MEMORY_LIMIT)


def _parse_store(table: dict[str, Any]) -> StoreConfig:
    _reject_unknown(table, "store", STORE_KEYS)
    url = table.get("url", DEFAULT_STORE_URL)
    if not isinstance(url, str):
        raise ConfigError("store.url", f"expected a store URL string, got {_describe(url)}")
    try:
        parse_store_url(url, env={})
    except ConfigError as exc:
        raise ConfigError("store.url", exc.message) from None
    return StoreConfig(
        url=url,
        messages_ttl_days=_days(table, "messages_ttl", DEFAULT_MESSAGES_TTL_DAYS),
        states_ttl_days=_days(table, "states_ttl", DEFAULT_STATES_TTL_DAYS),
        memory_limit=_size(table, "memory_limit", DEFAULT_MEMORY_LIMIT, _MEMORY_LIMIT_RANGE),
    )


def _size(table: dict[str, Any], key: str, default: int, bounds: tuple[int, int]) -> int:
    """Bytes from "512MiB", "1GiB" (binary units, B to TiB) or a whole number of bytes."""
    if key not in table:
        return default
    value = table[key]
    m = _SIZE.fullmatch(value.strip()) if isinstance(value, str) else None
    size = int(m[1]) * SIZE_UNITS[m[2]] if m else value
    low, high = bounds
    if isinstance(size, bool) or not isinstance(size, int) or not low <= size <= high:
        raise ConfigError(f"store.{key}", f'expected a size from {low >> 20}MiB to {high >> 40}TiB ("512MiB", '
                                          f'"2GiB"), got {_describe(value)}')
    return size


def _days(table: dict[str, Any], key: str, default: int) -> int:
    if key not in table:
        return default
    seconds = _duration(table[key], f"store.{key}")
    days = seconds / 86400.0
    if days != int(days) or not 1 <= days <= MAX_TTL_DAYS:
        raise ConfigError(f"store.{key}",
                          f"expected whole days from 1 to {MAX_TTL_DAYS} (\"90d\"), got {_describe(table[key])}")
    return int(days)


def _parse_serve(table: dict[str, Any], memory_limit: int = DEFAULT_MEMORY_LIMIT) -> ServeConfig:
    """`memory_limit`: the store's; the queue and the kept rows default to their share of it."""
    _reject_unknown(table, "serve", SERVE_KEYS)
    defaults = ServeConfig(queue_size=budget_share(DEFAULT_QUEUE_SIZE, memory_limit),
                           memory_rows=budget_share(DEFAULT_MEMORY_ROWS, memory_limit))
    allow = _cidrs(table["allow"], "serve.allow") if "allow" in table else ()
    if any(t in table for t in LISTENER_TRANSPORTS):
        listeners = tuple(
            _parse_listener(item, transport, f"serve.{transport}[{index}]")
            for transport in LISTENER_TRANSPORTS
            for index, item in enumerate(_array(table.get(transport, []), f"serve.{transport}"))
        )
    else:
        listeners = defaults.listeners
    http = defaults.http
    if "http" in table:
        http = _endpoint(table["http"], "serve.http")
    tls = _parse_tls(table)
    serve = ServeConfig(
        listeners=listeners,
        http=http,
        allow=allow,
        tls=tls,
        max_message=_int(table, "max_message", defaults.max_message, _MAX_MESSAGE_RANGE),
        queue_size=_int(table, "queue_size", defaults.queue_size, _QUEUE_RANGE),
        udp_receive_buffer=_int(table, "udp_receive_buffer", defaults.udp_receive_buffer, _RCVBUF_RANGE),
        batch_rows=_int(table, "batch_rows", defaults.batch_rows, _BATCH_ROWS_RANGE),
        batch_interval=_duration(table["batch_interval"], "serve.batch_interval")
        if "batch_interval" in table else defaults.batch_interval,
        memory_rows=_int(table, "memory_rows", defaults.memory_rows, _MEMORY_ROWS_RANGE),
        spool_directory=_path(table, "spool_directory", "") if "spool_directory" in table else None,
        spool_max_bytes=_int(table, "spool_max_bytes", defaults.spool_max_bytes, _SPOOL_RANGE),
        max_connections=_int(table, "max_connections", defaults.max_connections, _CONNECTIONS_RANGE),
        max_connections_per_sender=_int(table, "max_connections_per_sender", defaults.max_connections_per_sender,
                                        _CONNECTIONS_RANGE),
        idle_timeout=_duration(table["idle_timeout"], "serve.idle_timeout") if "idle_timeout" in table else None,
        shutdown_timeout=_duration(table["shutdown_timeout"], "serve.shutdown_timeout")
        if "shutdown_timeout" in table else defaults.shutdown_timeout,
    )
    check_serve(serve)
    return serve


def _path(table: dict[str, Any], key: str, default: str) -> str:
    value = table.get(key, default)
    if not isinstance(value, str) or not value or "\0" in value:
        raise ConfigError(f"serve.{key}", f"expected a file path, got {_describe(value)}")
    return value


def _parse_tls(table: dict[str, Any]) -> TlsConfig | None:
    paths = {key: _path(table, key, "") for key in ("tls_cert", "tls_key", "tls_client_ca") if key in table}
    if not paths:
        return None
    for key in ("tls_cert", "tls_key"):
        if key not in paths:
            raise ConfigError(f"serve.{key}", "required key is missing (TLS needs tls_cert and tls_key)")
    return TlsConfig(cert=paths["tls_cert"], key=paths["tls_key"], client_ca=paths.get("tls_client_ca"))


def _parse_listener(item: object, transport: str, path: str) -> Listener:
    if isinstance(item, dict):
        _reject_unknown(item, path, LISTENER_KEYS)
        endpoint = _endpoint(_required(item, "address", path), f"{path}.address")
        allow = _cidrs(item["allow"], f"{path}.allow") if "allow" in item else ()
        return Listener(transport, endpoint, allow)
    return Listener(transport, _endpoint(item, path))


def _endpoint(value: object, path: str) -> Endpoint:
    try:
        return parse_endpoint(value)
    except ValueError as exc:
        raise ConfigError(path, str(exc)) from None


def _cidrs(value: object, path: str) -> tuple[Network, ...]:
    try:
        return parse_cidrs(value)
    except ValueError as exc:
        raise ConfigError(path, str(exc)) from None


def _array(value: object, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(path, f"expected an array, got {_describe(value)}")
    return value


def _int(table: dict[str, Any], key: str, default: int, bounds: tuple[int, int]) -> int:
    if key not in table:
        return default
    value = table[key]
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"serve.{key}", f"expected a whole number from {low} to {high}, got {_describe(value)}")
    return value


def _reject_unknown(table: dict[str, Any], path: str, allowed: tuple[str, ...]) -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(_join(path, key), f"unknown key{hint}")


def _required(table: dict[str, Any], key: str, path: str) -> object:
    if key not in table:
        raise ConfigError(f"{path}.{key}", "required key is missing")
    return table[key]


def _table(value: object, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(path, f"expected a table, got {_describe(value)}")
    return value


def _duration(value: object, path: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ConfigError(path, str(exc)) from None


def _join(path: str, key: str) -> str:
    shown = key if _BARE_KEY.fullmatch(key) else json.dumps(key)
    return f"{path}.{shown}" if path else shown


def _describe(value: object) -> str:
    """A value as TOML would spell it, always on one line (json.dumps escapes line breaks)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return f"an array of {len(value)}"
    if isinstance(value, datetime | date | time):
        return f"a date/time ({value.isoformat()})"
    return type(value).__name__


def _syntax_message(detail: str, text: str) -> str:
    """tomllib says "Invalid value (at line 3, column 7)"; we lead with the position, and
    turn "end of document" into the last line that has content."""
    match = _TOML_POSITION.fullmatch(detail)
    if match is None:
        return f"TOML syntax error: {detail}"
    what = match[1][:1].lower() + match[1][1:]
    if match[2] is not None:
        return f"TOML syntax error at line {match[2]}, column {match[3]}: {what}"
    last_line = text.rstrip().count("\n") + 1
    return f"TOML syntax error at line {last_line} (end of file): {what}"
