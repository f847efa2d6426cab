"""Where the shipped deployment files live, and how they are read, for every test in this package."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
RULES = PROMETHEUS / "pairwatch-alerts.yml"
RULE_TESTS = PROMETHEUS / "pairwatch-alerts.test.yml"
PROMETHEUS_CONFIG = PROMETHEUS / "prometheus.yml"
RUNBOOKS = DEPLOY / "runbooks"
RUNBOOK_BASE = "https://pairwatch.example/"
"""Stands for the published repository in every runbook_url (pairwatch-alerts.yml's header)."""
DASHBOARDS = ROOT / "dashboards"
OVERVIEW = DASHBOARDS / "pairwatch-overview.json"
TIMELINE = DASHBOARDS / "pairwatch-timeline.json"
PROVISIONING = DEPLOY / "grafana" / "provisioning"
COMPOSE = DEPLOY / "compose.yaml"
UNIT = DEPLOY / "systemd" / "pairwatch.service"
CLUSTER_SQL = DEPLOY / "clickhouse" / "cluster.sql"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


def alerts() -> list[dict[str, Any]]:
    """Every alerting rule of pairwatch-alerts.yml, in file order."""
    return [rule for group in load_yaml(RULES)["groups"] for rule in group["rules"] if "alert" in rule]


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel of a dashboard, rows' nested panels included, rows themselves excluded."""
    out = []
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            out.extend(panel.get("panels", []))
        else:
            out.append(panel)
    return out
