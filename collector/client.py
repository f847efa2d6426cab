"""`pairwatch status` and `pairwatch timeline --api`: read a running service's HTTP API.

Plain `urllib` (the API is small JSON over HTTP/1.1 on 127.0.0.1 by default), rendering
as pure functions so the CLI only prints. An unreachable service is one clear line,
never a traceback.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from collector.report import duration

TIMEOUT = 10.0
TOKEN_ENV = "PAIRWATCH_API_TOKEN"
"""The API's bearer token, read by `serve` (to require it) and by the clients (to send it)."""
PAGE = 5_000
"""Messages asked per timeline page (the API caps a page at 10 000)."""


class ApiError(Exception):
    """The API could not be read; the text is the one line the CLI prints."""


def get_json(base: str, path: str, params: Sequence[tuple[str, str]] = ()) -> Any:
    url = base.rstrip("/") + path + (("?" + urllib.parse.urlencode(params)) if params else "")
    request = urllib.request.Request(url)
    if token := os.environ.get(TOKEN_ENV):
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace").strip()
        raise ApiError(f"{url}: HTTP {exc.code} {detail}".strip()) from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ApiError(f"cannot reach {base} ({reason}): is `pairwatch serve` running there?") from exc
    except ValueError as exc:
        raise ApiError(f"{url}: not JSON ({exc})") from exc


def timeline_pages(base: str, params: Sequence[tuple[str, str]]) -> Iterator[dict[str, Any]]:
    """Every stored message the query selects, in event-time order, following the `next` cursor."""
    after: str | None = None
    while True:
        query = [*params, ("limit", str(PAGE))] + ([("after", after)] if after else [])
        page = get_json(base, "/api/v1/timeline", query)
        yield from page.get("messages", [])
        after = page.get("next")
        if not after:
            return


def render_status(pairs: Sequence[Mapping[str, Any]], now: float) -> str:
    """One block per pair: its open conditions, then each server's state, since when,
    whether it serves, and what it sees of its partner (80 columns)."""
    if not pairs:
        return "no pairs yet: no failover or HA line has reached the service\n"
    out = []
    for pair in pairs:
        open_conditions = [name for name, value in pair.get("conditions", {}).items() if value]
        state = ", ".join(open_conditions) if open_conditions else "ok"
        out.append(f"{pair['name']} ({pair.get('implementation') or '?'}): {state}"[:80])
        for s in pair.get("servers", []):
            since = _ago(s.get("since"), now)
            serving = {True: "serving", False: "NOT serving", None: "?"}[s.get("serving")]
            line = f"  {s['host']:<20} {s.get('state') or '?':<27} {since:>9}  {serving}"
            out.append(line[:80])
            if s.get("peer_state"):
                out.append(f"  {'':<20} sees partner: {s['peer_state']}"[:80])
    return "\n".join(out) + "\n"


def render_timeline_line(row: Mapping[str, Any]) -> str:
    """`ts host program: message`, the way a syslog file reads (ts falls back to the event time
    `at`, then to the receive time)."""
    ts = row.get("ts") or row.get("at") or row.get("received_at") or "-"
    return f"{ts} {row.get('host') or '-'} {row.get('program') or '-'}: {row.get('message', '')}"


def _ago(iso: str | None, now: float) -> str:
    if not iso:
        return "-"
    then = datetime.fromisoformat(iso).astimezone(UTC).timestamp()
    return duration(max(0.0, now - then))
