"""The exactly-once stream processor against the real broker: an aborted transaction is
processed again without a repeated output, bad records are dead-lettered inside the
transaction, and a processor fenced by a newer producer stops and leaves its group."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence

import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord
from google.protobuf.message import Message

from socialcrm import contract
from socialcrm.kafka.admin import ensure_topics
from socialcrm.kafka.transactional import (
    PartitionId,
    TransactionalInput,
    TransactionalProcessor,
    TransactionalProducer,
)
from socialcrm.settings import ServiceSettings
from socialcrm.v1 import interaction_pb2, kpi_pb2
from tests.conftest import Infra
from tests.fixtures.events import interaction
from tests.fixtures.kafka import publish_raw, read_to_end
from tests.fixtures.waiting import eventually_async

pytestmark = pytest.mark.integration

TOPIC = contract.topic_of(interaction_pb2.Interaction)
ALERTS = contract.topic_of(kpi_pb2.Alert)


class FailingOnce:
    """A state whose write fails in the transaction of the ``fail_at``-th handled record,
    after the outputs were sent: that transaction is aborted."""

    def __init__(self, fail_at: str) -> None:
        self.fail_at = fail_at
        self.failed = False
        self.seen: list[str] = []
        self.lost_count = 0
        self.assigned_count = 0

    async def assigned(self, partitions: frozenset[PartitionId]) -> None:
        self.assigned_count += 1

    async def revoked(self, partitions: frozenset[PartitionId]) -> None:
        return None

    async def lost(self, partitions: frozenset[PartitionId]) -> None:
        self.lost_count += 1

    def punctuate(self, now: float, caught_up: Collection[PartitionId]) -> Sequence[Message]:
        return []

    async def commit_state(self) -> None:
        if self.fail_at in self.seen and not self.failed:
            self.failed = True
            raise RuntimeError("state write failed")


def settings_for(infra: Infra, marker: str) -> ServiceSettings:
    return ServiceSettings(
        kafka_bootstrap_servers=infra.kafka.bootstrap,
        topic_partitions=1,
        service_name=f"test-{marker}",
    )


async def alerts_of(bootstrap: str, marker: str, isolation_level: str) -> list[str]:
    records = await read_to_end(bootstrap, ALERTS, isolation_level=isolation_level)
    return [
        kpi_pb2.Alert.FromString(r.value).summary
        for r in records
        if r.key == marker.encode() and r.value is not None
    ]


async def test_an_aborted_batch_is_processed_again_and_published_once(infra: Infra) -> None:
    marker = uuid.uuid4().hex
    settings = settings_for(infra, marker)
    await ensure_topics(settings, contract.all_topics())
    texts = [f"{marker}-{i}" for i in range(5)]
    state = FailingOnce(fail_at=texts[2])

    def handler(
        event: interaction_pb2.Interaction, record: ConsumerRecord[bytes, bytes]
    ) -> Sequence[Message]:
        if record.key != marker.encode():
            return []  # another test's interaction on the shared topic
        if event.text == "boom":
            raise ValueError("handler cannot cope")
        state.seen.append(event.text)
        return [kpi_pb2.Alert(header=event.header, alert_key=marker, summary=event.text)]

    exploding = interaction(text="boom")
    values = [b"\xff garbage", contract.encode(exploding)]
    values += [contract.encode(interaction(text=text)) for text in texts]
    await publish_raw(infra.kafka.bootstrap, TOPIC, [(marker.encode(), v) for v in values])

    producer = TransactionalProducer(settings, f"test-{marker}")
    processor = TransactionalProcessor(
        settings=settings,
        group_id=f"test-{marker}",
        inputs=[TransactionalInput(interaction_pb2.Interaction, handler)],
        producer=producer,
        state=state,
        session_timeout_ms=6000,
    )
    await processor.start()
    try:

        async def all_committed() -> list[str] | None:
            summaries = await alerts_of(infra.kafka.bootstrap, marker, "read_committed")
            return summaries if len(summaries) >= len(texts) else None

        summaries = await eventually_async(all_committed, 60)
    finally:
        await processor.stop()

    assert state.failed
    assert state.lost_count == 1  # the aborted batch's state was dropped, then restored
    assert state.assigned_count == 2
    assert sorted(summaries) == sorted(texts)
    # The aborted transaction's outputs were written, but no committed reader sees them.
    uncommitted = await alerts_of(infra.kafka.bootstrap, marker, "read_uncommitted")
    assert len(uncommitted) > len(texts)
    dead = await read_to_end(
        infra.kafka.bootstrap, contract.dlq_topic(TOPIC), isolation_level="read_committed"
    )
    reasons = {
        contract.DeadLetter.FromString(r.value).error_type
        for r in dead
        if r.key == marker.encode() and r.value is not None
    }
    assert reasons == {"decode_error", "handler_error"}


async def test_a_processor_fenced_by_a_newer_producer_stops_and_leaves(infra: Infra) -> None:
    marker = uuid.uuid4().hex
    settings = settings_for(infra, marker)
    await ensure_topics(settings, contract.all_topics())
    state = FailingOnce(fail_at="never")

    def handler(
        event: interaction_pb2.Interaction, record: ConsumerRecord[bytes, bytes]
    ) -> Sequence[Message]:
        if record.key != marker.encode():
            return []
        return [kpi_pb2.Alert(header=event.header, alert_key=marker, summary=event.text)]

    producer = TransactionalProducer(settings, f"test-{marker}")
    processor = TransactionalProcessor(
        settings=settings,
        group_id=f"test-{marker}",
        inputs=[TransactionalInput(interaction_pb2.Interaction, handler)],
        producer=producer,
        state=state,
        session_timeout_ms=6000,
    )
    await processor.start()
    try:

        async def active() -> bool | None:
            return True if processor.active else None

        await eventually_async(active, 60)
        # A new owner initialises a producer with the same transactional id.
        newer = AIOKafkaProducer(
            bootstrap_servers=infra.kafka.bootstrap, transactional_id=f"test-{marker}"
        )
        await newer.start()
        try:
            value = contract.encode(interaction(text=f"{marker}-late"))
            await publish_raw(infra.kafka.bootstrap, TOPIC, [(marker.encode(), value)])

            async def fenced() -> bool | None:
                return True if not processor.alive else None

            await eventually_async(fenced, 30)
        finally:
            await newer.stop()
        assert not processor.active
        assert processor.consumer.assignment() == set()
        assert await alerts_of(infra.kafka.bootstrap, marker, "read_committed") == []
    finally:
        await processor.stop()


class RestoreFailingTwice(FailingOnce):
    """A state whose first two restores fail (the changelog is not readable yet)."""

    def __init__(self) -> None:
        super().__init__(fail_at="never")
        self.handled_before_restore: list[str] = []

    async def assigned(self, partitions: frozenset[PartitionId]) -> None:
        self.assigned_count += 1
        if self.assigned_count <= 2:
            raise RuntimeError("changelog unavailable")


async def test_a_failed_takeover_is_retried_and_nothing_is_processed_meanwhile(
    infra: Infra,
) -> None:
    marker = uuid.uuid4().hex
    settings = settings_for(infra, marker)
    await ensure_topics(settings, contract.all_topics())
    texts = [f"{marker}-{i}" for i in range(3)]
    state = RestoreFailingTwice()

    def handler(
        event: interaction_pb2.Interaction, record: ConsumerRecord[bytes, bytes]
    ) -> Sequence[Message]:
        if record.key != marker.encode():
            return []
        if state.assigned_count <= 2:
            state.handled_before_restore.append(event.text)
        return [kpi_pb2.Alert(header=event.header, alert_key=marker, summary=event.text)]

    await publish_raw(
        infra.kafka.bootstrap,
        TOPIC,
        [(marker.encode(), contract.encode(interaction(text=text))) for text in texts],
    )
    processor = TransactionalProcessor(
        settings=settings,
        group_id=f"test-{marker}",
        inputs=[TransactionalInput(interaction_pb2.Interaction, handler)],
        producer=TransactionalProducer(settings, f"test-{marker}"),
        state=state,
        session_timeout_ms=6000,
    )
    await processor.start()
    try:

        async def all_committed() -> list[str] | None:
            summaries = await alerts_of(infra.kafka.bootstrap, marker, "read_committed")
            return summaries if len(summaries) >= len(texts) else None

        summaries = await eventually_async(all_committed, 60)
    finally:
        await processor.stop()

    assert state.assigned_count == 3
    assert state.handled_before_restore == []
    assert sorted(summaries) == sorted(texts)
