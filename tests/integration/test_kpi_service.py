"""The kpi service on the real broker: a burst becomes an Alert on alerts.v1 with a baseline
learned before a crash; a kill -9 mid-stream neither loses nor repeats a snapshot (outputs,
state and offsets commit in one transaction); of two instances one is active and the
standby takes over after the active one is killed."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.samples import Sample

from socialcrm import contract
from socialcrm.kafka.admin import ensure_topics
from socialcrm.settings import ServiceSettings
from socialcrm.v1 import common_pb2, enriched_pb2, interaction_pb2, kpi_pb2, routed_pb2
from socialcrm_devstack.infra import KafkaBroker
from socialcrm_devstack.processes import free_port
from socialcrm_devstack.stack import LocalStack
from tests.fixtures.kafka import consumer as kafka_consumer
from tests.fixtures.kafka import group_is, publish, read_to_end
from tests.fixtures.metrics import metric_value, samples
from tests.fixtures.service_pool import ServicePool
from tests.fixtures.waiting import eventually, eventually_async

pytestmark = pytest.mark.integration

ROUTED = contract.topic_of(routed_pb2.RoutedInteraction)
ALERTS = contract.topic_of(kpi_pb2.Alert)
SNAPSHOTS = contract.topic_of(kpi_pb2.KpiSnapshot)
# The brands of this module's streams, in the kpi's BRANDS (others count as "other").
BRAND = f"brand-{uuid.uuid4().hex[:8]}"
CRASH_BRAND = f"crash-{uuid.uuid4().hex[:8]}"
TAKEOVER_BRAND = f"takeover-{uuid.uuid4().hex[:8]}"
# Each test's queue, in the kpi's KPI_KNOWN_QUEUES (others count as "other").
QUEUE, CRASH_QUEUE, TAKEOVER_QUEUE = (f"queue-{uuid.uuid4().hex[:8]}" for _ in range(3))
KPI_ENV = {
    "BRANDS": f"{BRAND},{CRASH_BRAND},{TAKEOVER_BRAND}",
    "KPI_KNOWN_QUEUES": f"{QUEUE},{CRASH_QUEUE},{TAKEOVER_QUEUE}",
    # The broker's smallest session: a standby takes over within about this time.
    "KPI_SESSION_TIMEOUT_MS": "6000",
    # Partitions without records stop holding the windows back soon: these tests wait for
    # windows to close after their last event. The default's failover margin (45 s) is
    # tested offline (tests/unit/test_kpi_lateness.py).
    "KPI_IDLE_PARTITION_SECONDS": "5",
}


@pytest.fixture
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A broker of each test's own: the alerts these tests make must not reach other tests'
    readers of alerts.v1 on the session broker, and each test starts a kpi deployment
    afresh (its watermark, once the wall clock moved it, makes older events late)."""
    kafka = KafkaBroker(tmp_path_factory.mktemp("kpi-kafka"), port=free_port())
    kafka.start()
    try:
        yield kafka
    finally:
        kafka.stop()


@pytest.fixture
def stack(broker: KafkaBroker, tmp_path: Path) -> Iterator[LocalStack]:
    """The kpi service alone (it needs no database) on its own broker, not started yet."""
    local = LocalStack(tmp_path, ephemeral_ports=True, kafka=broker, env={"kpi": KPI_ENV})
    try:
        yield local
    finally:
        local.stop_service("kpi")


@pytest.fixture
def kpi(stack: LocalStack) -> LocalStack:
    stack.start_service("kpi")
    return stack


@pytest.fixture
def pool(broker: KafkaBroker, tmp_path: Path) -> Iterator[ServicePool]:
    """Instances of kpi with ten-second windows closing a second after their end: windows
    of events sent now close within seconds."""
    env = {**KPI_ENV, "KPI_WINDOWS": "10", "KPI_ALLOWED_LATENESS_SECONDS": "1"}
    instances = ServicePool(tmp_path, broker, env={"kpi": env})
    try:
        yield instances
    finally:
        instances.stop_all()


