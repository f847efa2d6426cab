"""The Grafana dashboards and their provisioning.

Structure: stable uids, a data source chosen by a dashboard variable everywhere (no data source
uid written into a panel), defined variables, a layout without overlaps, the state timelines'
numeric codes covering every state the parsers know. The PromQL is checked against a live
/metrics in test_metric_names.py. Every ClickHouse query of the timeline dashboard runs here
against the real embedded store (the session's chdb, tests/conftest.py) with Grafana's macros
and variables substituted the way the ClickHouse plugin and Grafana do it, after rows were
written through the Store API, and must return exactly the expected rows.

The timeline dashboard names no database: its queries read `${database}.table`, a textbox
variable (default `pairwatch`, pairwatch's default database); the test substitutes the
store fixture's database.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from collector.domain import Incident, StateChanged
from collector.rows import incident_row, line_rows, state_row
from collector.store import (
    EVENT_COLUMNS,
    EVENTS,
    INCIDENT_COLUMNS,
    INCIDENTS,
    MESSAGE_COLUMNS,
    MESSAGES,
    STATE_COLUMNS,
    STATES,
)
from parsers import LineParser, ParseOptions
from parsers.events import DHCPD_STATES, KEA_STATES
from tests.deploy.files import (
    OVERVIEW,
    PROVISIONING,
    TIMELINE,
    load_json,
    load_yaml,
    panels,
)

DASHBOARDS = {OVERVIEW: ("pairwatch-overview", "datasource", "prometheus"),
              TIMELINE: ("pairwatch-timeline", "clickhouse", "grafana-clickhouse-datasource")}
BUILTIN_ANNOTATIONS = {"type": "grafana", "uid": "-- Grafana --"}


# --- structure -------------------------------------------------------------------------------


def _datasources(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every `datasource` object anywhere in the dashboard, with where it is."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource" and isinstance(value, dict):
                found.append((f"{path}.{key}", value))
            found += _datasources(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _datasources(value, f"{path}[{i}]")
    return found


@pytest.mark.parametrize("path", list(DASHBOARDS), ids=lambda p: p.name)
def test_dashboard_is_provisionable_with_a_stable_uid(path: Path) -> None:
    uid, variable, plugin = DASHBOARDS[path]
    doc = load_json(path)
    assert doc["uid"] == uid and doc["title"].startswith("pairwatch: ")
    assert isinstance(doc["schemaVersion"], int) and doc["schemaVersion"] >= 36
    assert doc.get("id") is None, "a provisioned dashboard carries no database id"
    assert "__inputs" not in doc, "an export for sharing, not for provisioning"
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    assert variables[variable]["type"] == "datasource" and variables[variable]["query"] == plugin
    assert variables[variable]["current"] == {}, "the data source variable must not preselect a uid"


@pytest.mark.parametrize("path", list(DASHBOARDS), ids=lambda p: p.name)
def test_every_data_source_is_the_dashboard_variable(path: Path) -> None:
    _, variable, plugin = DASHBOARDS[path]
    doc = load_json(path)
    for where, ds in _datasources(doc):
        if ds == BUILTIN_ANNOTATIONS:
            continue
        assert ds == {"type": plugin, "uid": f"${{{variable}}}"}, f"{where}: {ds}"
    for panel in panels(doc):
        assert panel["datasource"]["uid"] == f"${{{variable}}}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], panel["title"]


@pytest.mark.parametrize("path", list(DASHBOARDS), ids=lambda p: p.name)
def test_variables_used_are_defined_and_panels_do_not_overlap(path: Path) -> None:
    doc = load_json(path)
    defined = {v["name"] for v in doc["templating"]["list"]}
    text = re.sub(r'"uid": "\$\{\w+\}"', "", json.dumps(doc))
    used = set(re.findall(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", text))
    names = {n for a, b in used if not (n := a or b).startswith("__")}  # $__...: Grafana's built-ins
    assert names <= defined, names - defined
    ids = [p["id"] for p in doc["panels"]] + [n["id"] for p in doc["panels"] for n in p.get("panels", [])]
    assert len(ids) == len(set(ids)), "two panels share an id"
    cells: set[tuple[int, int]] = set()
    for panel in doc["panels"]:
        g = panel["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, panel["title"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not mine & cells, f"{panel['title']} overlaps another panel"
        cells |= mine
        assert panel.get("description") or panel["type"] == "row", f"{panel['title']}: no description"


def _state_codes(expr: str) -> dict[str, int]:
    pairs = re.findall(r'state="([a-z-]+)"\} == 1\) \* (\d+)', expr)
    codes = {state: int(code) for state, code in pairs}
    assert len(codes) == len(pairs), "a state is listed twice"
    return codes


def test_state_timelines_give_every_known_state_its_own_code_and_name() -> None:
    timelines = [p for p in panels(load_json(OVERVIEW)) if p["type"] == "state-timeline" and "dhcp_failover_state" in
                 p["targets"][0]["expr"]]
    assert {p["title"] for p in timelines} == {"Own state", "View of the partner"}
    for panel in timelines:
        codes = _state_codes(panel["targets"][0]["expr"])
        assert set(codes) == DHCPD_STATES | KEA_STATES, panel["title"]
        assert len(set(codes.values())) == len(codes), "two states share a code"
        (mapping,) = panel["fieldConfig"]["defaults"]["mappings"]
        shown = {int(code): option["text"] for code, option in mapping["options"].items()}
        assert shown == {code: state for state, code in codes.items()}, panel["title"]


def test_dashboards_link_to_each_other_by_tag() -> None:
    overview, timeline = load_json(OVERVIEW), load_json(TIMELINE)
    (to_timeline,) = overview["links"]
    (to_overview,) = timeline["links"]
    assert set(to_timeline["tags"]) <= set(timeline["tags"]) and not set(to_timeline["tags"]) <= set(overview["tags"])
    assert set(to_overview["tags"]) <= set(overview["tags"]) and not set(to_overview["tags"]) <= set(timeline["tags"])


# --- provisioning ----------------------------------------------------------------------------


def test_datasource_provisioning_has_explicit_uids_for_both_plugins() -> None:
    doc = load_yaml(PROVISIONING / "datasources" / "pairwatch.yaml")
    assert doc["apiVersion"] == 1
    by_type = {ds["type"]: ds for ds in doc["datasources"]}
    assert set(by_type) == {"prometheus", "grafana-clickhouse-datasource"}
    assert by_type["prometheus"]["uid"] == "pairwatch-prometheus"
    assert by_type["grafana-clickhouse-datasource"]["uid"] == "pairwatch-clickhouse"
    assert not any(ds.get("isDefault") for ds in doc["datasources"])
    clickhouse = by_type["grafana-clickhouse-datasource"]
    assert clickhouse["jsonData"]["defaultDatabase"] == "pairwatch"
    assert clickhouse["secureJsonData"]["password"].startswith("${"), "no password in the file"
    # the dashboards must not depend on these uids (they pick a data source by variable)
    for path in DASHBOARDS:
        assert "pairwatch-prometheus" not in path.read_text() and "pairwatch-clickhouse" not in path.read_text()


def test_dashboard_provider_loads_the_shipped_dashboards() -> None:
    doc = load_yaml(PROVISIONING / "dashboards" / "pairwatch.yaml")
    (provider,) = doc["providers"]
    assert provider["type"] == "file" and provider["options"]["path"].startswith("/")
    assert provider["folder"] == "pairwatch"


# --- ClickHouse SQL against the real store -----------------------------------------------------

BASE = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
FROM, TO = BASE - timedelta(minutes=30), BASE + timedelta(minutes=30)
PAIR, REL = "campus", "campus-failover"
QUOTED = "o'brien"
PARSER = LineParser(ParseOptions(reference=datetime(2025, 3, 10, tzinfo=UTC)))


def grafana_sql(sql: str, database: str, pair: str, interval_s: int = 60) -> str:
    """`sql` as Grafana and the ClickHouse plugin (v4) send it: variables, then the plugin's macros."""
    sql = sql.replace("${database}", database)
    sql = sql.replace("${pair:sqlstring}", "'" + pair.replace("'", "''") + "'")  # Grafana's sqlstring format
    frm, to = int(FROM.timestamp()), int(TO.timestamp())
    sql = re.sub(r"\$__timeFilter\(([^)]+)\)", rf"\1 >= toDateTime({frm}) AND \1 <= toDateTime({to})", sql)
    sql = re.sub(r"\$__timeInterval\(([^)]+)\)", rf"toStartOfInterval(toDateTime(\1), INTERVAL {interval_s} second)", sql)
    sql = sql.replace("$__fromTime", f"toDateTime({frm})").replace("$__toTime", f"toDateTime({to})")
    assert "$" not in sql, f"unsubstituted: {sql}"
    return sql


