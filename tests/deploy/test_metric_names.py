"""Every metric the alerts, their unit tests and the dashboards use is one pairwatch exports.

A real `pairwatch serve` (tests/serving.py) gets realistic dhcpd and Kea lines from two pairs
over a TCP socket (LF-terminated RFC 3164, each line with its server's host name) and one line
through util-linux `logger`, so that every per-pair family has samples. Then each PromQL
expression (alert rules, the queries inside their annotation templates, dashboard panels and
variables) and each promtool input series is taken apart: its metric names must appear in
/metrics, the labels it matches on must be labels of that metric (or Prometheus' own `job` and
`instance`), and label values of closed sets (condition, state, side, kind, result) must be
values pairwatch emits.
"""

from __future__ import annotations

import re
import shutil
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from collector.conditions import CONDITIONS
from collector.metric_names import POOL_KINDS, SYNC_RESULTS
from parsers.events import DHCPD_STATES, KEA_STATES
from tests.conftest import need
from tests.deploy.files import OVERVIEW, RULE_TESTS, alerts, load_json, panels
from tests.serving import logger, serving

TARGET_LABELS = frozenset({"job", "instance"})
"""Added by Prometheus to every scraped series."""
PROMETHEUS_OWN = {"up": TARGET_LABELS}
"""Series Prometheus makes itself for every target."""
CLOSED_VALUES = {
    "condition": frozenset(CONDITIONS),
    "state": DHCPD_STATES | KEA_STATES,
    "side": frozenset({"self", "peer"}),
    "kind": frozenset(POOL_KINDS),
    "result": frozenset(SYNC_RESULTS),
}
GRAFANA_RANGES = {"$__rate_interval": "1m", "$__range": "1h", "$__interval": "1m"}


# --- a small PromQL reader ----------------------------------------------------------------

_TOKEN = re.compile(
    r"""(?P<ws>\s+)
      | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
      | (?P<duration>\d+(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*)
      | (?P<number>\d+(?:\.\d+)?(?:e[+-]?\d+)?)
      | (?P<name>[A-Za-z_:][A-Za-z0-9_:]*)
      | (?P<op>=~|!~|!=|==|>=|<=|[=<>+\-*/%^(){}\[\],])""",
    re.VERBOSE,
)
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "atan2", "group_left", "group_right"})
_GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})


@dataclass
class Selector:
    """A metric name in an expression and the label matchers written on it."""

    metric: str
    matchers: list[tuple[str, str, str]] = field(default_factory=list)  # (label, op, value)


@dataclass
class Parsed:
    selectors: list[Selector]
    grouping: set[str]  # labels of by/without/on/ignoring/group_* clauses


