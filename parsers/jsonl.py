"""Event -> the JSON object `pairwatch parse` prints (DESIGN.md "Events").

Keys: `ts` (ISO 8601 UTC with a `Z`, or null), `host`, `program`, `pid`, `kind`,
the kind's fields in declaration order, then `message` (the text after every
header). `continuation` and `repeated` appear only when set, and so do the Kea
extras `ha_name` and `partner_state`, which dhcpd lines never have.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, Final

from parsers.events import PAYLOAD_TYPES, Event, Payload

OPTIONAL_FIELDS: Final = frozenset({"ha_name", "partner_state"})
"""Fields left out when None (the Kea extras)."""
PAYLOAD_FIELDS: Final[dict[type[Payload], tuple[str, ...]]] = {
    cls: tuple(f.name for f in fields(cls)) for cls in PAYLOAD_TYPES
}
"""Each payload class's field names, in declaration order."""


def iso_utc(ts: datetime | None) -> str | None:
    """ISO 8601 in UTC with a trailing Z; the timestamps are aware UTC already."""
    if ts is None:
        return None
    text = ts.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def epoch_iso(ts: float | None) -> str | None:
    """Epoch seconds (the correlator's and the service's clock) -> ISO 8601 UTC with a Z."""
    return None if ts is None else iso_utc(datetime.fromtimestamp(ts, UTC))


def payload_fields(event: Event) -> dict[str, Any]:
    """The kind's fields of an event, in declaration order (the Kea extras only when set)."""
    payload = event.payload
    out: dict[str, Any] = {}
    for name in PAYLOAD_FIELDS[type(payload)]:
        value = getattr(payload, name)
        if value is None and name in OPTIONAL_FIELDS:
            continue
        out[name] = value
    return out


def event_to_dict(event: Event) -> dict[str, Any]:
    record = event.record
    out: dict[str, Any] = {
        "ts": iso_utc(record.ts),
        "host": record.host,
        "program": record.program,
        "pid": record.pid,
        "kind": event.payload.kind,
    }
    out.update(payload_fields(event))
    out.setdefault("message", record.message)
    if event.continuation:
        out["continuation"] = True
    if event.repeated is not None:
        out["repeated"] = event.repeated
    return out
