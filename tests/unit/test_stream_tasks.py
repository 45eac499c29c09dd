"""Kafka Streams' task semantics of both stream processors, offline: fake consumer,
producers and state, driven through the orderings that real clusters produce (failed
restores, refused commits, expelled members, revocations racing a batch)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaConnectionError
from google.protobuf.message import Message

from socialcrm import contract
from socialcrm.kafka import processor as processor_module
from socialcrm.kafka import transactional as transactional_module
from socialcrm.kafka.processor import StreamProcessor
from socialcrm.kafka.transactional import PartitionId, TransactionalInput, TransactionalProcessor
from socialcrm.settings import ServiceSettings
from socialcrm.v1 import interaction_pb2, kpi_pb2
from tests.fixtures.events import interaction
from tests.fixtures.waiting import eventually_async

TOPIC = contract.topic_of(interaction_pb2.Interaction)
P0, P1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
log = logging.getLogger(__name__)


def record(partition: TopicPartition, offset: int) -> ConsumerRecord[bytes, bytes]:
    value = contract.encode(interaction(text=f"{partition.partition}:{offset}"))
    return ConsumerRecord(
        topic=partition.topic,
        partition=partition.partition,
        offset=offset,
        timestamp=offset,
        timestamp_type=0,
        key=b"k",
        value=value,
        checksum=None,
        serialized_key_size=1,
        serialized_value_size=len(value),
        headers=[],
    )


class FakeConsumer:
    """The parts of AIOKafkaConsumer the processors use. ``rebalance`` calls the listener
    like aiokafka: what a callback raises is logged and ignored."""

    def __init__(self, rebalance_timeout_ms: int = 1000) -> None:
        self._rebalance_timeout_ms = rebalance_timeout_ms
        self._coordinator = SimpleNamespace(generation=0, member_id="member-1")
        self.records: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = {}
        self.positions: dict[TopicPartition, int] = {}
        self.commits: dict[TopicPartition, int] = {}
        self.refuse_commits = 0
        self.listener: Any = None
        self._assigned: set[TopicPartition] = set()
        self._paused: set[TopicPartition] = set()

    def add(self, partition: TopicPartition, count: int) -> None:
        held = self.records.setdefault(partition, [])
        held += [record(partition, len(held) + i) for i in range(count)]

    def subscribe(self, topics: Sequence[str], listener: Any) -> None:
        self.listener = listener

    def unsubscribe(self) -> None:
        self._assigned = set()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def assignment(self) -> set[TopicPartition]:
        return set(self._assigned)

    def _check(self, partition: TopicPartition) -> None:
        if partition not in self._assigned:
            raise IllegalStateError(f"{partition} is not assigned")

    def pause(self, *partitions: TopicPartition) -> None:
        for partition in partitions:
            self._check(partition)
            self._paused.add(partition)

    def resume(self, *partitions: TopicPartition) -> None:
        self._paused -= set(partitions)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self._check(partition)
        self.positions[partition] = offset

    async def seek_to_beginning(self, partition: TopicPartition) -> None:
        self.seek(partition, 0)

    async def committed(self, partition: TopicPartition) -> int | None:
        return self.commits.get(partition)

    async def commit(self, offsets: dict[TopicPartition, Any]) -> None:
        if self.refuse_commits:
            self.refuse_commits -= 1
            self._coordinator.generation = -1
            raise CommitFailedError("the group rebalanced")
        for partition, offset in offsets.items():
            self.commits[partition] = offset.offset

    async def position(self, partition: TopicPartition) -> int:
        return self.positions.get(partition, 0)

    def highwater(self, partition: TopicPartition) -> int:
        return len(self.records.get(partition, []))

    last_stable_offset = highwater

    async def getmany(
        self, timeout_ms: int = 0
    ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        await asyncio.sleep(0.01)
        fetched = {}
        for partition in sorted(self._assigned - self._paused):
            position = self.positions.get(partition, 0)
            if batch := self.records.get(partition, [])[position:]:
                fetched[partition] = batch
                self.positions[partition] = position + len(batch)
        return fetched

    async def rebalance(self, assigned: Collection[TopicPartition], *, lost: bool = False) -> None:
        if lost:
            self._coordinator.generation = -1
        await self._call("on_partitions_revoked", set(self._assigned))
        self._assigned, self._paused = set(assigned), set()
        self.positions = {p: self.commits.get(p, 0) for p in assigned}
        self._coordinator.generation = max(self._coordinator.generation, 0) + 1
        await self._call("on_partitions_assigned", set(assigned))

    async def _call(self, name: str, partitions: set[TopicPartition]) -> None:
        try:
            await getattr(self.listener, name)(partitions)
        except Exception:
            log.exception("listener failed, ignored as aiokafka does")


class FakeProducer:
    """An EventProducer whose sends are acknowledged at once, unless told to fail."""

    def __init__(self) -> None:
        self.settings = ServiceSettings()
        self.published: list[Message] = []
        self.dead_letters: list[tuple[int, int, str]] = []
        self.fail_sends = 0

    async def publish(self, message: Message) -> asyncio.Future[object]:
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        if self.fail_sends:
            self.fail_sends -= 1
            future.set_exception(KafkaConnectionError("broker unavailable"))
        else:
            self.published.append(message)
            future.set_result(None)
        return future

    async def dead_letter(
        self, record: ConsumerRecord[bytes, bytes], error: contract.ContractError, consumer: str
    ) -> asyncio.Future[object]:
        self.dead_letters.append((record.partition, record.offset, error.error_type))
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    async def restart(self) -> None:
        return None


class FakeState:
    """A partition listener (and punctuator) whose state is the set of partitions it owns;
    it records every call, and its restores fail ``fail_restores`` times."""

    def __init__(self, timeline: list[tuple[Any, ...]], fail_restores: int = 0) -> None:
        self.timeline = timeline
        self.fail_restores = fail_restores
        self.owned: set[int] = set()
        self.interval_seconds = 0.0
        # What the timers fire at the next punctuation.
        self.due: list[Message] = []

    async def on_assigned(self, partitions: set[int]) -> None:
        self.timeline.append(("assigned", frozenset(partitions)))
        if self.fail_restores:
            self.fail_restores -= 1
            raise RuntimeError("changelog unavailable")
        self.owned = set(partitions)

    async def on_revoked(self, partitions: set[int]) -> None:
        self.timeline.append(("revoked", frozenset(partitions)))
        self.owned -= partitions

    async def on_lost(self, partitions: set[int]) -> None:
        self.timeline.append(("lost", frozenset(partitions)))
        self.owned -= partitions

    async def punctuate(self, caught_up: set[int]) -> Sequence[Message]:
        self.timeline.append(("punctuate", frozenset(self.owned)))
        return list(self.due)


def at_least_once(
    monkeypatch: pytest.MonkeyPatch,
    consumer: FakeConsumer,
    state: FakeState,
    *,
    handle: Callable[[ConsumerRecord[bytes, bytes]], Awaitable[None]] | None = None,
    transient_errors: tuple[type[BaseException], ...] = (),
    before_commit: Callable[[], Awaitable[None]] | None = None,
    punctuate: bool = False,
) -> tuple[StreamProcessor[interaction_pb2.Interaction], FakeProducer]:
    monkeypatch.setattr(processor_module, "group_consumer", lambda *_, **__: consumer)
    producer = FakeProducer()

    async def handler(
        event: interaction_pb2.Interaction, record: ConsumerRecord[bytes, bytes]
    ) -> Sequence[Message]:
        if record.partition not in state.owned:
            raise KeyError(record.partition)  # as a store read of a partition not restored
        if handle is not None:
            await handle(record)
        state.timeline.append(("handled", record.partition, record.offset))
        return [kpi_pb2.Alert(header=event.header, alert_key="k", summary=event.text)]

    processor = StreamProcessor(
        settings=ServiceSettings(),
        group_id="tasks-test",
        input_type=interaction_pb2.Interaction,
        handler=handler,
        producer=producer,  # type: ignore[arg-type]
        transient_errors=transient_errors,
        before_commit=before_commit,
        partition_listener=state,
        punctuator=state if punctuate else None,
    )
    return processor, producer


async def committed(consumer: FakeConsumer, offsets: dict[TopicPartition, int]) -> None:
    async def reached() -> bool | None:
        return True if all(consumer.commits.get(p) == o for p, o in offsets.items()) else None

    await eventually_async(reached, 10)


def handled(timeline: list[tuple[Any, ...]]) -> list[tuple[int, int]]:
    return [(e[1], e[2]) for e in timeline if e[0] == "handled"]


async def test_a_failed_restore_pauses_the_partition_until_a_retry_restores_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    timeline: list[tuple[Any, ...]] = []
    consumer = FakeConsumer()
    consumer.add(P0, 3)
    state = FakeState(timeline, fail_restores=2)
    processor, producer = at_least_once(monkeypatch, consumer, state)
    await processor.start()
    try:
        await consumer.rebalance({P0})
        await committed(consumer, {P0: 3})
    finally:
        await processor.stop()
    assert producer.dead_letters == []  # never handled without state
    assert handled(timeline) == [(0, 0), (0, 1), (0, 2)]
    assert [e for e in timeline if e[0] == "assigned"] == [("assigned", frozenset({0}))] * 3


async def test_a_batch_whose_outputs_failed_waits_for_its_state_and_is_never_passed_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    timeline: list[tuple[Any, ...]] = []
    consumer = FakeConsumer()
    consumer.add(P0, 3)
    state = FakeState(timeline)
    processor, producer = at_least_once(monkeypatch, consumer, state)
    await processor.start()
    try:
        await consumer.rebalance({P0})
        await committed(consumer, {P0: 3})
        consumer.add(P0, 3)
        producer.fail_sends = 1  # the batch 3..5 is not acknowledged...
        state.fail_restores = 2  # ...and its state cannot be restored at first
        await asyncio.sleep(0.05)
        consumer.add(P0, 2)  # more records after the lost batch
        await committed(consumer, {P0: 8})
    finally:
        await processor.stop()
    assert producer.dead_letters == []
    assert sorted(set(handled(timeline))) == [(0, offset) for offset in range(8)]


async def test_a_refused_commit_closes_every_task_dirty_until_the_next_assignment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    timeline: list[tuple[Any, ...]] = []
    consumer = FakeConsumer()
    consumer.add(P0, 2)
    consumer.add(P1, 2)
    state = FakeState(timeline)
    processor, _ = at_least_once(monkeypatch, consumer, state, punctuate=True)
    consumer.refuse_commits = 1
    await processor.start()
    try:
        await consumer.rebalance({P0, P1})

        async def refused() -> bool | None:
            return True if ("lost", frozenset({0, 1})) in timeline else None

        await eventually_async(refused, 10)
        await asyncio.sleep(0.3)  # a zombie would go on: handle P1, punctuate
        zombie = timeline[timeline.index(("lost", frozenset({0, 1}))) + 1 :]
        await consumer.rebalance({P0, P1})
        await committed(consumer, {P0: 2, P1: 2})
    finally:
        await processor.stop()
    assert zombie == []
    assert ("revoked", frozenset({0, 1})) not in timeline  # never closed clean


async def test_a_member_woken_after_its_expulsion_fires_no_timer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A process paused past its session timeout wakes up still holding its partitions, with
    timers due; the group gave them to another member meanwhile, which saw the answers.
    The coordinator refuses this member: nothing fires, every task closes dirty."""
    timeline: list[tuple[Any, ...]] = []
    consumer = FakeConsumer()
    consumer.add(P0, 2)
    state = FakeState(timeline)
    processor, producer = at_least_once(monkeypatch, consumer, state, punctuate=True)
    await processor.start()
    try:
        await consumer.rebalance({P0})
        await committed(consumer, {P0: 2})
        alerts_before = len(producer.published)
        consumer.refuse_commits = 1  # expelled while paused: its generation is gone
        state.due = [kpi_pb2.Alert(alert_key="escalation", summary="level 1 due")]

        async def closed() -> bool | None:
            return True if ("lost", frozenset({0})) in timeline else None

        await eventually_async(closed, 10)
        state.due = []
    finally:
        await processor.stop()
    assert producer.published[alerts_before:] == []


