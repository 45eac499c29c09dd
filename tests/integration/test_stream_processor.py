"""The shared stream processor against the real Kafka broker: outputs, dead letters, commits."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaTimeoutError
from aiokafka.structs import RecordMetadata
from google.protobuf import descriptor_pb2
from google.protobuf.message import Message

from socialcrm import contract
from socialcrm.dlq import replay
from socialcrm.kafka.admin import ensure_topics
from socialcrm.kafka.processor import StreamProcessor
from socialcrm.kafka.producer import EventProducer
from socialcrm.kafka.tasks import writer_of
from socialcrm.settings import ServiceSettings
from socialcrm.v1 import interaction_pb2, kpi_pb2
from tests.conftest import Infra
from tests.fixtures.events import interaction
from tests.fixtures.kafka import committed_offset, headers_of, publish_raw, read_keyed
from tests.fixtures.waiting import eventually_async

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


# The record limit of the processors below: small records, the same code paths as 1 MB ones.
LIMIT = 60_000


def alert_of(marker: str, text: str, event: interaction_pb2.Interaction) -> kpi_pb2.Alert:
    return kpi_pb2.Alert(header=event.header, alert_key=marker, summary=text)


def three_interactions(marker: str) -> list[interaction_pb2.Interaction]:
    """Before, poison, after: distinct tweets with distinct texts."""
    digits = str(uuid.UUID(marker).int)[:12]
    items = [interaction(f"{digits}{n}") for n in range(3)]
    for n, item in enumerate(items):
        item.text = f"{marker} {n}"
    return items


async def run_until(
    processor: StreamProcessor[interaction_pb2.Interaction],
    producer: EventProducer,
    bootstrap: str,
    group: str,
    last: RecordMetadata,
) -> None:
    """Run ``processor`` until ``group`` committed past ``last``, then stop it."""
    await producer.start()
    await processor.start()
    partition = TopicPartition(last.topic, last.partition)
    try:

        async def committed_past_last() -> bool | None:
            assert processor.alive, "the stream processor died"
            committed = await committed_offset(bootstrap, group, partition)
            return True if committed is not None and committed > last.offset else None

        await eventually_async(committed_past_last, wait_seconds=40)
    finally:
        await processor.stop()
        await producer.stop()


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
        future: asyncio.Future[object] = await self.producer.send(
            self.topic, contract.encode(message), key=self.key
        )
        return future


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
    lost_at = first_state.calls.index(("lost", frozenset({partition.partition})))
    # Closed dirty, never clean, once the revocation gave up waiting for the batch.
    assert ("revoked", frozenset({partition.partition})) not in first_state.calls[:lost_at]
    outputs = await read_keyed(bootstrap, "alerts.v1", marker.encode(), expected=3)
    assert {kpi_pb2.Alert.FromString(r.value).summary for r in outputs} == {i.text for i in items}
    assert (
        await read_keyed(bootstrap, f"{TOPIC}.dlq", marker.encode(), expected=1, wait_seconds=3)
        == []
    )
