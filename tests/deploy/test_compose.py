"""deploy/compose.yaml: structure and consistency with the files it mounts.

No Docker engine (nor `docker compose`) runs here, so the file is read as YAML and checked for
what would break the stack: the four services, their healthchecks and start order, every
bind-mounted path existing in the repository, the image's COPY sources existing, pairwatch's
command being valid for `pairwatch serve` and pointing at the ClickHouse service, and the
addresses the other files use (Prometheus' scrape target, Grafana's data source URLs and
dashboard path) matching the services.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from collector.cli import build_parser
from collector.store_url import PASSWORD_ENV, parse_store_url
from tests.deploy.files import (
    COMPOSE,
    DEPLOY,
    PROMETHEUS_CONFIG,
    PROVISIONING,
    ROOT,
    load_yaml,
)

SERVICES = {"clickhouse", "pairwatch", "prometheus", "grafana"}
SECRET = re.compile(r"^\$\{[A-Z_]+:\?[^}]+\}$")
"""A value taken from the environment, required (compose refuses to start without it)."""


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE)  # type: ignore[no-any-return]


def _bind_mounts(service: dict[str, Any]) -> list[tuple[Path, str]]:
    out = []
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            out.append(((DEPLOY / source).resolve(), target))
    return out


def test_the_four_services_have_healthchecks_and_restart(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == SERVICES
    for name, service in services.items():
        test = service["healthcheck"]["test"]
        assert test[0] == "CMD" and len(test) > 1, name
        assert service["restart"] == "unless-stopped", name
        assert "image" in service, name
    assert set(compose["volumes"]) == {source for s in services.values() for v in s.get("volumes", [])
                                       if not (source := v.split(":")[0]).startswith(".")}


def test_start_order_waits_for_health(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["pairwatch"]["depends_on"] == {"clickhouse": {"condition": "service_healthy"}}
    assert services["grafana"]["depends_on"]["clickhouse"]["condition"] == "service_healthy"
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"
    for service in services.values():
        for dependency in service.get("depends_on", {}):
            assert dependency in services


def test_every_bind_mount_exists_in_the_repository(compose: dict[str, Any]) -> None:
    mounts = [m for s in compose["services"].values() for m in _bind_mounts(s)]
    assert mounts
    for source, target in mounts:
        assert source.exists(), f"{source} (mounted at {target}) is not in the repository"
        assert ROOT in source.parents, source


def test_pairwatch_image_builds_from_files_that_exist(compose: dict[str, Any]) -> None:
    build = compose["services"]["pairwatch"]["build"]
    context = (DEPLOY / build["context"]).resolve()
    assert context == ROOT
    dockerfile = build["dockerfile_inline"]
    copied = [part for line in dockerfile.splitlines() if line.startswith("COPY ") for part in line.split()[1:-1]]
    assert {"pyproject.toml", "parsers", "collector"} <= set(copied)
    for part in copied:
        assert (context / part).exists(), part
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.MULTILINE), "the service must not run as root"


def test_pairwatch_command_is_a_valid_serve_against_the_clickhouse_service(compose: dict[str, Any]) -> None:
    service = compose["services"]["pairwatch"]
    args = build_parser().parse_args(service["command"])
    assert args.command == "serve"
    target = parse_store_url(args.store, env={PASSWORD_ENV: "from-the-environment"})
    assert target.kind == "clickhouse" and target.host == "clickhouse" and target.port == 8123
    assert target.password == "from-the-environment", "the password must come from the environment, not the URL"
    assert SECRET.match(service["environment"][PASSWORD_ENV])
    clickhouse = compose["services"]["clickhouse"]["environment"]
    assert clickhouse["CLICKHOUSE_DB"] == target.database and clickhouse["CLICKHOUSE_USER"] == target.username
    # syslog ports published as listened on
    listen = {("tcp", a.rsplit(":", 1)[1]) for a in args.tcp} | {("udp", a.rsplit(":", 1)[1]) for a in args.udp}
    published = {(p.split("/")[1], p.split(":")[1].split("/")[0]) for p in service["ports"]}
    assert listen == published
    assert all(a.startswith("0.0.0.0:") for a in (*args.tcp, *args.udp, args.http))


def test_prometheus_scrapes_pairwatch_and_loads_the_rules(compose: dict[str, Any]) -> None:
    service = compose["services"]["prometheus"]
    pairwatch = build_parser().parse_args(compose["services"]["pairwatch"]["command"])
    config_flag = next(a for a in service["command"] if a.startswith("--config.file="))
    config_path = config_flag.split("=", 1)[1]
    mounted = {target: source for source, target in _bind_mounts(service)}
    directory, name = config_path.rsplit("/", 1)
    assert mounted[directory] / name == PROMETHEUS_CONFIG
    config = load_yaml(PROMETHEUS_CONFIG)
    (job,) = config["scrape_configs"]
    (static,) = job["static_configs"]
    assert static["targets"] == [f"pairwatch:{pairwatch.http.rsplit(':', 1)[1]}"]
    for rule_file in config["rule_files"]:
        assert (PROMETHEUS_CONFIG.parent / rule_file).is_file()


def test_grafana_gets_the_plugin_provisioning_and_dashboards(compose: dict[str, Any]) -> None:
    service = compose["services"]["grafana"]
    environment = service["environment"]
    assert "grafana-clickhouse-datasource" in environment["GF_INSTALL_PLUGINS"]
    assert SECRET.match(environment["GF_SECURITY_ADMIN_PASSWORD"])
    mounted = {target: source for source, target in _bind_mounts(service)}
    assert mounted["/etc/grafana/provisioning/datasources"] == PROVISIONING / "datasources"
    assert mounted["/etc/grafana/provisioning/dashboards"] == PROVISIONING / "dashboards"
    (provider,) = load_yaml(PROVISIONING / "dashboards" / "pairwatch.yaml")["providers"]
    assert mounted[provider["options"]["path"]] == ROOT / "dashboards"

    datasources = {ds["type"]: ds for ds in load_yaml(PROVISIONING / "datasources" / "pairwatch.yaml")["datasources"]}
    url = urlsplit(datasources["prometheus"]["url"])
    assert url.hostname == "prometheus" and url.port == 9090
    clickhouse = datasources["grafana-clickhouse-datasource"]["jsonData"]
    assert clickhouse["host"] == "clickhouse" and clickhouse["port"] == 9000 and clickhouse["protocol"] == "native"
    # every ${VAR} the provisioning reads is set for the container
    text = (PROVISIONING / "datasources" / "pairwatch.yaml").read_text()
    for variable in re.findall(r"\$\{(\w+)\}", text):
        assert variable in environment, variable


def test_no_secret_is_written_into_the_file(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for key, value in service.get("environment", {}).items():
            if "PASSWORD" in key:
                assert SECRET.match(str(value)), f"{name}: {key} is not taken from the environment"
    for service in compose["services"].values():
        for arg in service.get("command", []):
            assert not re.search(r"://[^/@:]+:[^/@]+@", str(arg)), "a password in a URL"


def test_web_interfaces_listen_on_loopback_only(compose: dict[str, Any]) -> None:
    for name in ("prometheus", "grafana"):
        for port in compose["services"][name]["ports"]:
            assert port.startswith("127.0.0.1:"), f"{name}: {port}"
    assert "ports" not in compose["services"]["clickhouse"]


def test_paths_named_in_the_comments_exist() -> None:
    """Except deploy/.env, which the operator writes (it holds the passwords)."""
    named = set(re.findall(r"\b(deploy/[\w./-]+\w)", COMPOSE.read_text())) - {"deploy/.env"}
    assert "deploy/rsyslog/60-pairwatch.conf" in named
    for path in named:
        assert (ROOT / path).exists(), path
