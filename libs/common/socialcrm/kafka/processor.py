"""The at-least-once stream processor: consume, handle, produce, commit; dead letters.

Delivery guarantee: a consumed record's offset is committed only after everything
its handler produced has been acknowledged by the broker (``acks=all``, idempotent
producer). A crash therefore replays records, never loses them; consumers make
that harmless by deduplicating on ``event_id``. No record stops the stream: one that
cannot be decoded, handled or produced goes to ``<topic>.dlq`` with the reason.

Pipelined: the next fetch is handled while the last one's outputs are in flight (at most
``STREAM_MAX_IN_FLIGHT_RECORDS`` records); offsets are committed as acknowledgements
arrive, in order per partition, up to the first record not acknowledged (``commits``).

Stateful processors (a ``partition_listener`` owning partition-keyed state, a
``punctuator`` firing timers) follow Kafka Streams' task semantics (``tasks``): a
partition's records are handled, punctuated and committed only once its state is
restored (a failed restore pauses the partition and is retried with backoff); a refused
commit or a lost membership closes every task dirty (state dropped, no flush, no
timers until the next assignment); a revocation waits for the step in hand and the
outputs in flight (committing them) at most half the rebalance timeout. Steps never run
at the same time as each other or as a task's restore or close: they hold the tasks'
lock. A stateful partition number commits whole or not at all: when part of what it has
in flight fails, it goes back to its committed offsets and its state is restored again.

With a fenced store (``store.writer = processor.writer``), a former owner's late state
writes never win over its successor's (``socialcrm.state.fencing``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import IllegalStateError
from aiokafka.structs import OffsetAndMetadata

from socialcrm.kafka.commits import REFUSED, CommitsInOrder
from socialcrm.kafka.consumer import PartitionLag, group_consumer
from socialcrm.kafka.handling import Backoff
from socialcrm.kafka.in_flight import Batch, InFlight
from socialcrm.kafka.listener import ListenerState, PartitionListener, Punctuator
from socialcrm.kafka.outputs import RetryLater
from socialcrm.kafka.producer import EventProducer
from socialcrm.kafka.tasks import TaskListener, Tasks, writer_of
from socialcrm.kafka.time_order import by_partition_number, first_offsets, runs_in_time_order
from socialcrm.kafka.topic_route import (
    BatchHandler,
    Handler,
    In,
    StreamInput,
    TopicRoute,
)
from socialcrm.settings import ServiceSettings
from socialcrm.state.fencing import Writer

log = logging.getLogger(__name__)

# How long a fetch waits for new records while outputs are in flight, so that their offsets
# are committed soon after their acknowledgements (a few ms on a local broker).
IN_FLIGHT_POLL_MS = 20


class StreamProcessor(CommitsInOrder, Generic[In]):
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
        self.tasks = Tasks(
            name=f"consumer:{group_id}",
            state=None if partition_listener is None else ListenerState(partition_listener),
        )
        inputs: list[StreamInput[Any]] = [StreamInput(input_type, handler, batch_handler)]
        self.routes = {
            route.topic: route
            for route in (
                TopicRoute(
                    stream_input,
                    producer=producer,
                    group_id=group_id,
                    transient_errors=transient_errors,
                    # Transient retries end on shutdown and on a revocation.
                    stopping=self.tasks.interrupt,
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
        self.stateful = partition_listener is not None
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._lag = PartitionLag(group_id)
        self._backoff = Backoff(self.tasks.interrupt)
        self._caught_up: set[int] = set()
        # The tasks' epoch and next offset of this member's last commit per partition.
        self._committed: dict[TopicPartition, tuple[int, int]] = {}
        self._in_flight = InFlight(settings.stream_max_in_flight_records)
        # Partitions sought back since the last fetch: what it returned for them is stale.
        self._sought: set[TopicPartition] = set()
        self.tasks.before_close = self._close_in_flight

    @property
    def consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("consumer used before start()")
        return self._consumer

    async def start(self) -> None:
        self._consumer = group_consumer(self.settings, self.group_id)
        self.tasks.bind(self._consumer)
        self._consumer.subscribe(list(self.routes), listener=TaskListener(self.tasks))
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Finish the batch in hand, commit what was processed, leave the group."""
        self._stopping.set()
        self.tasks.stop()
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

    def writer(self) -> Writer:
        """The group generation and member id this processor writes state as (for a fenced
        ``PartitionedStore``: ``store.writer = processor.writer``)."""
        return writer_of(self.consumer) if self._consumer is not None else Writer(-1, "")

    async def _run(self) -> None:
        punctuated_at = 0.0
        while not self._stopping.is_set():
            try:
                async with self.tasks.lock:
                    await self.tasks.settle()
                epoch = self.tasks.epoch
                # With outputs in flight, come back soon to commit them even when nothing new
                # arrives (500 ms would hold a quiet stream's commits and state flush that long).
                batches = await self.consumer.getmany(
                    timeout_ms=IN_FLIGHT_POLL_MS if self._in_flight else 500
                )
                self._sought.clear()  # records fetched before a seek are stale from now on
                async with self.tasks.lock:
                    if self.tasks.interrupted(epoch):
                        if epoch != self.tasks.epoch:
                            await self._unread(batches)
                        continue  # what is not committed is read again where it goes
                    await self._harvest(epoch, wait=False)
                    while self._in_flight.full() and not self.tasks.interrupted(epoch):
                        await self._harvest(epoch, wait=True)
                    await self._process_fetched(batches, epoch)
                    if self.tasks.interrupted(epoch):
                        continue
                    punctuator = self._due_punctuator(punctuated_at)
                    if punctuator is not None or self._lag.due():
                        await self._note_caught_up()
                    if punctuator is not None and self.tasks.ready:
                        punctuated_at = time.monotonic()
                        # Timers flush the state: only once every handled record's outputs
                        # are acknowledged (and committed).
                        await self._drain(epoch)
                        if self.tasks.ready and not self.tasks.interrupted(epoch):
                            await self._punctuate(punctuator, epoch)
            except Exception:
                # Like Kafka Streams' "continue" handlers: whatever escapes, the stream goes
                # on from what was committed, rather than leaving the service dead.
                log.exception(
                    "stream processor failed unexpectedly; resuming from the committed offsets",
                    extra={"topic": self.topic},
                )
                async with self.tasks.lock:
                    self._in_flight.take_all()
                    await self.tasks.reset(
                        self.tasks.assigned | self.tasks.held, "unexpected failure"
                    )
                await self._backoff.wait()
        async with self.tasks.lock:  # stopping: commit what was acknowledged
            if self.tasks.current(self.tasks.epoch):
                await self._drain_at_stop(self.tasks.epoch, self.tasks.rebalance_seconds)

    async def _unread(
        self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        """Read again what a fetch across a rebalance held: aiokafka can return records of
        the new assignment with the position past them (a partition that no restore
        pauses lost them so), back to the first of them or the assignment's start."""
        for partition, records in batches.items():
            with contextlib.suppress(IllegalStateError):  # not assigned any more
                position = await self.consumer.position(partition)
                self.consumer.seek(partition, min(records[0].offset, position))

    def _due_punctuator(self, punctuated_at: float) -> Punctuator | None:
        """The punctuator, when its timers are due."""
        punctuator = self.punctuator
        if (
            punctuator is None
            or not self.tasks.ready  # no timers of tasks not restored, or closed
            or time.monotonic() - punctuated_at < punctuator.interval_seconds
        ):
            return None
        return punctuator

    async def _note_caught_up(self) -> None:
        """Report the lag; note the partition numbers ready whose every topic was consumed
        to its end (as of the last fetch), for the timers: measured when they are due, else
        at most every ``LAG_REPORT_SECONDS`` for the gauges alone."""
        caught_up = await self._lag.measure(self.consumer)
        ready = self.tasks.ready
        behind = {p.partition for p in ready - caught_up}
        self._caught_up = {p.partition for p in ready} - behind

    async def _punctuate(self, punctuator: Punctuator, epoch: int) -> None:
        outputs = await punctuator.punctuate(set(self._caught_up))
        if outputs and not await self._membership_confirmed():
            return  # expelled: every task closed dirty, the timers fire at their new owner
        try:
            pending = [await self.producer.publish(message) for message in outputs]
            await asyncio.gather(*pending)
            if self.before_commit is not None and await self._still_owner(epoch):
                await self.before_commit()
        except Exception:
            # The state already holds what the lost outputs did: drop it and restore it
            # from the changelog, so that the next punctuation fires them again.
            log.exception("punctuation failed", extra={"topic": self.topic})
            await self.tasks.reset(self.tasks.assigned | self.tasks.held, "punctuation failed")

    async def _membership_confirmed(self) -> bool:
        """Whether the group coordinator still counts this member, asked before timers'
        outputs go out: a process paused past its session timeout wakes up believing it
        owns its partitions, and its timers would fire for interactions their new owner saw
        answered meanwhile (found by the chaos run). Committing again the offsets already
        committed (or the positions: nothing is in flight when timers fire, so all records
        before them were handled and acknowledged) is refused unless this member's
        generation is current, and changes nothing otherwise."""
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for tp in self.tasks.ready:
            epoch, offset = self._committed.get(tp, (-1, 0))
            if epoch != self.tasks.epoch:  # none since this assignment: where it resumed
                offset = await self.consumer.position(tp)
            offsets[tp] = OffsetAndMetadata(offset, "")
        try:
            await self.consumer.commit(offsets)
        except REFUSED as error:
            await self.tasks.lose_membership(f"membership check refused: {type(error).__name__}")
            return False
        return True

    async def _process_fetched(
        self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]], epoch: int
    ) -> None:
        """Handle the records fetched, their outputs going out without waiting for them.
        Paused partitions (state not restored) have nothing fetched; records of a partition
        reset or sought back since they were fetched are read again."""
        fetched = {p: r for p, r in batches.items() if self._current(p)}
        if not self.stateful or len(self.routes) == 1:
            for partition, records in fetched.items():
                if self.tasks.interrupted(epoch):
                    return  # a rebalance: what is left is read again by the new assignment
                if self._current(partition):
                    await self._process_batch(partition, records, epoch)
            return
        # State fed by several topics: each partition number's records oldest first.
        for same_number in by_partition_number(fetched).values():
            runs = runs_in_time_order(same_number)
            for index, (partition, records) in enumerate(runs):
                if self.tasks.interrupted(epoch):
                    return
                if not self._current(partition) or not await self._process_batch(
                    partition, records, epoch
                ):
                    # The rest waits for the next fetch, still in order behind this run.
                    for later, offset in first_offsets(runs[index + 1 :]).items():
                        if later != partition:
                            with contextlib.suppress(IllegalStateError):
                                self.consumer.seek(later, offset)
                            self._sought.add(later)
                    break

    def _current(self, partition: TopicPartition) -> bool:
        """Whether records fetched for ``partition`` may still be handled."""
        return partition in self.tasks.ready and partition not in self._sought

    async def _process_batch(
        self, partition: TopicPartition, records: list[ConsumerRecord[bytes, bytes]], epoch: int
    ) -> bool:
        """Handle a batch of one topic partition; False when some records must be handled
        again (the partition goes back to them)."""
        route = self.routes[partition.topic]
        until = route.outputs.one_at_a_time_until(partition, records[0].offset)
        if until is None:
            return await self._send(route, partition, records, epoch, one_at_a_time=False)
        # After a refusal: each record acknowledged before the next, so that it is named.
        for index, record in enumerate(records):
            if not await self._send(route, partition, [record], epoch, one_at_a_time=True):
                return False
            while self._in_flight.holds(partition) and not self.tasks.interrupted(epoch):
                await self._harvest(epoch, wait=True)
            if self.tasks.interrupted(epoch) or not self._current(partition):
                return False
            if record.offset >= until:
                if rest := records[index + 1 :]:
                    return await self._send(route, partition, rest, epoch, one_at_a_time=False)
                return True
        return True

    async def _send(
        self,
        route: TopicRoute[Any],
        partition: TopicPartition,
        records: list[ConsumerRecord[bytes, bytes]],
        epoch: int,
        *,
        one_at_a_time: bool,
    ) -> bool:
        """Handle ``records``, their outputs going out; False when it stopped short."""
        batch = Batch(route, partition, records, epoch, one_at_a_time)
        try:
            await route.handle(records, batch.sent)
        except RetryLater as exc:
            log.warning(
                "the broker cannot take outputs now; retrying",
                extra={"topic": route.topic, "partition": partition.partition, "error": str(exc)},
            )
            batch.retry = True
        self._in_flight.add(batch)
        return not batch.retry and len(batch.sent) == len(records)
