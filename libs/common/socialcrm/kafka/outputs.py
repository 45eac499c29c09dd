"""What a stream processor produces for each record: its outputs, or its dead letter.

A record whose outputs no retry can produce (too large for the broker, not encodable,
refused) is dead-lettered with the reason, like Kafka Streams' production exception
handler set to "continue"; a transient failure (broker unavailable, timeout) raises
``RetryLater`` so that the processor goes back to that record after a pause.

The broker refuses a whole produce batch at once, which may hold other records' outputs:
after a refusal seen on acknowledgement, the partition's records go one at a time until
the refused one is found, and only that one is dead-lettered when it comes round again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice

from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import (
    CorruptRecordException,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)
from google.protobuf.message import Message

from socialcrm import contract
from socialcrm.kafka.producer import EventProducer

log = logging.getLogger(__name__)

# Room left in a record for its key, headers (trace context) and Kafka's record overhead
# when an output's encoded size is checked against the record limit before sending.
OUTPUT_HEADROOM_BYTES = 2048


class RetryLater(Exception):
    """The broker cannot take a record's outputs now: process it again after a pause."""


@dataclass
class Sent:
    """A handled record and the futures of what it produced (its outputs, or a dead letter)."""

    record: ConsumerRecord[bytes, bytes]
    futures: list[asyncio.Future[object]]
    dead_letter: bool = False


def output_rejection(exc: BaseException) -> contract.ContractError | None:
    """Why no retry can produce a record's outputs; None when a retry may.

    The broker refusing the record itself (too large, corrupt) and failures to build or
    encode it (EncodeError, ValueError, OverflowError, not a contract message...) are
    final; other client errors (broker unavailable, timeouts, not enough replicas, client
    closing) are transient."""
    reason = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, contract.ContractError):
        return exc
    if isinstance(exc, MessageSizeTooLargeError | RecordListTooLargeError):
        return contract.ContractError("output_too_large", reason)
    if isinstance(exc, CorruptRecordException):
        return contract.ContractError("output_refused", reason)
    if isinstance(exc, KafkaError | asyncio.CancelledError):
        return None
    return contract.ContractError("output_not_encodable", reason)


class Outputs:
    """Sends the outputs of one consumer's records and tells which were acknowledged."""

    def __init__(self, producer: EventProducer, topic: str, consumer: str) -> None:
        self.producer = producer
        self.topic = topic
        self.consumer = consumer
        # Per partition, the offset up to which records go one at a time, each acknowledged
        # before the next, so that a refusal names its record.
        self._one_at_a_time_until: dict[TopicPartition, int] = {}
        # Records the broker refused on their own: dead-lettered when they come round again.
        self._refused: dict[tuple[TopicPartition, int], contract.ContractError] = {}

    def one_at_a_time_until(self, partition: TopicPartition, offset: int) -> int | None:
        """The offset up to which ``partition``'s records from ``offset`` go one at a time."""
        until = self._one_at_a_time_until.get(partition)
        if until is not None and offset > until:
            del self._one_at_a_time_until[partition]
            return None
        return until

    def refusal_of(self, record: ConsumerRecord[bytes, bytes]) -> contract.ContractError | None:
        """Why the broker refused ``record``'s outputs before, if it did."""
        return self._refused.get((TopicPartition(record.topic, record.partition), record.offset))

    def committed(self, partition: TopicPartition, offset: int) -> None:
        """Records up to ``offset`` are done with."""
        for refused in [k for k in self._refused if k[0] == partition and k[1] <= offset]:
            del self._refused[refused]

    async def publish(
        self, record: ConsumerRecord[bytes, bytes], outputs: Sequence[Message]
    ) -> Sent:
        """Queue ``record``'s outputs, or its dead letter when no retry can produce them.

        Sizes are checked before anything is sent, so that such a record leaves no part of
        its outputs behind."""
        try:
            self._check_sizes(outputs)
            return Sent(record, [await self.producer.publish(message) for message in outputs])
        except Exception as exc:
            rejection = output_rejection(exc)
            if rejection is None:
                raise RetryLater(f"{type(exc).__name__}: {exc}") from exc
            return await self.dead_letter(record, rejection)

    def _check_sizes(self, outputs: Sequence[Message]) -> None:
        limit = self.producer.settings.kafka_max_message_bytes
        for message in outputs:
            size = message.ByteSize()
            if size + OUTPUT_HEADROOM_BYTES > limit:
                raise contract.ContractError(
                    "output_too_large",
                    f"{message.DESCRIPTOR.name} output of {size} bytes does not fit the"
                    f" {limit}-byte record limit (KAFKA_MAX_MESSAGE_BYTES)",
                )

    async def dead_letter(
        self, record: ConsumerRecord[bytes, bytes], error: contract.ContractError
    ) -> Sent:
        try:
            future = await self.producer.dead_letter(record, error, self.consumer)
        except Exception as exc:
            raise RetryLater(f"dead letter not sent: {type(exc).__name__}: {exc}") from exc
        return Sent(record, [future], dead_letter=True)

    async def acknowledged(
        self,
        partition: TopicPartition,
        records: list[ConsumerRecord[bytes, bytes]],
        sent: list[Sent],
        *,
        one_at_a_time: bool,
    ) -> int | None:
        """The offset up to which every record of ``records`` was handled (it is in
        ``sent``) and what it produced acknowledged; None when not even the first."""
        futures = [future for item in sent for future in item.futures]
        results = iter(await asyncio.gather(*futures, return_exceptions=True))
        outcome = {
            item.record.offset: (item, list(islice(results, len(item.futures)))) for item in sent
        }
        acknowledged: int | None = None
        for record in records:
            if record.offset not in outcome:
                break
            item, results_of_record = outcome[record.offset]
            failure = next((r for r in results_of_record if isinstance(r, BaseException)), None)
            if failure is None:
                acknowledged = record.offset
                continue
            await self._not_acknowledged(partition, records, item, failure, one_at_a_time)
            break
        return acknowledged

    async def _not_acknowledged(
        self,
        partition: TopicPartition,
        records: list[ConsumerRecord[bytes, bytes]],
        item: Sent,
        failure: BaseException,
        one_at_a_time: bool,
    ) -> None:
        log.warning(
            "an output was not acknowledged; the record will be processed again",
            extra={
                "topic": self.topic,
                "partition": partition.partition,
                "offset": item.record.offset,
                "error": type(failure).__name__,
            },
        )
        # A failure for good replaces the producer's client (its idempotence sequence is out
        # of step): what is sent again goes out on the new one.
        await self.producer.settled()
        # Only a refusal of the record itself is final; alone in flight, it is this record's.
        rejection = output_rejection(failure) if isinstance(failure, KafkaError) else None
        if one_at_a_time and rejection is not None and not item.dead_letter:
            self._refused[(partition, item.record.offset)] = rejection
        else:
            until = self._one_at_a_time_until.get(partition, records[-1].offset)
            self._one_at_a_time_until[partition] = max(until, records[-1].offset)
