"""The at-least-once stream processor: consume, handle, produce, commit; dead letters.

Delivery guarantee: a consumed record's offset is committed only after everything
its handler produced has been acknowledged by the broker (``acks=all``, idempotent
producer). A crash therefore replays records, never loses them; consumers make
that harmless by deduplicating on ``event_id``. No record stops the stream: one that
cannot be decoded, handled or produced goes to ``<topic>.dlq`` with the reason.

Stateful processors (a ``partition_listener`` owning partition-keyed state, a
``punctuator`` firing timers) are single writers: rebalance callbacks, batches and
punctuations never run at the same time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    IllegalGenerationError,
    IllegalStateError,
    RebalanceInProgressError,
)
from aiokafka.structs import OffsetAndMetadata
from google.protobuf.message import Message

from socialcrm.kafka.consumer import PartitionLag, group_consumer
from socialcrm.kafka.outputs import RetryLater, Sent
from socialcrm.kafka.producer import EventProducer
from socialcrm.kafka.time_order import by_partition_number, first_offsets, runs_in_time_order
from socialcrm.kafka.topic_route import (
    FIRST_RETRY_SECONDS,
    LAST_RETRY_SECONDS,
    BatchHandler,
    Handler,
    In,
    StreamInput,
    TopicRoute,
)
from socialcrm.settings import ServiceSettings

log = logging.getLogger(__name__)


class PartitionListener(Protocol):
    """Partition-keyed state following the processor's assignment (partition numbers:
    the processor's topics are co-partitioned)."""

    async def on_assigned(self, partitions: set[int]) -> None:
        """Restore the state of ``partitions`` before their records are handled."""

    async def on_revoked(self, partitions: set[int]) -> None:
        """Give up ``partitions``, whose writes were flushed with their last commit."""

    async def on_lost(self, partitions: set[int]) -> None:
        """Drop the state of ``partitions`` without keeping it: writes of records that are
        processed again may be in it (their outputs were not all acknowledged)."""


class Punctuator(Protocol):
    """Work on wall-clock time (timers), run from the processor's task between batches."""

    interval_seconds: float

    async def punctuate(self, caught_up: set[int]) -> Sequence[Message]:
        """The events to publish now (by the punctuator's own clock). ``caught_up`` are the
        owned partitions whose records were all handled at the last fetch: timers of the
        others may wait for records still to come (a reply published before a deadline)."""


