"""The shared stream processor against the real Kafka broker: an output too large, not
encodable or refused by the broker is dead-lettered and the stream goes on; transient
producer failures are retried, never dead-lettered."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import cast

import pytest
from aiokafka import ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaTimeoutError
from google.protobuf import descriptor_pb2
from google.protobuf.message import Message

from socialcrm import contract
from socialcrm.dlq import replay
from socialcrm.kafka.admin import ensure_topics
from socialcrm.kafka.processor import StreamProcessor
from socialcrm.kafka.producer import EventProducer
from socialcrm.settings import ServiceSettings
from socialcrm.v1 import interaction_pb2, kpi_pb2
from tests.conftest import Infra
from tests.fixtures.kafka import headers_of, publish_raw, read_keyed
from tests.fixtures.stream_runs import alert_of, run_until, three_interactions

pytestmark = pytest.mark.integration

TOPIC = contract.topic_of(interaction_pb2.Interaction)

# The record limit of the processors below: small records, the same code paths as 1 MB ones.
LIMIT = 60_000


@pytest.mark.parametrize("in_batches", [False, True], ids=["one-by-one", "batch-handler"])
async def test_a_record_whose_output_is_too_large_is_dead_lettered_and_the_stream_goes_on(
    infra: Infra, in_batches: bool
) -> None:
    bootstrap = infra.kafka.bootstrap
    settings = ServiceSettings(
        kafka_bootstrap_servers=bootstrap, topic_partitions=1, kafka_max_message_bytes=LIMIT
    )
    await ensure_topics(settings, contract.all_topics())
    marker = uuid.uuid4().hex
    before, big, after = three_interactions(marker)
    # The input fits the limit; the output, twice its text, does not; nor does a dead letter
    # carrying the whole input.
    big.text = marker + "x" * (LIMIT - 600)

    async def handler(
        event: interaction_pb2.Interaction, record: ConsumerRecord[bytes, bytes]
    ) -> Sequence[Message]:
        if record.key != marker.encode():
            return []
        return [alert_of(marker, event.text * 2, event)]

    async def batch_handler(
        batch: Sequence[tuple[interaction_pb2.Interaction, ConsumerRecord[bytes, bytes]]],
    ) -> Sequence[Sequence[Message]]:
        return [await handler(event, record) for event, record in batch]

    sent = await publish_raw(
        bootstrap, TOPIC, [(marker.encode(), contract.encode(m)) for m in (before, big, after)]
    )
    producer = EventProducer(settings)
    group = f"test-{marker}"
    processor = StreamProcessor(
        settings=settings,
        group_id=group,
        input_type=interaction_pb2.Interaction,
        handler=handler,
        batch_handler=batch_handler if in_batches else None,
        producer=producer,
    )
    await run_until(processor, producer, bootstrap, group, sent[-1])

    outputs = await read_keyed(bootstrap, "alerts.v1", marker.encode(), expected=2)
    assert [kpi_pb2.Alert.FromString(r.value).summary for r in outputs] == [
        before.text * 2,
        after.text * 2,
    ]
    [dead] = await read_keyed(bootstrap, f"{TOPIC}.dlq", marker.encode(), expected=1)
    headers = headers_of(dead)
    assert headers["dlq.error_type"] == b"output_too_large"
    assert f"{LIMIT}-byte record limit" in headers["dlq.reason"].decode()
    # The dead letter fits the limit: the value is cut, and the source still finds it.
    assert len(dead.value) < LIMIT
    assert headers["dlq.value_truncated"] == b"true"
    assert headers["dlq.original_value_bytes"] == str(len(contract.encode(big))).encode()
    envelope = contract.DeadLetter.FromString(dead.value)
    assert (envelope.source_topic, envelope.source_partition, envelope.source_offset) == (
        TOPIC,
        sent[1].partition,
        sent[1].offset,
    )
    assert envelope.original_key == marker.encode()
    assert contract.encode(big).startswith(envelope.original_value)
    # A replay republishes the whole original, read from the source topic.
    await replay(bootstrap, f"{TOPIC}.dlq", error_type="output_too_large", dry_run=False)
    again = await read_keyed(bootstrap, TOPIC, marker.encode(), expected=4)
    assert [r.value for r in again].count(contract.encode(big)) == 2


async def test_an_output_that_cannot_be_encoded_is_dead_lettered_and_the_stream_goes_on(
    infra: Infra,
) -> None:
    bootstrap = infra.kafka.bootstrap
    settings = ServiceSettings(kafka_bootstrap_servers=bootstrap, topic_partitions=1)
    await ensure_topics(settings, contract.all_topics())
    marker = uuid.uuid4().hex
    before, poison, after = three_interactions(marker)

    async def handler(
        event: interaction_pb2.Interaction, record: ConsumerRecord[bytes, bytes]
    ) -> Sequence[Message]:
        if record.key != marker.encode():
            return []
        if event.text == poison.text:
            return [descriptor_pb2.UninterpretedOption()]  # no topic of the contract carries it
        return [alert_of(marker, event.text, event)]

    sent = await publish_raw(
        bootstrap, TOPIC, [(marker.encode(), contract.encode(m)) for m in (before, poison, after)]
    )
    producer = EventProducer(settings)
    group = f"test-{marker}"
    processor = StreamProcessor(
        settings=settings,
        group_id=group,
        input_type=interaction_pb2.Interaction,
        handler=handler,
        producer=producer,
    )
    await run_until(processor, producer, bootstrap, group, sent[-1])

    outputs = await read_keyed(bootstrap, "alerts.v1", marker.encode(), expected=2)
    assert [kpi_pb2.Alert.FromString(r.value).summary for r in outputs] == [
        before.text,
        after.text,
    ]
    [dead] = await read_keyed(bootstrap, f"{TOPIC}.dlq", marker.encode(), expected=1)
    assert headers_of(dead)["dlq.error_type"] == b"output_not_encodable"
    assert "UninterpretedOption" in headers_of(dead)["dlq.reason"].decode()
    envelope = contract.DeadLetter.FromString(dead.value)
    assert envelope.original_value == contract.encode(poison)
    assert "dlq.value_truncated" not in headers_of(dead)


class RedirectingProducer(EventProducer):
    """Sends every output to one topic of the test's (as the router sends its SLA state to
    a configured topic)."""

    def __init__(self, settings: ServiceSettings, topic: str, key: bytes) -> None:
        super().__init__(settings)
        self.topic = topic
        self.key = key

    async def publish(self, message: Message) -> asyncio.Future[object]:
        # Through send_record, so that a refusal replaces the client as for any output.
        future = await self.send_record(self.topic, contract.encode(message), key=self.key)
        return cast(asyncio.Future[object], future)


async def test_a_record_the_broker_refuses_is_dead_lettered_and_the_stream_goes_on(
    infra: Infra,
) -> None:
    """The topic takes smaller records than the producer's limit: the broker refuses the
    output's whole produce batch when acknowledging, not the client when sending."""
    bootstrap = infra.kafka.bootstrap
    settings = ServiceSettings(kafka_bootstrap_servers=bootstrap, topic_partitions=1)
    await ensure_topics(settings, contract.all_topics())
    marker = uuid.uuid4().hex
    small_topic = f"it.small-records-{marker[:8]}.v1"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(small_topic, 1, 1, topic_configs={"max.message.bytes": "20000"})]
        )
    finally:
        await admin.close()
    before, big, after = three_interactions(marker)
    big.text = marker + "x" * 30_000

    async def handler(
        event: interaction_pb2.Interaction, record: ConsumerRecord[bytes, bytes]
    ) -> Sequence[Message]:
        if record.key != marker.encode():
            return []
        return [alert_of(marker, event.text, event)]

    sent = await publish_raw(
        bootstrap, TOPIC, [(marker.encode(), contract.encode(m)) for m in (before, big, after)]
    )
    producer = RedirectingProducer(settings, small_topic, marker.encode())
    group = f"test-{marker}"
    processor = StreamProcessor(
        settings=settings,
        group_id=group,
        input_type=interaction_pb2.Interaction,
        handler=handler,
        producer=producer,
    )
    await run_until(processor, producer, bootstrap, group, sent[-1])

    outputs = await read_keyed(bootstrap, small_topic, marker.encode(), expected=3, wait_seconds=8)
    assert {kpi_pb2.Alert.FromString(r.value).summary for r in outputs} == {
        before.text,
        after.text,
    }
    [dead] = await read_keyed(bootstrap, f"{TOPIC}.dlq", marker.encode(), expected=1)
    assert headers_of(dead)["dlq.error_type"] == b"output_too_large"
    assert "MessageSizeTooLargeError" in headers_of(dead)["dlq.reason"].decode()
    assert contract.DeadLetter.FromString(dead.value).source_offset == sent[1].offset