def routed(
    brand: str, queue: str, occurred_at: float, index: int, conversations: int = 1
) -> routed_pb2.RoutedInteraction:
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
        # Each conversation stays on one partition, in event-time order.
        conversation_id=f"{brand}-thread-{index % conversations}",
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


async def find_alert(bootstrap: str, alert_key: str, wait_seconds: float = 30) -> kpi_pb2.Alert:
    consumer = kafka_consumer(bootstrap, ALERTS, isolation_level="read_committed")
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


async def committed_snapshots(bootstrap: str, brand: str) -> list[kpi_pb2.KpiSnapshot]:
    """The snapshots of ``brand`` that read-committed consumers see."""
    records = await read_to_end(bootstrap, SNAPSHOTS, isolation_level="read_committed")
    snapshots = [contract.decode(kpi_pb2.KpiSnapshot, r.value) for r in records]
    return [s for s in snapshots if s.dimensions.get("brand") == brand]


async def closed_snapshots(
    bootstrap: str, brand: str, total: int, window: str = "tumbling_60s", wait_seconds: float = 60
) -> list[kpi_pb2.KpiSnapshot]:
    """The brand's committed snapshots, once its ``window`` windows count ``total``
    interactions (or time is up)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        snapshots = await committed_snapshots(bootstrap, brand)
        if minute_volumes(snapshots, window) >= total or time.monotonic() > deadline:
            return snapshots
        await asyncio.sleep(1)


def minute_volumes(snapshots: list[kpi_pb2.KpiSnapshot], window: str = "tumbling_60s") -> int:
    """Interactions counted in the brand's tumbling windows of every dimension."""
    return int(
        sum(
            s.values["volume"]
            for s in snapshots
            if s.dimensions["window"] == window and "channel" in s.dimensions
        )
    )


def metric_at(url: str, name: str, **labels: str) -> float:
    return metric_value(httpx.get(f"{url}/metrics", timeout=5).text, name, **labels)


def series_at(url: str, name: str, **labels: str) -> list[Sample]:
    return samples(httpx.get(f"{url}/metrics", timeout=5).text, name, **labels)


def status(url: str, path: str) -> int:
    return httpx.get(f"{url}{path}", timeout=5).status_code


def metric(stack: LocalStack, name: str, **labels: str) -> float:
    return metric_at(stack.url("kpi"), name, **labels)


def wait_for(probe: Callable[[], bool], what: str, wait_seconds: float = 30) -> None:
    # An instance starting or going answers nothing for a moment.
    eventually(probe, wait_seconds, what=what, tolerating=(httpx.HTTPError,))


async def test_burst_through_kafka_alerts_with_a_baseline_learned_before_a_crash(
    broker: KafkaBroker, kpi: LocalStack
) -> None:
    brand, queue = BRAND, QUEUE
    # Event time two hours ago: twenty calm minutes (3 posts a minute), then a burst.
    start = (time.time() - 7200) // 60 * 60
    calm = [routed(brand, queue, start + i * 20, i) for i in range(60)]
    await publish(broker.bootstrap, *calm)
    wait_for(lambda: metric(kpi, "socialcrm_interactions_total", brand=brand) == 60, "calm stream")
    wait_for(lambda: metric(kpi, "socialcrm_backlog_items", queue=queue) == 60, "backlog")

    # A clean stop; the new process restores the committed state when it takes over.
    kpi.stop_service("kpi")
    kpi.start_service("kpi")
    wait_for(lambda: metric(kpi, "socialcrm_backlog_items", queue=queue) == 60, "restored")

    # A crash: state and offsets were committed together, so the new process restores
    # every record whose offset was committed and reads the others again.
    await publish(broker.bootstrap, *[routed(brand, queue, start + i * 20, i) for i in (60, 61)])
    wait_for(lambda: metric(kpi, "socialcrm_backlog_items", queue=queue) == 62, "more calm")
    kpi.kill_service("kpi")
    kpi.start_service("kpi")
    wait_for(lambda: metric(kpi, "socialcrm_backlog_items", queue=queue) == 62, "restored")

    burst_start = start + 21 * 60 + 15
    burst = [routed(brand, queue, burst_start + i * 0.5, 100 + i) for i in range(60)]
    await publish(broker.bootstrap, *burst)
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


