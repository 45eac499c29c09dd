"""The group consumer of the stream processors, and the lag of its partitions."""

from __future__ import annotations

import contextlib
from collections.abc import Collection
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from socialcrm.kafka import connection
from socialcrm.kafka.metrics import CONSUMER_LAG
from socialcrm.settings import ServiceSettings


def group_consumer(settings: ServiceSettings, group_id: str, **options: Any) -> AIOKafkaConsumer:
    """A consumer in ``group_id`` that commits only when told, from the first record of a
    partition the group never committed; ``options`` add to or replace these."""
    return connection.consumer(
        settings,
        **{
            "group_id": group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "max_poll_records": settings.consumer_max_batch,
            "fetch_min_bytes": settings.consumer_fetch_min_bytes,
            "fetch_max_wait_ms": settings.consumer_fetch_max_wait_ms,
            **options,
        },
    )


class PartitionLag:
    """Records of each assigned partition not yet consumed, as of the last fetch
    (``socialcrm_consumer_lag_records``), and which partitions are caught up."""

    def __init__(self, group_id: str) -> None:
        self.group_id = group_id
        self._reported: set[TopicPartition] = set()

    async def measure(self, consumer: AIOKafkaConsumer) -> set[TopicPartition]:
        """Report the lag of the assigned partitions; the caught-up ones."""
        assigned = consumer.assignment()
        self.forget(self._reported - assigned)
        caught_up = set()
        for partition in assigned:
            # The last stable offset: a read-committed consumer cannot pass an open transaction.
            ends = [consumer.last_stable_offset(partition), consumer.highwater(partition)]
            known = [end for end in ends if end is not None]
            if not known:
                continue  # nothing fetched from this partition yet
            lag = max(0, min(known) - await consumer.position(partition))
            CONSUMER_LAG.labels(self.group_id, partition.topic, str(partition.partition)).set(lag)
            self._reported.add(partition)
            if not lag:
                caught_up.add(partition)
        return caught_up

    def forget(self, partitions: Collection[TopicPartition]) -> None:
        """Partitions no longer held: their series go."""
        for partition in partitions:
            with contextlib.suppress(KeyError):
                CONSUMER_LAG.remove(self.group_id, partition.topic, str(partition.partition))
            self._reported.discard(partition)
