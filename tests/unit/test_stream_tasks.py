"""Kafka Streams' task semantics of the at-least-once stream processor, offline: fake
consumer, producer and state, driven through the orderings that real clusters produce (failed
restores, refused commits, expelled members, revocations racing a batch)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from google.protobuf.message import Message

from socialcrm import contract
from socialcrm.kafka import processor as processor_module
from socialcrm.kafka.processor import StreamProcessor
from socialcrm.settings import ServiceSettings
from socialcrm.v1 import interaction_pb2, kpi_pb2
from tests.fixtures.fake_kafka import FakeConsumer, FakeProducer
from tests.fixtures.waiting import eventually_async

TOPIC = contract.topic_of(interaction_pb2.Interaction)
P0, P1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)


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