def _tokens(expr: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None:
            raise ValueError(f"cannot read PromQL at {expr[pos:pos + 20]!r} in {expr!r}")
        pos = m.end()
        if m.lastgroup != "ws":
            out.append((m.lastgroup or "", m.group()))
    return out


def _unquote(token: str) -> str:
    return token[1:-1].replace('\\"', '"').replace("\\'", "'")


def parse_promql(expr: str) -> Parsed:
    """The metric selectors and grouping labels of `expr` (enough PromQL for our expressions)."""
    tokens = _tokens(expr)
    selectors: list[Selector] = []
    grouping: set[str] = set()
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        nxt = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        if kind == "name" and text in _GROUPING and nxt == "(":
            j = i + 2
            while tokens[j][1] != ")":
                if tokens[j][0] == "name":
                    grouping.add(tokens[j][1])
                j += 1
            i = j + 1
            continue
        if kind == "name" and (nxt == "(" or nxt in _GROUPING or text in _KEYWORDS):
            i += 1  # a function, an aggregation (`sum by (...) (...)`) or an operator keyword
            continue
        if text == "[":  # a range or subquery duration
            while tokens[i][1] != "]":
                i += 1
            i += 1
            continue
        if kind == "name":
            selector = Selector(text)
            selectors.append(selector)
            i += 1
            if i < len(tokens) and tokens[i][1] == "{":
                i += 1
                while tokens[i][1] != "}":
                    if tokens[i][1] == ",":
                        i += 1
                        continue
                    label, op, value = tokens[i][1], tokens[i + 1][1], tokens[i + 2][1]
                    selector.matchers.append((label, op, _unquote(value)))
                    i += 3
                i += 1
            continue
        i += 1
    return Parsed(selectors, grouping)


def test_the_promql_reader_finds_names_matchers_and_grouping() -> None:
    parsed = parse_promql(
        'sum by (server, type) (rate(dhcp_lease_messages_total[5m]) and on (server) '
        'dhcp_failover_state{pair=~"a|b", side="self"}) > bool 0 or vector(1)'
    )
    assert [s.metric for s in parsed.selectors] == ["dhcp_lease_messages_total", "dhcp_failover_state"]
    assert parsed.selectors[1].matchers == [("pair", "=~", "a|b"), ("side", "=", "self")]
    assert parsed.grouping == {"server", "type"}
    with pytest.raises(ValueError):
        parse_promql("up{job=\"x\"} ? 1")


# --- the expressions ---------------------------------------------------------------------


def _grafana(expr: str) -> str:
    for variable, value in GRAFANA_RANGES.items():
        expr = expr.replace(variable, value)
    return expr


def _template_queries(text: str) -> list[str]:
    """PromQL run by an annotation template: printf `...%q...` $labels.pair | query."""
    return [q.replace("%q", '"p"') for q in re.findall(r"printf `([^`]*)`", text)]


def expressions() -> list[tuple[str, str]]:
    """(where, PromQL) for every query the shipped files run against Prometheus."""
    out = []
    for rule in alerts():
        out.append((f"alert {rule['alert']}", rule["expr"]))
        for key, text in rule["annotations"].items():
            out += [(f"alert {rule['alert']} {key}", q) for q in _template_queries(text)]
    dashboard = load_json(OVERVIEW)
    for panel in panels(dashboard):
        for target in panel["targets"]:
            if target["datasource"]["type"] == "prometheus":
                out.append((f"panel {panel['title']!r} {target['refId']}", _grafana(target["expr"])))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            m = re.fullmatch(r"label_values\((.+), *([a-z_]+)\)", variable["query"]["query"])
            assert m is not None, variable["name"]
            out.append((f"variable {variable['name']}", f"{m.group(1)} * on () group_left ({m.group(2)}) vector(1)"))
    return out


def unit_test_series() -> list[tuple[str, str]]:
    """(where, series selector) of every input series of the promtool unit tests."""
    doc = yaml.safe_load(RULE_TESTS.read_text())
    return [(f"unit test {case['name']!r}", s["series"]) for case in doc["tests"] for s in case["input_series"]]


# --- a service that has seen both kinds of pair ------------------------------------------------


def _send(port: int, lines: list[tuple[str, str, str]]) -> None:
    """RFC 3164 lines over one TCP connection, LF-terminated: (host, program, message)."""
    now = datetime.now(UTC)
    stamp = f"{now:%b} {now.day:2d} {now:%H:%M:%S}"
    data = "".join(f"<30>{stamp} {host} {program}[4242]: {message}\n" for host, program, message in lines)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(data.encode())
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(10)
        assert conn.recv(1) == b""


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, set[str]]]:
    """Sample name -> label names, from /metrics of a service fed a dhcpd and a Kea pair."""
    need(shutil.which("logger") is not None, "needs util-linux logger")
    tag = uuid.uuid4().hex[:6]
    rel, d1, d2, ka, kb = f"dw{tag}", f"dhcp1-{tag}", f"dhcp2-{tag}", f"kea-a-{tag}", f"kea-b-{tag}"
    kea = "INFO  [kea-dhcp4.ha-hooks.139887825118784]"
    lines = [
        (d1, "dhcpd", f"failover peer {rel}: I move from normal to communications-interrupted"),
        (d2, "dhcpd", f"failover peer {rel}: I move from recover to startup"),
        (d2, "dhcpd", f"failover peer {rel}: I move from startup to recover"),
        (d2, "dhcpd", f"Sent update request all message to {rel}"),
        (d1, "dhcpd", f"failover peer {rel}: peer moves from startup to recover"),
        (d1, "dhcpd", f"failover peer {rel}: I move from communications-interrupted to partner-down"),
        (d1, "dhcpd", f"Update request all from {rel}: sending update"),
        (d2, "dhcpd", f"failover peer {rel}: peer update completed."),
        (d2, "dhcpd", f"failover peer {rel}: I move from recover to recover-wait"),
        (d2, "dhcpd", "DHCPDISCOVER from 00:00:5e:00:53:01 via eth0: not responding (recover wait)"),
        (d1, "dhcpd", "DHCPDISCOVER from 00:00:5e:00:53:02 via eth0"),
        (d1, "dhcpd", "DHCPOFFER on 192.0.2.20 to 00:00:5e:00:53:02 via eth0"),
        (d1, "dhcpd", "DHCPACK on 192.0.2.20 to 00:00:5e:00:53:02 via eth0"),
        (d1, "dhcpd", "balanced pool 5612a0c3e0a0 192.0.2.0/24  total 240  free 120  backup 119  lts 0  max-misbal 18"),
        (d1, "dhcpd", "DHCPDISCOVER from 00:00:5e:00:53:03 via eth0: network 198.51.100.0/24: no free leases"),
        (ka, "kea-dhcp4", f"{kea} HA_STATE_TRANSITION {ka}: server transitions from WAITING to SYNCING state, "
                          "partner state is WAITING"),
        (ka, "kea-dhcp4", f"{kea} HA_SYNC_START {ka}: starting lease database synchronization with {kb}"),
        (ka, "kea-dhcp4", f"{kea} HA_SYNC_SUCCESSFUL {ka}: lease database synchronization with {kb} completed "
                          "successfully in 12.5 ms"),
        (kb, "kea-dhcp4", f"{kea} HA_STATE_TRANSITION {kb}: server transitions from WAITING to SYNCING state, "
                          "partner state is SYNCING"),
    ]
    with serving(tmp_path_factory) as serve:
        _send(serve.tcp, lines)
        # a line no parser rule knows, through the real logger: pairwatch_parse_unrecognized_total
        logger("-n", "127.0.0.1", "-P", str(serve.tcp), "-T", "--octet-count", "-t", "dhcpd",
               f"pairwatch deploy test {tag}: a line no dhcpd ever wrote")

        wanted = [  # (sample name, labels it must have): one per family that needs lines to appear
            ("dhcp_failover_state", {"pair": rel, "server": d2, "side": "self", "state": "recover-wait"}),
            ("dhcp_failover_state", {"pair": f"{ka}+{kb}", "server": kb, "side": "self", "state": "syncing"}),
            ("dhcp_failover_transitions_total", {"pair": rel, "server": d1, "to_state": "partner-down"}),
            ("dhcp_failover_sync_duration_seconds", {"pair": rel, "server": d2}),
            ("dhcp_failover_sync_duration_seconds", {"pair": f"{ka}+{kb}", "server": ka}),
            ("dhcp_failover_refused_total", {"pair": rel, "server": d2}),
            ("dhcp_pool_leases", {"pair": rel, "server": d1, "kind": "backup"}),
            ("dhcp_lease_messages_total", {"server": d1, "type": "ack"}),
            ("dhcp_no_free_leases_total", {"server": d1, "network": "198.51.100.0/24"}),
            ("dhcp_server_last_message_timestamp_seconds", {"server": kb}),
            ("pairwatch_parse_unrecognized_total", {"program": "dhcpd"}),
        ]

        def complete() -> dict[str, set[str]] | None:
            status, body = serve.get("/metrics")
            assert status == 200
            families: dict[str, set[str]] = {}
            seen: list[tuple[str, dict[str, str]]] = []
            for family in text_string_to_metric_families(body.decode()):
                for sample in family.samples:
                    families.setdefault(sample.name, set()).update(sample.labels)
                    seen.append((sample.name, sample.labels))
            have = all(any(n == name and labels.items() <= got.items() for n, got in seen) for name, labels in wanted)
            return families if have else None

        yield serve.poll(complete, "every per-pair family on /metrics")


