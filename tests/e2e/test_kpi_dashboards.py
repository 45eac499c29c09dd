"""A real Prometheus scrapes the running platform: every dashboard panel's query returns
data, and the alert rules load and evaluate."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from google.protobuf.message import Message

from socialcrm import contract
from socialcrm.labels import OTHER
from socialcrm.v1 import common_pb2, enriched_pb2, interaction_pb2, kpi_pb2, reply_pb2, routed_pb2
from socialcrm_devstack.observability import Observability
from socialcrm_devstack.stack import LocalStack
from tests.deploy.tools import REPO
from tests.fixtures.payloads import x_tweet_event
from tests.fixtures.webhooks import post_webhook

pytestmark = pytest.mark.e2e

DASHBOARDS = sorted((REPO / "deploy" / "grafana" / "dashboards").glob("*.json"))


def header(external_id: str, occurred_at: float) -> common_pb2.EventHeader:
    header = common_pb2.EventHeader(
        event_id=contract.event_id_for(common_pb2.CHANNEL_X, external_id),
        channel=common_pb2.CHANNEL_X,
        external_id=external_id,
        schema_version=contract.SCHEMA_VERSION,
        producer="test",
    )
    header.occurred_at.FromNanoseconds(int(occurred_at * 1e9))
    header.ingested_at.CopyFrom(header.occurred_at)
    return header


def routed(brand: str, queue: str, occurred_at: float, index: int) -> routed_pb2.RoutedInteraction:
    head = header(f"{brand}-{index}", occurred_at)
    polarity = (common_pb2.POLARITY_NEGATIVE, common_pb2.POLARITY_POSITIVE)[index % 2]
    return routed_pb2.RoutedInteraction(
        header=head,
        enriched=enriched_pb2.EnrichedInteraction(
            header=head,
            interaction=interaction_pb2.Interaction(
                header=head, conversation_id=f"{brand}-thread", brand=brand, text="Colis perdu"
            ),
            enrichment=enriched_pb2.Enrichment(language="fr", polarity=polarity, reach=0.2),
        ),
        routing=routed_pb2.Routing(queue=queue, needs_response=True, escalated=True),
    )


def reply(
    interaction: routed_pb2.RoutedInteraction, occurred_at: float, met: bool
) -> reply_pb2.Reply:
    return reply_pb2.Reply(
        header=header(f"reply-{interaction.header.external_id}", occurred_at),
        interaction_event_id=interaction.header.event_id,
        conversation_id=interaction.enriched.interaction.conversation_id,
        agent_id="agent-1",
        text="Nous regardons",
        first_response=True,
        first_response_seconds=300 if met else 9000,
        sla_status=reply_pb2.SLA_STATUS_MET if met else reply_pb2.SLA_STATUS_BREACHED,
        resolution_seconds=600,
        status="resolved",
        queue=interaction.routing.queue,
    )


async def send(bootstrap: str, records: list[tuple[str, bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for topic, key, value in records:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


def record(message: Message) -> tuple[str, bytes, bytes]:
    return contract.topic_of(type(message)), contract.key_of(message), contract.encode(message)


def traffic(platform: LocalStack, brand: str, queue: str, start: float, round_: int) -> None:
    """Interactions through ingest, a refused webhook, a dead letter, routed interactions
    and replies whose event times close KPI windows."""
    for _ in range(3):
        tweet_id = str(uuid.uuid4().int)[:19]
        response = post_webhook(platform, "/v1/webhooks/x", x_tweet_event(tweet_id))
        assert response.status_code == 200, response.text
    refused = post_webhook(platform, "/v1/webhooks/x", b"{not json")
    assert 400 <= refused.status_code < 500
    at = start + round_ * 100
    interactions = [
        routed(brand, queue, at + offset, round_ * 10 + i) for i, offset in enumerate((0, 1, 90))
    ]
    replies = [reply(interactions[0], at + 2, met=True), reply(interactions[1], at + 92, met=False)]
    records = [record(m) for m in [*interactions, *replies]]
    records.append((contract.topic_of(routed_pb2.RoutedInteraction), b"bad", b"\xff not protobuf"))
    asyncio.run(send(platform.kafka.bootstrap, records))


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