def at(minutes: float) -> datetime:
    return BASE + timedelta(minutes=minutes)


LINES = [  # (minutes after BASE, host, message)
    (0, "dhcp1", f"failover peer {REL}: I move from normal to communications-interrupted"),
    (0.5, "dhcp2", "DHCPACK on 192.0.2.10 to 00:00:5e:00:53:0a via eth0"),
    (1, "lab1", "failover peer lab: I move from normal to communications-interrupted"),
    (2, "dhcp1", f"failover peer {REL}: I move from communications-interrupted to partner-down"),
    (-60, "dhcp1", f"failover peer {REL}: peer moves from normal to normal"),
    (5, "ob1", "failover peer ob: I move from startup to normal"),
]
STATE_ROWS = [
    StateChanged(ts=at(0).timestamp(), pair=PAIR, server="dhcp1", side="self", state="communications-interrupted",
                 previous="normal"),
    StateChanged(ts=at(2).timestamp(), pair=PAIR, server="dhcp1", side="self", state="partner-down",
                 previous="communications-interrupted"),
    StateChanged(ts=at(-50).timestamp(), pair=PAIR, server="dhcp2", side="self", state="normal", previous=None),
    StateChanged(ts=at(1).timestamp(), pair="lab", server="lab1", side="self", state="communications-interrupted",
                 previous="normal"),
    StateChanged(ts=at(5).timestamp(), pair=QUOTED, server="ob1", side="self", state="normal", previous="startup"),
]


