"""The shared stream processor's partition state against the real Kafka broker: a failed
restore pauses its partition, a batch outlasting its revocation is closed dirty."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from google.protobuf.message import Message

from socialcrm import contract
from socialcrm.kafka.admin import ensure_topics
from socialcrm.kafka.processor import StreamProcessor
from socialcrm.kafka.producer import EventProducer
from socialcrm.kafka.tasks import writer_of
from socialcrm.settings import ServiceSettings
from socialcrm.v1 import interaction_pb2, kpi_pb2
from tests.conftest import Infra
from tests.fixtures.kafka import committed_offset, publish_raw, read_keyed
from tests.fixtures.stream_runs import alert_of, run_until, three_interactions
from tests.fixtures.waiting import eventually_async

pytestmark = pytest.mark.integration

TOPIC = contract.topic_of(interaction_pb2.Interaction)


class PartitionState:
    """A partition listener whose state is the partitions it owns; it records its calls
    and fails its first ``fail_restores`` restores."""

    def __init__(self, fail_restores: int = 0) -> None:
        self.fail_restores = fail_restores
        self.owned: set[int] = set()
        self.calls: list[tuple[str, frozenset[int]]] = []

    async def on_assigned(self, partitions: set[int]) -> None:
        self.calls.append(("assigned", frozenset(partitions)))
        if self.fail_restores:
            self.fail_restores -= 1
            raise RuntimeError("changelog unavailable")
        self.owned = set(partitions)

    async def on_revoked(self, partitions: set[int]) -> None:
        self.calls.append(("revoked", frozenset(partitions)))
        self.owned -= partitions

    async def on_lost(self, partitions: set[int]) -> None:
        self.calls.append(("lost", frozenset(partitions)))
        self.owned -= partitions


def stateful_processor(
    settings: ServiceSettings,
    group: str,
    marker: str,
    state: PartitionState,
    producer: EventProducer,
    gate: tuple[asyncio.Event, asyncio.Event] | None = None,
) -> StreamProcessor[interaction_pb2.Interaction]:
    """``gate``: (entered, released): the first record handled waits for ``released``."""

    async def handler(
        event: interaction_pb2.Interaction, record: ConsumerRecord[bytes, bytes]
    ) -> Sequence[Message]:
        if record.key != marker.encode():
            return []
        if record.partition not in state.owned:
            raise KeyError(record.partition)  # as a store read of a partition not restored
        if gate is not None and not gate[1].is_set():
            gate[0].set()
            await gate[1].wait()  # a batch that outlasts the revocation's wait
        return [alert_of(marker, event.text, event)]

    return StreamProcessor(
        settings=settings,
        group_id=group,
        input_type=interaction_pb2.Interaction,
        handler=handler,
        producer=producer,
        partition_listener=state,
    )


async def test_a_failed_restore_pauses_the_partition_and_nothing_is_dead_lettered(
    infra: Infra,
) -> None:
    bootstrap = infra.kafka.bootstrap
    settings = ServiceSettings(kafka_bootstrap_servers=bootstrap, topic_partitions=1)
    await ensure_topics(settings, contract.all_topics())
    marker = uuid.uuid4().hex
    items = three_interactions(marker)
    sent = await publish_raw(
        bootstrap, TOPIC, [(marker.encode(), contract.encode(m)) for m in items]
    )
    state = PartitionState(fail_restores=2)
    producer = EventProducer(settings)
    group = f"test-{marker}"
    processor = stateful_processor(settings, group, marker, state, producer)
    await run_until(processor, producer, bootstrap, group, sent[-1])

    outputs = await read_keyed(bootstrap, "alerts.v1", marker.encode(), expected=3)
    assert sorted(kpi_pb2.Alert.FromString(r.value).summary for r in outputs) == sorted(
        item.text for item in items
    )
    # Retried, then restored: the same partitions each time (the topic may have been created
    # by another test with more partitions), the marker's among them.
    owned = state.calls[0][1]
    assert sent[0].partition in owned
    assert state.calls[:3] == [("assigned", owned)] * 3
    assert (
        await read_keyed(bootstrap, f"{TOPIC}.dlq", marker.encode(), expected=1, wait_seconds=3)
        == []
    )


async def test_a_batch_outlasting_its_revocation_is_closed_dirty_and_never_committed(
    infra: Infra,
) -> None:
    bootstrap = infra.kafka.bootstrap
    settings = ServiceSettings(kafka_bootstrap_servers=bootstrap, topic_partitions=1)
    await ensure_topics(settings, contract.all_topics())
    marker = uuid.uuid4().hex
    items = three_interactions(marker)
    sent = await publish_raw(
        bootstrap, TOPIC, [(marker.encode(), contract.encode(m)) for m in items]
    )
    group = f"test-{marker}"
    partition = TopicPartition(TOPIC, sent[-1].partition)
    entered, released = asyncio.Event(), asyncio.Event()
    first_state, second_state = PartitionState(), PartitionState()
    producer = EventProducer(settings)
    await producer.start()
    first = stateful_processor(settings, group, marker, first_state, producer, (entered, released))
    second = stateful_processor(settings, group, marker, second_state, producer)
    await first.start()
    try:
        await asyncio.wait_for(entered.wait(), 30)
        # The first member's batch is in hand (blocked) when a second member joins.
        await second.start()

        async def rebalanced() -> bool | None:
            return True if writer_of(second.consumer).generation > 0 else None

        await eventually_async(rebalanced, 30)
        committed_before = await committed_offset(bootstrap, group, partition)
        released.set()

        async def committed_past_last() -> bool | None:
            committed = await committed_offset(bootstrap, group, partition)
            return True if committed is not None and committed > sent[-1].offset else None

        await eventually_async(committed_past_last, 40)
    finally:
        released.set()
        await first.stop()
        await second.stop()
        await producer.stop()

    assert committed_before is None or committed_before <= sent[0].offset
    # The topic may have more partitions than this test's (another test on the same broker
    # may have created it): a call names every partition the member held.
    calls_of_it = [
        kind for kind, partitions in first_state.calls if partition.partition in partitions
    ]
    assert "lost" in calls_of_it, first_state.calls
    # Closed dirty, never clean, once the revocation gave up waiting for the batch.
    assert "revoked" not in calls_of_it[: calls_of_it.index("lost")], first_state.calls
    outputs = await read_keyed(bootstrap, "alerts.v1", marker.encode(), expected=3)
    assert {kpi_pb2.Alert.FromString(r.value).summary for r in outputs} == {i.text for i in items}
    assert (
        await read_keyed(bootstrap, f"{TOPIC}.dlq", marker.encode(), expected=1, wait_seconds=3)
        == []
    )
