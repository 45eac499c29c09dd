"""Findings 9 and 10 against the running platform.

9: brands are label values of kpi's metrics: a webhook's ``?brand=`` must be a configured
brand (422 otherwise), and brands reaching kpi by the stream count under ``other``, so the
number of series stays bounded whatever callers send.
10: erasure cannot reach inside Kafka, so every event topic and its DLQ expire their
records (bounded ``retention.ms`` set on the topic), and kpi's compacted state topic,
which never expires, holds no handle.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from socialcrm import contract
from socialcrm.labels import OTHER
from socialcrm.settings import ServiceSettings
from socialcrm.v1 import common_pb2, enriched_pb2, interaction_pb2, kpi_pb2, routed_pb2
from socialcrm_devstack.stack import LocalStack
from tests.fixtures import events
from tests.fixtures.kafka import publish, read_to_end
from tests.fixtures.payloads import x_tweet_event
from tests.fixtures.waiting import eventually
from tests.fixtures.webhooks import post_webhook

pytestmark = [pytest.mark.security, pytest.mark.e2e]

ROUTED = contract.topic_of(routed_pb2.RoutedInteraction)
STATE = contract.topic_of(kpi_pb2.KpiState)
# DescribeConfigs' config_source of a value set on the topic itself (DYNAMIC_TOPIC_CONFIG).
TOPIC_SOURCE = 1
# The local stack's BRANDS (the default), and the labels kpi uses for the rest.
SERVED = {"acme", "acme-fr"}
BOUNDED_BRAND_LABELS = SERVED | {OTHER, "unknown"}
# Topics whose records hold people's texts and handles (compacted ones are tombstoned).
PERSONAL_TOPICS = [
    contract.topic_of(message)
    for message in (
        interaction_pb2.Interaction,
        enriched_pb2.EnrichedInteraction,
        routed_pb2.RoutedInteraction,
        routed_pb2.Escalation,
    )
] + ["social.replies.v1", "crm.events.v1"]


def kpi_metrics(platform: LocalStack) -> list[str]:
    text = httpx.get(f"{platform.url('kpi')}/metrics", timeout=10).text
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def consumed(platform: LocalStack, topic: str) -> float:
    prefix = f'socialcrm_events_consumed_total{{topic="{topic}"}} '
    return sum(
        float(line.removeprefix(prefix))
        for line in kpi_metrics(platform)
        if line.startswith(prefix)
    )


def routed(brand: str, index: int, handle: str = "probe_author") -> routed_pb2.RoutedInteraction:
    author = common_pb2.Author(
        handle=handle, channel_user_id=f"id-{handle}", display_name=f"Name {handle}"
    )
    interaction = events.interaction(
        f"security-kpi-{uuid.uuid4().hex}-{index}", brand=brand, author=author
    )
    return events.routed(events.enriched(interaction, reach=0.5))


@pytest.fixture(scope="module")
def kpi_ready(platform: LocalStack) -> LocalStack:
    """The platform, once kpi has consumed something: its series exist before counting."""
    asyncio.run(publish(platform.kafka.bootstrap, routed("acme", 0)))
    eventually(lambda: consumed(platform, ROUTED) > 0, 60)
    return platform


def test_webhook_brands_outside_the_list_are_refused_naming_the_field(
    kpi_ready: LocalStack,
) -> None:
    huge = post_webhook(
        kpi_ready,
        "/v1/webhooks/x",
        x_tweet_event(str(uuid.uuid4().int)[:19]),
        params={"brand": "b" * 6000},
    )
    assert huge.status_code == 422, huge.text[:300]
    body = huge.json()
    assert "brand" in body["detail"]
    assert [error["loc"] for error in body["errors"]] == [["query", "brand"]]
    assert "b" * 100 not in huge.text, "the value sent is not echoed back"
    served = post_webhook(
        kpi_ready,
        "/v1/webhooks/x",
        x_tweet_event(str(uuid.uuid4().int)[:19]),
        params={"brand": "acme-fr"},
    )
    assert served.status_code == 200, served.text[:300]


def test_two_hundred_distinct_brands_do_not_grow_kpi_series(kpi_ready: LocalStack) -> None:
    marker = uuid.uuid4().hex[:8]
    before = kpi_metrics(kpi_ready)
    consumed_before = consumed(kpi_ready, ROUTED)
    # 200 calls at the door, each with a brand of its own...
    statuses = {
        post_webhook(
            kpi_ready,
            "/v1/webhooks/x",
            x_tweet_event(str(uuid.uuid4().int)[:19]),
            params={"brand": f"door-{marker}-{index}"},
        ).status_code
        for index in range(200)
    }
    assert statuses == {422}
    # ...and 200 events reaching kpi by the stream with a brand of their own.
    probes = [routed(f"stream-{marker}-{index}", index) for index in range(200)]
    asyncio.run(publish(kpi_ready.kafka.bootstrap, *probes))
    eventually(lambda: consumed(kpi_ready, ROUTED) >= consumed_before + len(probes), 90)

    after = kpi_metrics(kpi_ready)
    assert not [line for line in after if marker in line]
    brands = {match for line in after for match in re.findall(r'brand="([^"]*)"', line)}
    assert brands <= BOUNDED_BRAND_LABELS
    assert len(after) - len(before) < 40, f"{len(before)} -> {len(after)} series"


async def topic_configs(bootstrap: str, topics: list[str]) -> dict[str, dict[str, str]]:
    """Each topic's configuration entries set on the topic itself (not broker defaults)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        resources = [ConfigResource(ConfigResourceType.TOPIC, topic) for topic in topics]
        responses = await admin.describe_configs(resources)
    finally:
        await admin.close()
    configs: dict[str, dict[str, str]] = {}
    for response in responses:
        for _code, _message, _type, name, entries in response.resources:
            # (name, value, read_only, is_default (v0) or config_source (v1+), ...).
            configs[name] = {
                entry[0]: entry[1]
                for entry in entries
                if (not entry[3] if isinstance(entry[3], bool) else entry[3] == TOPIC_SOURCE)
            }
    return configs


