"""The batches the at-least-once processor handled whose outputs are still in flight.

The processor no longer waits for a batch's acknowledgements before it fetches and
handles the next one: each handled batch joins a queue per topic partition, and the
offsets are committed later, oldest batch first, up to the first record whose outputs
were not all acknowledged. A queue never holds more than ``limit`` records in all
(``STREAM_MAX_IN_FLIGHT_RECORDS``): past it, the processor waits for the oldest.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition

from socialcrm.kafka.outputs import Sent


@dataclass
class Batch:
    """Records of one topic partition, handled in ``epoch``, and what they produced.
    ``retry``: handling stopped at a transient producer failure (``RetryLater``)."""

    route: Any  # the TopicRoute that handled it
    partition: TopicPartition
    records: list[ConsumerRecord[bytes, bytes]]
    epoch: int
    one_at_a_time: bool = False
    sent: list[Sent] = field(default_factory=list)
    retry: bool = False

    def futures(self) -> Iterator[asyncio.Future[object]]:
        return (future for item in self.sent for future in item.futures)

    def done(self) -> bool:
        return all(future.done() for future in self.futures())


class InFlight:
    """Handled batches not yet committed, in order per topic partition."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.records = 0
        self._queues: dict[TopicPartition, deque[Batch]] = {}

    def __bool__(self) -> bool:
        return self.records > 0

    def add(self, batch: Batch) -> None:
        self._queues.setdefault(batch.partition, deque()).append(batch)
        self.records += len(batch.records)

    def holds(self, partition: TopicPartition) -> bool:
        return bool(self._queues.get(partition))

    def full(self) -> bool:
        return self.records >= self.limit

    def all_done(self) -> bool:
        return all(batch.done() for queue in self._queues.values() for batch in queue)

    def take_done(self) -> dict[TopicPartition, list[Batch]]:
        """Per topic partition, its oldest batches whose outputs are all settled."""
        taken: dict[TopicPartition, list[Batch]] = {}
        for partition, queue in self._queues.items():
            while queue and queue[0].done():
                taken.setdefault(partition, []).append(self._pop(queue))
        self._forget_empty()
        return taken

    def take_all(self) -> dict[TopicPartition, list[Batch]]:
        taken = {partition: list(queue) for partition, queue in self._queues.items() if queue}
        self._queues.clear()
        self.records = 0
        return taken

    def drop(self, partitions: Collection[TopicPartition]) -> None:
        """Forget the batches of ``partitions``: their records are read again (a reset, a
        failure before them, a revocation); their outputs, if acknowledged, are repeats."""
        for partition in partitions:
            for batch in self._queues.pop(partition, ()):
                self.records -= len(batch.records)

    def drop_unless(self, ready: Collection[TopicPartition], epoch: int) -> None:
        """Forget the batches of partitions no longer ready, or handled in another epoch."""
        for partition, queue in list(self._queues.items()):
            if partition not in ready or any(batch.epoch != epoch for batch in queue):
                self.drop([partition])

    async def wait_oldest(self, interrupt: asyncio.Event) -> None:
        """Until the oldest batch of one partition has all its outputs settled, or
        ``interrupt`` is set (shutdown, a revocation: the lock must not wait on the broker)."""
        queue = next((queue for queue in self._queues.values() if queue), None)
        if queue is not None:
            await _until_settled(list(queue[0].futures()), interrupt)

    async def wait_all(self, interrupt: asyncio.Event | None = None) -> None:
        pending = [f for queue in self._queues.values() for b in queue for f in b.futures()]
        await _until_settled(pending, interrupt)

    def _pop(self, queue: deque[Batch]) -> Batch:
        batch = queue.popleft()
        self.records -= len(batch.records)
        return batch

    def _forget_empty(self) -> None:
        for partition in [p for p, queue in self._queues.items() if not queue]:
            del self._queues[partition]


async def _until_settled(
    futures: list[asyncio.Future[object]], interrupt: asyncio.Event | None
) -> None:
    pending = [future for future in futures if not future.done()]
    if not pending:
        return
    if interrupt is None:
        await asyncio.wait(pending)
        return
    interrupted = asyncio.ensure_future(interrupt.wait())
    try:
        settled = asyncio.ensure_future(asyncio.wait(pending))
        await asyncio.wait([settled, interrupted], return_when=asyncio.FIRST_COMPLETED)
        settled.cancel()
    finally:
        interrupted.cancel()