class StreamProcessor(Generic[In]):
    """Consumes ``input_type`` (and ``extra_inputs``: topics co-partitioned with it, so
    that partition N of each lands on one member) in a consumer group and hands each
    valid event to its handler, which returns the events to publish.

    Undecodable or contract-breaking records, records whose handler raises a
    non-transient error, and records whose outputs no retry can produce (too large, not
    encodable, refused by the broker) go to the topic's dead-letter topic with the reason;
    the stream goes on. Transient errors (``transient_errors``, e.g. database
    unavailable) are retried with backoff without committing, so nothing is skipped; so
    are transient producer failures, by going back to the first record whose outputs were
    not acknowledged. ``before_commit``, when given, runs after a batch's outputs are
    acknowledged and before its offsets are committed (e.g. to flush state first).

    ``batch_handler``, when given, takes the valid records of each fetched batch of a
    partition at once (e.g. for bulk database writes) and must give the same outcome
    as ``handler`` on each in turn.
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
        extra_inputs: Sequence[StreamInput[Any]] = (),
        partition_listener: PartitionListener | None = None,
        punctuator: Punctuator | None = None,
    ) -> None:
        self._stopping = asyncio.Event()
        inputs: list[StreamInput[Any]] = [StreamInput(input_type, handler, batch_handler)]
        self.routes = {
            route.topic: route
            for route in (
                TopicRoute(
                    stream_input,
                    producer=producer,
                    group_id=group_id,
                    transient_errors=transient_errors,
                    stopping=self._stopping,
                )
                for stream_input in [*inputs, *extra_inputs]
            )
        }
        self.topic = next(iter(self.routes))
        self.name = f"consumer:{'+'.join(self.routes)}"
        self.settings = settings
        self.group_id = group_id
        self.producer = producer
        self.before_commit = before_commit
        self.partition_listener = partition_listener
        self.punctuator = punctuator
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._lag = PartitionLag(group_id)
        self._retry_delay = FIRST_RETRY_SECONDS
        # Held while a batch, a punctuation or a rebalance callback runs: one at a time.
        self.exclusive = asyncio.Lock()
        self._caught_up: set[int] = set()

    @property
    def consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("consumer used before start()")
        return self._consumer

    async def start(self) -> None:
        self._consumer = group_consumer(self.settings, self.group_id)
        self._consumer.subscribe(list(self.routes), listener=_Rebalance(self))
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Finish the batch in hand, commit what was processed, leave the group."""
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
        punctuated_at = 0.0
        while not self._stopping.is_set():
            try:
                batches = await self.consumer.getmany(timeout_ms=500)
                async with self.exclusive:
                    assigned = self.consumer.assignment()
                    # Not revoked since they were fetched.
                    fetched = {p: records for p, records in batches.items() if p in assigned}
                    await self._process_fetched(fetched)
                    await self._note_caught_up()
                    if (
                        self.punctuator is not None
                        # Stopping: batches were left unhandled, so nothing is caught up.
                        and not self._stopping.is_set()
                        and time.monotonic() - punctuated_at >= self.punctuator.interval_seconds
                    ):
                        punctuated_at = time.monotonic()
                        await self._punctuate(self.punctuator)
            except Exception:
                # Like Kafka Streams' "continue" handlers: whatever escapes, the stream goes
                # on from what was committed, rather than leaving the service dead.
                log.exception(
                    "stream processor failed unexpectedly; resuming from the committed offsets",
                    extra={"topic": self.topic},
                )
                await self._rewind()
                await self._back_off()

    async def _note_caught_up(self) -> None:
        """Report the lag; note the partition numbers whose every topic was consumed to
        its end (as of the last fetch)."""
        assigned = self.consumer.assignment()
        caught_up = await self._lag.measure(self.consumer)
        behind = {p.partition for p in assigned - caught_up}
        self._caught_up = {p.partition for p in assigned} - behind

    async def _punctuate(self, punctuator: Punctuator) -> None:
        outputs = await punctuator.punctuate(set(self._caught_up))
        if not outputs:
            if self.before_commit is not None:
                await self.before_commit()
            return
        try:
            pending = [await self.producer.publish(message) for message in outputs]
            await asyncio.gather(*pending)
            if self.before_commit is not None:
                await self.before_commit()
        except Exception:
            # The state already holds what the lost outputs did: drop it and restore it
            # from the changelog, so that the next punctuation fires them again.
            await self._reset_state(
                {p.partition for p in self.consumer.assignment()}, "punctuation failed"
            )
            raise

    async def _rewind(self) -> None:
        """Go back to the committed offset of every assigned partition (and to the state
        those offsets describe)."""
        try:
            assigned = self.consumer.assignment()
            async with self.exclusive:
                await self._reset_state({p.partition for p in assigned}, "rewind")
            for partition in assigned:
                committed = await self.consumer.committed(partition)
                if committed is None:
                    await self.consumer.seek_to_beginning(partition)
                else:
                    self.consumer.seek(partition, committed)
        except Exception:
            log.exception("could not rewind to the committed offsets", extra={"topic": self.topic})

    async def _reset_state(self, partitions: set[int], why: str) -> None:
        if self.partition_listener is None or not partitions or self._stopping.is_set():
            return  # stopping: the state goes with the process
        log.warning(
            "state restored again from its changelog",
            extra={"topic": self.topic, "partitions": sorted(partitions), "reason": why},
        )
        await self.partition_listener.on_lost(partitions)
        await self.partition_listener.on_assigned(partitions)

    async def _back_off(self) -> None:
        """Wait before a retry, longer each time in a row, and not past shutdown."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), self._retry_delay)
        self._retry_delay = min(self._retry_delay * 2, LAST_RETRY_SECONDS)

    async def _process_fetched(
        self, fetched: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        if self.partition_listener is None or len(self.routes) == 1:
            for partition, records in fetched.items():
                await self._process_batch(partition, records)
            return
        # State fed by several topics: each partition number's records oldest first.
        for same_number in by_partition_number(fetched).values():
            runs = runs_in_time_order(same_number)
            for index, (partition, records) in enumerate(runs):
                if not await self._process_batch(partition, records):
                    # The rest waits for the next fetch, still in order behind this run.
                    for later, offset in first_offsets(runs[index + 1 :]).items():
                        if later != partition:
                            with contextlib.suppress(IllegalStateError):
                                self.consumer.seek(later, offset)
                    break

    async def _process_batch(
        self, partition: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]
    ) -> bool:
        """Handle a batch of one topic partition; False when some records must be handled
        again (the partition went back to them)."""
        route = self.routes[partition.topic]
        until = route.outputs.one_at_a_time_until(partition, records[0].offset)
        if until is None:
            return await self._process_records(route, partition, records, one_at_a_time=False)
        for index, record in enumerate(records):
            if not await self._process_records(route, partition, [record], one_at_a_time=True):
                return False
            if record.offset >= until:
                if rest := records[index + 1 :]:
                    return await self._process_records(route, partition, rest, one_at_a_time=False)
                return True
        return True

    async def _process_records(
        self,
        route: TopicRoute[Any],
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
            await route.handle(records, sent)
        except RetryLater as exc:
            log.warning(
                "the broker cannot take outputs now; retrying",
                extra={"topic": route.topic, "partition": partition.partition, "error": str(exc)},
            )
            retry = True
        acknowledged = await route.outputs.acknowledged(
            partition, records, sent, one_at_a_time=one_at_a_time
        )
        complete = not retry and acknowledged == records[-1].offset
        if acknowledged is not None and not complete and self.partition_listener is not None:
            # State writes cannot be told apart by record: a stateful partition commits a
            # batch whole or not at all, and its state goes back to the last commit.
            acknowledged = None
        if acknowledged is not None:
            try:
                await self._commit(route, partition, acknowledged)
            except Exception:
                log.exception(
                    "could not commit; the records will be processed again",
                    extra={"topic": route.topic, "partition": partition.partition},
                )
                acknowledged = None
                complete = False
        if not complete:
            await self._reset_state({partition.partition}, "outputs not acknowledged")
        if self._stopping.is_set():
            return False  # what was not committed is processed again after the restart
        if complete:
            self._retry_delay = FIRST_RETRY_SECONDS
            return True
        route.retries.inc()
        resume_at = records[0].offset if acknowledged is None else acknowledged + 1
        with contextlib.suppress(IllegalStateError):  # the partition was revoked meanwhile
            self.consumer.seek(partition, resume_at)
        await self._back_off()
        return False

    async def _commit(self, route: TopicRoute[Any], partition: TopicPartition, offset: int) -> None:
        if self.before_commit is not None:
            await self.before_commit()
        route.outputs.committed(partition, offset)
        try:
            await self.consumer.commit({partition: OffsetAndMetadata(offset + 1, "")})
        except (CommitFailedError, RebalanceInProgressError, IllegalGenerationError) as error:
            # The group rebalanced while the batch was in hand: the partition's new owner
            # starts again from the last committed offset, and handlers are idempotent.
            log.warning(
                "commit refused after a rebalance; the records will be processed again",
                extra={"topic": route.topic, "partition": partition.partition, "error": str(error)},
            )


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Hands assignment changes to the processor's partition listener, never in the
    middle of a batch or a punctuation."""

    def __init__(self, processor: StreamProcessor[Any]) -> None:
        self.processor = processor

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        listener = self.processor.partition_listener
        if listener is None or not revoked:
            return
        async with self.processor.exclusive:
            await listener.on_revoked({p.partition for p in revoked})

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        listener = self.processor.partition_listener
        if listener is None:
            return
        async with self.processor.exclusive:
            await listener.on_assigned({p.partition for p in assigned})
