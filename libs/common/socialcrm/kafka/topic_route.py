"""How the at-least-once processor handles the records of one input topic: the shared
decode → handle → dead-letter step (``handling``) with retries of transient failures,
tracing, and the outputs or the dead letter produced."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from aiokafka import ConsumerRecord
from google.protobuf.message import Message
from opentelemetry import context as otel_context
from opentelemetry import trace

from socialcrm import contract
from socialcrm.kafka.handling import Backoff, Interrupted, Rejected, handle_record
from socialcrm.kafka.metrics import CONSUMED, PROCESSING_SECONDS, TRANSIENT_RETRIES
from socialcrm.kafka.outputs import Outputs, Sent
from socialcrm.kafka.producer import EventProducer
from socialcrm.telemetry import consumer_span, extract_context

log = logging.getLogger(__name__)
tracer = trace.get_tracer("socialcrm.stream")

In = TypeVar("In", bound=Message)
T = TypeVar("T")
Handler = Callable[[In, ConsumerRecord[bytes, bytes]], Awaitable[Sequence[Message]]]
# Handles the valid records of one fetched batch at once: the outputs of each, in order.
BatchHandler = Callable[
    [Sequence[tuple[In, ConsumerRecord[bytes, bytes]]]], Awaitable[Sequence[Sequence[Message]]]
]


@dataclass(frozen=True)
class StreamInput(Generic[In]):
    """A topic a processor consumes: its message type and handlers (see StreamProcessor)."""

    input_type: type[In]
    handler: Handler[In]
    batch_handler: BatchHandler[In] | None = None


class TopicRoute(Generic[In]):
    """The records of one input topic, from their bytes to their outputs or dead letter."""

    def __init__(
        self,
        stream_input: StreamInput[In],
        *,
        producer: EventProducer,
        group_id: str,
        transient_errors: tuple[type[BaseException], ...],
        stopping: asyncio.Event,
    ) -> None:
        self.input_type = stream_input.input_type
        self.handler = stream_input.handler
        self.batch_handler = stream_input.batch_handler
        self.topic = contract.topic_of(self.input_type)
        self.transient_errors = transient_errors
        self.stopping = stopping
        self.outputs = Outputs(producer, self.topic, group_id)
        # Label children looked up once, not per record.
        self.consumed = CONSUMED.labels(self.topic)
        self.processing_seconds = PROCESSING_SECONDS.labels(self.topic)
        self.retries = TRANSIENT_RETRIES.labels(self.topic)

    async def handle(self, records: list[ConsumerRecord[bytes, bytes]], sent: list[Sent]) -> None:
        """Handle ``records`` in order until shutdown, adding each one handled to ``sent``."""
        if self.batch_handler is not None:
            await self._together(self.batch_handler, records, sent)
        else:
            await self._one_by_one(records, sent)

    async def _one_by_one(
        self, records: list[ConsumerRecord[bytes, bytes]], sent: list[Sent]
    ) -> None:
        for record in records:
            if self.stopping.is_set():
                return
            try:
                sent.append(await self._process(record))
            except Interrupted:
                return

    async def _process(self, record: ConsumerRecord[bytes, bytes]) -> Sent:
        self.consumed.inc()
        started = time.perf_counter()
        try:
            with self._record_span(record):
                refused = self.outputs.refusal_of(record)
                if refused is not None:
                    return await self.outputs.dead_letter(record, refused)
                outcome = await handle_record(
                    self.input_type,
                    record,
                    lambda event: self._with_retries(lambda: self.handler(event, record), record),
                )
                if isinstance(outcome, Rejected):
                    return await self.outputs.dead_letter(record, outcome.error)
                return await self.outputs.publish(record, outcome)
        finally:
            self.processing_seconds.observe(time.perf_counter() - started)

    async def _together(
        self,
        batch_handler: BatchHandler[In],
        records: list[ConsumerRecord[bytes, bytes]],
        sent: list[Sent],
    ) -> None:
        """One call of the batch handler for the valid records, then their outputs. Should
        it fail other than transiently, the batch goes record by record, so that only a
        poison record is dead-lettered."""
        if self.stopping.is_set():
            return
        started = time.perf_counter()
        valid: list[tuple[In, ConsumerRecord[bytes, bytes]]] = []
        for record in records:
            error = self.outputs.refusal_of(record)
            if error is None:
                try:
                    valid.append((contract.decode(self.input_type, record.value), record))
                    continue
                except contract.ContractError as undecodable:
                    error = undecodable
            self.consumed.inc()
            sent.append(await self.outputs.dead_letter(record, error))
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
            except Interrupted:
                return
            except Exception:
                log.exception(
                    "batch handler failed; the batch goes record by record",
                    extra={"topic": self.topic, "offset": valid[0][1].offset},
                )
                await self._one_by_one([r for _, r in valid], sent)
                return
        share = (time.perf_counter() - started) / len(valid)
        self.consumed.inc(len(valid))
        for (_, record), messages, parent in zip(valid, outputs, parents, strict=True):
            with self._record_span(record, parent):
                sent.append(await self.outputs.publish(record, messages))
            self.processing_seconds.observe(share)

    def _record_span(
        self, record: ConsumerRecord[bytes, bytes], parent: otel_context.Context | None = None
    ) -> contextlib.AbstractContextManager[None]:
        return consumer_span(self.topic, record.partition, record.offset, record.headers, parent)

    async def _with_retries(
        self, attempt: Callable[[], Awaitable[T]], record: ConsumerRecord[bytes, Any]
    ) -> T:
        backoff = Backoff(self.stopping)
        while True:
            try:
                return await attempt()
            except self.transient_errors as exc:
                if self.stopping.is_set():
                    raise Interrupted from exc
                self.retries.inc()
                log.warning(
                    "transient failure, retrying",
                    extra={
                        "topic": self.topic,
                        "offset": record.offset,
                        "error": str(exc),
                        "retry_in_s": backoff.delay,
                    },
                )
                await backoff.wait()
