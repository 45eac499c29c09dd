"""A real Prometheus scrapes the running platform: every dashboard panel's query returns
data, and the alert rules load and evaluate."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest

from socialcrm import contract
from socialcrm.labels import OTHER
from socialcrm.v1 import kpi_pb2
from socialcrm_devstack.observability import Observability
from socialcrm_devstack.stack import LocalStack
from tests.deploy.tools import REPO
from tests.fixtures.kafka import read_to_end
from tests.fixtures.kpi_traffic import two_rounds_scraped, without_data
from tests.fixtures.waiting import eventually

pytestmark = pytest.mark.e2e

DASHBOARDS = sorted((REPO / "deploy" / "grafana" / "dashboards").glob("*.json"))


def panel_queries() -> list[tuple[str, str, str]]:
    return [
        (path.name, panel["title"], target["expr"])
        for path in DASHBOARDS
        for panel in json.loads(path.read_text())["panels"]
        for target in panel.get("targets", [])
    ]


def test_every_dashboard_panel_returns_data(
    platform: LocalStack, observability: Observability
) -> None:
    prometheus = observability.prometheus
    brand, queue = f"brand-{uuid.uuid4().hex[:6]}", "e2e-dashboards"  # a known queue
    two_rounds_scraped(platform, prometheus, brand, queue)

    # A brand outside BRANDS is counted under the fixed label "other" (bounded series). The
    # first round's window closes once every input partition's watermark passed it, or on
    # the wall clock when they are all idle: within its end + the allowed lateness. The
    # "last closed window" panels have data only after that, so it is awaited first: on a
    # busy machine it may come later than the other panels' data.
    def first_window_closed() -> list[kpi_pb2.KpiSnapshot] | None:
        found = [
            s
            for s in asyncio.run(brand_snapshots(platform.kafka.bootstrap, OTHER))
            if s.dimensions["window"] == "tumbling_60s" and s.dimensions.get("queue") == queue
        ]
        return found if sum(s.values["volume"] for s in found) >= 2 else None

    full = eventually(first_window_closed, 180, what="the first round's window to close")
    queries = panel_queries()
    assert len(queries) >= 30
    # Prometheus scrapes every few seconds and evaluates its recording rules after that.
    missing = set(without_data(prometheus, [query[2] for query in queries]))
    empty = [query for query in queries if query[2] in missing]
    assert not empty, "panels without data:\n" + "\n".join(map(str, empty))
    snapshots = asyncio.run(brand_snapshots(platform.kafka.bootstrap, OTHER))
    assert all(s.values["escalations"] == s.values["volume"] for s in full)
    assert any("share_of_voice" in s.values for s in snapshots)


async def brand_snapshots(bootstrap: str, brand: str) -> list[kpi_pb2.KpiSnapshot]:
    """The KpiSnapshot events of ``brand`` published so far."""
    records = await read_to_end(
        bootstrap, contract.topic_of(kpi_pb2.KpiSnapshot), isolation_level="read_committed"
    )
    snapshots = [contract.decode(kpi_pb2.KpiSnapshot, record.value) for record in records]
    return [snapshot for snapshot in snapshots if snapshot.dimensions.get("brand") == brand]


def test_alert_rules_load_and_evaluate(observability: Observability) -> None:
    response = httpx.get(f"{observability.prometheus_url}/api/v1/rules", timeout=5).json()
    rules = [rule for group in response["data"]["groups"] for rule in group["rules"]]
    assert {rule["name"] for rule in rules} >= {"ViralSpike", "ConsumerLagHigh", "ServiceDown"}
    assert all(rule["health"] != "err" for rule in rules), rules
