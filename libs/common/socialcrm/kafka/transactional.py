"""The exactly-once stream processor: one Kafka transaction per fetched batch.

One consumer reads several topics in one group; per fetched batch, one transaction of
the transactional producer holds the handlers' outputs, the dead letters of the records
that could not be decoded or handled (with the reason), the state changes
(``TransactionalState.commit_state``, e.g. a ``PartitionedStore`` flush through the same
producer) and the batch's input offsets (``send_offsets_to_transaction``). Readers with
``isolation_level="read_committed"`` see all of it or none of it. On a failure the
transaction is aborted, the state is restored from its changelog and the consumer goes
back to the committed offsets: nothing is lost, nothing is repeated.

The producer is created when partitions are assigned; its transactional id is fixed per
service, so its initialisation aborts the open transaction of a former owner and fences
it (a zombie that wakes up gets ``ProducerFenced``, stops processing and leaves the
group). With ``SingleOwnerAssignor`` one member holds every partition and the others
wait as hot standbys; rebalances wait for the batch in hand before the state is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import InvalidProducerEpoch, ProducerFenced
from google.protobuf.message import Message

from socialcrm import contract
from socialcrm.kafka.consumer import PartitionLag, group_consumer
from socialcrm.kafka.single_owner import SingleOwnerAssignor
from socialcrm.kafka.transactional_producer import TransactionalProducer
from socialcrm.settings import ServiceSettings
from socialcrm.telemetry import consumer_span

__all__ = [
    "PartitionId",
    "TransactionalInput",
    "TransactionalProcessor",
    "TransactionalProducer",
    "TransactionalState",
]

from socialcrm.kafka.metrics import (
    ACTIVE_OWNER,
    CONSUMED,
    PROCESSING_SECONDS,
    TRANSACTIONS,
)

log = logging.getLogger(__name__)

# What a producer gets once a newer one with its transactional id initialised.
_FENCED = (ProducerFenced, InvalidProducerEpoch)
_FIRST_RETRY_SECONDS = 0.2
_LAST_RETRY_SECONDS = 5.0

In = TypeVar("In", bound=Message)
# (topic, partition): partitions as the pure logic of services sees them.
PartitionId = tuple[str, int]
# Handles one valid record without I/O; returns the messages to publish.
RecordHandler = Callable[[In, ConsumerRecord[bytes, bytes]], Sequence[Message]]


@dataclass(frozen=True)
class TransactionalInput(Generic[In]):
    """A topic the processor reads, by its contract message, and its record handler."""

    input_type: type[In]
    handler: RecordHandler[In]

    @property
    def topic(self) -> str:
        return contract.topic_of(self.input_type)


class TransactionalState(Protocol):
    """The state a transactional processor drives, always from its own task or under its
    lock: never while a batch is in hand."""

    async def assigned(self, partitions: frozenset[PartitionId]) -> None:
        """Restore the state of ``partitions`` (all the member holds now) from its changelog."""

    async def revoked(self, partitions: frozenset[PartitionId]) -> None:
        """Drop the state of ``partitions``: all of it is committed, a rebalance moves them."""

    async def lost(self, partitions: frozenset[PartitionId]) -> None:
        """Drop the state of ``partitions`` and any copy of it: the transaction in hand was
        aborted, so it holds changes the changelog does not."""

    def punctuate(self, now: float, caught_up: Collection[PartitionId]) -> Sequence[Message]:
        """After each batch, and every punctuation interval: what time closed or fired.
        ``caught_up``: the partitions with nothing left to read."""

    async def commit_state(self) -> None:
        """Write the state changes of the transaction in hand (they commit with it)."""


class _Fenced(Exception):
    """A newer producer with the same transactional id took over: this member is a zombie."""


class TransactionalProcessor:
    """Reads ``inputs`` in group ``group_id``, one transaction per fetched batch."""

    def __init__(
        self,
        *,
        settings: ServiceSettings,
        group_id: str,
        inputs: Sequence[TransactionalInput[Any]],
        producer: TransactionalProducer,
        state: TransactionalState,
        session_timeout_ms: int,
        punctuation_seconds: float = 1.0,
    ) -> None:
        self.name = f"transactional:{group_id}"
        self.settings = settings
        self.group_id = group_id
        self.inputs = {spec.topic: spec for spec in inputs}
        self.producer = producer
        self.state = state
        self.session_timeout_ms = session_timeout_ms
        self.punctuation_seconds = punctuation_seconds
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._lock = asyncio.Lock()
        self._held: frozenset[TopicPartition] = frozenset()
        # Assigned, not yet taken over (producer, offsets and state).
        self._pending: frozenset[TopicPartition] = frozenset()
        # Bumped by every rebalance: a batch fetched before one is not processed after it.
        self._generation = 0
        # After a failure the consumer's positions are past records not committed; a new
        # assignment starts from the committed offsets anyway (and rewinding costs 2.5 s
        # for 12 partitions on the local broker: one offset fetch each).
        self._rewind_needed = False
        self._fenced = False
        self._retry_delay = _FIRST_RETRY_SECONDS
        self._active = ACTIVE_OWNER.labels(group_id)
        self._lag = PartitionLag(group_id)
        self._committed = TRANSACTIONS.labels(group_id, "committed")
        self._aborted = TRANSACTIONS.labels(group_id, "aborted")

    @property
    def consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("consumer used before start()")
        return self._consumer

    @property
    def active(self) -> bool:
        """Whether this member holds partitions (else it is a standby)."""
        return bool(self._held)

    @property
    def alive(self) -> bool:
        """False once fenced: a zombie's process should be replaced."""
        if self._fenced:
            return False
        return self._task is not None and (not self._task.done() or self._stopping.is_set())

    async def start(self) -> None:
        self._consumer = group_consumer(
            self.settings,
            self.group_id,
            isolation_level="read_committed",
            partition_assignment_strategy=(SingleOwnerAssignor(),),
            session_timeout_ms=self.session_timeout_ms,
            # The broker wants heartbeats well within the session: a third of it.
            heartbeat_interval_ms=max(self.session_timeout_ms // 3, 100),
        )
        await self._consumer.start()
        self._consumer.subscribe(sorted(self.inputs), listener=_Listener(self))
        self._active.set(0)
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Finish the batch in hand, drop the state, leave the group."""
        self._stopping.set()
        if self._task is not None:
            await self._task
        async with self._lock:
            self._pending = frozenset()
            await self._release()
        if self._consumer is not None:
            await self._consumer.stop()

    async def check(self) -> None:
        if not self.alive:
            raise RuntimeError(f"{self.name} is not running")
        await asyncio.wait_for(self.consumer._client.fetch_all_metadata(), timeout=3)

    async def _run(self) -> None:
        last_transaction = time.monotonic()
        while not self._stopping.is_set():
            try:
                batches = await self.consumer.getmany(
                    timeout_ms=int(self.punctuation_seconds * 1000)
                )
                generation = self._generation
                async with self._lock:
                    if self._stopping.is_set():
                        break
                    if self._pending and await self._take_over():
                        continue  # rewound: the batch in hand is read again
                    if not self._held or generation != self._generation:
                        # A standby, or a batch fetched before a rebalance: the new
                        # assignment starts again from the committed offsets.
                        continue
                    due = time.monotonic() - last_transaction >= self.punctuation_seconds
                    if batches or due:
                        await self._transact(batches)
                        last_transaction = time.monotonic()
                        self._retry_delay = _FIRST_RETRY_SECONDS
            except _Fenced:
                await self._leave_fenced()
                return
            except Exception:
                log.exception(
                    "transaction failed; aborting and resuming from the committed offsets",
                    extra={"group": self.group_id},
                )
                async with self._lock:
                    await self._recover()
                await self._back_off()

    async def _take_over(self) -> bool:
        """Become the active member of the partitions assigned: a new producer (fencing any
        former owner), the committed offsets after a failure, the state restored from its
        changelog. Whether the consumer was rewound."""
        partitions, self._pending = self._pending, frozenset()
        started = time.monotonic()
        rewound = self._rewind_needed
        try:
            await self.producer.start()
            if rewound:
                await self._rewind(partitions)
                self._rewind_needed = False
            await self.state.assigned(_ids(partitions))
        except BaseException:
            self._pending = partitions  # tried again after a pause
            with contextlib.suppress(Exception):
                await self.producer.stop()
            raise
        self._held = partitions
        self._active.set(1)
        log.info(
            "active: partitions assigned and state restored",
            extra={
                "group": self.group_id,
                "partitions": len(partitions),
                "takeover_seconds": round(time.monotonic() - started, 3),
            },
        )
        return rewound

    async def _transact(
        self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        """Process ``batches`` and what time closed in one transaction."""
        started = time.perf_counter()
        try:
            await self.producer.begin()
            pending: list[asyncio.Future[object]] = []
            offsets: dict[TopicPartition, int] = {}
            for partition, records in batches.items():
                CONSUMED.labels(partition.topic).inc(len(records))
                for record in records:
                    pending.extend(await self._process(record))
                offsets[partition] = records[-1].offset + 1
            caught_up = await self._caught_up()
            for message in self.state.punctuate(time.time(), caught_up):
                pending.append(await self.producer.publish(message))
            await self.state.commit_state()
            await asyncio.gather(*pending)
            await self.producer.commit(offsets, self.group_id)
        except _FENCED as exc:
            raise _Fenced from exc
        self._committed.inc()
        if count := sum(len(batch) for batch in batches.values()):
            share = (time.perf_counter() - started) / count
            for partition, batch in batches.items():
                observe = PROCESSING_SECONDS.labels(partition.topic).observe
                for _ in batch:
                    observe(share)

    async def _process(self, record: ConsumerRecord[bytes, bytes]) -> list[asyncio.Future[object]]:
        spec = self.inputs[record.topic]
        with consumer_span(record.topic, record.partition, record.offset, record.headers):
            try:
                event = contract.decode(spec.input_type, record.value)
                messages = spec.handler(event, record)
            except contract.ContractError as error:
                return [await self.producer.dead_letter(record, error, self.group_id)]
            except Exception as exc:
                log.exception(
                    "handler failed", extra={"topic": record.topic, "offset": record.offset}
                )
                failure = contract.ContractError("handler_error", f"{type(exc).__name__}: {exc}")
                return [await self.producer.dead_letter(record, failure, self.group_id)]
            return [await self.producer.publish(message) for message in messages]

    async def _caught_up(self) -> frozenset[PartitionId]:
        """Held partitions whose position reached the last stable offset."""
        caught_up = await self._lag.measure(self.consumer)
        return frozenset((p.topic, p.partition) for p in caught_up & self._held)

    async def _recover(self) -> None:
        """After a failed transaction: abort it, drop the state (it holds the batch's
        changes) and the producer; the next loop takes over again from what was committed."""
        self._aborted.inc()
        with contextlib.suppress(Exception):
            await self.producer.abort()
        held, self._held = self._held, frozenset()
        self._active.set(0)
        if held:
            await self.state.lost(_ids(held))
        with contextlib.suppress(Exception):
            await self.producer.stop()
        self._pending = held | self._pending
        self._rewind_needed = True

    async def _rewind(self, partitions: Collection[TopicPartition]) -> None:
        for partition in partitions:
            committed = await self.consumer.committed(partition)
            if committed is None:
                await self.consumer.seek_to_beginning(partition)
            else:
                self.consumer.seek(partition, committed)

    async def _leave_fenced(self) -> None:
        self._fenced = True
        log.error(
            "fenced by a newer producer with the same transactional id: this member stops "
            "processing and leaves the group",
            extra={"group": self.group_id, "transactional_id": self.producer.transactional_id},
        )
        async with self._lock:
            await self._release()
        self.consumer.unsubscribe()

    async def _release(self) -> None:
        """Drop the state and the producer of the partitions held."""
        held, self._held = self._held, frozenset()
        self._active.set(0)
        self._lag.forget(held)
        if held:
            await self.state.revoked(_ids(held))
        with contextlib.suppress(Exception):
            await self.producer.stop()

    async def _back_off(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), self._retry_delay)
        self._retry_delay = min(self._retry_delay * 2, _LAST_RETRY_SECONDS)

    async def on_revoked(self, partitions: set[TopicPartition]) -> None:
        """Called by the consumer when a rebalance starts: after the batch in hand."""
        async with self._lock:
            self._generation += 1
            self._pending = frozenset()
            await self._release()

    async def on_assigned(self, partitions: set[TopicPartition]) -> None:
        """Called by the consumer when a rebalance ends (empty for a standby); the
        processor's task takes over before it processes anything."""
        async with self._lock:
            self._generation += 1
            self._pending = frozenset(partitions)
            self._rewind_needed = False
        if not partitions:
            log.info("standby: no partitions assigned", extra={"group": self.group_id})


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, processor: TransactionalProcessor) -> None:
        self.processor = processor

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.processor.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.processor.on_assigned(assigned)


def _ids(partitions: Collection[TopicPartition]) -> frozenset[PartitionId]:
    return frozenset((p.topic, p.partition) for p in partitions)
