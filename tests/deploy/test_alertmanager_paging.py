"""One page per brand and incident: the four alerts of a viral burst go through the real
Alertmanager (the production routing with the local receiver) and on-call gets one
notification, the critical, while the warnings of the same brand are inhibited."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from socialcrm_devstack.observability import ALERTMANAGER_CONFIG, Alertmanager, missing_packages
from socialcrm_devstack.pages import PageReceiver
from socialcrm_devstack.processes import free_ports
from tests.deploy.tools import find_tool
from tests.fixtures.waiting import eventually

RUNBOOK = "docs/runbook.md#"


def alert(name: str, severity: str, **labels: str) -> dict[str, Any]:
    """An alert that begins now, as Prometheus sends one the moment its rule fires (an alert
    that began more than a group wait ago is notified at once, before any inhibition)."""
    return {
        "labels": {"alertname": name, "severity": severity, **labels},
        "annotations": {"summary": f"{name} {labels}", "runbook_url": RUNBOOK + name.lower()},
        "startsAt": datetime.now(UTC).isoformat(),
    }


def burst() -> list[dict[str, Any]]:
    """What the demo's burst raised for acme within one second (issue 29): three warnings
    (brand, negative, one queue) and the critical."""
    return [
        alert("ViralSpike", "warning", brand="acme", topic="all"),
        alert("ViralSpike", "warning", brand="acme", topic="negative"),
        alert("ViralSpike", "warning", brand="acme", topic="queue:care-fr"),
        alert("NegativeViralSpike", "critical", brand="acme"),
    ]


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[tuple[Alertmanager, PageReceiver]]:
    if missing_packages():
        pytest.skip("Alertmanager not installed: bin/setup installs it")
    alertmanager_port, receiver_port = free_ports(2)
    receiver = PageReceiver(receiver_port)
    receiver.start()
    server = Alertmanager(tmp_path / "alertmanager", alertmanager_port, receiver.url)
    try:
        server.start()
        yield server, receiver
    finally:
        server.stop()
        receiver.stop()


def test_a_viral_burst_pages_once_per_brand_with_its_warnings_inhibited(
    alertmanager: tuple[Alertmanager, PageReceiver],
) -> None:
    server, receiver = alertmanager
    # Another brand's burst at the same time is another incident: its own page.
    other = alert("NegativeViralSpike", "critical", brand="globex")
    response = httpx.post(f"{server.url}/api/v2/alerts", json=[*burst(), other], timeout=10)
    assert response.status_code == 200, response.text

    def inhibited() -> list[dict[str, Any]] | None:
        alerts = httpx.get(f"{server.url}/api/v2/alerts", timeout=5).json()
        found = [a for a in alerts if a["status"]["inhibitedBy"]]
        return found if len(found) == 3 else None

    warnings = eventually(inhibited, 60, what="the three acme warnings inhibited")
    assert {a["labels"]["alertname"] for a in warnings} == {"ViralSpike"}
    assert {a["labels"]["brand"] for a in warnings} == {"acme"}

    notifications = eventually(
        lambda: receiver.notifications if len(receiver.notifications) >= 2 else None,
        60,
        what="a notification for each brand",
    )
    assert len(notifications) == 2, notifications
    by_brand = {dict(pages[0].labels)["brand"]: pages for pages in notifications}
    assert set(by_brand) == {"acme", "globex"}
    assert [(p.alertname, p.severity) for p in by_brand["acme"]] == [
        ("NegativeViralSpike", "critical")
    ]


def test_viral_alerts_route_to_the_per_brand_incident_route() -> None:
    amtool = find_tool("amtool")
    if amtool is None:
        pytest.skip("amtool not found: bin/setup installs the Debian package")
    for labels in (
        ["alertname=NegativeViralSpike", "brand=acme", "severity=critical"],
        ["alertname=ViralSpike", "brand=acme", "severity=warning", "topic=negative"],
    ):
        result = subprocess.run(
            [
                amtool,
                "config",
                "routes",
                "test",
                f"--config.file={ALERTMANAGER_CONFIG}",
                "--verify.receivers=team",
                *labels,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
