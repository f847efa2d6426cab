"""Where the store is: `embedded:PATH` or `clickhouse[s]://USER:PASS@HOST:PORT/DB` -> `StoreTarget`.

Pure: no I/O but the password from the environment. The configuration checks `store.url` with it
and the store opens what it names.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal
from urllib.parse import unquote, urlsplit

from collector.errors import ConfigError

__all__ = [
    "CLICKHOUSE_HTTPS_PORT",
    "CLICKHOUSE_HTTP_PORT",
    "DEFAULT_DATABASE",
    "DEFAULT_STORE_URL",
    "IDENTIFIER",
    "PASSWORD_ENV",
    "StoreConfigError",
    "StoreTarget",
    "parse_store_url",
]

DEFAULT_STORE_URL: Final = "embedded:./pairwatch-data"
DEFAULT_DATABASE: Final = "pairwatch"
CLICKHOUSE_HTTP_PORT: Final = 8123
CLICKHOUSE_HTTPS_PORT: Final = 8443
PASSWORD_ENV: Final = "PAIRWATCH_CLICKHOUSE_PASSWORD"
IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
"""A database name the store accepts."""


class StoreConfigError(ConfigError):
    """A store URL that cannot be used; `str()` is `--store: what is wrong`."""

    def __init__(self, message: str, key: str = "--store") -> None:
        super().__init__(key, message)


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreTarget:
    """Where the store lives: an embedded chdb directory or a ClickHouse server."""

    kind: Literal["embedded", "clickhouse"]
    path: str | None = None
    host: str | None = None
    port: int | None = None
    username: str = "default"
    password: str = field(default="", repr=False)
    secure: bool = False
    database: str = DEFAULT_DATABASE

    def __str__(self) -> str:
        """The URL without its password (for logs and messages)."""
        if self.kind == "embedded":
            return f"embedded:{self.path}"
        scheme = "clickhouses" if self.secure else "clickhouse"
        return f"{scheme}://{self.username}@{self.host}:{self.port}/{self.database}"


def parse_store_url(url: str, env: Mapping[str, str] | None = None) -> StoreTarget:
    """`embedded:PATH` or `clickhouse[s]://USER:PASS@HOST:PORT/DB` -> `StoreTarget`.

    The embedded path is made absolute (against the current directory). A server URL
    without a password takes it from `PAIRWATCH_CLICKHOUSE_PASSWORD` in `env` (default
    `os.environ`); the user defaults to `default`, the port to 8123 (8443 for TLS), the
    database to `pairwatch`. Raises `StoreConfigError` naming the problem; the message never
    repeats the password.
    """
    env = os.environ if env is None else env
    url = url.strip()
    if not url:
        raise StoreConfigError("empty store URL (expected embedded:PATH or clickhouse://HOST:PORT/DB)")
    scheme, sep, rest = url.partition(":")
    scheme = scheme.lower()
    if not sep or scheme not in ("embedded", "clickhouse", "clickhouses"):
        shown = scheme if sep else url
        raise StoreConfigError(
            f"unsupported store URL {shown!r}: expected embedded:PATH, clickhouse://... or clickhouses://..."
        )
    if scheme == "embedded":
        if not rest:
            raise StoreConfigError("embedded: needs a directory path, e.g. embedded:./pairwatch-data")
        if rest.startswith("//"):
            raise StoreConfigError("embedded: takes a path, not //HOST (write embedded:/abs/dir or embedded:./dir)")
        if "\0" in rest:
            raise StoreConfigError("embedded: path contains a NUL character")
        return StoreTarget(kind="embedded", path=os.path.abspath(os.path.expanduser(rest)))
    return _parse_server_url(url, scheme == "clickhouses", env)


def _parse_server_url(url: str, secure: bool, env: Mapping[str, str]) -> StoreTarget:
    parts = urlsplit(url)
    if not url.split(":", 1)[1].startswith("//"):
        raise StoreConfigError(f"{parts.scheme}: URL must look like {parts.scheme}://USER:PASS@HOST:PORT/DB")
    if parts.query or parts.fragment:
        raise StoreConfigError("store URL takes no query string or fragment")
    host = parts.hostname
    if not host:
        raise StoreConfigError(f"{parts.scheme}: URL has no host")
    try:
        port = parts.port
    except ValueError:
        raise StoreConfigError(f"{parts.scheme}: URL port is not a number between 1 and 65535") from None
    if port == 0:
        raise StoreConfigError(f"{parts.scheme}: URL port is not a number between 1 and 65535")
    path = parts.path.strip("/")
    if "/" in path:
        raise StoreConfigError(f"{parts.scheme}: URL path must be one database name, got {path!r}")
    database = unquote(path) or DEFAULT_DATABASE
    if not IDENTIFIER.fullmatch(database):
        raise StoreConfigError(f"database name {database!r} is not a plain identifier ([A-Za-z_][A-Za-z0-9_]*)")
    username = unquote(parts.username) if parts.username else "default"
    if parts.password is not None:
        password = unquote(parts.password)
    else:
        password = env.get(PASSWORD_ENV, "")
    return StoreTarget(
        kind="clickhouse",
        host=host,
        port=port or (CLICKHOUSE_HTTPS_PORT if secure else CLICKHOUSE_HTTP_PORT),
        username=username,
        password=password,
        secure=secure,
        database=database,
    )