def _incident(condition: str, pair: str, start: float, end: float | None, servers: tuple[str, ...] = ("dhcp1",)) -> Incident:
    return Incident(condition=condition, pair=pair, servers=servers, start=at(start).timestamp(),
                    end=None if end is None else at(end).timestamp(), evidence=[f"{condition} line 1", f"{condition} line 2"])


INCIDENT_ROWS = [  # (incident, updated at minute)
    (_incident("communications_interrupted", PAIR, 0, None), 0),
    (_incident("communications_interrupted", PAIR, 0, 2), 2),  # the same incident, closed
    (_incident("partner_down", PAIR, 2, None), 2),
    (_incident("stuck", PAIR, -120, -90), -90),  # before the range
    (_incident("server_silent", PAIR, -60, None, ("dhcp2",)), -50),  # opened before the range, still open
    (_incident("communications_interrupted", "lab", 1, None, ("lab1",)), 1),
]


@pytest.fixture
def filled(store: Any) -> str:
    """The store fixture's database, with the messages, events, states and incidents above."""
    messages, events = [], []
    for i, (minute, host, text) in enumerate(LINES):
        ts = at(minute)
        raw = f"{ts:%b} {ts.day:2d} {ts:%H:%M:%S} {host} dhcpd: {text}"
        event = PARSER.parse(raw)
        message, ev = line_rows(event, id=1000 + i, received_at=ts, raw=raw, transport="tcp")
        messages.append(message)
        if ev is not None:  # (a lease line has none: its fields are the message's columns)
            events.append(ev)
    token = uuid.uuid4().hex
    store.insert(MESSAGES, messages, MESSAGE_COLUMNS, f"{token}-m")
    store.insert(EVENTS, events, EVENT_COLUMNS, f"{token}-e")
    store.insert(STATES, [state_row(c) for c in STATE_ROWS], STATE_COLUMNS, f"{token}-s")
    for n, (incident, minute) in enumerate(INCIDENT_ROWS):
        store.insert(INCIDENTS, [incident_row(incident, at(minute).timestamp())], INCIDENT_COLUMNS, f"{token}-i{n}")
    return str(store.database)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _rows(store_admin: Any, sql: str) -> list[dict[str, Any]]:
    result = store_admin.query(sql)
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def check_lines(rows: list[dict[str, Any]]) -> None:
    got = sorted((_utc(r["time"]), r["host"], r["lines"]) for r in rows)
    assert got == [(at(0), "dhcp1", 1), (at(0), "dhcp2", 1), (at(2), "dhcp1", 1)]