async def test_a_crash_mid_stream_neither_loses_nor_repeats_a_snapshot(
    broker: KafkaBroker, stack: LocalStack
) -> None:
    brand, queue = CRASH_BRAND, CRASH_QUEUE
    # Five hours of event time, one interaction a second over twelve conversations (several
    # partitions), sent before kpi starts: it reads them as a backlog, every window closes.
    total = 5 * 3600
    start = (time.time() - 6 * 3600) // 60 * 60
    await ensure_topics(ServiceSettings(kafka_bootstrap_servers=broker.bootstrap), [ROUTED])
    await publish(
        broker.bootstrap,
        *[routed(brand, queue, start + i, i, conversations=12) for i in range(total)],
    )
    stack.start_service("kpi")
    # kill -9 while batches are in hand: some transactions committed, not all.
    wait_for(
        lambda: (metric(stack, "socialcrm_interactions_total", brand=brand) or 0) >= 2000,
        "processing under way",
    )
    counted_before_crash = metric(stack, "socialcrm_interactions_total", brand=brand) or 0
    stack.kill_service("kpi")
    stack.start_service("kpi")

    snapshots = await closed_snapshots(broker.bootstrap, brand, total, wait_seconds=120)
    repeated = [k for k, n in Counter(s.header.event_id for s in snapshots).items() if n > 1]
    assert not repeated, f"{len(repeated)} snapshots published twice"
    assert minute_volumes(snapshots) == total
    # Each minute in exactly one snapshot of the full dimensions.
    minutes = [
        s.window_start.seconds
        for s in snapshots
        if s.dimensions["window"] == "tumbling_60s" and "channel" in s.dimensions
    ]
    assert sorted(minutes) == [int(start) + 60 * m for m in range(total // 60)]
    assert (metric(stack, "socialcrm_kpi_late_events_total", topic=ROUTED) or 0) == 0
    print(f"\nkilled after {counted_before_crash:.0f} of {total} interactions were counted")


async def test_one_instance_is_active_and_the_standby_takes_over_after_a_kill(
    broker: KafkaBroker, pool: ServicePool
) -> None:
    first, second = pool.start("kpi", "kpi")

    def active() -> list[str]:
        return [
            name
            for name in (first, second)
            if name in pool.processes
            and metric_at(pool.urls[name], "socialcrm_stream_active_owner", group="kpi") == 1
        ]

    # Only once both members are in the group is the owner for good: the second one's join
    # moves the partition (a probe then saw one active instance, the next none).
    await eventually_async(lambda: group_is(broker.bootstrap, "kpi", members=2), 60)
    owner = eventually(
        lambda: only[0] if len(only := active()) == 1 else None, what="one active instance"
    )
    standby = second if owner == first else first
    assert status(pool.urls[standby], "/healthz") == 200

    brand, queue = TAKEOVER_BRAND, TAKEOVER_QUEUE
    # Events of now: the windows closed on the wall clock meanwhile would make older ones late.
    before = [routed(brand, queue, time.time(), i, conversations=6) for i in range(300)]
    await publish(broker.bootstrap, *before)
    wait_for(
        lambda: metric_at(pool.urls[owner], "socialcrm_interactions_total", brand=brand) == 300,
        "the active instance counting",
    )
    # The standby counted nothing: it has no series of the brand.
    assert not series_at(pool.urls[standby], "socialcrm_interactions_total", brand=brand)

    pool.kill(owner)
    killed_at = time.monotonic()
    wait_for(lambda: active() == [standby], "the standby taking over", wait_seconds=60)
    takeover_seconds = time.monotonic() - killed_at

    after = [routed(brand, queue, time.time(), i, conversations=6) for i in range(300, 600)]
    await publish(broker.bootstrap, *after)

    snapshots = await closed_snapshots(broker.bootstrap, brand, 600, "tumbling_10s")
    assert minute_volumes(snapshots, "tumbling_10s") == 600
    assert len({s.header.event_id for s in snapshots}) == len(snapshots)
    print(f"\nstandby took over {takeover_seconds:.1f} s after kill -9 (session timeout 6 s)")
