"""A real Prometheus scrapes the running platform: every dashboard panel's query returns
data, and the alert rules load and evaluate."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from socialcrm import contract
from socialcrm.labels import OTHER
from socialcrm.v1 import kpi_pb2
from socialcrm_devstack.observability import Observability
from socialcrm_devstack.stack import LocalStack
from tests.deploy.tools import REPO
from tests.fixtures.kpi_traffic import traffic

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
    brand, queue = f"brand-{uuid.uuid4().hex[:6]}", f"queue-{uuid.uuid4().hex[:6]}"
    start = time.time()
    # Prometheus sees no increase in a series' first sample: a first round creates the
    # series, a second one, once they are scraped, moves them.
    traffic(platform, brand, queue, start, 0)
    marker = f'socialcrm_first_response_seconds_count{{queue="{queue}"}}'
    deadline = time.monotonic() + 30
    while not prometheus.has_data(marker) and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(2)
    traffic(platform, brand, queue, start, 1)
    queries = panel_queries()
    assert len(queries) >= 30
    empty = queries
    deadline = time.monotonic() + 60
    while empty and time.monotonic() < deadline:
        time.sleep(1)
        empty = [query for query in empty if not prometheus.has_data(query[2])]
    assert not empty, "panels without data:\n" + "\n".join(map(str, empty))
    # A brand outside BRANDS is counted under the fixed label "other" (bounded series).
    snapshots = asyncio.run(brand_snapshots(platform.kafka.bootstrap, OTHER))
    full = [
        s
        for s in snapshots
        if s.dimensions["window"] == "tumbling_60s" and s.dimensions.get("queue") == queue
    ]
    assert sum(s.values["volume"] for s in full) >= 2
    assert all(s.values["escalations"] == s.values["volume"] for s in full)
    assert any("share_of_voice" in s.values for s in snapshots)


async def brand_snapshots(bootstrap: str, brand: str) -> list[kpi_pb2.KpiSnapshot]:
    """The KpiSnapshot events of ``brand`` published so far."""
    topic = contract.topic_of(kpi_pb2.KpiSnapshot)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    snapshots: list[kpi_pb2.KpiSnapshot] = []
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                for item in batch:
                    snapshot = contract.decode(kpi_pb2.KpiSnapshot, item.value)
                    if snapshot.dimensions.get("brand") == brand:
                        snapshots.append(snapshot)
    finally:
        await consumer.stop()
    return snapshots


def test_alert_rules_load_and_evaluate(observability: Observability) -> None:
    response = httpx.get(f"{observability.prometheus_url}/api/v1/rules", timeout=5).json()
    rules = [rule for group in response["data"]["groups"] for rule in group["rules"]]
    assert {rule["name"] for rule in rules} >= {"ViralSpike", "ConsumerLagHigh", "ServiceDown"}
    assert all(rule["health"] != "err" for rule in rules), rules
