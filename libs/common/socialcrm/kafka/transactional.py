"""The exactly-once stream processor: one Kafka transaction per fetched batch.

One consumer reads several topics in one group; per fetched batch, one transaction of
the transactional producer holds the handlers' outputs, the dead letters of the records
that could not be decoded or handled (with the reason), the state changes
(``TransactionalState.commit_state``, e.g. a ``PartitionedStore`` flush through the same
producer) and the batch's input offsets (``send_offsets_to_transaction``). Readers with
``isolation_level="read_committed"`` see all of it or none of it. On a failure the
transaction is aborted, the state is restored from its changelog and the consumer goes
back to the committed offsets: nothing is lost, nothing is repeated. The abort and the
drop of the state happen in the same step as the failure, under the processor's lock,
so a revocation waiting for it never keeps a copy holding the aborted batch.

The producer is created when partitions are assigned; its transactional id is fixed per
service, so its initialisation aborts the open transaction of a former owner and fences
it (a zombie that wakes up gets ``ProducerFenced``, stops processing and leaves the
group). With ``SingleOwnerAssignor`` one member holds every partition and the others
wait as hot standbys.

The partition lifecycle is Kafka Streams' (``socialcrm.kafka.tasks``, shared with the
at-least-once processor): the partitions assigned stay paused until the producer is
started and the state restored, a failed takeover is retried with backoff, and nothing
is processed meanwhile; a revocation waits for the transaction in hand at most half the
rebalance timeout, after which that transaction aborts instead of committing; a member
found expelled at its revocation drops its state without keeping a copy.
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
from aiokafka.errors import InvalidProducerEpoch, KafkaError, ProducerFenced, UnknownError
from google.protobuf.message import Message

from socialcrm import contract
from socialcrm.kafka.consumer import PartitionLag, group_consumer
from socialcrm.kafka.handling import Backoff, Rejected, handle_record
from socialcrm.kafka.single_owner import SingleOwnerAssignor
from socialcrm.kafka.tasks import TaskListener, Tasks
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
        """Restore the state of ``partitions`` (all the member holds now) from its changelog.
        What it raises is logged; it is called again after a backoff, the partitions paused."""

    async def revoked(self, partitions: frozenset[PartitionId]) -> None:
        """Drop the state of ``partitions``: all of it is committed, a rebalance moves them."""

    async def lost(self, partitions: frozenset[PartitionId]) -> None:
        """Drop the state of ``partitions`` and any copy of it: the transaction in hand was
        aborted (so it holds changes the changelog does not), or the member was expelled."""

    def punctuate(self, now: float, caught_up: Collection[PartitionId]) -> Sequence[Message]:
        """After each batch, and every punctuation interval: what time closed or fired.
        ``caught_up``: the partitions with nothing left to read."""

    async def commit_state(self) -> None:
        """Write the state changes of the transaction in hand (they commit with it)."""


class _Fenced(Exception):
    """A newer producer with the same transactional id took over: this member is a zombie."""


class _Superseded(Exception):
    """A rebalance or an expulsion came while the transaction was in hand: it must abort."""


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
        # One state for everything held: restored, reset and closed together.
        self.tasks = Tasks(name=self.name, state=_Takeover(self), scope="all")
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._fenced = False
        self._backoff = Backoff(self.tasks.interrupt)
        self._active = ACTIVE_OWNER.labels(group_id)
        self._lag = PartitionLag(group_id)
        self._committed = TRANSACTIONS.labels(group_id, "committed")
        self._aborted = TRANSACTIONS.labels(group_id, "aborted")
        # Label children per input topic, looked up once, not per batch.
        self._consumed = {topic: CONSUMED.labels(topic) for topic in self.inputs}
        self._processing_seconds = {
            topic: PROCESSING_SECONDS.labels(topic) for topic in self.inputs
        }

    @property
    def consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("consumer used before start()")
        return self._consumer

    @property
    def active(self) -> bool:
        """Whether this member holds partitions, state restored (else it is a standby)."""
        return bool(self.tasks.ready)

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
        self.tasks.bind(self._consumer)
        await self._consumer.start()
        self._consumer.subscribe(sorted(self.inputs), listener=TaskListener(self.tasks))
        self._active.set(0)
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Finish the batch in hand, drop the state, leave the group."""
        self._stopping.set()
        self.tasks.stop()
        if self._task is not None:
            await self._task
        async with self.tasks.lock:
            await self.tasks.close(clean=True)
        if self._consumer is not None:
            await self._consumer.stop()

    async def check(self) -> None:
        if not self.alive:
            raise RuntimeError(f"{self.name} is not running")
        await asyncio.wait_for(self.consumer._client.fetch_all_metadata(), timeout=3)

    async def _run(self) -> None:
        last_transaction = time.monotonic()
        while not self._stopping.is_set():
            failed = False
            try:
                async with self.tasks.lock:
                    await self.tasks.settle()
                epoch = self.tasks.epoch
                batches = await self.consumer.getmany(
                    timeout_ms=int(self.punctuation_seconds * 1000)
                )
                async with self.tasks.lock:
                    if self._stopping.is_set():
                        break
                    if not self.tasks.ready or self.tasks.interrupted(epoch):
                        # A standby, a takeover not done, or a batch fetched before a
                        # rebalance: the new assignment starts from the committed offsets.
                        continue
                    ready = {p: r for p, r in batches.items() if p in self.tasks.ready}
                    due = time.monotonic() - last_transaction >= self.punctuation_seconds
                    if ready or due:
                        try:
                            await self._transact(ready, epoch)
                        except _Fenced:
                            raise
                        except Exception:
                            log.exception(
                                "transaction failed; aborting and resuming from the "
                                "committed offsets",
                                extra={"group": self.group_id},
                            )
                            await self._recover()
                            failed = True
                        else:
                            last_transaction = time.monotonic()
                            self._backoff.reset()
            except _Fenced:
                await self._leave_fenced()
                return
            except Exception:
                log.exception("stream processor failed; retrying", extra={"group": self.group_id})
                failed = True
            if failed:
                await self._backoff.wait()

    async def _transact(
        self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]], epoch: int
    ) -> None:
        """Process ``batches`` and what time closed in one transaction."""
        started = time.perf_counter()
        try:
            await self.producer.begin()
            pending: list[asyncio.Future[object]] = []
            offsets: dict[TopicPartition, int] = {}
            for partition, records in batches.items():
                self._consumed[partition.topic].inc(len(records))
                for record in records:
                    pending.extend(await self._process(record))
                offsets[partition] = records[-1].offset + 1
            caught_up = await self._caught_up()
            for message in self.state.punctuate(time.time(), caught_up):
                pending.append(await self.producer.publish(message))
            self._check_current(epoch)
            await self.state.commit_state()
            await asyncio.gather(*pending)
            self._check_current(epoch)
            await self.producer.commit(offsets, self.group_id)
        except _FENCED as exc:
            raise _Fenced from exc
        except KafkaError as exc:
            if isinstance(exc, UnknownError) or isinstance(exc.__cause__, UnknownError):
                # The coordinator ended the commit with an error it does not name (seen when a
                # newer producer with the same id started while the commit was in flight): its
                # outcome is unknown and the client's sender is gone. Like Kafka Streams on a
                # fatal commit error, leave, rather than start a producer again, which would
                # fence whoever holds the newer one.
                raise _Fenced from exc
            raise
        self._committed.inc()
        if count := sum(len(batch) for batch in batches.values()):
            share = (time.perf_counter() - started) / count
            for partition, batch in batches.items():
                observe = self._processing_seconds[partition.topic].observe
                for _ in batch:
                    observe(share)

    def _check_current(self, epoch: int) -> None:
        if not self.tasks.current(epoch):
            raise _Superseded("a rebalance came while the transaction was in hand")

    async def _process(self, record: ConsumerRecord[bytes, bytes]) -> list[asyncio.Future[object]]:
        spec = self.inputs[record.topic]

        async def handle(event: Message) -> Sequence[Message]:
            return spec.handler(event, record)

        with consumer_span(record.topic, record.partition, record.offset, record.headers):
            outcome = await handle_record(spec.input_type, record, handle)
            if isinstance(outcome, Rejected):
                return [await self.producer.dead_letter(record, outcome.error, self.group_id)]
            return [await self.producer.publish(message) for message in outcome]

    async def _caught_up(self) -> frozenset[PartitionId]:
        """Held partitions whose position reached the last stable offset."""
        caught_up = await self._lag.measure(self.consumer)
        return frozenset((p.topic, p.partition) for p in caught_up & self.tasks.ready)

    async def _recover(self) -> None:
        """After a failed transaction: abort it; its state (it holds the batch's changes) and
        producer go, and the next settle takes over again from what was committed. All in
        the step that failed: a revocation waiting for it never sees that state."""
        self._aborted.inc()
        with contextlib.suppress(Exception):
            await self.producer.abort()
        await self.tasks.reset(self.tasks.held, "transaction aborted")

    async def _leave_fenced(self) -> None:
        self._fenced = True
        log.error(
            "fenced by a newer producer with the same transactional id: this member stops "
            "processing and leaves the group",
            extra={"group": self.group_id, "transactional_id": self.producer.transactional_id},
        )
        async with self.tasks.lock:
            with contextlib.suppress(Exception):
                await self.producer.abort()
            await self.tasks.close(clean=False)
        self.consumer.unsubscribe()


