"""A fetch that spans a rebalance, offline: its records are read again, never skipped.

aiokafka can run a whole rebalance inside ``getmany`` and then return records fetched for
the new assignment, with the position already past them. The processor does not handle a
fetch begun under another assignment; without a seek back, a partition that needs no
restore (nothing pauses it at assignment) lost those records for good.
"""

from __future__ import annotations

from collections.abc import Sequence

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
P0 = TopicPartition(TOPIC, 0)


class RebalancingInFetch(FakeConsumer):
    """The first fetch runs a rebalance (same partition back) before it fetches."""

    rebalanced = False

    async def getmany(
        self, timeout_ms: int = 0
    ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        if not self.rebalanced and self.records:
            self.rebalanced = True
            await self.rebalance({P0})
        return await super().getmany(timeout_ms)


async def test_records_fetched_for_the_new_assignment_are_handled_not_skipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer = RebalancingInFetch()
    monkeypatch.setattr(processor_module, "group_consumer", lambda *_, **__: consumer)
    handled: list[int] = []

    async def handler(
        event: interaction_pb2.Interaction, record: ConsumerRecord[bytes, bytes]
    ) -> Sequence[Message]:
        handled.append(record.offset)
        return [kpi_pb2.Alert(header=event.header, alert_key="k", summary=event.text)]

    processor = StreamProcessor(
        settings=ServiceSettings(),
        group_id="fetch-test",
        input_type=interaction_pb2.Interaction,
        handler=handler,
        producer=FakeProducer(),  # type: ignore[arg-type]
    )
    await processor.start()
    try:
        await consumer.rebalance({P0})
        consumer.add(P0, 5)

        async def all_committed() -> bool | None:
            return True if consumer.commits.get(P0) == 5 else None

        await eventually_async(all_committed, 10)
        assert consumer.rebalanced
        assert sorted(set(handled)) == [0, 1, 2, 3, 4]
    finally:
        await processor.stop()
