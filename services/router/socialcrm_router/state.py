"""Durable SLA state: a compacted Kafka topic used as the changelog of an in-memory map.

At start the store reads the whole topic (the latest record of every interaction), so
timers survive a restart; then it keeps following the topic so that what other
replicas write (replies, escalations) reaches this one. A record is applied only when
its revision is not older than the one held, so a replica never goes back in time on
its own earlier writes. Resolved interactions are deleted with a tombstone.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
from datetime import datetime

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from google.protobuf.message import Message

from socialcrm import contract
from socialcrm.kafka import PRODUCED, EventProducer, client_id, ensure_compacted_topic
from socialcrm.settings import ServiceSettings
from socialcrm.telemetry import inject_headers
from socialcrm.v1 import routed_pb2
from socialcrm_router.sla import next_due

log = logging.getLogger(__name__)

STATE_TOPIC = contract.topic_of(routed_pb2.InteractionSlaState)


class RouterProducer(EventProducer):
    """The shared producer, sending SLA state records to the configured state topic.

    The topic is configurable so that several routers (e.g. a test's and the local
    platform's) can share a broker without sharing timers.
    """

    def __init__(
        self, settings: ServiceSettings, state_topic: str, output_topics: list[str]
    ) -> None:
        super().__init__(settings)
        self.state_topic = state_topic
        self.output_topics = output_topics

    async def start(self) -> None:
        await super().start()
        # Learn the output topics' partitions one at a time before the first send (the
        # state topic's once the store made it): the first sends to several unknown topics
        # at once can leave one without a leader in the client's metadata until its
        # batches expire.
        for topic in self.output_topics:
            await self.producer.partitions_for(topic)

    async def publish(self, message: Message) -> asyncio.Future[object]:
        if not isinstance(message, routed_pb2.InteractionSlaState):
            return await super().publish(message)
        future: asyncio.Future[object] = await self.producer.send(
            self.state_topic,
            contract.encode(message),
            key=message.interaction_event_id.encode(),
            headers=inject_headers(),
        )
        PRODUCED.labels(self.state_topic).inc()
        return future


class SlaStateStore:
    name = "sla-state"

    def __init__(self, settings: ServiceSettings, producer: RouterProducer) -> None:
        self.settings = settings
        self.producer = producer
        self.topic = producer.state_topic
        self.states: dict[str, routed_pb2.InteractionSlaState] = {}
        # (due epoch seconds, interaction event id): a min-heap, so a scan only looks at
        # what is due. Entries made stale by later changes are skipped when popped.
        self._due: list[tuple[float, str]] = []
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        partitions = await ensure_compacted_topic(self.settings, self.topic)
        await self.producer.producer.partitions_for(self.topic)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            client_id=client_id(self.settings) + "-sla-state",
            group_id=None,
            enable_auto_commit=False,
        )
        await consumer.start()
        self._consumer = consumer
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        while [p for p in partitions if await consumer.position(p) < end[p]]:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                self._apply_all(records)
        log.info("SLA state loaded", extra={"interactions": len(self.states)})
        self._task = asyncio.create_task(self._follow(), name="sla-state-follow")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def check(self) -> None:
        if self._task is None or self._task.done():
            raise RuntimeError("SLA state changelog is not followed")

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    def remember(self, state: routed_pb2.InteractionSlaState) -> None:
        """Hold ``state`` now; the caller publishes it to the changelog."""
        self._apply(state.interaction_event_id, state)

    async def put(self, state: routed_pb2.InteractionSlaState) -> asyncio.Future[object]:
        self.remember(state)
        return await self.producer.publish(state)

    async def delete(self, interaction_event_id: str) -> asyncio.Future[object]:
        self.states.pop(interaction_event_id, None)
        future: asyncio.Future[object] = await self.producer.producer.send(
            self.topic, None, key=interaction_event_id.encode()
        )
        return future

    def _apply(self, key: str, state: routed_pb2.InteractionSlaState | None) -> None:
        if state is None:
            self.states.pop(key, None)
            return
        held = self.states.get(key)
        if held is None or state.revision >= held.revision:
            self.states[key] = state
            due = next_due(state)
            if due is not None:
                heapq.heappush(self._due, (due, key))

    def reschedule(self, states: list[routed_pb2.InteractionSlaState]) -> None:
        """Put back timers popped by a scan that failed before handling them."""
        for state in states:
            due = next_due(state)
            if due is not None:
                heapq.heappush(self._due, (due, state.interaction_event_id))

    def pop_due(
        self, now: datetime, limit: int | None = None
    ) -> list[routed_pb2.InteractionSlaState]:
        """The held states of the timers due at ``now`` (each once), the earliest first and
        at most ``limit`` of them; the others stay due for the next call."""
        at, keys = now.timestamp(), set[str]()
        while self._due and self._due[0][0] <= at and (limit is None or len(keys) < limit):
            keys.add(heapq.heappop(self._due)[1])
        return [self.states[key] for key in sorted(keys) if key in self.states]

    def _apply_all(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        for record in records:
            if record.key is None:
                continue
            state = None
            if record.value is not None:
                state = routed_pb2.InteractionSlaState()
                state.ParseFromString(record.value)
            self._apply(record.key.decode(), state)

    async def _follow(self) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        while True:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                self._apply_all(records)
