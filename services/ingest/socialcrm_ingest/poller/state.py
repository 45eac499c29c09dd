"""The sources' cursors, kept in a compacted topic (one record per source name)."""

from __future__ import annotations

import logging

from aiokafka import AIOKafkaConsumer

from socialcrm.kafka import EventProducer, client_id, ensure_compacted_topic
from socialcrm_ingest.poller.schedule import Cursor, cursor_from_json, cursor_to_json
from socialcrm_ingest.poller.settings import PollerSettings

log = logging.getLogger(__name__)


class PollStateStore:
    """The sources' cursors, kept in a compacted topic (one record per source name)."""

    name = "poll-state"

    def __init__(self, settings: PollerSettings, producer: EventProducer) -> None:
        self.settings = settings
        self.producer = producer
        self.topic = settings.poll_state_topic
        self.cursors: dict[str, Cursor] = {}

    async def start(self) -> None:
        # One partition: a handful of records, read whole at every start.
        partitions = await ensure_compacted_topic(self.settings, self.topic, partitions=1)
        await self.producer.producer.partitions_for(self.topic)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            client_id=client_id(self.settings) + "-poll-state",
            group_id=None,
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            end = await consumer.end_offsets(partitions)
            while [p for p in partitions if await consumer.position(p) < end[p]]:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for record in records:
                        self._apply(record.key, record.value)
        finally:
            await consumer.stop()
        log.info("poll cursors restored", extra={"sources": sorted(self.cursors)})

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        if value is None:
            self.cursors.pop(key.decode(), None)
            return
        try:
            self.cursors[key.decode()] = cursor_from_json(value)
        except ValueError:
            log.warning("unreadable poll cursor ignored", extra={"source": key.decode()})

    async def stop(self) -> None:
        return None

    async def check(self) -> None:
        return None

    def cursor(self, source: str) -> Cursor:
        return self.cursors.get(source, Cursor())

    async def save(self, source: str, cursor: Cursor) -> None:
        """Store ``cursor`` and wait for the broker's acknowledgement."""
        future = await self.producer.producer.send(
            self.topic, cursor_to_json(cursor), key=source.encode()
        )
        await future
        self.cursors[source] = cursor
