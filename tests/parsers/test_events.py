"""The event contract of DESIGN.md: kinds, field names, and the JSON shape."""

from __future__ import annotations

import ast
import re
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path

import pytest

import parsers
from parsers import PAYLOAD_TYPES, event_to_dict, parse_line
from parsers.events import DHCPD_STATES, KEA_STATES, Lease

# DESIGN.md "Events (contract)": kind -> fields (copied here so the test runs without shared/).
CONTRACT = {
    "failover.state": ("relationship", "side", "from_state", "to_state"),
    "failover.pair_normal": ("relationship",),
    "failover.connection": ("relationship", "status", "reason"),
    "failover.update": ("relationship", "phase"),
    "failover.bind_rejected": ("ip", "relationship", "reason"),
    "failover.pool": ("pool", "network", "total", "free", "backup", "lts", "balanced"),
    "failover.ha": ("event", "partner"),
    **{
        f"lease.{t}": ("ip", "mac", "client_name", "via", "server_id", "refused", "detail")
        for t in ("discover", "offer", "request", "ack", "nak", "release", "decline", "inform")
    },
    "lease.no_free": ("network", "reason"),
    "server.lifecycle": ("event", "version"),
    "dhcpd.other": ("message",),
    "kea.other": ("message",),
    "syslog.other": ("message",),
}
# Fields beyond the table, each named in DESIGN.md or needed for it: Kea's this-server-name
# (`ha_name`), the partner state HA_STATE_TRANSITION reports (`partner_state`, see `expand`),
# and the variable text of Kea HA messages (`detail`, e.g. the sync duration).
EXTRAS = {"failover.state": {"ha_name", "partner_state"}, "failover.ha": {"ha_name", "detail"}}

DESIGN = Path(__file__).resolve().parents[3] / "shared" / "DESIGN.md"


def test_one_payload_class_per_contract_kind():
    assert sorted(cls.kind for cls in PAYLOAD_TYPES) == sorted(CONTRACT)


@pytest.mark.parametrize("cls", PAYLOAD_TYPES, ids=lambda c: c.kind)
def test_field_names(cls):
    names = [f.name for f in fields(cls)]
    assert set(names) - set(CONTRACT[cls.kind]) == EXTRAS.get(cls.kind, set())
    assert [n for n in names if n in CONTRACT[cls.kind]] == list(CONTRACT[cls.kind])


def _outside_parentheses(text: str) -> str:
    """Drop the value lists DESIGN.md gives in (nested) parentheses after a field name."""
    depth, kept = 0, []
    for ch in text:
        depth += ch == "("
        if depth == 0:
            kept.append(ch)
        depth -= ch == ")" and depth > 0
    return "".join(kept)


def test_contract_copy_matches_design_md():
    if not DESIGN.exists():
        pytest.skip(f"{DESIGN} not present (it sits beside the checkout in CI)")
    table = {}
    for line in DESIGN.read_text().splitlines():
        if not line.startswith("| `") or "|" not in line[2:]:
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        kinds = re.findall(r"`([a-z_]+\.[a-z_]+)`", cells[0])
        if not kinds or len(cells) < 3:
            continue
        names = tuple(re.findall(r"`([a-z_]+)`", _outside_parentheses(cells[1])))
        for kind in kinds:
            table[kind] = names
    assert {k: v for k, v in table.items() if k in CONTRACT} == CONTRACT


def test_state_names_match_design_md():
    if not DESIGN.exists():
        pytest.skip(f"{DESIGN} not present (it sits beside the checkout in CI)")
    text = DESIGN.read_text()
    para = text[text.index("State names are lowercase") :]
    para = para[: para.index("\n\n")]
    dhcpd_part, kea_part = para.split("Kea states are")
    assert set(re.findall(r"`([a-z-]+)`", dhcpd_part)) == DHCPD_STATES
    assert set(re.findall(r"`([a-z-]+)`", kea_part)) == KEA_STATES


def test_lease_kinds_share_fields():
    assert all(issubclass(cls, Lease) for cls in PAYLOAD_TYPES if cls.kind.startswith("lease.") and cls.kind != "lease.no_free")


def test_json_shape():
    ref = parsers.ParseOptions(reference=datetime(2025, 3, 5, tzinfo=UTC))
    d = event_to_dict(parse_line("Mar  3 08:15:02 dhcp-a dhcpd[12]: failover peer ab: I move from normal to recover", ref))
    assert d == {
        "ts": "2025-03-03T08:15:02Z",
        "host": "dhcp-a",
        "program": "dhcpd",
        "pid": 12,
        "kind": "failover.state",
        "relationship": "ab",
        "side": "self",
        "from_state": "normal",
        "to_state": "recover",
        "message": "failover peer ab: I move from normal to recover",
    }
    blank = event_to_dict(parse_line("", ref))
    assert blank == {"ts": None, "host": None, "program": None, "pid": None, "kind": "syslog.other", "message": ""}


def test_exports_sorted_and_complete():
    assert parsers.__all__ == sorted(parsers.__all__)
    assert all(hasattr(parsers, name) for name in parsers.__all__)


FORBIDDEN = {"socket", "asyncio", "time", "os", "subprocess", "threading", "random", "collector"}


@pytest.mark.parametrize("path", sorted(Path(parsers.__file__).parent.glob("*.py")), ids=lambda p: p.name)
def test_parsers_do_no_io_and_read_no_clock(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert not {a.name.split(".")[0] for a in node.names} & FORBIDDEN, path
        elif isinstance(node, ast.ImportFrom):
            assert (node.module or "").split(".")[0] not in FORBIDDEN, path
        elif isinstance(node, ast.Attribute):
            assert node.attr not in {"now", "utcnow", "today", "time", "monotonic"}, f"{path}:{node.lineno}"
        elif isinstance(node, ast.Name):
            assert node.id not in {"open", "print", "input"}, f"{path}:{node.lineno}"