# --- the checks ----------------------------------------------------------------------------


def _check_selector(where: str, selector: Selector, exported: dict[str, set[str]]) -> set[str]:
    """The labels the metric has; fails when the name, a label or a closed value is wrong."""
    labels = PROMETHEUS_OWN.get(selector.metric)
    if labels is None:
        assert selector.metric in exported, f"{where}: pairwatch exports no {selector.metric}"
        labels = exported[selector.metric] | TARGET_LABELS
    for label, op, value in selector.matchers:
        assert label in labels, f"{where}: {selector.metric} has no label {label!r} (it has {sorted(labels)})"
        if label in CLOSED_VALUES and "$" not in value and op in ("=", "=~"):
            values = value.split("|") if op == "=~" else [value]
            unknown = set(values) - CLOSED_VALUES[label]
            assert not unknown, f"{where}: {label}={unknown} is never exported"
    return labels


@pytest.mark.integration
@pytest.mark.parametrize(("where", "expr"), expressions())
def test_expression_uses_only_exported_metrics_and_labels(
    where: str, expr: str, exported: dict[str, set[str]]
) -> None:
    parsed = parse_promql(expr)
    assert parsed.selectors, f"{where}: no metric in {expr!r}"
    labels: set[str] = {"le"}
    for selector in parsed.selectors:
        labels |= _check_selector(where, selector, exported)
    assert parsed.grouping <= labels, f"{where}: groups by {sorted(parsed.grouping - labels)}, which no metric has"


