"""What the at-least-once processor's stateful services implement: the partition
listener (state following the assignment, by partition number) and the punctuator
(timers), and the listener as the tasks' ``TaskState`` (``socialcrm.kafka.tasks``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from aiokafka import TopicPartition
from google.protobuf.message import Message


class PartitionListener(Protocol):
    """Partition-keyed state following the processor's assignment (partition numbers:
    the processor's topics are co-partitioned)."""

    async def on_assigned(self, partitions: set[int]) -> None:
        """Own exactly ``partitions`` (all the partition numbers assigned): restore those
        not held; their records wait, paused, until it returns. What it raises is logged
        and it is called again after a backoff."""

    async def on_revoked(self, partitions: set[int]) -> None:
        """Give up ``partitions``, whose writes were flushed with their last commit (a copy
        may be kept aside for a quick restore if they come back)."""

    async def on_lost(self, partitions: set[int]) -> None:
        """Drop the state of ``partitions`` without keeping it: writes of records that are
        processed again may be in it (their outputs were not all acknowledged, their
        commit was refused, or the member was expelled)."""


class Punctuator(Protocol):
    """Work on wall-clock time (timers), run from the processor's task between batches."""

    interval_seconds: float

    async def punctuate(self, caught_up: set[int]) -> Sequence[Message]:
        """The events to publish now (by the punctuator's own clock). ``caught_up`` are the
        owned partitions whose records were all handled at the last fetch: timers of the
        others may wait for records still to come (a reply published before a deadline)."""


class ListenerState:
    """A ``PartitionListener`` (partition numbers) as the tasks' ``TaskState``."""

    def __init__(self, listener: PartitionListener) -> None:
        self.listener = listener

    async def restore(self, owned: frozenset[TopicPartition]) -> None:
        await self.listener.on_assigned({p.partition for p in owned})

    async def close_clean(self, partitions: frozenset[TopicPartition]) -> None:
        await self.listener.on_revoked({p.partition for p in partitions})

    async def close_dirty(self, partitions: frozenset[TopicPartition]) -> None:
        await self.listener.on_lost({p.partition for p in partitions})