def test_event_topics_and_their_dlqs_expire_their_records(platform: LocalStack) -> None:
    topics = [name for topic in PERSONAL_TOPICS for name in (topic, contract.dlq_topic(topic))]
    assert set(topics) <= set(contract.all_topics())
    configs = asyncio.run(topic_configs(platform.kafka.bootstrap, topics))
    bound_ms = ServiceSettings().topic_retention_hours * 3_600_000
    for topic in topics:
        config = configs[topic]
        assert "retention.ms" in config, f"{topic}: retention is the broker's default"
        assert 0 < int(config["retention.ms"]) <= bound_ms, topic
        assert int(config.get("segment.ms", "604800000")) <= 86_400_000, topic
        assert config.get("cleanup.policy", "delete") == "delete", topic


async def state_records(bootstrap: str) -> list[tuple[int, bytes, bytes]]:
    """Every record of kpi's state changelog as (timestamp ms, key, value)."""
    records = await read_to_end(bootstrap, STATE)
    return [(r.timestamp, r.key or b"", r.value or b"") for r in records]


def test_kpi_state_holds_no_handle_of_an_author(kpi_ready: LocalStack) -> None:
    handle = f"erasable_{uuid.uuid4().hex[:10]}"
    before = consumed(kpi_ready, ROUTED)
    sent_at = time.time() * 1000
    asyncio.run(publish(kpi_ready.kafka.bootstrap, routed("acme", 1, handle=handle)))
    eventually(lambda: consumed(kpi_ready, ROUTED) > before, 60)

    # The journal of the batch is written before its offsets are committed; a snapshot of
    # the whole state (spike series and their top posts and authors) follows within 30 s.
    def checkpoint_after_the_event() -> list[tuple[int, bytes, bytes]] | None:
        records = asyncio.run(state_records(kpi_ready.kafka.bootstrap))
        if any(handle.encode() in value for _, _, value in records):
            return records
        snapshots = [ts for ts, key, _ in records if key.endswith(b"checkpoint") and ts > sent_at]
        return records if snapshots else None

    records = eventually(checkpoint_after_the_event, 75)
    leaking = [value[:200] for _, _, value in records if handle.encode() in value]
    assert not leaking, f"{STATE} holds the author's handle: {leaking[:1]!r}"
    assert not [value for _, _, value in records if f"Name {handle}".encode() in value]
