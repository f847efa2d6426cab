"""The HTTP side of `serve`: /metrics, /healthz, /readyz, the JSON API and the web page, on
aiohttp's server in the service's own event loop.

Why aiohttp: a page with its routes, static files and a token outgrew the hand-written
HTTP/1.1 server this replaced; aiohttp's server runs as tasks of the loop that already
owns the pipeline (no thread, so a scrape never races loop-owned state), and it costs
`/metrics` no more than the old server did (README, bench/latency.py).

GET (and HEAD) only. Handlers read only what the pipeline published (snapshots swapped by
reference) or ask the store through the `StoreThread`; nothing here walks live correlator
state or blocks the loop on the store.

Endpoints:

* ``/metrics``: `collector.exposition.exposition` for the request's Accept header.
* ``/healthz``: 200 ``ok`` while the process runs.
* ``/readyz``: 200 when the store took the last batch and migrations are done (and the service is
  serving), else 503.
* With a token (`PAIRWATCH_API_TOKEN` in the service's environment), ``/api/*`` answers 401
  unless the request says ``Authorization: Bearer <token>``; /metrics, /healthz, /readyz and
  the page's static files stay open (they hold no data: the page asks for the token).
* ``/api/v1/pairs``: every pair from the published snapshot.
* ``/api/v1/fleet``: the same pairs for the page, each server's state and view classed
  (`ok` serving normally, `warn` degraded or transitional, `bad` not serving or
  partner-down), problems first.
* ``/api/v1/incidents``: open incidents (correlator); ``?all=1`` every stored incident.
* ``/api/v1/history?pair=P``: closed incidents (of P, else of every pair), most recent
  first, with their duration and `analyze`'s diagnosis.
* ``/api/v1/states?pair=P&since=..&until=..``: P's stored state changes in the window, each
  server's and side's state at `since` first; the page draws its bands from them.
* ``/api/v1/timeline?pair=P&host=H&host=..&since=..&until=..&limit=..&after=CURSOR``: stored
  messages with their events in event-time order (each message's `at`, then `received_at`,
  then `id`); `since`/`until` bound `at` and are ISO 8601 or a duration back from now
  (``15m``); `pair` adds the hosts the store has seen in that pair (none: empty page); the
  response carries ``next`` (a cursor, ``AT-RECEIVED_AT-ID`` in µs) when the page is full.
* ``/api/v1/openapi.json``: the OpenAPI document of ``/api/v1``.
* ``/``, ``/pair/NAME``, ``/incidents``: the page (collector/web), one HTML file whose
  script routes by path, so a pair's URL (with its window) can be pasted into a ticket.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from typing import Any, Final

from aiohttp import web
from multidict import MultiMapping
from prometheus_client import CollectorRegistry

from collector.config import parse_duration
from collector.correlator import DHCPD_SERVING, KEA_SERVING, NORMAL_SERVING
from collector.domain import Incident, PairView, StateChanged
from collector.exposition import exposition
from collector.report import bands_of, diagnose, duration
from collector.store import DEFAULT_TIMELINE_LIMIT, Store, TimelineCursor
from collector.store_errors import StoreError
from collector.store_thread import StoreThread
from parsers.jsonl import epoch_iso

__all__ = ["ApiContext", "HttpServer", "build_app", "pairs_json", "start_http", "state_class"]

log = logging.getLogger("pairwatch.http")

MAX_FIELD_BYTES: Final = 16 * 1024
"""Longest request line or header field accepted (aiohttp's default is 8 KiB)."""
MAX_TIMELINE_LIMIT: Final = 10_000
LAST_INSTANT: Final = 4_291_747_200.0
"""2106-01-01: the store's TTL expressions are `DateTime`, which ends there (schema.check_ttl_days)."""
MAX_CURSOR: Final = 2**63 - 1
DEFAULT_WINDOW: Final = 24 * 3600.0
"""The states' window when the request names no `since`: the page's default view."""
MAX_WINDOW: Final = 400 * 86400.0
"""The longest states window: the states' default TTL (schema.DEFAULT_STATES_TTL_DAYS)."""
WEB: Final = files("collector") / "web"
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""No inline script or style, nothing from elsewhere: log text comes from the network, and a
line that slipped into the DOM as HTML still could not run or load anything."""
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
STATIC: Final = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8",
                  "favicon.svg": "image/svg+xml"}
PAGES: Final = ("/", "/pair/{name}", "/incidents")


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


_NORMAL: Final = NORMAL_SERVING | {"passive-backup", "backup"}
"""Serving as configured: a Kea passive-backup primary, and its backup server, are normal too."""
_TRANSITIONAL: Final = frozenset({"startup", "recover", "recover-wait", "recover-done", "potential-conflict",
                                  "conflict-done", "resolution-interrupted", "waiting", "syncing", "ready"})
"""States on the way back to serving (DESIGN.md `stuck`): transitional, amber; a server that stays
in one too long is the `stuck` incident's business (a red badge)."""


def state_class(state: str | None) -> str:
    """`ok` (serving normally), `warn` (degraded or transitional: serving in a state that is
    not normal, or on its way between states), `bad` (partner-down, or a state that answers
    no client and is not on its way to one that does) or `unknown`. The page colours states
    by it."""
    if state is None or state in ("unknown", "unknown-state", "undefined"):
        return "unknown"
    if state in _NORMAL:
        return "ok"
    if state == "partner-down" or state not in DHCPD_SERVING | KEA_SERVING | _TRANSITIONAL:
        return "bad"
    return "warn"


_SEVERITY: Final = {"bad": 0, "warn": 1, "unknown": 2, "ok": 3}


def fleet_json(pairs: Sequence[PairView]) -> list[dict[str, Any]]:
    """`pairs_json` with each server's `class` and `peer_class`, and the pair's `class` (its
    worst, `bad` also with any condition open), problems first, then by name."""
    out = []
    for pair in pairs_json(pairs):
        worst = "ok" if pair["servers"] else "unknown"
        for server in pair["servers"]:
            server["class"] = state_class(server["state"])
            server["peer_class"] = state_class(server["peer_state"])
            if _SEVERITY[server["class"]] < _SEVERITY[worst]:
                worst = server["class"]
        if any(pair["conditions"].values()):
            worst = "bad"
        pair["class"] = worst
        out.append(pair)
    out.sort(key=lambda p: (_SEVERITY[p["class"]], p["name"]))
    return out


class _BadRequest(Exception):
    pass


def _instant(text: str, now: float) -> datetime:
    """An instant from ISO 8601 text or a duration back from `now` ("15m"), within what the
    store's times hold (1970 to 2105); anything else is a 400."""
    try:
        back = parse_duration(text)
    except ValueError:
        back = None
    try:
        value = _aware(text) if back is None else datetime.fromtimestamp(now - back, UTC)
    except (ValueError, OverflowError, OSError):
        raise _BadRequest(f"not an ISO 8601 instant or a duration: {text!r}") from None
    if not 0 <= value.timestamp() < LAST_INSTANT:
        raise _BadRequest(f"out of range (1970 to 2105): {text!r}")
    return value


def _aware(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _one(query: MultiMapping[str], name: str) -> str | None:
    """The last non-empty value of `name` (as `parse_qs` gave it: blank values are absent)."""
    values = [v for v in query.getall(name, []) if v]
    return values[-1] if values else None


def _flag(query: MultiMapping[str], name: str) -> bool:
    return (_one(query, name) or "").lower() in ("1", "true", "yes")


def _json(obj: object, status: int = 200) -> web.Response:
    return web.Response(body=(json.dumps(obj, ensure_ascii=False) + "\n").encode(), status=status,
                        content_type="application/json")


def _text(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/plain", charset="utf-8")


class _Api:
    """The handlers, bound to one service's `ApiContext`."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    async def metrics(self, request: web.Request) -> web.Response:
        # rendered on the loop: 100 pairs take about 7 ms (collector.exposition), while on a
        # worker thread the scrape fought the pipeline for the GIL and took 100 ms and more
        # under load (bench/latency.py at 10k msg/s: p50 97 ms there, 21-23 ms here)
        body, ctype = exposition(self.ctx.registry, request.headers.get("Accept"), request.query.getall("name[]", ()))
        return web.Response(body=body, headers={"Content-Type": ctype})

    async def healthz(self, _request: web.Request) -> web.Response:
        return _text("ok\n")

    async def readyz(self, _request: web.Request) -> web.Response:
        return _text("ready\n") if self.ctx.ready() else _text("not ready\n", 503)

    async def pairs(self, _request: web.Request) -> web.Response:
        return _json({"pairs": pairs_json(self.ctx.pairs())})

    async def fleet(self, _request: web.Request) -> web.Response:
        return _json({"pairs": fleet_json(self.ctx.pairs()), "now": epoch_iso(time.time())})

    async def incidents(self, request: web.Request) -> web.Response:
        query = request.query
        if _flag(query, "all"):
            rows = await self.ctx.store_thread.call(self.ctx.connected_store().incidents, _one(query, "pair"))
            return _json({"incidents": rows})
        return _json({"incidents": list(self.ctx.open_incidents())})

    async def history(self, request: web.Request) -> web.Response:
        pair = _one(request.query, "pair")
        limit = _limit(request.query, 200, 1000)
        store = self.ctx.connected_store()
        rows = [r for r in await self.ctx.store_thread.call(store.incidents, pair) if not r["retracted"]]
        closed = sorted((r for r in rows if r["end"] is not None), key=lambda r: r["start"], reverse=True)[:limit]
        out = []
        for name in sorted({r["pair"] for r in closed}):
            mine = [r for r in closed if r["pair"] == name]
            others = [_incident(r) for r in rows if r["pair"] == name]  # what analyze weighs beside it
            since = min(_epoch(r["start"]) for r in mine)
            until = max(_epoch(r["end"]) for r in mine) + 1.0
            states = await self.ctx.store_thread.call(store.states, name, datetime.fromtimestamp(since, UTC),
                                                      datetime.fromtimestamp(until, UTC))
            bands = bands_of([_state(name, s) for s in states], until)
            for row in mine:
                incident = _incident(row)
                assert incident.end is not None
                length = incident.end - incident.start
                out.append({**row, "duration_seconds": round(length, 6), "duration": duration(length),
                            "diagnosis": diagnose(incident, bands, incident.end, others)})
        out.sort(key=lambda r: r["start"], reverse=True)
        return _json({"incidents": out})

    async def states(self, request: web.Request) -> web.Response:
        query = request.query
        pair = _one(query, "pair")
        if not pair:
            raise _BadRequest("pair: required")
        now = time.time()
        until = _instant(u, now) if (u := _one(query, "until")) else datetime.fromtimestamp(now, UTC)
        since = _instant(s, now) if (s := _one(query, "since")) else until - timedelta(seconds=DEFAULT_WINDOW)
        if not since < until:
            raise _BadRequest("since: must be before until")
        if (until - since).total_seconds() > MAX_WINDOW:
            raise _BadRequest(f"the window may span at most {MAX_WINDOW / 86400:.0f} days")
        rows = await self.ctx.store_thread.call(self.ctx.connected_store().states, pair, since, until)
        for row in rows:
            row["class"] = state_class(row["state"])
        return _json({"pair": pair, "since": epoch_iso(since.timestamp()), "until": epoch_iso(until.timestamp()),
                      "states": rows})

    async def timeline(self, request: web.Request) -> web.Response:
        query = request.query
        now = time.time()
        hosts: list[str] | None = [h for h in query.getall("host", []) if h] or None
        pair = _one(query, "pair")
        if pair:
            pair_hosts = await self.ctx.store_thread.call(self.ctx.connected_store().pair_hosts, pair)
            hosts = sorted(set(hosts or ()) | set(pair_hosts))
        since = _instant(s, now) if (s := _one(query, "since")) else None
        until = _instant(u, now) if (u := _one(query, "until")) else None
        limit = _limit(query, DEFAULT_TIMELINE_LIMIT, MAX_TIMELINE_LIMIT)
        after_text = _one(query, "after")
        try:
            after = TimelineCursor.parse(after_text) if after_text else None
        except ValueError as exc:
            raise _BadRequest(str(exc)) from None
        if after is not None and max(abs(after.at_us), abs(after.received_at_us), after.id) > MAX_CURSOR:
            raise _BadRequest(f"after: out of range: {after_text!r}")
        rows = await self.ctx.store_thread.call(self.ctx.connected_store().timeline, hosts, since, until, limit, after)
        out: dict[str, Any] = {"messages": rows}
        if len(rows) == limit:
            out["next"] = str(TimelineCursor.after(rows[-1]))
        return _json(out)


def _limit(query: MultiMapping[str], default: int, most: int) -> int:
    text = _one(query, "limit")
    try:
        limit = int(text) if text else default
    except ValueError:
        raise _BadRequest(f"limit: not an integer: {text!r}") from None
    if not 1 <= limit <= most:
        raise _BadRequest(f"limit: between 1 and {most}")
    return limit


def _epoch(text: str) -> float:
    return _aware(text).timestamp()


def _incident(row: dict[str, Any]) -> Incident:
    return Incident(condition=row["condition"], pair=row["pair"], servers=tuple(row["servers"]),
                    start=_epoch(row["start"]), end=_epoch(row["end"]) if row["end"] else None,
                    evidence=list(row["evidence"]))


def _state(pair: str, row: dict[str, Any]) -> StateChanged:
    return StateChanged(ts=_epoch(row["ts"]), pair=pair, server=row["server"], side=row["side"],
                        state=row["state"], previous=row["previous"])


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _middlewares(ctx: ApiContext) -> list[Any]:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        """The token for /api/*, and every failure as a clear answer: 400 for bad input, 503
        while the store cannot answer, 500 (logged) for a bug; never a dropped connection."""
        if ctx.token is not None and request.path.startswith("/api/") and not _authorized(request, ctx.token):
            return web.Response(text="bearer token required\n", status=401, content_type="text/plain",
                                headers={"WWW-Authenticate": 'Bearer realm="pairwatch"'})
        try:
            return await handler(request)
        except _BadRequest as exc:
            return _json({"error": str(exc)}, 400)
        except StoreError as exc:
            return _json({"error": f"store: {exc}"}, 503)
        except web.HTTPNotFound:
            return _text("not found\n", 404)
        except web.HTTPMethodNotAllowed as exc:
            return web.Response(text="GET only\n", status=405, content_type="text/plain",
                                headers={"Allow": ", ".join(sorted(exc.allowed_methods))})
        except web.HTTPException:
            raise
        except Exception:  # one request's bug must not take the server down
            log.exception("http: %s %s failed", request.method, request.path_qs)
            return _json({"error": "internal error"}, 500)

    return [guard]


def _authorized(request: web.Request, token: str) -> bool:
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(credential.strip().encode(), token.encode())


async def _secure(_request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)


def build_app(ctx: ApiContext) -> web.Application:
    """The routes of one service; static files are read once, here (they ship as package data)."""
    api = _Api(ctx)
    app = web.Application(middlewares=_middlewares(ctx), handler_args={"max_field_size": MAX_FIELD_BYTES,
                                                                        "max_line_size": MAX_FIELD_BYTES})
    app.on_response_prepare.append(_secure)
    add = app.router.add_get
    add("/metrics", api.metrics)
    add("/healthz", api.healthz)
    add("/readyz", api.readyz)
    add("/api/v1/pairs", api.pairs)
    add("/api/v1/fleet", api.fleet)
    add("/api/v1/incidents", api.incidents)
    add("/api/v1/history", api.history)
    add("/api/v1/states", api.states)
    add("/api/v1/timeline", api.timeline)
    add("/api/v1/openapi.json", _static((WEB / "openapi.json").read_bytes(), "application/json"))
    add("/favicon.ico", _static((WEB / "favicon.svg").read_bytes(), "image/svg+xml"))
    page = _static((WEB / "index.html").read_bytes(), "text/html; charset=utf-8")
    for path in PAGES:
        add(path, page)
    for name, ctype in STATIC.items():
        add(f"/static/{name}", _static((WEB / name).read_bytes(), ctype))
    return app


def _static(body: bytes, ctype: str) -> Handler:
    async def handler(_request: web.Request) -> web.Response:
        return web.Response(body=body, headers={"Content-Type": ctype, "Cache-Control": "no-cache"})

    return handler


@dataclass(slots=True)
class HttpServer:
    """The running server: `close()` stops listening and ends open connections."""

    runner: web.AppRunner

    async def close(self) -> None:
        await self.runner.cleanup()


async def start_http(ctx: ApiContext, host: str, port: int) -> HttpServer:
    """Listen on host:port in the running loop (OSError when it cannot)."""
    runner = web.AppRunner(build_app(ctx), access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, reuse_address=True).start()
    except BaseException:
        await runner.cleanup()
        raise
    return HttpServer(runner)
