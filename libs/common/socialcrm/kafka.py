"""Kafka plumbing: an event producer and an at-least-once stream processor with dead letters.

Delivery guarantee: a consumed record's offset is committed only after everything
its handler produced has been acknowledged by the broker (``acks=all``, idempotent
producer). A crash therefore replays records, never loses them; consumers make
that harmless by deduplicating on ``event_id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Generic, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    CommitFailedError,
    IllegalGenerationError,
    RebalanceInProgressError,
    TopicAlreadyExistsError,
)
from aiokafka.structs import OffsetAndMetadata
from google.protobuf.message import Message
from opentelemetry import context as otel_context
from opentelemetry import trace
from prometheus_client import Counter, Gauge, Histogram

from socialcrm import contract
from socialcrm.settings import ServiceSettings
from socialcrm.telemetry import extract_context, inject_headers

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

CONSUMED = Counter("socialcrm_events_consumed_total", "Records consumed.", ["topic"])
PRODUCED = Counter("socialcrm_events_produced_total", "Events published.", ["topic"])
DEAD_LETTERED = Counter(
    "socialcrm_events_dead_lettered_total",
    "Records sent to a dead-letter topic.",
    ["topic", "error_type"],
)
PROCESSING_SECONDS = Histogram(
    "socialcrm_event_processing_seconds",
    "Time to handle one record, outputs acknowledged included.",
    ["topic"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
CONSUMER_LAG = Gauge(
    "socialcrm_consumer_lag_records",
    "Records of a partition not yet consumed by this member (high watermark - position).",
    ["group", "topic", "partition"],
)
TRANSIENT_RETRIES = Counter(
    "socialcrm_transient_retries_total",
    "Handler attempts retried after a transient failure (e.g. database unavailable).",
    ["topic"],
)

In = TypeVar("In", bound=Message)
T = TypeVar("T")
Handler = Callable[[In, ConsumerRecord[bytes, bytes]], Awaitable[Sequence[Message]]]
# Handles the valid records of one fetched batch at once: the outputs of each, in order.
BatchHandler = Callable[
    [Sequence[tuple[In, ConsumerRecord[bytes, bytes]]]], Awaitable[Sequence[Sequence[Message]]]
]


class _Interrupted(Exception):
    """Shutdown arrived while a record was waiting on a transient failure: leave it uncommitted."""


def client_id(settings: ServiceSettings) -> str:
    return settings.service_name + settings.kafka_client_id_suffix


async def ensure_topics(settings: ServiceSettings, topics: Sequence[str]) -> None:
    """Create the topics that do not exist yet (idempotent)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers, client_id=client_id(settings)
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        # A name asked twice in one request makes the broker refuse that topic.
        missing = [t for t in dict.fromkeys(topics) if t not in existing]
        if not missing:
            return
        new_topics = [
            NewTopic(t, settings.topic_partitions, settings.topic_replication_factor)
            for t in missing
        ]
        await _create_topics(admin, new_topics)
        log.info("created topics", extra={"topics": missing})
    finally:
        await admin.close()


