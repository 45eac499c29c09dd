"""The kpi service on the real broker: a burst sent through Kafka becomes an Alert on
alerts.v1, and the spike baselines and backlog survive a crash (kpi.state.v1)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from socialcrm import contract
from socialcrm.v1 import common_pb2, enriched_pb2, interaction_pb2, kpi_pb2, routed_pb2
from socialcrm_devstack.infra import KafkaBroker
from socialcrm_devstack.processes import free_port
from socialcrm_devstack.stack import LocalStack

pytestmark = pytest.mark.integration

ROUTED = contract.topic_of(routed_pb2.RoutedInteraction)
ALERTS = contract.topic_of(kpi_pb2.Alert)
# The brand of this module's stream, in the kpi's BRANDS (others count as "other").
BRAND = f"brand-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A broker of its own: the alerts this test makes must not reach other tests'
    readers of alerts.v1 on the session broker."""
    kafka = KafkaBroker(tmp_path_factory.mktemp("kpi-kafka"), port=free_port())
    kafka.start()
    try:
        yield kafka
    finally:
        kafka.stop()


@pytest.fixture
def kpi(broker: KafkaBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The kpi service alone (it needs no database) on its own broker."""
    stack = LocalStack(
        tmp_path_factory.mktemp("kpi"),
        ephemeral_ports=True,
        kafka=broker,
        env={"kpi": {"BRANDS": BRAND}},
    )
    stack.start_service("kpi")
    try:
        yield stack
    finally:
        stack.stop_service("kpi")


def routed(brand: str, queue: str, occurred_at: float, index: int) -> routed_pb2.RoutedInteraction:
    external_id = f"{brand}-{index}"
    header = common_pb2.EventHeader(
        event_id=contract.event_id_for(common_pb2.CHANNEL_X, external_id),
        channel=common_pb2.CHANNEL_X,
        external_id=external_id,
        occurred_at=contract.timestamp(),
        ingested_at=contract.timestamp(),
        schema_version=contract.SCHEMA_VERSION,
        producer="test",
    )
    header.occurred_at.FromNanoseconds(int(occurred_at * 1e9))
    interaction = interaction_pb2.Interaction(
        header=header,
        # One conversation: one partition, so the stream stays in event-time order.
        conversation_id=f"{brand}-thread",
        brand=brand,
        author=common_pb2.Author(handle=f"author{index % 7}", followers=100 * index),
        text="Colis perdu",
    )
    enrichment = enriched_pb2.Enrichment(
        language="fr", polarity=common_pb2.POLARITY_NEGATIVE, reach=index / 1000
    )
    return routed_pb2.RoutedInteraction(
        header=header,
        enriched=enriched_pb2.EnrichedInteraction(
            header=header, interaction=interaction, enrichment=enrichment
        ),
        routing=routed_pb2.Routing(queue=queue, needs_response=True),
    )


async def send(bootstrap: str, messages: list[routed_pb2.RoutedInteraction]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for message in messages:
            await producer.send(ROUTED, contract.encode(message), key=contract.key_of(message))
        await producer.flush()
    finally:
        await producer.stop()


async def find_alert(bootstrap: str, alert_key: str, wait_seconds: float = 30) -> kpi_pb2.Alert:
    consumer = AIOKafkaConsumer(
        ALERTS, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    try:
        async with asyncio.timeout(wait_seconds):
            while True:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    for record in batch:
                        alert = contract.decode(kpi_pb2.Alert, record.value)
                        if alert.alert_key == alert_key:
                            return alert
    finally:
        await consumer.stop()


def metric(stack: LocalStack, name: str, **labels: str) -> float | None:
    for line in httpx.get(f"{stack.url('kpi')}/metrics").text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def wait_for(probe: object, what: str, wait_seconds: float = 30) -> None:
    assert callable(probe)
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} not seen within {wait_seconds}s")


async def test_burst_through_kafka_alerts_with_a_baseline_learned_before_a_crash(
    broker: KafkaBroker, kpi: LocalStack
) -> None:
    brand, queue = BRAND, f"queue-{uuid.uuid4().hex[:8]}"
    # Event time two hours ago: twenty calm minutes (3 posts a minute), then a burst.
    start = (time.time() - 7200) // 60 * 60
    calm = [routed(brand, queue, start + i * 20, i) for i in range(60)]
    await send(broker.bootstrap, calm)
    wait_for(lambda: metric(kpi, "socialcrm_interactions_total", brand=brand) == 60, "calm stream")
    wait_for(lambda: metric(kpi, "socialcrm_backlog_items", queue=queue) == 60, "backlog")

    # A clean stop writes a snapshot of the state; the new process restores it.
    kpi.stop_service("kpi")
    kpi.start_service("kpi")
    assert metric(kpi, "socialcrm_backlog_items", queue=queue) == 60

    # A crash: the journal of what was applied since the snapshot was written before the
    # offsets were committed, so the new process restores all of it, counting nothing twice.
    await send(broker.bootstrap, [routed(brand, queue, start + i * 20, i) for i in (60, 61)])
    wait_for(lambda: metric(kpi, "socialcrm_backlog_items", queue=queue) == 62, "more calm")
    kpi.kill_service("kpi")
    kpi.start_service("kpi")
    assert metric(kpi, "socialcrm_backlog_items", queue=queue) == 62

    burst_start = start + 21 * 60 + 15
    burst = [routed(brand, queue, burst_start + i * 0.5, 100 + i) for i in range(60)]
    await send(broker.bootstrap, burst)
    alert = await find_alert(broker.bootstrap, f"viral_spike:{brand}:all")

    assert alert.kind == "viral_spike"
    assert alert.brand == brand
    detected_at = alert.detected_at.seconds + alert.detected_at.nanos / 1e9
    assert burst_start <= detected_at <= burst_start + 60
    assert alert.evidence["count"] >= 20
    assert alert.evidence["baseline"] == pytest.approx(3, abs=1)
    # Top posts by reach: the latest burst posts have the widest reach in this stream.
    assert len(alert.sample_event_ids) == 5
    assert alert.top_authors[0].reach >= alert.top_authors[-1].reach
    wait_for(
        lambda: metric(kpi, "socialcrm_viral_spike_active", brand=brand, topic="negative") == 1,
        "spike metric",
    )
    assert (
        metric(kpi, "socialcrm_alerts_total", kind="viral_spike", severity="critical") or 0
    ) >= 1
