"""The local pager's reading of Alertmanager's webhook payload, and the local configurations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from socialcrm_devstack.observability import (
    RECEIVER_NAME,
    alertmanager_config,
    prometheus_config,
)
from socialcrm_devstack.pages import PayloadError, pages_of
from socialcrm_devstack.stack import SERVICES, LocalStack

# Alertmanager's webhook payload, version 4, as documented (fields abridged to those read).
NOTIFICATION = {
    "version": "4",
    "status": "firing",
    "receiver": "local-pager",
    "groupKey": '{}/{severity="critical"}:{alertname="NegativeViralSpike", job="kpi"}',
    "alerts": [
        {
            "status": "firing",
            "labels": {
                "alertname": "NegativeViralSpike",
                "brand": "acme",
                "severity": "critical",
            },
            "annotations": {
                "summary": "Negative viral spike for acme: a bad-buzz may be starting",
                "runbook_url": "docs/runbook.md#negativeviralspike",
            },
            "startsAt": "2026-11-30T22:10:05.123456789Z",
            "endsAt": "0001-01-01T00:00:00Z",
        },
        {
            "status": "resolved",
            "labels": {"alertname": "ViralSpike", "severity": "warning"},
            "annotations": {},
            "startsAt": "2026-11-30T22:09:00+01:00",
        },
    ],
}


def test_each_alert_of_a_notification_is_a_page() -> None:
    first, second = pages_of(NOTIFICATION, received_at=1_796_076_000.0)
    assert first.alertname == "NegativeViralSpike"
    assert first.severity == "critical"
    assert first.summary.startswith("Negative viral spike for acme")
    assert first.runbook_url == "docs/runbook.md#negativeviralspike"
    assert first.firing
    assert not second.firing
    assert first.starts_at == pytest.approx(1_796_076_605.123456)
    assert second.starts_at == pytest.approx(1_796_072_940.0)
    assert dict(first.labels)["brand"] == "acme"
    assert second.summary == ""
    assert second.received_at == 1_796_076_000.0


@pytest.mark.parametrize(
    "payload",
    [[], {"alerts": "x"}, {"alerts": ["x"]}, {"alerts": [{"startsAt": "yesterday"}]}],
)
def test_what_is_not_a_notification_is_refused(payload: object) -> None:
    with pytest.raises(PayloadError):
        pages_of(payload, received_at=0.0)


def test_local_alertmanager_keeps_routing_and_pages_the_receiver() -> None:
    production: dict[str, Any] = {
        "route": {
            "receiver": "team",
            "group_by": ["alertname", "job"],
            "group_wait": "30s",
            "routes": [{"receiver": "team", "matchers": ['severity = "critical"']}],
        },
        "inhibit_rules": [{"source_matchers": ['alertname = "ServiceDown"']}],
        "receivers": [{"name": "team"}],
    }
    local = alertmanager_config(production, "http://127.0.0.1:9/alerts")
    assert local["route"]["receiver"] == RECEIVER_NAME
    assert local["route"]["routes"][0]["receiver"] == RECEIVER_NAME
    assert local["route"]["group_by"] == ["alertname", "job"]
    assert local["route"]["group_wait"] == "5s"
    assert local["inhibit_rules"] == production["inhibit_rules"]
    [receiver] = local["receivers"]
    assert receiver["webhook_configs"] == [
        {"url": "http://127.0.0.1:9/alerts", "send_resolved": True}
    ]
    assert production["route"]["receiver"] == "team"


def test_local_prometheus_scrapes_every_service_and_alerts_locally(tmp_path: Path) -> None:
    stack = LocalStack(tmp_path, ephemeral_ports=True)
    config = prometheus_config(stack, alertmanager_port=9)
    jobs = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]
    }
    assert jobs == {spec.name: [f"127.0.0.1:{stack.ports[spec.name]}"] for spec in SERVICES}
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:9"]
    assert {Path(path).name for path in config["rule_files"]} >= {"kpi.yml", "platform.yml"}