async def _create_topics(admin: AIOKafkaAdminClient, new_topics: list[NewTopic]) -> None:
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
    settings: ServiceSettings, topic: str, partitions: int | None = None
) -> list[TopicPartition]:
    """Create the compacted topic ``topic`` (a service's durable state, or tombstones) if it
    is missing, with ``partitions`` (default TOPIC_PARTITIONS); return its partitions once
    the broker's metadata knows them (a new topic takes a moment)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers, client_id=client_id(settings)
    )
    await admin.start()
    try:
        if topic not in set(await admin.list_topics()):
            new_topic = NewTopic(
                topic,
                partitions or settings.topic_partitions,
                settings.topic_replication_factor,
                topic_configs={"cleanup.policy": "compact"},
            )
            await _create_topics(admin, [new_topic])
            log.info("created topic", extra={"topic": topic})
        async with asyncio.timeout(30):
            while True:
                [described] = await admin.describe_topics([topic])
                numbers = [p["partition"] for p in described.get("partitions", ())]
                if described.get("error_code") == 0 and numbers:
                    return [TopicPartition(topic, n) for n in sorted(numbers)]
                await asyncio.sleep(0.2)
    finally:
        await admin.close()


class EventProducer:
    """Publishes contract messages to their topic, keyed and traced."""

    name = "kafka-producer"

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self._producer: AIOKafkaProducer | None = None

    @property
    def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("producer used before start()")
        return self._producer

    async def start(self) -> None:
        # aiokafka clients bind to the running event loop: create them in start(), not earlier.
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            client_id=client_id(self.settings),
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def check(self) -> None:
        await asyncio.wait_for(self.producer.client.fetch_all_metadata(), timeout=3)

    async def publish(self, message: Message) -> asyncio.Future[object]:
        """Queue ``message``; the returned future resolves once the broker acknowledged it."""
        topic = contract.topic_of(type(message))
        future: asyncio.Future[object] = await self.producer.send(
            topic, contract.encode(message), key=contract.key_of(message), headers=inject_headers()
        )
        PRODUCED.labels(topic).inc()
        return future

    async def publish_and_wait(self, message: Message) -> None:
        await (await self.publish(message))

    async def dead_letter(
        self, record: ConsumerRecord[bytes, bytes], error: contract.ContractError, consumer: str
    ) -> asyncio.Future[object]:
        envelope = contract.DeadLetter(
            source_topic=record.topic,
            source_partition=record.partition,
            source_offset=record.offset,
            original_key=record.key or b"",
            original_value=record.value or b"",
            original_headers={k: v for k, v in record.headers or () if v is not None},
            reason=error.reason,
            error_type=error.error_type,
            consumer=consumer,
            failed_at=contract.timestamp(),
        )
        headers = [
            *(record.headers or ()),
            ("dlq.reason", error.reason.encode()),
            ("dlq.error_type", error.error_type.encode()),
            ("dlq.consumer", consumer.encode()),
        ]
        target = contract.dlq_topic(record.topic)
        future: asyncio.Future[object] = await self.producer.send(
            target, envelope.SerializeToString(), key=record.key, headers=headers
        )
        DEAD_LETTERED.labels(record.topic, error.error_type).inc()
        log.warning(
            "dead-lettered record",
            extra={"topic": record.topic, "offset": record.offset, "reason": error.reason},
        )
        return future


class StreamProcessor(Generic[In]):
    """Consumes one topic in a consumer group and hands each valid event to ``handler``.

    The handler returns the events to publish. Undecodable or contract-breaking
    records, and records whose handler raises a non-transient error, go to the
    topic's dead-letter topic with the reason; the stream goes on. Transient errors
    (``transient_errors``, e.g. database unavailable) are retried with backoff
    without committing, so nothing is skipped. ``before_commit``, when given, runs
    after a batch's outputs are acknowledged and before its offsets are committed
    (e.g. to make a service's state durable first).

    ``batch_handler``, when given, takes the valid records of each fetched batch of a
    partition at once (e.g. for bulk database writes) and must give the same outcome
    as ``handler`` on each in turn. Should it fail other than transiently, the batch
    goes through ``handler`` record by record, so that only a poison record is
    dead-lettered.
    """

    def __init__(
        self,
        *,
        settings: ServiceSettings,
        group_id: str,
        input_type: type[In],
        handler: Handler[In],
        producer: EventProducer,
        transient_errors: tuple[type[BaseException], ...] = (),
        before_commit: Callable[[], Awaitable[None]] | None = None,
        batch_handler: BatchHandler[In] | None = None,
    ) -> None:
        self.name = f"consumer:{contract.topic_of(input_type)}"
        self.settings = settings
        self.group_id = group_id
        self.input_type = input_type
        self.topic = contract.topic_of(input_type)
        self.handler = handler
        self.producer = producer
        self.transient_errors = transient_errors
        self.before_commit = before_commit
        self.batch_handler = batch_handler
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._lag_labels: set[tuple[str, str, str]] = set()

    @property
    def consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("consumer used before start()")
        return self._consumer

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            client_id=client_id(self.settings),
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.settings.consumer_max_batch,
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Finish the record in hand, commit what was processed, leave the group."""
        self._stopping.set()
        if self._task is not None:
            await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def check(self) -> None:
        if self._task is None or self._task.done():
            raise RuntimeError(f"{self.name} is not running")
        await asyncio.wait_for(self.consumer._client.fetch_all_metadata(), timeout=3)

    @property
    def alive(self) -> bool:
        return self._task is not None and (not self._task.done() or self._stopping.is_set())

    async def _run(self) -> None:
        lag_reported_at = 0.0
        try:
            while not self._stopping.is_set():
                batches = await self.consumer.getmany(timeout_ms=500)
                for partition, records in batches.items():
                    await self._process_batch(partition, records)
                if time.monotonic() - lag_reported_at >= 1.0:
                    await self._report_lag()
                    lag_reported_at = time.monotonic()
        except Exception:
            log.exception(
                "stream processor stopped on an unexpected error", extra={"topic": self.topic}
            )
            raise

    async def _report_lag(self) -> None:
        assigned = self.consumer.assignment()
        for labels in list(self._lag_labels):
            if TopicPartition(labels[1], int(labels[2])) not in assigned:
                CONSUMER_LAG.remove(*labels)
                self._lag_labels.discard(labels)
        for partition in assigned:
            highwater = self.consumer.highwater(partition)
            if highwater is None:
                continue  # nothing fetched from this partition yet
            labels = (self.group_id, partition.topic, str(partition.partition))
            lag = max(0, highwater - await self.consumer.position(partition))
            CONSUMER_LAG.labels(*labels).set(lag)
            self._lag_labels.add(labels)

    async def _process_batch(
        self, partition: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]
    ) -> None:
        pending: list[asyncio.Future[object]] = []
        if self.batch_handler is not None:
            processed_until = await self._process_together(records, pending)
        else:
            processed_until = await self._process_one_by_one(records, pending)
        if processed_until is None:
            return
        if pending:
            await asyncio.gather(*pending)
        if self.before_commit is not None:
            await self.before_commit()
        try:
            await self.consumer.commit({partition: OffsetAndMetadata(processed_until + 1, "")})
        except (CommitFailedError, RebalanceInProgressError, IllegalGenerationError) as error:
            # The group rebalanced while the batch was in hand: the partition's new owner
            # starts again from the last committed offset, and handlers are idempotent.
            log.warning(
                "commit refused after a rebalance; the records will be processed again",
                extra={"topic": self.topic, "partition": partition.partition, "error": str(error)},
            )

    async def _process(self, record: ConsumerRecord[bytes, bytes]) -> list[asyncio.Future[object]]:
        CONSUMED.labels(self.topic).inc()
        started = time.perf_counter()
        try:
            with self._record_span(record):
                try:
                    event = contract.decode(self.input_type, record.value)
                    outputs = await self._handle_with_retries(event, record)
                except contract.ContractError as error:
                    return [await self.producer.dead_letter(record, error, self.group_id)]
                except _Interrupted:
                    raise
                except Exception as exc:
                    reason = f"{type(exc).__name__}: {exc}"
                    failure = contract.ContractError("handler_error", reason)
                    log.exception(
                        "handler failed", extra={"topic": self.topic, "offset": record.offset}
                    )
                    return [await self.producer.dead_letter(record, failure, self.group_id)]
                return [await self.producer.publish(message) for message in outputs]
        finally:
            PROCESSING_SECONDS.labels(self.topic).observe(time.perf_counter() - started)

    @contextlib.contextmanager
    def _record_span(self, record: ConsumerRecord[bytes, bytes]) -> Iterator[None]:
        """The span of handling ``record``, a child of the span that produced it."""
        token = otel_context.attach(extract_context(record.headers))
        try:
            with tracer.start_as_current_span(
                f"{self.topic} process",
                kind=trace.SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.destination.name": self.topic,
                    "messaging.kafka.partition": record.partition,
                    "messaging.kafka.offset": record.offset,
                },
            ):
                yield
        finally:
            otel_context.detach(token)

    async def _process_one_by_one(
        self,
        records: list[ConsumerRecord[bytes, bytes]],
        pending: list[asyncio.Future[object]],
    ) -> int | None:
        """Handle records in order until shutdown; the offset of the last one handled."""
        processed_until: int | None = None
        for record in records:
            if self._stopping.is_set():
                break
            try:
                pending.extend(await self._process(record))
            except _Interrupted:
                break
            processed_until = record.offset
        return processed_until

    async def _process_together(
        self,
        records: list[ConsumerRecord[bytes, bytes]],
        pending: list[asyncio.Future[object]],
    ) -> int | None:
        """The batch handler's path: one call for the valid records, then their outputs.

        The offset of the last record, or None when shutdown interrupted the batch."""
        assert self.batch_handler is not None
        batch_handler = self.batch_handler
        if self._stopping.is_set():
            return None
        started = time.perf_counter()
        valid: list[tuple[In, ConsumerRecord[bytes, bytes]]] = []
        for record in records:
            try:
                valid.append((contract.decode(self.input_type, record.value), record))
            except contract.ContractError as error:
                CONSUMED.labels(self.topic).inc()
                pending.append(await self.producer.dead_letter(record, error, self.group_id))
        last_offset: int = records[-1].offset
        if not valid:
            return last_offset
        links = [
            trace.Link(trace.get_current_span(extract_context(r.headers)).get_span_context())
            for _, r in valid
        ]
        with tracer.start_as_current_span(
            f"{self.topic} process batch",
            kind=trace.SpanKind.CONSUMER,
            links=links,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": self.topic,
                "messaging.batch.message_count": len(valid),
            },
        ):
            try:
                outputs = await self._with_retries(lambda: batch_handler(valid), valid[0][1])
            except _Interrupted:
                return None
            except Exception:
                log.exception(
                    "batch handler failed; the batch goes record by record",
                    extra={"topic": self.topic, "offset": valid[0][1].offset},
                )
                handled_until = await self._process_one_by_one([r for _, r in valid], pending)
                return last_offset if handled_until == valid[-1][1].offset else handled_until
        share = (time.perf_counter() - started) / len(valid)
        for (_, record), messages in zip(valid, outputs, strict=True):
            CONSUMED.labels(self.topic).inc()
            with self._record_span(record):
                pending.extend([await self.producer.publish(m) for m in messages])
            PROCESSING_SECONDS.labels(self.topic).observe(share)
        return last_offset

    async def _handle_with_retries(
        self, event: In, record: ConsumerRecord[bytes, bytes]
    ) -> Sequence[Message]:
        return await self._with_retries(lambda: self.handler(event, record), record)

    async def _with_retries(
        self, attempt: Callable[[], Awaitable[T]], record: ConsumerRecord[bytes, bytes]
    ) -> T:
        delay = 0.2
        while True:
            try:
                return await attempt()
            except self.transient_errors as exc:
                if self._stopping.is_set():
                    raise _Interrupted from exc
                TRANSIENT_RETRIES.labels(self.topic).inc()
                log.warning(
                    "transient failure, retrying",
                    extra={
                        "topic": self.topic,
                        "offset": record.offset,
                        "error": str(exc),
                        "retry_in_s": delay,
                    },
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