@pytest.mark.integration
@pytest.mark.parametrize(("where", "series"), unit_test_series())
def test_unit_test_series_are_series_pairwatch_exports(
    where: str, series: str, exported: dict[str, set[str]]
) -> None:
    (selector,) = parse_promql(series).selectors
    labels = _check_selector(where, selector, exported)
    assert {label for label, _, _ in selector.matchers} == labels, (
        f"{where}: {series} has not exactly the labels of the real series ({sorted(labels)})"
    )


@pytest.mark.integration
def test_every_exported_dhcp_family_is_on_the_dashboard(exported: dict[str, set[str]]) -> None:
    """The overview shows every per-pair and per-server family pairwatch has."""
    used = {s.metric for where, expr in expressions() if where.startswith("panel") for s in parse_promql(expr).selectors}
    shown = {name.removesuffix("_bucket") for name in used}
    dhcp = {name for name in exported if name.startswith("dhcp_")}
    assert dhcp - shown == set(), sorted(dhcp - shown)


@pytest.mark.integration
@pytest.mark.parametrize(
    "expr",
    [
        pytest.param('dhcp_failover_states{pair="p"} == 1', id="unknown-metric"),
        pytest.param('dhcp_failover_condition{server="dhcp1"} == 1', id="unknown-label"),
        pytest.param('dhcp_failover_condition{condition="partner-down"} == 1', id="unknown-condition"),
        pytest.param('dhcp_pool_leases{kind=~"free|spare"}', id="unknown-kind"),
        pytest.param("sum by (mac) (rate(dhcp_lease_messages_total[5m]))", id="unknown-grouping-label"),
    ],
)
def test_a_wrong_name_label_or_value_is_caught(expr: str, exported: dict[str, set[str]]) -> None:
    with pytest.raises(AssertionError):
        test_expression_uses_only_exported_metrics_and_labels("example", expr, exported)