def check_incidents(rows: list[dict[str, Any]]) -> None:
    got = [(r["condition"], _utc(r["start"]), r["status"], r["servers"]) for r in rows]
    assert got == [
        ("partner_down", at(2), "open", "dhcp1"),
        ("communications_interrupted", at(0), "closed", "dhcp1"),
        ("server_silent", at(-60), "open", "dhcp2"),
    ]
    closed = rows[1]
    assert _utc(closed["end"]) == at(2) and closed["duration"] == 120
    assert closed["evidence"] == "communications_interrupted line 1\ncommunications_interrupted line 2"


def check_states(rows: list[dict[str, Any]]) -> None:
    got = [(_utc(r["time"]), r["server"], r["side"], r["previous"], r["state"]) for r in rows]
    assert got == [
        (at(2), "dhcp1", "self", "communications-interrupted", "partner-down"),
        (at(0), "dhcp1", "self", "normal", "communications-interrupted"),
    ]


def check_timeline(rows: list[dict[str, Any]]) -> None:
    got = [(_utc(r["time"]), r["host"], r["kind"]) for r in rows]
    assert got == [(at(2), "dhcp1", "failover.state"), (at(0.5), "dhcp2", "lease.ack"), (at(0), "dhcp1", "failover.state")]
    assert all(_utc(r["logged_at"]) == _utc(r["time"]) and r["program"] == "dhcpd" for r in rows)
    assert rows[0]["message"] == LINES[3][2]
    assert '"to_state":"partner-down"' in rows[0]["fields"] and f'"relationship":"{REL}"' in rows[0]["fields"]
    assert '"ip":"192.0.2.10"' in rows[1]["fields"]


CHECKS: dict[str, Callable[[list[dict[str, Any]]], None]] = {
    "Lines received per host": check_lines,
    "Incidents": check_incidents,
    "State changes": check_states,
    "Merged timeline": check_timeline,
}


def _clickhouse_targets() -> dict[str, str]:
    out = {}
    for panel in panels(load_json(TIMELINE)):
        (target,) = panel["targets"]
        assert target["editorType"] == "sql" and target["format"] in (0, 1), panel["title"]
        out[panel["title"]] = target["rawSql"]
    return out


def test_every_clickhouse_panel_has_a_check() -> None:
    assert set(_clickhouse_targets()) == set(CHECKS)


@pytest.mark.integration
@pytest.mark.parametrize("title", list(CHECKS))
def test_panel_sql_returns_the_pairs_rows_from_the_store(title: str, filled: str, store_admin: Any) -> None:
    sql = grafana_sql(_clickhouse_targets()[title], filled, PAIR)
    CHECKS[title](_rows(store_admin, sql))


@pytest.mark.integration
def test_pair_variable_lists_every_pair(filled: str, store_admin: Any) -> None:
    (variable,) = [v for v in load_json(TIMELINE)["templating"]["list"] if v["name"] == "pair"]
    sql = grafana_sql(variable["query"]["rawSql"], filled, PAIR)
    assert [r["pair"] for r in _rows(store_admin, sql)] == [PAIR, "lab", QUOTED]


@pytest.mark.integration
def test_a_pair_name_with_a_quote_is_escaped_not_injected(filled: str, store_admin: Any) -> None:
    sqls = _clickhouse_targets()
    states = _rows(store_admin, grafana_sql(sqls["State changes"], filled, QUOTED))
    assert [(r["server"], r["state"]) for r in states] == [("ob1", "normal")]
    lines = _rows(store_admin, grafana_sql(sqls["Merged timeline"], filled, QUOTED))
    assert [r["host"] for r in lines] == ["ob1"]


def test_database_variable_defaults_to_pairwatchs_default_database() -> None:
    from collector.store_url import DEFAULT_DATABASE

    (variable,) = [v for v in load_json(TIMELINE)["templating"]["list"] if v["name"] == "database"]
    assert variable["type"] == "textbox" and variable["query"] == DEFAULT_DATABASE
    for sql in _clickhouse_targets().values():
        assert not re.search(r"\bpairwatch\.", sql), "a query names a database instead of ${database}"
