"""The view's feed: the three topics read from their beginning at start, then followed.

A consumer of its own, outside any group (every replica reads every partition, nothing is
committed): the topics are the only truth, and the view is what they say within their
retention. The service is ready once it has read up to the ends the topics had at start.
Read with ``read_committed``, like every reader of outputs written in transactions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from socialcrm import contract
from socialcrm.kafka import connection
from socialcrm.kafka.metrics import CONSUMED
from socialcrm.settings import ServiceSettings
from socialcrm.telemetry import consumer_span
from socialcrm.v1 import reply_pb2, routed_pb2
from socialcrm_workspace.live import ChangeHub
from socialcrm_workspace.metrics import (
    HELD_ITEMS,
    OPEN_ITEMS,
    REBUILD_RECORDS,
    REBUILD_SECONDS,
    RECORDS,
)
from socialcrm_workspace.view import Change, OpenView

log = logging.getLogger(__name__)

ROUTED = contract.topic_of(routed_pb2.RoutedInteraction)
ESCALATIONS = contract.topic_of(routed_pb2.Escalation)
REPLIES = contract.topic_of(reply_pb2.Reply)
TOPICS = (ROUTED, ESCALATIONS, REPLIES)
# How often items past their time to live are let go.
EXPIRY_SECONDS = 60.0


def apply_record(view: OpenView, topic: str, value: bytes | None, now: datetime) -> Change | None:
    """One record into the view; a record that breaks the contract is counted and skipped
    (its producer dead-letters it; a reader has nothing to repair)."""
    try:
        if topic == ROUTED:
            change = view.apply_routed(contract.decode(routed_pb2.RoutedInteraction, value), now)
        elif topic == ESCALATIONS:
            change = view.apply_escalation(contract.decode(routed_pb2.Escalation, value), now)
        else:
            change = view.apply_reply(contract.decode(reply_pb2.Reply, value), now)
    except contract.ContractError:
        RECORDS.labels(topic, "undecodable").inc()
        return None
    RECORDS.labels(topic, "applied" if change else "ignored").inc()
    return change


class TopicFeed:
    name = "topic-feed"

    def __init__(
        self,
        settings: ServiceSettings,
        view: OpenView,
        hub: ChangeHub,
        clock: Callable[[], datetime],
        partitions_of: Callable[[ServiceSettings, str], Awaitable[int]],
    ) -> None:
        self.settings = settings
        self.view = view
        self.hub = hub
        self.clock = clock
        self.partitions_of = partitions_of
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._ends: dict[TopicPartition, int] = {}
        self._started = 0.0
        self._read = 0
        self.rebuilt = False

    async def start(self) -> None:
        consumer = connection.consumer(
            self.settings,
            purpose="view",
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=self.settings.consumer_max_batch,
            # Fuller fetches, like the stream processors' (socialcrm.kafka.consumer).
            fetch_min_bytes=self.settings.consumer_fetch_min_bytes,
            fetch_max_wait_ms=self.settings.consumer_fetch_max_wait_ms,
        )
        await consumer.start()
        self._consumer = consumer
        partitions = [
            TopicPartition(topic, number)
            for topic in TOPICS
            for number in range(await self.partitions_of(self.settings, topic))
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        self._ends = {tp: end for tp, end in (await consumer.end_offsets(partitions)).items()}
        self._started = time.monotonic()
        self._task = asyncio.create_task(self._run(consumer), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def check(self) -> None:
        if not self.alive:
            raise RuntimeError("the topic feed stopped")
        if not self.rebuilt:
            raise RuntimeError("the view is still being rebuilt from the topics")

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self, consumer: AIOKafkaConsumer) -> None:
        expired_at = time.monotonic()
        while True:
            batches = await consumer.getmany(timeout_ms=500)
            now = self.clock()
            changes = [
                change
                for records in batches.values()
                for change in self._apply(records, now)
                if change is not None
            ]
            if time.monotonic() - expired_at > EXPIRY_SECONDS:
                changes += self.view.expire(now)
                expired_at = time.monotonic()
            if changes:
                self.hub.publish(changes)
            OPEN_ITEMS.set(self.view.open_count())
            HELD_ITEMS.set(len(self.view))
            if not self.rebuilt and await self._caught_up(consumer):
                self._rebuilt()

    def _apply(
        self, records: list[ConsumerRecord[bytes, bytes]], now: datetime
    ) -> list[Change | None]:
        self._read += len(records)
        if records:
            CONSUMED.labels(records[0].topic).inc(len(records))
        if not self.rebuilt:
            # History: the traces of these records ended long ago; a span each would only
            # flood the trace collector at every start.
            return [apply_record(self.view, r.topic, r.value, now) for r in records]
        changes = []
        for record in records:
            with consumer_span(record.topic, record.partition, record.offset, record.headers):
                changes.append(apply_record(self.view, record.topic, record.value, now))
        return changes

    async def _caught_up(self, consumer: AIOKafkaConsumer) -> bool:
        for partition, end in self._ends.items():
            if await consumer.position(partition) < end:
                return False
        return True

    def _rebuilt(self) -> None:
        self.rebuilt = True
        seconds = time.monotonic() - self._started
        REBUILD_SECONDS.set(seconds)
        REBUILD_RECORDS.set(self._read)
        log.info(
            "view rebuilt from the topics",
            extra={"seconds": round(seconds, 3), "records": self._read, "held": len(self.view)},
        )
