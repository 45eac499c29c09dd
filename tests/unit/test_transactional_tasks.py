"""Kafka Streams' task semantics of the transactional stream processor, offline: a fake
consumer and transactional producer, and a state whose transaction fails while a revocation
waits for the batch."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from google.protobuf.message import Message

from socialcrm import contract
from socialcrm.kafka import transactional as transactional_module
from socialcrm.kafka.transactional import PartitionId, TransactionalInput, TransactionalProcessor
from socialcrm.settings import ServiceSettings
from socialcrm.v1 import interaction_pb2
from tests.fixtures.fake_kafka import FakeConsumer, FakeProducer
from tests.fixtures.waiting import eventually_async

TOPIC = contract.topic_of(interaction_pb2.Interaction)
P0 = TopicPartition(TOPIC, 0)


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
