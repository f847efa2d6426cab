"""The Prometheus alert rules, their promtool unit tests, the example config and the runbooks.

promtool (Debian package `prometheus`) checks and unit-tests the files as Prometheus would
load them; the tests here add what promtool cannot know: every pairwatch condition has its
alert, every alert is tested firing and silent, the unit tests notice a wrong `for:`, and every
runbook_url leads to a runbook that exists.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector.conditions import CONDITIONS
from tests.conftest import need
from tests.deploy.files import (
    PROMETHEUS_CONFIG,
    RULE_TESTS,
    RULES,
    RUNBOOK_BASE,
    RUNBOOKS,
    alerts,
    load_yaml,
)

REQUIRED = {
    # the issue's list: name -> (severity, `for`)
    "DhcpFailoverPartnerDown": ("critical", None),
    "DhcpFailoverCommunicationsInterrupted": ("warning", "5m"),
    "DhcpFailoverStuck": ("critical", None),
    "DhcpFailoverSplitBrain": ("critical", None),
    "DhcpFailoverNotServing": ("critical", None),
    "DhcpFailoverViewsDisagree": ("warning", None),
    "DhcpServerSilent": ("warning", None),
    "DhcpPoolExhausted": ("critical", None),
    "PairwatchIngestErrors": (None, None),
    "PairwatchStoreInsertFailing": (None, None),
    "PairwatchDown": (None, None),
}
RUNBOOK_SECTIONS = ("## What it means", "## Confirm", "## What to do", "## What not to do")


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    need(shutil.which("promtool") is not None, "needs promtool (Debian package prometheus)")
    return subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


# --- promtool ------------------------------------------------------------------------------


@pytest.mark.integration
def test_rules_pass_promtool_check() -> None:
    result = promtool("check", "rules", RULES.name, cwd=RULES.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in result.stdout


@pytest.mark.integration
def test_promtool_unit_tests_pass() -> None:
    result = promtool("test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.integration
def test_example_config_passes_promtool_check_with_the_rules() -> None:
    """prometheus.yml loads pairwatch-alerts.yml by a path relative to itself, from any cwd."""
    result = promtool("check", "config", str(PROMETHEUS_CONFIG), cwd=Path("/"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in result.stdout
    config = load_yaml(PROMETHEUS_CONFIG)
    assert [job["job_name"] for job in config["scrape_configs"]] == ["pairwatch"]


@pytest.mark.integration
@pytest.mark.parametrize(
    ("alert", "old", "new"),
    [
        pytest.param("DhcpFailoverCommunicationsInterrupted", "        for: 5m\n", "", id="delay-removed"),
        pytest.param("DhcpFailoverSplitBrain", "        labels:\n", "        for: 1m\n        labels:\n",
                     id="delay-added"),
        pytest.param("DhcpPoolExhausted", 'condition="pool_exhausted"', 'condition="pool_exhausted_typo"',
                     id="condition-typo"),
        pytest.param("DhcpServerSilent", "{{ .Labels.server }} {{ .Value | humanizeDuration }} ago;",
                     "{{ .Labels.server }} silent;", id="description-changed"),
    ],
)
def test_unit_tests_notice_a_changed_rule(tmp_path: Path, alert: str, old: str, new: str) -> None:
    """Mutate one rule (in a copy) and the promtool unit tests must fail on that alert."""
    text = RULES.read_text()
    start = text.index(f"- alert: {alert}\n")
    end = text.find("- alert:", start + 1)
    end = len(text) if end < 0 else end
    block = text[start:end]
    assert old in block, f"{alert}: {old!r} not found"
    (tmp_path / RULES.name).write_text(text[:start] + block.replace(old, new, 1) + text[end:])
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    result = promtool("test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert result.returncode != 0, result.stdout
    assert f"alertname: {alert}" in result.stdout + result.stderr


# --- what promtool does not check ----------------------------------------------------------


def test_the_issues_alerts_exist_with_their_severity_and_delay() -> None:
    rules = {rule["alert"]: rule for rule in alerts()}
    assert set(REQUIRED) <= set(rules)
    for name, (severity, delay) in REQUIRED.items():
        rule = rules[name]
        if severity is not None:
            assert rule["labels"]["severity"] == severity, name
        if delay is not None:
            assert rule.get("for") == delay, name
    assert "for" not in rules["DhcpFailoverSplitBrain"]
    assert 'up{job="pairwatch"}' in rules["PairwatchDown"]["expr"]


def test_every_pairwatch_condition_has_exactly_one_alert() -> None:
    used: dict[str, list[str]] = {}
    for rule in alerts():
        for condition in re.findall(r'condition="([a-z_]+)"', rule["expr"]):
            used.setdefault(condition, []).append(rule["alert"])
    assert set(used) == set(CONDITIONS)
    assert all(len(names) == 1 for names in used.values()), used


def test_every_alert_has_the_labels_and_annotations_a_receiver_needs() -> None:
    for rule in alerts():
        name = rule["alert"]
        assert re.fullmatch(r"(?:[A-Z][a-z0-9]+)+", name), f"{name}: not CamelCase"
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook_url"}, name
        if name.startswith("Dhcp"):
            # the pair in both texts; the servers by name in the description (a template query)
            assert "$labels.pair" in annotations["summary"] and "$labels.pair" in annotations["description"], name
            assert ".Labels.server" in annotations["description"] or ".Labels.pool" in annotations["description"], name
            assert "pairwatch timeline --pair {{ $labels.pair }} --since 1h" in annotations["description"], name
        else:
            assert "$labels.instance" in annotations["summary"], name


def test_every_runbook_url_points_at_a_runbook_for_its_alert() -> None:
    pages = set()
    for rule in alerts():
        url = rule["annotations"]["runbook_url"]
        assert url.startswith(RUNBOOK_BASE), url
        path = RUNBOOKS.parents[1] / url.removeprefix(RUNBOOK_BASE)
        assert path == RUNBOOKS / f"{rule['alert']}.md", url
        assert path.is_file(), f"{rule['alert']}: no runbook at {path}"
        text = path.read_text()
        assert text.startswith(f"# {rule['alert']}\n")
        for section in RUNBOOK_SECTIONS:
            assert section in text, f"{path.name}: missing {section!r}"
        assert "pairwatch status" in text or "pairwatch" in rule["alert"].lower(), path.name
        pages.add(path.name)
    # no page without an alert (besides the index, which links every page)
    assert {p.name for p in RUNBOOKS.glob("*.md")} - pages == {"README.md"}
    index = (RUNBOOKS / "README.md").read_text()
    assert all(f"({page})" in index for page in pages)


def test_dhcp_runbooks_say_how_to_confirm_and_what_never_to_do() -> None:
    for rule in alerts():
        if not rule["alert"].startswith("Dhcp"):
            continue
        text = (RUNBOOKS / f"{rule['alert']}.md").read_text()
        assert "pairwatch status" in text and "pairwatch timeline --" in text, rule["alert"]
        assert re.search(r"never wipe both|never both|Never wipe both", text, re.IGNORECASE), rule["alert"]


def _unit_tests() -> list[dict[str, Any]]:
    return list(yaml.safe_load(RULE_TESTS.read_text())["tests"])


def test_every_alert_is_unit_tested_firing_and_silent() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for case in _unit_tests():
        for check in case.get("alert_rule_test", []):
            (firing if check["exp_alerts"] else silent).add(check["alertname"])
    names = {rule["alert"] for rule in alerts()}
    assert firing == names, names ^ firing
    assert silent == names, names ^ silent


def test_unit_tests_load_the_shipped_rules() -> None:
    doc = yaml.safe_load(RULE_TESTS.read_text())
    assert doc["rule_files"] == [RULES.name]


def test_runbook_links_and_named_files_exist() -> None:
    root = RUNBOOKS.parents[1]
    for page in RUNBOOKS.glob("*.md"):
        text = page.read_text()
        for target in re.findall(r"\]\(([^)#]+\.md)\)", text):
            assert (RUNBOOKS / target).is_file(), f"{page.name}: broken link {target}"
        for path in re.findall(r"`(deploy/[\w./-]+)`", text):
            assert (root / path).exists(), f"{page.name}: {path} does not exist"
