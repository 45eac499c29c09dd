"""The shared stream processor against the real Kafka broker: outputs, dead letters, commits."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient
from google.protobuf.message import Message

from socialcrm import contract
from socialcrm.kafka import EventProducer, StreamProcessor, ensure_topics
from socialcrm.settings import ServiceSettings
from socialcrm.v1 import interaction_pb2, kpi_pb2
from socialcrm_ingest.x_activity import normalize_account_activity
from tests.conftest import Infra
from tests.fixtures.payloads import x_tweet_event

pytestmark = pytest.mark.integration

TOPIC = contract.topic_of(interaction_pb2.Interaction)


def interaction(tweet_id: str) -> interaction_pb2.Interaction:
    [item] = normalize_account_activity(
        x_tweet_event(tweet_id), brand="acme", ingested_at=datetime.now(UTC)
    )
    return item


async def read_keyed(
    bootstrap: str, topic: str, key: bytes, expected: int, wait_seconds: float = 20
) -> list[ConsumerRecord[bytes, bytes]]:
    """The records of ``topic`` with ``key``, once ``expected`` of them arrived (or time is up).

    Other tests and services write to the same topics: only this key is under test.
    """
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        async with asyncio.timeout(wait_seconds):
            while len(records) < expected:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    records.extend(r for r in batch if r.key == key)
    except TimeoutError:
        pass
    finally:
        await consumer.stop()
    return records


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

    raw = AIOKafkaProducer(bootstrap_servers=infra.kafka.bootstrap)
    await raw.start()
    good = interaction(f"{marker[:8]}1".translate(str.maketrans("abcdef", "123456")))
    exploding = interaction("999" + str(uuid.uuid4().int)[:9])
    exploding.text = "boom"
    incomplete = interaction("1")
    incomplete.header.ClearField("event_id")
    await raw.send_and_wait(TOPIC, b"\x08\x96\x01\xff garbage", key=marker.encode())
    await raw.send_and_wait(TOPIC, contract.encode(incomplete), key=marker.encode())
    await raw.send_and_wait(TOPIC, contract.encode(exploding), key=marker.encode())
    await raw.send_and_wait(TOPIC, contract.encode(good), key=marker.encode())
    await raw.stop()

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
        dict(r.headers)["dlq.error_type"].decode(): dict(r.headers)["dlq.reason"].decode()
        for r in dead
    }
    assert set(reasons) == {"decode_error", "contract_violation", "handler_error"}
    assert "handler cannot cope" in reasons["handler_error"]
    assert "header.event_id" in reasons["contract_violation"]
    envelope = contract.DeadLetter.FromString(dead[0].value)
    assert envelope.original_value == b"\x08\x96\x01\xff garbage"
    assert envelope.source_topic == TOPIC
    assert bool(batch_calls) == in_batches


async def test_offsets_are_committed_after_processing(infra: Infra) -> None:
    settings = ServiceSettings(kafka_bootstrap_servers=infra.kafka.bootstrap, topic_partitions=1)
    await ensure_topics(settings, contract.all_topics())
    group = f"test-{uuid.uuid4().hex}"
    seen: list[str] = []

    async def handler(
        event: interaction_pb2.Interaction, _: ConsumerRecord[bytes, bytes]
    ) -> Sequence[Message]:
        seen.append(event.header.external_id)
        return []

    async def run_once() -> None:
        producer = EventProducer(settings)
        processor = StreamProcessor(
            settings=settings,
            group_id=group,
            input_type=interaction_pb2.Interaction,
            handler=handler,
            producer=producer,
        )
        await producer.start()
        await processor.start()
        await asyncio.sleep(4)
        await processor.stop()
        await producer.stop()

    publisher = EventProducer(settings)
    await publisher.start()
    await publisher.publish_and_wait(interaction("424242"))
    await publisher.stop()
    await run_once()
    first_run = len(seen)
    assert "424242" in seen
    await run_once()
    # The second member of the same group resumes after the committed offset.
    assert len(seen) == first_run


async def test_topics_named_twice_are_created_once_and_a_refusal_is_an_error(
    infra: Infra,
) -> None:
    settings = ServiceSettings(
        service_name="it-topics", kafka_bootstrap_servers=infra.kafka.bootstrap
    )
    topic = f"it.topics-{uuid.uuid4().hex[:8]}.v1"
    await ensure_topics(settings, [topic, topic])
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka.bootstrap)
    await admin.start()
    try:
        assert topic in await admin.list_topics()
    finally:
        await admin.close()
    with pytest.raises(RuntimeError, match=r"it\.topics! bad: "):
        await ensure_topics(settings, ["it.topics! bad"])
