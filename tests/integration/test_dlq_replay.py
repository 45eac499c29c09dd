"""Dead letters are replayed to their source topic after a fix, once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest
from aiokafka import ConsumerRecord
from google.protobuf.message import Message

from socialcrm import contract
from socialcrm.dlq import may_replay_to, replay, replay_of
from socialcrm.kafka.admin import ensure_topics
from socialcrm.kafka.processor import StreamProcessor
from socialcrm.kafka.producer import EventProducer
from socialcrm.settings import ServiceSettings
from socialcrm.v1 import common_pb2, interaction_pb2
from tests.conftest import Infra
from tests.fixtures import events
from tests.fixtures.kafka import publish_raw, read_keyed, read_to_end
from tests.fixtures.waiting import eventually_async

pytestmark = pytest.mark.integration


def test_replay_restores_the_original_record_without_dead_letter_headers() -> None:
    envelope = contract.DeadLetter(
        source_topic="social.routed.v1",
        original_key=b"k",
        original_value=b"v",
        original_headers={"traceparent": b"00-abc", "dlq.reason": b"old"},
    )
    replayed = replay_of(envelope)
    assert (replayed.topic, replayed.key, replayed.value) == ("social.routed.v1", b"k", b"v")
    assert replayed.headers == [("traceparent", b"00-abc")]


def test_a_dead_letter_goes_back_only_to_the_topic_it_came_from_or_an_allowed_one() -> None:
    assert may_replay_to("social.routed.v1.dlq", "social.routed.v1")
    assert not may_replay_to("social.routed.v1.dlq", "router.sla-commands.v1")
    assert not may_replay_to("social.routed.v1.dlq", "social.routed.v1.dlq")
    assert may_replay_to("social.routed.v1.dlq", "social.routed.v2", ["social.routed.v2"])


async def test_an_allowed_topic_takes_the_dead_letters_naming_it(infra: Infra) -> None:
    marker = uuid.uuid4().hex[:8]
    source, other = f"test.replay-{marker}.v1", f"test.replay-{marker}.v2"
    dlq = contract.dlq_topic(source)
    settings = ServiceSettings(kafka_bootstrap_servers=infra.kafka.bootstrap, topic_partitions=1)
    await ensure_topics(settings, [source, dlq, other])
    moved = contract.DeadLetter(source_topic=other, original_key=b"k", original_value=b"v")
    await publish_raw(infra.kafka.bootstrap, dlq, [(b"k", moved.SerializeToString())])

    dry = await replay(infra.kafka.bootstrap, dlq, None, dry_run=True)
    assert (dry.replayed, dry.refused) == (0, 1)
    counts = await replay(infra.kafka.bootstrap, dlq, None, dry_run=False, allowed_topics=[other])
    assert (counts.replayed, counts.refused) == (1, 0)
    assert [(r.key, r.value) for r in await read_to_end(infra.kafka.bootstrap, other)] == [
        (b"k", b"v")
    ]


async def test_handler_failures_are_processed_after_replay(infra: Infra) -> None:
    settings = ServiceSettings(kafka_bootstrap_servers=infra.kafka.bootstrap, topic_partitions=1)
    await ensure_topics(settings, contract.all_topics())
    marker = f"replay-{uuid.uuid4().hex}"
    handled: list[str] = []
    first_handled = asyncio.Event()
    broken = True

    async def handler(
        event: interaction_pb2.Interaction, _: ConsumerRecord[bytes, bytes]
    ) -> Sequence[Message]:
        if event.conversation_id == marker:
            if broken:
                raise RuntimeError("bug in the handler")
            handled.append(event.header.event_id)
            first_handled.set()
        return []

    producer = EventProducer(settings)
    processor = StreamProcessor(
        settings=settings,
        group_id=f"test-{marker}",
        input_type=interaction_pb2.Interaction,
        handler=handler,
        producer=producer,
    )
    event = events.interaction(marker, channel=common_pb2.CHANNEL_FORUM)
    await producer.start()
    await processor.start()
    try:
        await producer.publish_and_wait(event)
        dlq = contract.dlq_topic(contract.topic_of(interaction_pb2.Interaction))
        assert await read_keyed(infra.kafka.bootstrap, dlq, marker.encode(), 1, wait_seconds=30)
        broken = False  # the fix is deployed
        await replay(infra.kafka.bootstrap, dlq, error_type="handler_error", dry_run=False)
        await asyncio.wait_for(first_handled.wait(), timeout=30)
        assert handled == [event.header.event_id]
        # A second replay finds nothing new: progress is committed. A later record of the
        # same conversation (same key, same partition, so read after anything the replay
        # wrote) shows it: nothing was handled between the two.
        await replay(infra.kafka.bootstrap, dlq, error_type=None, dry_run=False)
        later = events.interaction(conversation_id=marker, channel=common_pb2.CHANNEL_FORUM)
        await producer.publish_and_wait(later)

        async def later_handled() -> bool | None:
            return True if len(handled) > 1 else None

        await eventually_async(later_handled, wait_seconds=30)
        assert handled == [event.header.event_id, later.header.event_id]
    finally:
        await processor.stop()
        await producer.stop()
