"""Finding 2 (and the router's half of 12) against the running platform: no record can
stop a stream.

A forum post of about 1 MB fits the broker, but the router's output, which embeds it, does
not: that record goes to ``social.enriched.v1.dlq`` with the reason, in a dead letter that
itself fits the limit, and the router stays healthy and routes what comes next. So does a
record whose date is out of the router's range (year 9999).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from socialcrm import contract
from socialcrm.settings import ServiceSettings
from socialcrm.v1 import common_pb2, enriched_pb2, routed_pb2
from socialcrm_devstack.stack import LocalStack
from tests.fixtures import events
from tests.fixtures.kafka import headers_of, publish_raw, read_keyed

pytestmark = [pytest.mark.security, pytest.mark.e2e]

ENRICHED = contract.topic_of(enriched_pb2.EnrichedInteraction)
ROUTED = contract.topic_of(routed_pb2.RoutedInteraction)
# The platform's record limit: the broker's message.max.bytes (its default).
LIMIT = ServiceSettings().kafka_max_message_bytes
# What a one-record batch adds to key and value on the broker (batch header, varints).
BATCH_OVERHEAD = 100


def forum_post(
    marker: str, n: int, text: str, occurred_at: datetime
) -> enriched_pb2.EnrichedInteraction:
    interaction = events.interaction(
        f"poison-{marker}-{n}",
        channel=common_pb2.CHANNEL_FORUM,
        occurred_at=occurred_at,
        producer="sentiment",
        text=text,
        is_public=True,
    )
    return events.enriched(interaction, language="en", sentiment_score=-0.6)


def as_large_as_the_broker_takes(event: enriched_pb2.EnrichedInteraction) -> None:
    """Pad the post's text until its record is just under the broker's limit."""
    target = LIMIT - BATCH_OVERHEAD - len(contract.key_of(event))
    filler = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. "
    missing = target - len(contract.encode(event))
    event.interaction.text += (filler * (missing // len(filler) + 1))[:missing]
    while len(contract.encode(event)) > target:  # the fields' lengths grew too
        event.interaction.text = event.interaction.text[:-1]


def test_a_record_whose_output_is_too_large_is_dead_lettered_and_routing_goes_on(
    platform: LocalStack,
) -> None:
    bootstrap = platform.kafka.bootstrap
    marker = uuid.uuid4().hex
    now = datetime.now(UTC)
    big = forum_post(marker, 0, "My parcel never arrived. ", now)
    as_large_as_the_broker_takes(big)
    far_future = forum_post(
        marker, 1, "Posted at the end of time", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    )
    normal = forum_post(marker, 2, "My parcel is late again", now)
    records = [(contract.key_of(m), contract.encode(m)) for m in (big, far_future, normal)]
    sent = asyncio.run(publish_raw(bootstrap, ENRICHED, records))

    [routed] = asyncio.run(
        read_keyed(bootstrap, ROUTED, records[2][0], expected=1, wait_seconds=60)
    )
    assert routed_pb2.RoutedInteraction.FromString(routed.value).enriched == normal
    assert httpx.get(f"{platform.url('router')}/healthz", timeout=10).status_code == 200

    dlq = f"{ENRICHED}.dlq"
    [dead] = asyncio.run(read_keyed(bootstrap, dlq, records[0][0], expected=1, wait_seconds=30))
    headers = headers_of(dead)
    assert headers["dlq.error_type"] == b"output_too_large"
    assert b"RoutedInteraction" in headers["dlq.reason"]
    assert headers["dlq.consumer"] == b"router"
    # The dead letter fits the limit: the value is cut, the source offset finds the original.
    assert len(dead.value) + len(dead.key or b"") < LIMIT - BATCH_OVERHEAD
    assert headers["dlq.value_truncated"] == b"true"
    envelope = contract.DeadLetter.FromString(dead.value)
    assert (envelope.source_topic, envelope.source_partition, envelope.source_offset) == (
        ENRICHED,
        sent[0].partition,
        sent[0].offset,
    )
    assert records[0][1].startswith(envelope.original_value)

    [out_of_range] = asyncio.run(read_keyed(bootstrap, dlq, records[1][0], expected=1))
    assert headers_of(out_of_range)["dlq.reason"]
    assert contract.DeadLetter.FromString(out_of_range.value).original_value == records[1][1]
    assert (
        asyncio.run(read_keyed(bootstrap, ROUTED, records[0][0], expected=1, wait_seconds=3)) == []
    )
