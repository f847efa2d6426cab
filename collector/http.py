"""A minimal asyncio HTTP/1.1 server: /metrics, /healthz, /readyz and the JSON API.

GET (and HEAD) only, one request per connection (`Connection: close`). Handlers read only
what the pipeline published (snapshots swapped by reference) or ask the store through the
`StoreThread`; nothing here walks live correlator state or blocks the loop on the store.

Endpoints:

* ``/metrics``: `collector.metrics.exposition` for the request's Accept header.
* ``/healthz``: 200 ``ok`` while the process runs.
* With a token (`PAIRWATCH_API_TOKEN` in the service's environment), ``/api/*`` answers 401
  unless the request says ``Authorization: Bearer <token>``; /metrics, /healthz and
  /readyz stay open (Prometheus and health checks need no secret).
* ``/readyz``: 200 when the store took the last batch and migrations are done (and the service is
  serving), else 503.
* ``/api/v1/pairs``: every pair from the published snapshot.
* ``/api/v1/incidents``: open incidents (correlator); ``?all=1`` every stored incident.
* ``/api/v1/timeline?pair=P&host=H&host=..&since=..&until=..&limit=..&after=CURSOR``: stored
  messages with their events in event-time order (each message's `at`, then `received_at`,
  then `id`); `since`/`until` bound `at` and are ISO 8601 or a duration back from now
  (``15m``); `pair` adds the hosts the store has seen in that pair (none: empty page); the
  response carries ``next`` (a cursor, ``AT-RECEIVED_AT-ID`` in µs) when the page is full.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CollectorRegistry

from collector.config import parse_duration
from collector.domain import PairView
from collector.metrics import exposition
from collector.store import (
    DEFAULT_TIMELINE_LIMIT,
    Store,
    StoreError,
    StoreThread,
    TimelineCursor,
)
from parsers.jsonl import epoch_iso

__all__ = ["ApiContext", "pairs_json", "start_http"]

log = logging.getLogger("pairwatch.http")

MAX_HEADER_BYTES: Final = 16 * 1024
READ_TIMEOUT: Final = 10.0
MAX_TIMELINE_LIMIT: Final = 10_000
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error",
            503: "Service Unavailable", 431: "Request Header Fields Too Large"}


@dataclass(slots=True)
class ApiContext:
    registry: CollectorRegistry
    pairs: Callable[[], Sequence[PairView]]
    open_incidents: Callable[[], Sequence[dict[str, Any]]]
    ready: Callable[[], bool]
    store_thread: StoreThread
    store: Callable[[], Store | None]  # None while the store has not been reached yet
    token: str | None = None  # when set, /api/* needs "Authorization: Bearer <token>"

    def connected_store(self) -> Store:
        """The store, or StoreError (a 503) while there is none."""
        store = self.store()
        if store is None:
            raise StoreError("not connected yet")
        return store


def pairs_json(pairs: Sequence[PairView]) -> list[dict[str, Any]]:
    return [
        {
            "name": p.name,
            "implementation": p.implementation,
            "relationship": p.relationship,
            "servers": [
                {
                    "host": s.host,
                    "state": s.state,
                    "since": epoch_iso(s.since),
                    "peer_state": s.peer_state,
                    "peer_since": epoch_iso(s.peer_since),
                    "serving": s.serving,
                    "last_seen": epoch_iso(s.last_seen),
                    "ha_name": s.ha_name,
                }
                for s in p.servers
            ],
            "conditions": {name: bool(value) for name, value in p.conditions},
        }
        for p in pairs
    ]


class _BadRequest(Exception):
    pass


def _instant(text: str, now: float) -> datetime:
    """An instant from ISO 8601 text or a duration back from `now` ("15m")."""
    try:
        return datetime.fromtimestamp(now, UTC) - timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    try:
        return _aware(text)
    except ValueError:
        raise _BadRequest(f"not an ISO 8601 instant or a duration: {text!r}") from None


def _aware(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class _Handler:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                async with asyncio.timeout(READ_TIMEOUT):  # (no task of its own, unlike wait_for)
                    head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.LimitOverrunError:
                await self._send(writer, 431, b"request header too large\n", "text/plain", head_only=False)
                return
            except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
                await self._send(writer, 400, b"bad request line\n", "text/plain")
                return
            method, target, _version = parts
            headers: dict[str, str] = {}
            for line in lines[1:]:
                if not line:
                    continue
                name, sep, value = line.partition(":")
                if not sep:
                    await self._send(writer, 400, b"bad header line\n", "text/plain")
                    return
                headers[name.strip().lower()] = value.strip()
            if method not in ("GET", "HEAD"):
                await self._send(writer, 405, b"GET only\n", "text/plain", extra={"Allow": "GET, HEAD"})
                return
            if self.ctx.token is not None and target.startswith("/api/") and not self._authorized(headers):
                await self._send(writer, 401, b"bearer token required\n", "text/plain",
                                 extra={"WWW-Authenticate": 'Bearer realm="pairwatch"'})
                return
            try:
                status, body, ctype = await self._route(target, headers)
            except _BadRequest as exc:
                status, body, ctype = 400, _json({"error": str(exc)}), "application/json"
            except StoreError as exc:
                status, body, ctype = 503, _json({"error": f"store: {exc}"}), "application/json"
            except Exception:  # one request's bug must not take the server down
                log.exception("http: %s %s failed", method, target)
                status, body, ctype = 500, _json({"error": "internal error"}), "application/json"
            await self._send(writer, status, body, ctype, head_only=method == "HEAD")
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except ConnectionError:
                pass

    def _authorized(self, headers: dict[str, str]) -> bool:
        scheme, _, credential = headers.get("authorization", "").partition(" ")
        assert self.ctx.token is not None
        return scheme.lower() == "bearer" and hmac.compare_digest(credential.strip().encode(), self.ctx.token.encode())

    async def _route(self, target: str, headers: dict[str, str]) -> tuple[int, bytes, str]:
        url = urlsplit(target)
        query = parse_qs(url.query)
        ctx = self.ctx
        path = url.path
        if path == "/metrics":
            # rendered on the loop: 100 pairs take about 7 ms (collector.exposition), while on a
            # worker thread the scrape fought the pipeline for the GIL and took 100 ms and more
            # under load (bench/latency.py at 10k msg/s: p50 97 ms there, 21-23 ms here)
            body, ctype = exposition(ctx.registry, headers.get("accept"))
            return 200, body, ctype
        if path == "/healthz":
            return 200, b"ok\n", "text/plain; charset=utf-8"
        if path == "/readyz":
            if ctx.ready():
                return 200, b"ready\n", "text/plain; charset=utf-8"
            return 503, b"not ready\n", "text/plain; charset=utf-8"
        if path == "/api/v1/pairs":
            return 200, _json({"pairs": pairs_json(ctx.pairs())}), "application/json"
        if path == "/api/v1/incidents":
            if _flag(query, "all"):
                pair = _one(query, "pair")
                rows = await ctx.store_thread.call(ctx.connected_store().incidents, pair)
                return 200, _json({"incidents": rows}), "application/json"
            return 200, _json({"incidents": list(ctx.open_incidents())}), "application/json"
        if path == "/api/v1/timeline":
            return 200, _json(await self._timeline(query)), "application/json"
        if path == "/":
            links = ["/metrics", "/healthz", "/readyz", "/api/v1/pairs", "/api/v1/incidents", "/api/v1/timeline"]
            return 200, ("pairwatch\n" + "\n".join(links) + "\n").encode(), "text/plain; charset=utf-8"
        return 404, b"not found\n", "text/plain; charset=utf-8"

    async def _timeline(self, query: dict[str, list[str]]) -> dict[str, Any]:
        now = time.time()
        hosts = query.get("host") or None
        pair = _one(query, "pair")
        if pair:
            pair_hosts = await self.ctx.store_thread.call(self.ctx.connected_store().pair_hosts, pair)
            hosts = sorted(set(hosts or ()) | set(pair_hosts))
        since = _instant(s, now) if (s := _one(query, "since")) else None
        until = _instant(u, now) if (u := _one(query, "until")) else None
        limit_text = _one(query, "limit")
        try:
            limit = int(limit_text) if limit_text else DEFAULT_TIMELINE_LIMIT
        except ValueError:
            raise _BadRequest(f"limit: not an integer: {limit_text!r}") from None
        if not 1 <= limit <= MAX_TIMELINE_LIMIT:
            raise _BadRequest(f"limit: between 1 and {MAX_TIMELINE_LIMIT}")
        after_text = _one(query, "after")
        try:
            after = TimelineCursor.parse(after_text) if after_text else None
        except ValueError as exc:
            raise _BadRequest(str(exc)) from None
        rows = await self.ctx.store_thread.call(self.ctx.connected_store().timeline, hosts, since, until, limit, after)
        out: dict[str, Any] = {"messages": rows}
        if len(rows) == limit:
            out["next"] = str(TimelineCursor.after(rows[-1]))
        return out

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, status: int, body: bytes, ctype: str, *, head_only: bool = False,
                    extra: dict[str, str] | None = None) -> None:
        lines = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
            f"Content-Type: {ctype}",
            f"Content-Length: {len(body)}",
            "Connection: close",
            *(f"{k}: {v}" for k, v in (extra or {}).items()),
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if not head_only:
            writer.write(body)
        try:
            await writer.drain()
        except ConnectionError:
            pass


def _json(obj: object) -> bytes:
    return (json.dumps(obj, ensure_ascii=False) + "\n").encode()


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _flag(query: dict[str, list[str]], name: str) -> bool:
    return (_one(query, name) or "").lower() in ("1", "true", "yes")


async def start_http(ctx: ApiContext, host: str, port: int) -> asyncio.Server:
    return await asyncio.start_server(_Handler(ctx), host, port, limit=MAX_HEADER_BYTES, reuse_address=True)
