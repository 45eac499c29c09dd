"""The edges of a webhook call: capped body reading, record sizes, whole publication."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import cast

import pytest

from socialcrm.kafka.producer import EventProducer
from socialcrm.v1 import common_pb2, interaction_pb2
from socialcrm_ingest.webhooks.publishing import (
    BodyTooLarge,
    NotAcknowledged,
    publish_all,
    read_capped,
    record_size_problem,
)


class Chunks:
    """A streamed body of ``count`` chunks, counting how many were read."""

    def __init__(self, count: int, size: int) -> None:
        self.count, self.size, self.read = count, size, 0

    async def stream(self) -> AsyncIterator[bytes]:
        for _ in range(self.count):
            self.read += 1
            yield b"x" * self.size


async def test_a_body_within_the_cap_is_read_whole() -> None:
    assert await read_capped(Chunks(4, 10).stream(), 40) == b"x" * 40


async def test_reading_stops_at_the_chunk_that_passes_the_cap() -> None:
    chunks = Chunks(300_000, 1_000)  # a 300 MB upload, never produced whole
    with pytest.raises(BodyTooLarge):
        await read_capped(chunks.stream(), 10_000)
    assert chunks.read == 11


def item(event_id: str, text: str = "bonjour") -> interaction_pb2.Interaction:
    return interaction_pb2.Interaction(
        header=common_pb2.EventHeader(event_id=event_id), conversation_id="c-1", text=text
    )


def test_an_event_over_the_brokers_limit_is_named_with_the_limit() -> None:
    assert record_size_problem([item("a"), item("b")], 1_000) is None
    problem = record_size_problem([item("a"), item("b", "x" * 2_000)], 1_000)
    assert problem is not None
    assert problem.startswith("item 1: its event is ")
    assert "over the broker's limit of 1000 bytes (kafka_max_message_bytes)" in problem


class Broker:
    """Acknowledges the events whose id is not in ``silent``; never answers the others."""

    def __init__(self, silent: set[str]) -> None:
        self.silent = silent

    async def publish(self, message: interaction_pb2.Interaction) -> asyncio.Future[object]:
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        if message.header.event_id not in self.silent:
            future.set_result(None)
        return future


async def test_a_call_acknowledged_whole_returns() -> None:
    producer = cast(EventProducer, Broker(set()))
    await publish_all(producer, [item("a"), item("b")], 1)


async def test_a_partial_acknowledgement_names_what_was_acknowledged() -> None:
    producer = cast(EventProducer, Broker({"b"}))
    with pytest.raises(NotAcknowledged) as refused:
        await publish_all(producer, [item("a"), item("b"), item("c")], 0.05)
    assert refused.value.acknowledged == ["a", "c"]
    assert refused.value.total == 3
