"""A real Prometheus (Debian package `prometheus`) scrapes a real `pairwatch serve`, loads the
shipped rules and fires DhcpFailoverPartnerDown for a replayed partner-down log.

The rules are the shipped file, unchanged (so the alert's own `for: 1m` is waited out); only the
scrape and evaluation intervals of the test's Prometheus are short. Everything on loopback, the
Prometheus process stopped by pid.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import need
from tests.deploy.files import RULES
from tests.serving import Serve, free_port, serving, stop

pytestmark = pytest.mark.integration

PROMETHEUS = shutil.which("prometheus")
FIRE_DEADLINE = 150.0  # the rule's `for: 1m`, plus scrapes, evaluations and a slow machine


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    with serving(tmp_path_factory) as started:
        yield started


def _prometheus(tmp: Path, target: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    shutil.copy(RULES, tmp / "pairwatch-alerts.yml")
    (tmp / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "rule_files:\n  - pairwatch-alerts.yml\n"
        f"scrape_configs:\n  - job_name: pairwatch\n    static_configs:\n      - targets: [\"{target}\"]\n"
    )
    log = open(tmp / "prometheus.log", "wb")  # noqa: SIM115 - closed with the process below
    proc = subprocess.Popen(
        [PROMETHEUS, f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    log.close()
    return proc, port


def _api(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
        return json.load(resp)["data"]


def test_real_prometheus_fires_partner_down_for_a_replayed_log(serve: Serve, tmp_path: Path) -> None:
    need(PROMETHEUS is not None, "needs the Prometheus server (Debian package prometheus)")
    rel = f"pd{uuid.uuid4().hex[:6]}"
    proc, port = _prometheus(tmp_path, f"127.0.0.1:{serve.http}")
    try:
        lines = [
            f"<30>Mar  3 08:15:02 dhcp-p1 dhcpd: failover peer {rel}: I move from normal to communications-interrupted",
            f"<30>Mar  3 08:20:02 dhcp-p1 dhcpd: failover peer {rel}: I move from communications-interrupted to partner-down",
        ]
        with socket.create_connection(("127.0.0.1", serve.tcp), timeout=5) as conn:
            conn.sendall(b"".join(b"%d %s" % (len(x), x.encode()) for x in lines))
        serve.poll(lambda: serve.value("dhcp_failover_condition", condition="partner_down", pair=rel) == 1.0,
                   "partner_down in pairwatch's /metrics")

        def alert_state() -> str | None:
            try:
                alerts = _api(port, "/api/v1/alerts")["alerts"]
            except OSError:
                return None  # Prometheus still starting
            for alert in alerts:
                if alert["labels"].get("alertname") == "DhcpFailoverPartnerDown" and alert["labels"].get("pair") == rel:
                    return str(alert["state"])
            return None

        seen: set[str] = set()
        end = time.monotonic() + FIRE_DEADLINE
        while time.monotonic() < end and "firing" not in seen:
            state = alert_state()
            if state:
                seen.add(state)
            time.sleep(1)
        assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()
        assert seen == {"pending", "firing"}, f"alert states seen: {seen}\n{(tmp_path / 'prometheus.log').read_text()}"
        rules = _api(port, "/api/v1/rules")["groups"]
        health = {r["name"]: r["health"] for g in rules for r in g["rules"] if r["type"] == "alerting"}
        assert health and set(health.values()) == {"ok"}, health  # every shipped rule evaluates
        (firing,) = [a for a in _api(port, "/api/v1/alerts")["alerts"]
                     if a["labels"]["alertname"] == "DhcpFailoverPartnerDown" and a["labels"].get("pair") == rel]
        assert firing["labels"]["severity"] == "critical"
        assert rel in firing["annotations"]["summary"] and "dhcp-p1 partner-down" in firing["annotations"]["description"]
    finally:
        stop(proc)
