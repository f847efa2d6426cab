"""Configuration: one TOML file -> frozen `Config` values, checked completely before use.

The collector runs for months; a typo in its configuration must stop it at start-up (and in
`pairwatch check-config`) instead of silently meaning "use the default". So every key is
known, every unknown key is an error, and every error is a `ConfigError` whose text is one
line that starts with the path of the offending key:

    pair[1].limits.server_silent: expected a duration (seconds or "5m"), got "soon"
    limits.bogus: unknown key

`[[pair]]` tables are numbered from 0 in these paths, in file order (`pair[0]` is the first),
the way jq and JSONPath count. Keys that are not bare TOML keys are shown quoted.

Schema (every table and key is optional unless marked required):

    [hosts]
    strip_domain = false      # compare host names without their domain
                              # ("dhcp1.example.net" == "dhcp1"); always case-insensitive

    [limits]                  # defaults for every pair; a duration is a number of seconds
                              # (integer or float) or a string "90s", "5m", "1.5h", "2d"
    mclt = "1h"               # dhcpd MCLT when a pair does not say; recover-wait counts as
                              # stuck after MCLT + recover_wait_grace
    recover_wait_grace = "60s"
    startup = "2m"
    recover = "15m"           # recover without "peer update completed"
    recover_done = "5m"
    potential_conflict = "5m"
    resolution_interrupted = "5m"
    conflict_done = "5m"
    kea_waiting = "5m"
    kea_syncing = "5m"
    kea_ready = "5m"
    views_disagree = "60s"
    server_silent = "10m"
    not_serving_window = "60s"
    sync_slow = "10m"
    pool_exhausted_window = "5m"
    split_brain_hold = "5s"   # one side partner-down while the other serves must last this
                              # long before it counts (the two servers' clocks differ a little)

    [[pair]]                  # repeat for every pair
    name = "campus"           # required, unique, 1-64 of A-Z a-z 0-9 _ . : + -
    hosts = ["dhcp1", "dhcp2"]    # required, two different host names as syslog reports them
    relationship = "campus-failover"  # the dhcpd `failover peer` name (or a Kea HA name)
    implementation = "dhcpd"  # "dhcpd" or "kea"
    mclt = "30m"              # this pair's MCLT, instead of limits.mclt
    [pair.limits]             # this pair's limits: any key of [limits] except mclt
    server_silent = "5m"

Rules beyond the types:
- Durations are greater than 0 and finite; true/false is not a number. A string needs its
  unit: a bare "90" is rejected, write 90.
- Host names are compared by `host_key`: case-insensitively, and without their domain when
  `hosts.strip_domain` is true. The two hosts of a pair must differ under that comparison.
- A host may be in several pairs only when it takes part in several failover relationships:
  every pair sharing a host must then name its `relationship`, and the names must differ,
  so that each log line of that host belongs to exactly one pair.
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
from typing import Any

TOP_LEVEL_TABLES: tuple[str, ...] = ("hosts", "limits", "pair")
"""Accepted top-level keys; a later feature adds its table here and parses it in `parse_config`."""

HOSTS_KEYS: tuple[str, ...] = ("strip_domain",)
PAIR_KEYS: tuple[str, ...] = ("name", "hosts", "relationship", "implementation", "mclt", "limits")
IMPLEMENTATIONS: tuple[str, ...] = ("dhcpd", "kea")

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

_PAIR_NAME = re.compile(r"[A-Za-z0-9_.:+-]{1,64}")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smhd])")
_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_TOML_POSITION = re.compile(r"(?s)(.*) \(at (?:line (\d+), column (\d+)|end of document)\)")
_DURATION_EXPECTED = 'expected a duration (seconds or "5m")'


class ConfigError(Exception):
    """The configuration is wrong; `str()` is one line, `key: message`.

    `key` is the path of the offending key (`pair[1].limits.server_silent`), or the file name
    when the file itself cannot be read or is not TOML. `source` names the document the
    error was found in, for callers that report several files.
    """

    def __init__(self, key: str, message: str, source: str | None = None) -> None:
        super().__init__(key, message)
        self.key = key
        self.message = message
        self.source = source

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


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


@dataclass(frozen=True, slots=True, kw_only=True)
class HostsConfig:
    """How syslog host names are compared (see `host_key`)."""

    strip_domain: bool = DEFAULT_STRIP_DOMAIN


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
    except ConfigError as exc:
        exc.source = source
        raise
    return Config(hosts=hosts, limits=limits, pairs=pairs)


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


def host_key(name: str, strip_domain: bool) -> str:
    """The form in which two host names are compared: lowercase, and with `strip_domain`
    only the first label, so "DHCP1.example.net" and "dhcp1" match.

    An IP address literal is never cut: rsyslog puts the sender's address in the header when
    it cannot resolve a name, and "192.0.2.1" must not become "192".
    """
    lowered = name.lower()
    if not strip_domain:
        return lowered
    try:
        ipaddress.ip_address(lowered)
    except ValueError:
        return lowered.partition(".")[0]
    return lowered


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
