"""Alertmanager's configuration is valid (``amtool``, Debian package prometheus-alertmanager),
locally as in production, and every alert rule links to its section of the runbook."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from socialcrm_devstack.observability import ALERTMANAGER_CONFIG, RULES_DIR, alertmanager_config
from tests.deploy.tools import REPO, find_tool

RUNBOOK = REPO / "docs" / "runbook.md"


def amtool_check(path: Path) -> subprocess.CompletedProcess[str]:
    amtool = find_tool("amtool")
    if amtool is None:
        pytest.skip(
            "amtool not found: bin/setup installs the Debian package prometheus-alertmanager"
        )
    return subprocess.run(
        [amtool, "check-config", str(path)], capture_output=True, text=True, timeout=60, check=False
    )


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, spaces
    as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def alert_rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in sorted(RULES_DIR.glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def test_production_config_passes_amtool() -> None:
    result = amtool_check(ALERTMANAGER_CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr


def test_local_config_passes_amtool(tmp_path: Path) -> None:
    production = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    local = tmp_path / "alertmanager.yml"
    local.write_text(yaml.safe_dump(alertmanager_config(production, "http://127.0.0.1:1/alerts")))
    result = amtool_check(local)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_rule_links_to_a_runbook_section() -> None:
    sections = {
        github_anchor(line.lstrip("#"))
        for line in RUNBOOK.read_text().splitlines()
        if re.match(r"#{2,3} ", line)
    }
    rules = alert_rules()
    assert rules
    for rule in rules:
        link = rule["annotations"].get("runbook_url", "")
        path, _, anchor = link.partition("#")
        assert (REPO / path).resolve() == RUNBOOK.resolve(), f"{rule['alert']}: {link!r}"
        assert anchor in sections, f"{rule['alert']}: no section #{anchor} in docs/runbook.md"
