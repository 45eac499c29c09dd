"""The edges of a webhook call: its body read under a cap, its events published whole.

A body is read chunk by chunk and refused as soon as it passes the cap, so memory never
holds more than the cap, whatever the sender declares (or does not, when chunked).

Publication is all or nothing as far as ingest can decide: every check (fields, items per
call, record size) is done before the first record is sent, so a refusal never follows a
partial publication. Only the broker can still fail in the middle; the events it did
acknowledge are then reported, so that ingest remembers them and the network's retry
publishes only the rest (and consumers are idempotent on the event id anyway).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from aiokafka.errors import KafkaError
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from socialcrm import contract
from socialcrm.kafka.producer import EventProducer
from socialcrm.telemetry import inject_headers
from socialcrm.v1 import interaction_pb2


class BodyTooLarge(Exception):
    """The body passed the cap; reading stopped there."""


class NotAcknowledged(Exception):
    """The broker did not acknowledge every event in time."""

    def __init__(self, acknowledged: list[str], total: int) -> None:
        super().__init__(f"{len(acknowledged)} of {total} events acknowledged")
        self.acknowledged = acknowledged
        self.total = total


async def read_capped(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """The whole body, or BodyTooLarge as soon as more than ``limit`` bytes arrived."""
    body = bytearray()
    async for chunk in chunks:
        if len(body) + len(chunk) > limit:
            raise BodyTooLarge
        body += chunk
    return bytes(body)


def record_size_problem(
    interactions: Sequence[interaction_pb2.Interaction], limit: int
) -> str | None:
    """Why an interaction's record would be refused by the broker (None: all fit).

    The size is the producer's own estimate (key, value, trace headers, batch overhead),
    so what passes here is what the producer accepts.
    """
    headers = inject_headers()
    for index, interaction in enumerate(interactions):
        size = DefaultRecordBatchBuilder.estimate_size_in_bytes(
            contract.key_of(interaction), contract.encode(interaction), headers
        )
        if size > limit:
            return (
                f"item {index}: its event is {size} bytes, over the broker's limit of "
                f"{limit} bytes (kafka_max_message_bytes)"
            )
    return None


async def publish_all(
    producer: EventProducer,
    interactions: Sequence[interaction_pb2.Interaction],
    wait_seconds: float,
) -> None:
    """Publish and wait for the broker's acknowledgement of every event.

    Raises NotAcknowledged, naming the events that were acknowledged, when the broker
    fails or does not answer within ``wait_seconds``.
    """
    sent: list[tuple[str, asyncio.Future[object]]] = []
    failure: BaseException | None = None
    try:
        async with asyncio.timeout(wait_seconds):
            for interaction in interactions:
                sent.append((interaction.header.event_id, await producer.publish(interaction)))
            if sent:
                # asyncio.wait, unlike gather, leaves the futures alone when it is cancelled.
                await asyncio.wait([future for _, future in sent])
    except (KafkaError, TimeoutError) as exc:
        failure = exc
    acknowledged = [
        event_id
        for event_id, future in sent
        if future.done() and not future.cancelled() and future.exception() is None
    ]
    if failure is not None or len(acknowledged) < len(interactions):
        raise NotAcknowledged(acknowledged, len(interactions)) from failure