async def test_a_member_expelled_before_its_revocation_drops_its_state(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    timeline: list[tuple[Any, ...]] = []
    consumer = FakeConsumer()
    consumer.add(P0, 2)
    state = FakeState(timeline)
    processor, _ = at_least_once(monkeypatch, consumer, state)
    await processor.start()
    try:
        await consumer.rebalance({P0})
        await committed(consumer, {P0: 2})
        await consumer.rebalance({P0}, lost=True)
    finally:
        await processor.stop()
    assert ("lost", frozenset({0})) in timeline
    assert ("revoked", frozenset({0})) not in timeline


async def test_a_revocation_does_not_wait_for_a_record_retrying_a_transient_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    timeline: list[tuple[Any, ...]] = []
    consumer = FakeConsumer()
    consumer.add(P0, 1)
    state = FakeState(timeline)

    async def database_down(record: ConsumerRecord[bytes, bytes]) -> None:
        raise ConnectionError("database unavailable")

    processor, _ = at_least_once(
        monkeypatch, consumer, state, handle=database_down, transient_errors=(ConnectionError,)
    )
    await processor.start()
    try:
        await consumer.rebalance({P0})
        await asyncio.sleep(0.3)  # the record is retrying, the batch in hand
        await asyncio.wait_for(consumer.rebalance(set()), 2)
    finally:
        await processor.stop()
    assert P0 not in consumer.commits
    assert state.owned == set()


async def test_a_revocation_that_cannot_wait_leaves_the_batch_uncommitted_and_dirty(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    timeline: list[tuple[Any, ...]] = []
    consumer = FakeConsumer(rebalance_timeout_ms=400)
    consumer.add(P0, 1)
    state = FakeState(timeline)
    flushing = asyncio.Event()
    flushed = asyncio.Event()

    async def slow_flush() -> None:
        flushing.set()
        await flushed.wait()

    processor, _ = at_least_once(monkeypatch, consumer, state, before_commit=slow_flush)
    await processor.start()
    try:
        await consumer.rebalance({P0})
        await asyncio.wait_for(flushing.wait(), 5)
        await asyncio.wait_for(consumer.rebalance(set()), 2)  # gave up after 0.2 s
        flushed.set()

        async def dropped() -> bool | None:
            return True if ("lost", frozenset({0})) in timeline else None

        await eventually_async(dropped, 5)
    finally:
        flushed.set()
        await processor.stop()
    assert P0 not in consumer.commits
    assert ("revoked", frozenset({0})) not in timeline


async def test_a_failure_racing_a_revocation_never_restores_the_revoked_partitions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    timeline: list[tuple[Any, ...]] = []
    consumer = FakeConsumer()
    consumer.add(P0, 1)
    consumer.add(P1, 1)
    state = FakeState(timeline)
    processor, _ = at_least_once(monkeypatch, consumer, state, punctuate=True)
    rebalanced: list[asyncio.Task[None]] = []

    async def punctuate_failing(caught_up: set[int]) -> Sequence[Message]:
        if not rebalanced and caught_up == {0, 1}:
            rebalanced.append(asyncio.create_task(consumer.rebalance({P1})))
            await asyncio.sleep(0.01)  # the revocation now waits for the step in hand
            raise RuntimeError("punctuation failed")
        return []

    monkeypatch.setattr(state, "punctuate", punctuate_failing)
    await processor.start()
    try:
        await consumer.rebalance({P0, P1})
        await committed(consumer, {P0: 1, P1: 1})

        async def settled() -> bool | None:
            return True if rebalanced and rebalanced[0].done() and state.owned == {1} else None

        await eventually_async(settled, 10)
    finally:
        await processor.stop()
    revoked_at = timeline.index(("revoked", frozenset({0, 1})))
    assert all(0 not in e[1] for e in timeline[revoked_at:] if e[0] == "assigned")


class FakeTransactionalProducer(FakeProducer):
    transactional_id = "tasks-test"

    def __init__(self) -> None:
        super().__init__()
        self.started = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.started = False

    async def begin(self) -> None:
        return None

    async def commit(self, offsets: dict[TopicPartition, int], group_id: str) -> None:
        return None

    async def abort(self) -> None:
        return None


class FailingTransactionState:
    """A kpi-like state whose first write fails while a revocation waits for the batch."""

    def __init__(self, consumer: FakeConsumer) -> None:
        self.consumer = consumer
        self.calls: list[str] = []
        self.revocation: asyncio.Task[None] | None = None

    async def assigned(self, partitions: frozenset[PartitionId]) -> None:
        self.calls.append("assigned")

    async def revoked(self, partitions: frozenset[PartitionId]) -> None:
        self.calls.append("revoked")

    async def lost(self, partitions: frozenset[PartitionId]) -> None:
        self.calls.append("lost")

    def punctuate(self, now: float, caught_up: Collection[PartitionId]) -> Sequence[Message]:
        return []

    async def commit_state(self) -> None:
        if self.revocation is None:
            self.revocation = asyncio.create_task(self.consumer.rebalance(set()))
            await asyncio.sleep(0.01)  # the revocation now waits for the transaction
            raise RuntimeError("state write failed")


async def test_a_transaction_failing_while_a_revocation_waits_keeps_no_copy_of_its_state(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer = FakeConsumer()
    consumer.add(P0, 1)
    monkeypatch.setattr(transactional_module, "group_consumer", lambda *_, **__: consumer)
    state = FailingTransactionState(consumer)

    def handler(
        event: interaction_pb2.Interaction, record: ConsumerRecord[bytes, bytes]
    ) -> Sequence[Message]:
        return []

    processor = TransactionalProcessor(
        settings=ServiceSettings(),
        group_id="tasks-test",
        inputs=[TransactionalInput(interaction_pb2.Interaction, handler)],
        producer=FakeTransactionalProducer(),  # type: ignore[arg-type]
        state=state,
        session_timeout_ms=6000,
        punctuation_seconds=0.05,
    )
    await processor.start()
    try:
        await consumer.rebalance({P0})

        async def revoked() -> bool | None:
            task = state.revocation
            return True if task is not None and task.done() else None

        await eventually_async(revoked, 10)
    finally:
        await processor.stop()
    # The aborted batch's state is dropped before the revocation could keep a copy of it.
    assert state.calls[:2] == ["assigned", "lost"]
    assert "revoked" not in state.calls
