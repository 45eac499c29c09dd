"""Changelog topics: compacted, with settings that bound how long a restore takes."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from socialcrm.kafka import connection
from socialcrm.kafka.admin import ensure_compacted_topic
from socialcrm.settings import ServiceSettings


def changelog_configs(settings: ServiceSettings) -> dict[str, str]:
    """Compaction that keeps a changelog near one record per live key.

    Kafka never compacts the active segment, and with its defaults (segment.ms 7 days,
    dirty ratio 0.5) a busy store's changelog holds every write of the week: a restore
    then reads all of them. Rolling segments every few minutes and compacting within
    ``state_max_compaction_lag_ms`` bounds a restore to the live keys plus that lag's writes.
    """
    return {
        "cleanup.policy": "compact",
        "segment.ms": str(settings.state_segment_ms),
        "min.cleanable.dirty.ratio": str(settings.state_min_cleanable_dirty_ratio),
        "max.compaction.lag.ms": str(settings.state_max_compaction_lag_ms),
        # Tombstones are kept a day, so that a replica restoring meanwhile sees the delete.
        "delete.retention.ms": str(86_400_000),
    }


async def ensure_changelog_topic(
    settings: ServiceSettings, topic: str, partitions: int
) -> list[TopicPartition]:
    """Create the changelog ``topic`` with ``partitions`` if it is missing; return its
    partitions once the broker knows them. An existing changelog with another number of
    partitions is refused: its partition N would not hold input partition N's state."""
    existing = await ensure_compacted_topic(
        settings, topic, partitions, changelog_configs(settings)
    )
    if len(existing) != partitions:
        raise RuntimeError(
            f"changelog {topic} has {len(existing)} partitions, its input topics {partitions}:"
            " state would not follow its partitions; recreate the changelog"
        )
    return existing


def changelog_consumer(settings: ServiceSettings, purpose: str) -> AIOKafkaConsumer:
    """A consumer outside any group that reads committed records only (a transactional
    writer's aborted records never enter the state)."""
    return connection.consumer(
        settings,
        purpose=purpose,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
    )


async def read_to_end(
    consumer: AIOKafkaConsumer,
    starts: Mapping[TopicPartition, int | None],
    apply: Callable[[ConsumerRecord[bytes, bytes]], None],
) -> dict[TopicPartition, int]:
    """Read each partition from its start offset (None: the beginning) to the end it had
    when the call began, handing each record to ``apply``; return the positions reached."""
    partitions = list(starts)
    consumer.assign(partitions)
    for partition, start in starts.items():
        if start is None:
            await consumer.seek_to_beginning(partition)
        else:
            consumer.seek(partition, start)
    ends = await consumer.end_offsets(partitions)
    behind = {p for p in partitions if await consumer.position(p) < ends[p]}
    while behind:
        batches = await consumer.getmany(*behind, timeout_ms=500)
        for records in batches.values():
            for record in records:
                apply(record)
        behind = {p for p in behind if await consumer.position(p) < ends[p]}
    return {p: await consumer.position(p) for p in partitions}
