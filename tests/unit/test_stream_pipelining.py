"""The at-least-once processor works ahead of its acknowledgements, offline: it handles the
next fetch while the last one's outputs are in flight, and commits as acknowledgements
arrive, in order per partition, never past the first record not acknowledged; a failure
in a batch while a later one is in flight loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaConnectionError
from google.protobuf.message import Message

from socialcrm import contract
from socialcrm.kafka import processor as processor_module
from socialcrm.kafka.processor import StreamProcessor
from socialcrm.settings import ServiceSettings
from socialcrm.v1 import interaction_pb2, kpi_pb2
from tests.fixtures.fake_kafka import FakeConsumer, FakeProducer
from tests.fixtures.waiting import eventually_async

TOPIC = contract.topic_of(interaction_pb2.Interaction)
P0 = TopicPartition(TOPIC, 0)


class RecordingConsumer(FakeConsumer):
    """Also keeps every commit in order and counts the fetches."""

    def __init__(self, rebalance_timeout_ms: int = 1000) -> None:
        super().__init__(rebalance_timeout_ms)
        self.history: list[int] = []
        self.fetches = 0

    async def commit(self, offsets: dict[TopicPartition, Any]) -> None:
        await super().commit(offsets)
        self.history += [offset.offset for p, offset in offsets.items() if p == P0]

    async def getmany(
        self, timeout_ms: int = 0
    ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        self.fetches += 1
        return await super().getmany(timeout_ms)


class HeldProducer(FakeProducer):
    """Acknowledges nothing until told: ``futures[i]`` is the i-th output's (its text
    names the record); with ``at_once`` set, new outputs are acknowledged when sent."""

    def __init__(self) -> None:
        super().__init__()
        self.futures: list[asyncio.Future[object]] = []
        self.texts: list[str] = []
        self.at_once = False

    async def publish(self, message: Message) -> asyncio.Future[object]:
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        self.texts.append(getattr(message, "summary", ""))
        if self.at_once:
            future.set_result(None)
        return future

    def ack(self, *indexes: int) -> None:
        for index in indexes:
            self.futures[index].set_result(None)

    def ack_sent_after(self, index: int) -> bool:
        """Acknowledge every output sent after the ``index``-th; always True (a probe)."""
        self.at_once = True
        for future in self.futures[index + 1 :]:
            if not future.done():
                future.set_result(None)
        return True

    def fail(self, index: int) -> None:
        self.futures[index].set_exception(KafkaConnectionError("broker unavailable"))


class Listener:
    """Partition state as the set of partitions held; records each call and flush."""

    def __init__(self, producer: HeldProducer) -> None:
        self.producer = producer
        self.timeline: list[tuple[Any, ...]] = []

    async def on_assigned(self, partitions: set[int]) -> None:
        self.timeline.append(("assigned", frozenset(partitions)))

    async def on_revoked(self, partitions: set[int]) -> None:
        self.timeline.append(("revoked", frozenset(partitions)))

    async def on_lost(self, partitions: set[int]) -> None:
        self.timeline.append(("lost", frozenset(partitions)))

    async def flush(self) -> None:
        """A flush writes the state of every record handled: all must be acknowledged."""
        pending = sum(not f.done() or f.exception() is not None for f in self.producer.futures)
        self.timeline.append(("flush", pending))


def pipelined(
    monkeypatch: pytest.MonkeyPatch,
    consumer: RecordingConsumer,
    *,
    listener: Listener | None = None,
    limit: int = 1000,
) -> tuple[StreamProcessor[interaction_pb2.Interaction], HeldProducer, list[int]]:
    monkeypatch.setattr(processor_module, "group_consumer", lambda *_, **__: consumer)
    producer = listener.producer if listener is not None else HeldProducer()
    handled: list[int] = []

    async def handler(
        event: interaction_pb2.Interaction, record: ConsumerRecord[bytes, bytes]
    ) -> Sequence[Message]:
        handled.append(record.offset)
        return [kpi_pb2.Alert(header=event.header, alert_key="k", summary=str(record.offset))]

    processor = StreamProcessor(
        settings=ServiceSettings(stream_max_in_flight_records=limit),
        group_id="pipelining-test",
        input_type=interaction_pb2.Interaction,
        handler=handler,
        producer=producer,  # type: ignore[arg-type]
        before_commit=None if listener is None else listener.flush,
        partition_listener=listener,
    )
    return processor, producer, handled


async def until(probe: Any, seconds: float = 10) -> None:
    async def check() -> bool | None:
        return True if probe() else None

    await eventually_async(check, seconds)


async def fetched_twice_more(consumer: RecordingConsumer) -> None:
    """Until the loop went round twice more: what it could commit, it did."""
    seen = consumer.fetches
    await until(lambda: consumer.fetches >= seen + 2)


@contextlib.asynccontextmanager
async def two_batches_in_flight(
    processor: StreamProcessor[interaction_pb2.Interaction],
    consumer: RecordingConsumer,
    producer: HeldProducer,
) -> AsyncIterator[None]:
    """``processor`` running with P0 assigned and two batches of three records handled,
    their six outputs in flight (none acknowledged); stopped on leaving."""
    consumer.add(P0, 3)
    await processor.start()
    try:
        await consumer.rebalance({P0})
        await until(lambda: len(producer.futures) == 3)
        consumer.add(P0, 3)
        await until(lambda: len(producer.futures) == 6)
        yield
    finally:
        await processor.stop()


async def test_the_next_batch_is_handled_while_the_last_ones_outputs_are_in_flight_and_a_later_ack_commits_nothing_alone(  # noqa: E501
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer = RecordingConsumer()
    processor, producer, handled = pipelined(monkeypatch, consumer)
    async with two_batches_in_flight(processor, consumer, producer):
        producer.ack(3, 4, 5)  # the later batch first
        await fetched_twice_more(consumer)
        assert consumer.history == []
        producer.ack(1, 2)  # not the first record yet
        await fetched_twice_more(consumer)
        assert consumer.history == []
        producer.ack(0)
        await until(lambda: consumer.commits.get(P0) == 6)
    assert consumer.history == [6]
    assert handled == list(range(6))


async def test_a_failure_in_a_batch_while_the_next_is_in_flight_commits_only_up_to_it_and_loses_nothing(  # noqa: E501
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer = RecordingConsumer()
    processor, producer, handled = pipelined(monkeypatch, consumer)
    async with two_batches_in_flight(processor, consumer, producer):
        producer.ack(0, 2)
        producer.fail(1)  # batch 0..2 fails at 1 while 3..5 are in flight
        await until(lambda: consumer.commits.get(P0) == 1)
        assert not any(f.done() for f in producer.futures[3:6])
        # Records 1.. are handled again, their outputs acknowledged.
        await until(lambda: producer.ack_sent_after(5) and consumer.commits.get(P0) == 6)
        producer.ack(3, 4, 5)  # the first copies, acknowledged late, change nothing
        await fetched_twice_more(consumer)
    assert consumer.history[0] == 1
    assert consumer.history == sorted(consumer.history)
    assert consumer.commits[P0] == 6
    acknowledged = {
        int(text)
        for text, future in zip(producer.texts, producer.futures, strict=True)
        if future.done() and future.exception() is None
    }
    assert acknowledged == set(range(6))  # every record's output made it: nothing lost
    assert handled[:6] == list(range(6))
    assert sorted(set(handled)) == list(range(6))


async def test_a_stateful_processor_flushes_and_commits_only_when_everything_in_flight_is_acknowledged(  # noqa: E501
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer = RecordingConsumer()
    listener = Listener(HeldProducer())
    processor, producer, _ = pipelined(monkeypatch, consumer, listener=listener)
    async with two_batches_in_flight(processor, consumer, producer):
        producer.ack(0, 1, 2)  # the first batch, the second still in flight
        await fetched_twice_more(consumer)
        assert consumer.history == []
        assert not [e for e in listener.timeline if e[0] == "flush"]
        producer.ack(3, 4, 5)
        await until(lambda: consumer.commits.get(P0) == 6)
    assert consumer.history == [6]
    assert [e for e in listener.timeline if e[0] == "flush"] == [("flush", 0)]


async def test_a_stateful_failure_while_a_later_batch_is_in_flight_commits_nothing_and_restores_the_state(  # noqa: E501
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer = RecordingConsumer()
    listener = Listener(HeldProducer())
    processor, producer, handled = pipelined(monkeypatch, consumer, listener=listener)
    async with two_batches_in_flight(processor, consumer, producer):
        producer.ack(0, 2, 3, 4, 5)
        producer.fail(1)
        await until(lambda: ("lost", frozenset({0})) in listener.timeline)
        assert consumer.history == []  # not even record 0: its state writes went too
        await until(lambda: producer.ack_sent_after(5) and consumer.commits.get(P0) == 6)
    # Records up to the failed batch's last go one at a time (a refusal would name its
    # record), then the rest together.
    assert consumer.history == [1, 2, 3, 6]
    flushes = [e for e in listener.timeline if e[0] == "flush"]
    assert flushes
    assert all(pending == 1 for _, pending in flushes)  # only the failed one
    assert listener.timeline.count(("assigned", frozenset({0}))) == 2  # restored again
    assert handled == [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5]


async def test_no_more_records_are_handled_ahead_than_the_in_flight_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer = RecordingConsumer()
    processor, producer, handled = pipelined(monkeypatch, consumer, limit=4)
    in_flight = processor._in_flight
    waited_with: list[int] = []  # records in flight when the loop waited for the oldest
    wait_oldest = in_flight.wait_oldest

    async def recorded(interrupt: asyncio.Event) -> None:
        waited_with.append(in_flight.records)
        await wait_oldest(interrupt)

    monkeypatch.setattr(in_flight, "wait_oldest", recorded)
    async with two_batches_in_flight(processor, consumer, producer):  # 3 in flight < 4: handled
        consumer.add(P0, 3)
        await until(lambda: waited_with)
        assert waited_with == [6]  # 6 in flight >= 4: the loop waits, fetches nothing more
        assert len(producer.futures) == 6
        producer.ack(0, 1, 2)
        await until(lambda: len(producer.futures) == 9)
        assert consumer.history == [3]
        producer.ack(3, 4, 5, 6, 7, 8)
        await until(lambda: consumer.commits.get(P0) == 9)
    assert handled == list(range(9))


async def test_a_revocation_commits_what_was_acknowledged_while_it_waited(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer = RecordingConsumer()
    processor, producer, _ = pipelined(monkeypatch, consumer)
    consumer.add(P0, 3)
    await processor.start()
    try:
        await consumer.rebalance({P0})
        await until(lambda: len(producer.futures) == 3)
        revoking = asyncio.create_task(consumer.rebalance(set()))
        await until(lambda: processor.tasks.revoking)
        producer.ack(0, 1, 2)
        await asyncio.wait_for(revoking, 5)
    finally:
        await processor.stop()
    assert consumer.history == [3]  # committed by the revocation, before the partition went


async def test_a_revocation_that_cannot_wait_for_the_outputs_in_flight_closes_dirty(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer = RecordingConsumer(rebalance_timeout_ms=400)  # a revocation waits 0.2 s at most
    listener = Listener(HeldProducer())
    processor, producer, _ = pipelined(monkeypatch, consumer, listener=listener)
    consumer.add(P0, 3)
    await processor.start()
    try:
        await consumer.rebalance({P0})
        await until(lambda: len(producer.futures) == 3)
        await asyncio.wait_for(consumer.rebalance(set()), 5)  # never acknowledged
    finally:
        await processor.stop()
    assert consumer.history == []
    assert ("lost", frozenset({0})) in listener.timeline
    assert ("revoked", frozenset({0})) not in listener.timeline
    assert not [e for e in listener.timeline if e[0] == "flush"]
