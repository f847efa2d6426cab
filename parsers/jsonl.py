"""Event -> the JSON object `pairwatch parse` prints (DESIGN.md "Events").

Keys: `ts` (ISO 8601 UTC with a `Z`, or null), `host`, `program`, `pid`, `kind`,
the kind's fields in declaration order, then `message` (the text after every
header). `continuation` and `repeated` appear only when set, and so do the Kea
extras `ha_name` and `partner_state`, which dhcpd lines never have.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, Final

from parsers.events import PAYLOAD_TYPES, Event, Payload

_OPTIONAL = frozenset({"ha_name", "partner_state"})  # left out when None (the Kea extras)


def _layout(cls: type[Payload]) -> tuple[tuple[str, ...], Callable[[Payload], tuple[Any, ...]], tuple[str, ...]]:
    """A payload class's field names in declaration order, a getter of their values (one C
    call: `payload_fields` runs for every stored line), and its optional fields."""
    names = tuple(f.name for f in fields(cls))
    if len(names) > 1:
        values: Callable[[Payload], tuple[Any, ...]] = attrgetter(*names)
    else:  # every payload class has at least one field
        one = attrgetter(names[0])
        values = lambda payload: (one(payload),)  # noqa: E731
    return names, values, tuple(name for name in names if name in _OPTIONAL)


_LAYOUTS: Final = {cls: _layout(cls) for cls in PAYLOAD_TYPES}


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
    names, values, optional = _LAYOUTS[type(payload)]
    out = dict(zip(names, values(payload)))
    for name in optional:
        if out[name] is None:
            del out[name]
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
