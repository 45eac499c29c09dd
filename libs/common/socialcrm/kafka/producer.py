"""The event producer: publishes contract messages, keyed and traced, and dead letters.

Idempotent and acknowledged by all in-sync replicas (``acks=all``); a record larger than
KAFKA_MAX_MESSAGE_BYTES is refused before it is sent. A send that fails for good leaves the
client's idempotence sequence out of step with the broker's, so the producer then replaces
its client by itself, whoever sent (a stream's outputs, an ingest webhook, a poller).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TypeVar

from aiokafka import AIOKafkaProducer, ConsumerRecord
from aiokafka.errors import KafkaError
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

T = TypeVar("T")


class EventProducer:
    """Publishes contract messages to their topic, keyed and traced."""

    name = "kafka-producer"
    # A send that fails for good replaces the client (see _watch). The transactional
    # producer says no: its processor aborts the transaction and restarts it itself, and a
    # new client with the same transactional id would fence the one in use.
    replaces_failed_client = True

    def __init__(self, settings: ServiceSettings, topics: Sequence[str] = ()) -> None:
        """``topics``: the topics it will publish to, learned at start, one at a time."""
        self.settings = settings
        self.topics = topics
        self._producer: AIOKafkaProducer | None = None
        self._replacing: asyncio.Task[None] | None = None
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

    async def settled(self) -> None:
        """Return once a replacement of the client that a failure started is done, so that
        what is sent next goes out on the new client."""
        if self._replacing is not None:
            await asyncio.shield(self._replacing)

    def _watch(self, future: asyncio.Future[T], client: AIOKafkaProducer) -> asyncio.Future[T]:
        """Replace ``client`` (once) when a send of it fails for good."""
        if not self.replaces_failed_client:
            return future

        def failed_for_good(done: asyncio.Future[T]) -> None:
            if done.cancelled():
                return
            error = done.exception()
            if not isinstance(error, KafkaError) or error.retriable:
                return
            if client is not self._producer or self._replacing is not None:
                return  # replaced already, or being replaced
            log.warning(
                "a send failed for good; replacing the producer", extra={"error": repr(error)}
            )
            self._replacing = asyncio.create_task(self._replace(client))

        future.add_done_callback(failed_for_good)
        return future

    async def _replace(self, client: AIOKafkaProducer) -> None:
        """Start a new client (a new idempotent producer id), then stop ``client``.

        After a batch was refused for good, or expired while the broker was away, the
        client's sequence numbers for that partition no longer match the broker's, and
        every later batch to it is refused as out of order (for 17 minutes, until the test
        ended, after a broker restart in the fault suite): only a new producer id clears it.
        """
        try:
            await self.start()
        except Exception:
            log.exception("could not replace the producer; the next failure tries again")
            return
        finally:
            self._replacing = None
        try:
            await client.stop()  # what it still holds fails or goes out
        except Exception:
            log.exception("the replaced producer did not stop cleanly")

    async def stop(self) -> None:
        await self.settled()
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
        client = self.producer
        future: asyncio.Future[object] = await client.send(
            topic,
            contract.encode(message),
            key=contract.key_of(message),
            headers=inject_headers(),
        )
        produced.inc()
        return self._watch(future, client)

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
        client = self.producer
        future: asyncio.Future[RecordMetadata] = await client.send(
            topic, value, key=key, partition=partition, headers=headers
        )
        return self._watch(future, client)

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
        client = self.producer
        future: asyncio.Future[object] = await client.send(
            dead.topic, dead.value, key=dead.key, headers=dead.headers
        )
        self._watch(future, client)
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
