"""Topics: the event topics (bounded retention) and compacted topics a service needs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from socialcrm.kafka.connection import started_admin
from socialcrm.settings import ServiceSettings

log = logging.getLogger(__name__)


async def ensure_topics(settings: ServiceSettings, topics: Sequence[str]) -> None:
    """Create the topics that do not exist yet (idempotent)."""
    async with started_admin(settings) as admin:
        existing = set(await admin.list_topics())
        # A name asked twice in one request makes the broker refuse that topic.
        missing = [t for t in dict.fromkeys(topics) if t not in existing]
        if not missing:
            return
        # Bounded retention, set on the topic so a broker default cannot lift it: events
        # hold personal data that erasure cannot reach. Daily segments: Kafka deletes only
        # whole segments, so a quiet topic would otherwise keep records for a week more.
        retention_ms = int(settings.topic_retention_hours * 3_600_000)
        configs = {
            "cleanup.policy": "delete",
            "retention.ms": str(retention_ms),
            "segment.ms": str(min(retention_ms, 86_400_000)),
        }
        new_topics = [
            NewTopic(
                t,
                settings.topic_partitions,
                settings.topic_replication_factor,
                topic_configs=configs,
            )
            for t in missing
        ]
        await create_topics(admin, new_topics)
        log.info("created topics", extra={"topics": missing})


async def create_topics(admin: AIOKafkaAdminClient, new_topics: list[NewTopic]) -> None:
    """Create ``new_topics``; the broker answers per topic, and only a topic that another
    replica created first is not an error."""
    response = await admin.create_topics(new_topics)
    refused = [
        f"{topic}: {details[-1] if details and details[-1] else f'error {code}'}"
        for topic, code, *details in response.topic_errors
        if code not in (0, TopicAlreadyExistsError.errno)
    ]
    if refused:
        raise RuntimeError(f"the broker refused to create topics: {'; '.join(refused)}")


async def ensure_compacted_topic(
    settings: ServiceSettings,
    topic: str,
    partitions: int | None = None,
    configs: dict[str, str] | None = None,
) -> list[TopicPartition]:
    """Create the compacted topic ``topic`` (a service's durable state, or tombstones) if it
    is missing, with ``partitions`` (default TOPIC_PARTITIONS) and ``configs`` (default:
    compaction with the broker's settings); return its partitions once the broker's
    metadata knows them (a new topic takes a moment)."""
    async with started_admin(settings) as admin:
        if topic not in set(await admin.list_topics()):
            new_topic = NewTopic(
                topic,
                partitions or settings.topic_partitions,
                settings.topic_replication_factor,
                topic_configs=configs or {"cleanup.policy": "compact"},
            )
            await create_topics(admin, [new_topic])
            log.info("created topic", extra={"topic": topic})
        async with asyncio.timeout(30):
            while True:
                [described] = await admin.describe_topics([topic])
                numbers = [p["partition"] for p in described.get("partitions", ())]
                if described.get("error_code") == 0 and numbers:
                    return [TopicPartition(topic, n) for n in sorted(numbers)]
                await asyncio.sleep(0.2)
