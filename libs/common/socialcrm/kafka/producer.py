"""The event producer: publishes contract messages, keyed and traced, and dead letters.

Idempotent and acknowledged by all in-sync replicas (``acks=all``); a record larger than
KAFKA_MAX_MESSAGE_BYTES is refused before it is sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer, ConsumerRecord
from aiokafka.structs import RecordMetadata
from google.protobuf.message import Message
from prometheus_client import Counter

from socialcrm import contract
from socialcrm.kafka import connection
from socialcrm.kafka.dead_letter import SourceRecord, dead_letter_record
from socialcrm.kafka.metrics import DEAD_LETTERED, PRODUCED
from socialcrm.settings import ServiceSettings
from socialcrm.telemetry import inject_headers

log = logging.getLogger(__name__)


class EventProducer:
    """Publishes contract messages to their topic, keyed and traced."""

    name = "kafka-producer"

    def __init__(self, settings: ServiceSettings, topics: Sequence[str] = ()) -> None:
        """``topics``: the topics it will publish to, learned at start, one at a time."""
        self.settings = settings
        self.topics = topics
        self._producer: AIOKafkaProducer | None = None
        self._restarting = asyncio.Lock()
        # Per message type: its topic and the topic's counter, looked up once.
        self._routes: dict[type[Message], tuple[str, Counter]] = {}

    @property
    def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("producer used before start()")
        return self._producer

    async def start(self) -> None:
        # aiokafka clients bind to the running event loop: create them in start(), not earlier.
        producer = connection.producer(self.settings)
        await producer.start()
        self._producer = producer
        # The first sends to several topics the client does not know yet can leave one
        # without a leader in its metadata until its batches expire: learn them one by one.
        for topic in self.topics:
            await producer.partitions_for(topic)

    async def restart(self) -> None:
        """Replace the client with a new one (a new idempotent producer id).

        After the broker refused a batch for good, the client's sequence numbers for that
        partition no longer match the broker's, and every later batch to it would be
        refused as out of order: only a new producer id clears that. Several consumers
        share the producer: their restarts take turns, each stopping the client it replaced.
        """
        async with self._restarting:
            old = self._producer
            await self.start()
            if old is not None:
                await old.stop()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def check(self) -> None:
        await asyncio.wait_for(self.producer.client.fetch_all_metadata(), timeout=3)

    async def publish(self, message: Message) -> asyncio.Future[object]:
        """Queue ``message``; the returned future resolves once the broker acknowledged it."""
        route = self._routes.get(type(message))
        if route is None:
            topic = contract.topic_of(type(message))
            route = self._routes[type(message)] = (topic, PRODUCED.labels(topic))
        topic, produced = route
        future: asyncio.Future[object] = await self.producer.send(
            topic,
            contract.encode(message),
            key=contract.key_of(message),
            headers=inject_headers(),
        )
        produced.inc()
        return future

    async def send_record(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[RecordMetadata]:
        """Queue a raw record (a state changelog's, a tombstone) to ``topic``, to
        ``partition`` when given; the future resolves once the broker acknowledged it."""
        future: asyncio.Future[RecordMetadata] = await self.producer.send(
            topic, value, key=key, partition=partition, headers=headers
        )
        return future

    async def publish_and_wait(self, message: Message) -> None:
        await (await self.publish(message))

    async def dead_letter(
        self, record: ConsumerRecord[bytes, bytes], error: contract.ContractError, consumer: str
    ) -> asyncio.Future[object]:
        """Queue ``record`` to its topic's dead-letter topic, with ``error`` as the reason."""
        dead = dead_letter_record(
            SourceRecord(
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                key=record.key,
                value=record.value,
                headers=[(k, v) for k, v in record.headers or () if v is not None],
            ),
            error,
            consumer,
            contract.timestamp(),
            self.settings.kafka_max_message_bytes,
        )
        future: asyncio.Future[object] = await self.producer.send(
            dead.topic, dead.value, key=dead.key, headers=dead.headers
        )
        DEAD_LETTERED.labels(record.topic, error.error_type).inc()
        log.warning(
            "dead-lettered record",
            extra={
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "error_type": error.error_type,
                "value_truncated": dead.value_truncated,
            },
        )
        return future