class FlakyProducer(EventProducer):
    """Times out on the first sends of the record ``text``, as when no broker answers."""

    def __init__(self, settings: ServiceSettings, text: str, failures: int) -> None:
        super().__init__(settings)
        self.text = text
        self.failures = failures

    async def publish(self, message: Message) -> asyncio.Future[object]:
        if isinstance(message, kpi_pb2.Alert) and message.summary == self.text and self.failures:
            self.failures -= 1
            raise KafkaTimeoutError("no broker answered")
        return await super().publish(message)


async def test_transient_producer_failures_are_retried_and_never_dead_lettered(
    infra: Infra,
) -> None:
    bootstrap = infra.kafka.bootstrap
    settings = ServiceSettings(kafka_bootstrap_servers=bootstrap, topic_partitions=1)
    await ensure_topics(settings, contract.all_topics())
    marker = uuid.uuid4().hex
    first, flaky, last = three_interactions(marker)
    commits_refused = [RuntimeError("state store unavailable")]

    async def handler(
        event: interaction_pb2.Interaction, record: ConsumerRecord[bytes, bytes]
    ) -> Sequence[Message]:
        if record.key != marker.encode():
            return []
        return [alert_of(marker, event.text, event)]

    async def before_commit() -> None:
        if commits_refused:
            raise commits_refused.pop()

    sent = await publish_raw(
        bootstrap, TOPIC, [(marker.encode(), contract.encode(m)) for m in (first, flaky, last)]
    )
    producer = FlakyProducer(settings, flaky.text, failures=2)
    group = f"test-{marker}"
    processor = StreamProcessor(
        settings=settings,
        group_id=group,
        input_type=interaction_pb2.Interaction,
        handler=handler,
        producer=producer,
        before_commit=before_commit,
    )
    await run_until(processor, producer, bootstrap, group, sent[-1])

    outputs = await read_keyed(bootstrap, "alerts.v1", marker.encode(), expected=9, wait_seconds=8)
    # Processed again after each failure (handlers are idempotent), never skipped.
    assert {kpi_pb2.Alert.FromString(r.value).summary for r in outputs} == {
        first.text,
        flaky.text,
        last.text,
    }
    assert producer.failures == 0
    assert not commits_refused
    assert (
        await read_keyed(bootstrap, f"{TOPIC}.dlq", marker.encode(), expected=1, wait_seconds=3)
        == []
    )
