"""`promtool test rules`: the alert rules fire on the series they watch, and only then."""

from __future__ import annotations

import subprocess

import pytest
import yaml  # type: ignore[import-untyped]

from tests.deploy.tools import REPO, find_tool

PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*_test.yml"))
# The alerts the platform must have.
REQUIRED_ALERTS = {
    "ViralSpike",
    "NegativeViralSpike",
    "SlaBreachRateHigh",
    "BacklogOldestItemOld",
    "ConsumerLagHigh",
    "ServiceDown",
    "DeadLetterGrowth",
}


def test_alert_rules_pass_their_promtool_unit_tests() -> None:
    promtool = find_tool("promtool")
    if promtool is None:
        pytest.skip("promtool not found: bin/setup installs the Debian package prometheus")
    assert RULE_TESTS
    result = subprocess.run(
        [promtool, "test", "rules", *map(str, RULE_TESTS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_unit_tested_firing() -> None:
    defined = {
        rule["alert"]
        for path in (PROMETHEUS_DIR / "rules").glob("*.yml")
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    fired = {
        case["alertname"]
        for path in RULE_TESTS
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert defined >= REQUIRED_ALERTS
    assert fired >= defined, f"alerts never tested firing: {sorted(defined - fired)}"