class _Takeover:
    """The processor's ``TaskState``: taking the partitions over is starting the producer
    (which fences a former owner) and restoring the state; giving them up stops it."""

    def __init__(self, processor: TransactionalProcessor) -> None:
        self.processor = processor

    async def restore(self, owned: frozenset[TopicPartition]) -> None:
        processor = self.processor
        started = time.monotonic()
        try:
            await processor.producer.start()
            await processor.state.assigned(_ids(owned))
        except BaseException:
            with contextlib.suppress(Exception):
                await processor.producer.stop()
            raise
        processor._active.set(1 if owned else 0)
        log.info(
            "active: partitions assigned and state restored",
            extra={
                "group": processor.group_id,
                "partitions": len(owned),
                "takeover_seconds": round(time.monotonic() - started, 3),
            },
        )

    async def close_clean(self, partitions: frozenset[TopicPartition]) -> None:
        await self._give_up(partitions, lost=False)

    async def close_dirty(self, partitions: frozenset[TopicPartition]) -> None:
        await self._give_up(partitions, lost=True)

    async def _give_up(self, partitions: frozenset[TopicPartition], *, lost: bool) -> None:
        processor = self.processor
        processor._active.set(0)
        processor._lag.forget(partitions)
        try:
            if lost:
                await processor.state.lost(_ids(partitions))
            else:
                await processor.state.revoked(_ids(partitions))
        finally:
            with contextlib.suppress(Exception):
                await processor.producer.stop()


def _ids(partitions: Collection[TopicPartition]) -> frozenset[PartitionId]:
    return frozenset((p.topic, p.partition) for p in partitions)
