"""Prometheus, Alertmanager, Grafana and runbook files of the compose stack.

``promtool`` (Debian package prometheus, installed by bin/setup) checks the config,
the alerting rules and, through a throw-away rule file, every dashboard query.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from tests.deploy.tools import REPO, SERVICES, find_tool

PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
RULE_FILES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
DASHBOARDS = sorted((REPO / "deploy" / "grafana" / "dashboards").glob("*.json"))
RUNBOOK = REPO / "docs" / "runbook.md"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = find_tool("promtool")
    if binary is None:
        pytest.skip("promtool not found: bin/setup installs the Debian package prometheus")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60, check=False)


def alerting_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules.extend(rule for rule in group["rules"] if "alert" in rule)
    return rules


def dashboard_queries() -> list[str]:
    queries: list[str] = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            queries.extend(target["expr"] for target in panel.get("targets", []))
    return queries


def test_prometheus_config_is_valid() -> None:
    # rule_files are resolved relative to the config file, as in the container.
    result = promtool("check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(RULE_FILES)} rule files found" in result.stdout


def test_alerting_rules_are_valid() -> None:
    assert RULE_FILES
    result = promtool("check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_scrapes_every_service_under_its_name() -> None:
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for service in SERVICES:
        targets = [t for sc in jobs[service.name]["static_configs"] for t in sc["targets"]]
        assert targets == [f"{service.name}:{service.port}"]


def test_alerts_have_severity_summary_and_runbook_section() -> None:
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line[3:].strip().lower()).replace(" ", "-")
        for line in RUNBOOK.read_text().splitlines()
        if line.startswith("## ")
    }
    names = set()
    for rule in alerting_rules():
        names.add(rule["alert"])
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert rule["annotations"]["summary"]
        url = rule["annotations"]["runbook_url"]
        assert url.startswith("docs/runbook.md#"), url
        assert url.split("#", 1)[1] in anchors, f"{rule['alert']}: no section for {url}"
    assert {"ServiceDown", "DeadLetterGrowth"} <= names


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    queries = dashboard_queries()
    for expected in (
        "socialcrm_events_consumed_total",
        "socialcrm_events_produced_total",
        "socialcrm_events_dead_lettered_total",
        "socialcrm_event_processing_seconds_bucket",
        "socialcrm_interactions_total",
    ):
        assert any(expected in query for query in queries), f"no panel on {expected}"
    # promtool parses the expressions of recording rules: one rule per dashboard query.
    rules = [{"record": f"dashboard:query{i}", "expr": q} for i, q in enumerate(queries)]
    rule_file = tmp_path / "dashboard-queries.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = promtool("check", "rules", str(rule_file))
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboards_use_the_provisioned_datasource() -> None:
    provisioning = REPO / "deploy" / "grafana" / "provisioning"
    datasources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    uids = {source["uid"] for source in datasources["datasources"]}
    assert DASHBOARDS
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        assert dashboard["uid"]
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] in uids, f"{path.name}: {panel['title']}"
    providers = yaml.safe_load((provisioning / "dashboards" / "socialcrm.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_alertmanager_routes_to_declared_receivers() -> None:
    config = yaml.safe_load((REPO / "deploy" / "alertmanager" / "alertmanager.yml").read_text())
    receivers = {receiver["name"] for receiver in config["receivers"]}
    routes = [config["route"], *config["route"].get("routes", [])]
    assert all(route["receiver"] in receivers for route in routes)


def test_otel_collector_exports_traces_to_jaeger() -> None:
    config = yaml.safe_load((REPO / "deploy" / "otel" / "collector.yaml").read_text())
    pipeline = config["service"]["pipelines"]["traces"]
    assert pipeline["receivers"] == ["otlp"]
    assert "otlp/jaeger" in pipeline["exporters"]
    assert config["exporters"]["otlp/jaeger"]["endpoint"] == "jaeger:4317"
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
