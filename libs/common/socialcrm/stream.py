"""The at-least-once stream processor: consume, handle, produce, commit; dead letters.

Delivery guarantee: a consumed record's offset is committed only after everything
its handler produced has been acknowledged by the broker (``acks=all``, idempotent
producer). A crash therefore replays records, never loses them; consumers make
that harmless by deduplicating on ``event_id``. No record stops the stream: one that
cannot be decoded, handled or produced goes to ``<topic>.dlq`` with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Generic, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    IllegalGenerationError,
    IllegalStateError,
    RebalanceInProgressError,
)
from aiokafka.structs import OffsetAndMetadata
from google.protobuf.message import Message
from opentelemetry import context as otel_context
from opentelemetry import trace
from prometheus_client import Counter, Gauge, Histogram

from socialcrm import contract
from socialcrm.outputs import Outputs, RetryLater, Sent
from socialcrm.producer import EventProducer, client_id
from socialcrm.settings import ServiceSettings
from socialcrm.telemetry import extract_context

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

CONSUMED = Counter("socialcrm_events_consumed_total", "Records consumed.", ["topic"])
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
    "Attempts retried after a transient failure (database or broker unavailable).",
    ["topic"],
)
_FIRST_RETRY_SECONDS = 0.2
_LAST_RETRY_SECONDS = 5.0

In = TypeVar("In", bound=Message)
T = TypeVar("T")
Handler = Callable[[In, ConsumerRecord[bytes, bytes]], Awaitable[Sequence[Message]]]
# Handles the valid records of one fetched batch at once: the outputs of each, in order.
BatchHandler = Callable[
    [Sequence[tuple[In, ConsumerRecord[bytes, bytes]]]], Awaitable[Sequence[Sequence[Message]]]
]


class _Interrupted(Exception):
    """Shutdown arrived while a record was waiting on a transient failure: leave it uncommitted."""


class StreamProcessor(Generic[In]):
    """Consumes one topic in a consumer group and hands each valid event to ``handler``.

    The handler returns the events to publish. Undecodable or contract-breaking
    records, records whose handler raises a non-transient error, and records whose
    outputs no retry can produce (too large, not encodable, refused by the broker) go
    to the topic's dead-letter topic with the reason; the stream goes on. Transient
    errors (``transient_errors``, e.g. database unavailable) are retried with backoff
    without committing, so nothing is skipped; so are transient producer failures, by
    going back to the first record whose outputs were not acknowledged. ``before_commit``,
    when given, runs after a batch's outputs are acknowledged and before its offsets are
    committed (e.g. to make a service's state durable first).

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
        self._retry_delay = _FIRST_RETRY_SECONDS
        self._outputs = Outputs(producer, self.topic, group_id)
        # Label children looked up once, not per record.
        self._consumed = CONSUMED.labels(self.topic)
        self._processing_seconds = PROCESSING_SECONDS.labels(self.topic)
        self._retries = TRANSIENT_RETRIES.labels(self.topic)

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
        while not self._stopping.is_set():
            try:
                batches = await self.consumer.getmany(timeout_ms=500)
                for partition, records in batches.items():
                    await self._process_batch(partition, records)
                if time.monotonic() - lag_reported_at >= 1.0:
                    await self._report_lag()
                    lag_reported_at = time.monotonic()
            except Exception:
                # Like Kafka Streams' "continue" handlers: whatever escapes, the stream goes
                # on from what was committed, rather than leaving the service dead.
                log.exception(
                    "stream processor failed unexpectedly; resuming from the committed offsets",
                    extra={"topic": self.topic},
                )
                await self._rewind()
                await self._back_off()

    async def _rewind(self) -> None:
        """Go back to the committed offset of every assigned partition."""
        try:
            for partition in self.consumer.assignment():
                committed = await self.consumer.committed(partition)
                if committed is None:
                    await self.consumer.seek_to_beginning(partition)
                else:
                    self.consumer.seek(partition, committed)
        except Exception:
            log.exception("could not rewind to the committed offsets", extra={"topic": self.topic})

    async def _back_off(self) -> None:
        """Wait before a retry, longer each time in a row, and not past shutdown."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), self._retry_delay)
        self._retry_delay = min(self._retry_delay * 2, _LAST_RETRY_SECONDS)

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
        until = self._outputs.one_at_a_time_until(partition, records[0].offset)
        if until is None:
            await self._process_records(partition, records, one_at_a_time=False)
            return
        for index, record in enumerate(records):
            if not await self._process_records(partition, [record], one_at_a_time=True):
                return
            if record.offset >= until:
                if rest := records[index + 1 :]:
                    await self._process_records(partition, rest, one_at_a_time=False)
                return

    async def _process_records(
        self,
        partition: TopicPartition,
        records: list[ConsumerRecord[bytes, bytes]],
        *,
        one_at_a_time: bool,
    ) -> bool:
        """Handle ``records``, wait for their outputs, commit those acknowledged.

        False when some must be processed again: the partition then goes back to the first
        one not acknowledged, after a pause."""
        sent: list[Sent] = []
        retry = False
        try:
            if self.batch_handler is not None:
                await self._process_together(records, sent)
            else:
                await self._process_one_by_one(records, sent)
        except RetryLater as exc:
            log.warning(
                "the broker cannot take outputs now; retrying",
                extra={"topic": self.topic, "partition": partition.partition, "error": str(exc)},
            )
            retry = True
        acknowledged = await self._outputs.acknowledged(
            partition, records, sent, one_at_a_time=one_at_a_time
        )
        if acknowledged is not None:
            try:
                await self._commit(partition, acknowledged)
            except Exception:
                log.exception(
                    "could not commit; the records will be processed again",
                    extra={"topic": self.topic, "partition": partition.partition},
                )
                acknowledged = None
        if self._stopping.is_set():
            return False  # what was not committed is processed again after the restart
        if not retry and acknowledged == records[-1].offset:
            self._retry_delay = _FIRST_RETRY_SECONDS
            return True
        self._retries.inc()
        resume_at = records[0].offset if acknowledged is None else acknowledged + 1
        with contextlib.suppress(IllegalStateError):  # the partition was revoked meanwhile
            self.consumer.seek(partition, resume_at)
        await self._back_off()
        return False

    async def _commit(self, partition: TopicPartition, offset: int) -> None:
        if self.before_commit is not None:
            await self.before_commit()
        self._outputs.committed(partition, offset)
        try:
            await self.consumer.commit({partition: OffsetAndMetadata(offset + 1, "")})
        except (CommitFailedError, RebalanceInProgressError, IllegalGenerationError) as error:
            # The group rebalanced while the batch was in hand: the partition's new owner
            # starts again from the last committed offset, and handlers are idempotent.
            log.warning(
                "commit refused after a rebalance; the records will be processed again",
                extra={"topic": self.topic, "partition": partition.partition, "error": str(error)},
            )

    async def _process(self, record: ConsumerRecord[bytes, bytes]) -> Sent:
        self._consumed.inc()
        started = time.perf_counter()
        try:
            with self._record_span(record):
                refused = self._outputs.refusal_of(record)
                if refused is not None:
                    return await self._outputs.dead_letter(record, refused)
                try:
                    event = contract.decode(self.input_type, record.value)
                    outputs = await self._handle_with_retries(event, record)
                except contract.ContractError as error:
                    return await self._outputs.dead_letter(record, error)
                except _Interrupted:
                    raise
                except Exception as exc:
                    reason = f"{type(exc).__name__}: {exc}"
                    failure = contract.ContractError("handler_error", reason)
                    log.exception(
                        "handler failed", extra={"topic": self.topic, "offset": record.offset}
                    )
                    return await self._outputs.dead_letter(record, failure)
                return await self._outputs.publish(record, outputs)
        finally:
            self._processing_seconds.observe(time.perf_counter() - started)

    @contextlib.contextmanager
    def _record_span(
        self, record: ConsumerRecord[bytes, bytes], parent: otel_context.Context | None = None
    ) -> Iterator[None]:
        """The span of handling ``record``, a child of the span that produced it.

        A record whose producer span was not sampled gets no span (nobody records its
        trace), but its trace context is still the current one, so its outputs carry it on.
        """
        if parent is None:
            parent = extract_context(record.headers)
        token = otel_context.attach(parent)
        try:
            if not _recorded(parent):
                yield
                return
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
        self, records: list[ConsumerRecord[bytes, bytes]], sent: list[Sent]
    ) -> None:
        """Handle records in order until shutdown, adding each one handled to ``sent``."""
        for record in records:
            if self._stopping.is_set():
                return
            try:
                sent.append(await self._process(record))
            except _Interrupted:
                return

    async def _process_together(
        self, records: list[ConsumerRecord[bytes, bytes]], sent: list[Sent]
    ) -> None:
        """The batch handler's path: one call for the valid records, then their outputs.

        Each record handled is added to ``sent``."""
        assert self.batch_handler is not None
        batch_handler = self.batch_handler
        if self._stopping.is_set():
            return
        started = time.perf_counter()
        valid: list[tuple[In, ConsumerRecord[bytes, bytes]]] = []
        for record in records:
            error = self._outputs.refusal_of(record)
            if error is None:
                try:
                    valid.append((contract.decode(self.input_type, record.value), record))
                    continue
                except contract.ContractError as undecodable:
                    error = undecodable
            self._consumed.inc()
            sent.append(await self._outputs.dead_letter(record, error))
        if not valid:
            return
        # One span for the batch, linked to the records' sampled producer spans.
        parents = [extract_context(r.headers) for _, r in valid]
        producer_spans = [trace.get_current_span(parent).get_span_context() for parent in parents]
        links = [
            trace.Link(span)
            for span in producer_spans
            if span.is_valid and span.trace_flags.sampled
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
                return
            except Exception:
                log.exception(
                    "batch handler failed; the batch goes record by record",
                    extra={"topic": self.topic, "offset": valid[0][1].offset},
                )
                await self._process_one_by_one([r for _, r in valid], sent)
                return
        share = (time.perf_counter() - started) / len(valid)
        self._consumed.inc(len(valid))
        for (_, record), messages, parent in zip(valid, outputs, parents, strict=True):
            with self._record_span(record, parent):
                sent.append(await self._outputs.publish(record, messages))
            self._processing_seconds.observe(share)

    async def _handle_with_retries(
        self, event: In, record: ConsumerRecord[bytes, bytes]
    ) -> Sequence[Message]:
        return await self._with_retries(lambda: self.handler(event, record), record)

    async def _with_retries(
        self, attempt: Callable[[], Awaitable[T]], record: ConsumerRecord[bytes, bytes]
    ) -> T:
        delay = _FIRST_RETRY_SECONDS
        while True:
            try:
                return await attempt()
            except self.transient_errors as exc:
                if self._stopping.is_set():
                    raise _Interrupted from exc
                self._retries.inc()
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
                delay = min(delay * 2, _LAST_RETRY_SECONDS)


def _recorded(parent: otel_context.Context) -> bool:
    """Whether the trace of a record with this producer context is recorded: sampled, or
    a new trace (no context), whose sampling the tracer decides."""
    span_context = trace.get_current_span(parent).get_span_context()
    return not span_context.is_valid or span_context.trace_flags.sampled
