"""The shared stream processor against the real Kafka broker: bad input records are
dead-lettered and the stream goes on; offsets are committed after processing."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import pytest
from aiokafka import ConsumerRecord
from google.protobuf.message import Message

from socialcrm import contract
from socialcrm.kafka.admin import ensure_topics
from socialcrm.kafka.processor import StreamProcessor
from socialcrm.kafka.producer import EventProducer
from socialcrm.settings import ServiceSettings
from socialcrm.v1 import interaction_pb2, kpi_pb2
from tests.conftest import Infra
from tests.fixtures.events import interaction
from tests.fixtures.kafka import headers_of, publish, publish_raw, read_keyed
from tests.fixtures.stream_runs import run_until

pytestmark = pytest.mark.integration

TOPIC = contract.topic_of(interaction_pb2.Interaction)


@pytest.mark.parametrize("in_batches", [False, True], ids=["one-by-one", "batch-handler"])
async def test_bad_records_go_to_the_dead_letter_topic_and_the_stream_goes_on(
    infra: Infra, in_batches: bool
) -> None:
    settings = ServiceSettings(kafka_bootstrap_servers=infra.kafka.bootstrap, topic_partitions=1)
    await ensure_topics(settings, contract.all_topics())
    marker = uuid.uuid4().hex
    handled: list[str] = []

    async def handler(
        event: interaction_pb2.Interaction, record: ConsumerRecord[bytes, bytes]
    ) -> Sequence[Message]:
        if record.key != marker.encode():
            return []  # another test's interaction on the shared topic
        if event.text == "boom":
            raise ValueError("handler cannot cope")
        handled.append(event.header.external_id)
        return [kpi_pb2.Alert(header=event.header, alert_key=marker, summary=event.text)]

    batch_calls: list[int] = []

    async def batch_handler(
        batch: Sequence[tuple[interaction_pb2.Interaction, ConsumerRecord[bytes, bytes]]],
    ) -> Sequence[Sequence[Message]]:
        batch_calls.append(len(batch))
        # The exploding record fails its whole batch: the processor then goes record by record.
        return [await handler(event, record) for event, record in batch]

    good = interaction(f"{marker[:8]}1".translate(str.maketrans("abcdef", "123456")))
    exploding = interaction("999" + str(uuid.uuid4().int)[:9])
    exploding.text = "boom"
    incomplete = interaction("1")
    incomplete.header.ClearField("event_id")
    values = [b"\x08\x96\x01\xff garbage", *map(contract.encode, (incomplete, exploding, good))]
    await publish_raw(infra.kafka.bootstrap, TOPIC, [(marker.encode(), v) for v in values])

    producer = EventProducer(settings)
    processor = StreamProcessor(
        settings=settings,
        group_id=f"test-{marker}",
        input_type=interaction_pb2.Interaction,
        handler=handler,
        batch_handler=batch_handler if in_batches else None,
        producer=producer,
    )
    await producer.start()
    await processor.start()
    try:
        outputs = await read_keyed(infra.kafka.bootstrap, "alerts.v1", marker.encode(), expected=1)
        dead = await read_keyed(infra.kafka.bootstrap, f"{TOPIC}.dlq", marker.encode(), expected=3)
    finally:
        await processor.stop()
        await producer.stop()

    assert [kpi_pb2.Alert.FromString(r.value).summary for r in outputs] == [good.text]
    reasons = {
        headers_of(r)["dlq.error_type"].decode(): headers_of(r)["dlq.reason"].decode() for r in dead
    }
    assert set(reasons) == {"decode_error", "contract_violation", "handler_error"}
    assert "handler cannot cope" in reasons["handler_error"]
    assert "header.event_id" in reasons["contract_violation"]
    envelope = contract.DeadLetter.FromString(dead[0].value)
    assert envelope.original_value == b"\x08\x96\x01\xff garbage"
    assert envelope.source_topic == TOPIC
    assert bool(batch_calls) == in_batches


async def test_offsets_are_committed_after_processing(infra: Infra) -> None:
    bootstrap = infra.kafka.bootstrap
    settings = ServiceSettings(kafka_bootstrap_servers=bootstrap, topic_partitions=1)
    await ensure_topics(settings, contract.all_topics())
    group = f"test-{uuid.uuid4().hex}"
    seen: list[str] = []

    async def handler(
        event: interaction_pb2.Interaction, _: ConsumerRecord[bytes, bytes]
    ) -> Sequence[Message]:
        seen.append(event.header.external_id)
        return []

    async def handled_in_a_run(external_id: str) -> list[str]:
        """What one member of the group handles until the record of ``external_id``,
        published just before it starts, is committed."""
        handled_before = len(seen)
        [written] = await publish(bootstrap, interaction(external_id))
        producer = EventProducer(settings)
        processor = StreamProcessor(
            settings=settings,
            group_id=group,
            input_type=interaction_pb2.Interaction,
            handler=handler,
            producer=producer,
        )
        await run_until(processor, producer, bootstrap, group, written)
        return seen[handled_before:]

    assert "424242" in await handled_in_a_run("424242")
    # The second member of the same group resumes after the committed offset: it handles
    # the record published for it, never the one the first member committed.
    second_run = await handled_in_a_run("424243")
    assert "424243" in second_run
    assert "424242" not in second_run
