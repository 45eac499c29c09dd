"""A read-only view of every partition of a changelog, kept up to date in the background.

For replicas that answer about state they may not own (an API in front of partitioned
state): what the owners wrote, a few milliseconds late. It never writes. Like a restore
(``socialcrm.state.fencing``), it skips a record stamped lower than one read before it in
its partition: a former owner's late writes never show.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord

from socialcrm.kafka.connection import partitions_of
from socialcrm.lifecycle import BackgroundTask
from socialcrm.settings import ServiceSettings
from socialcrm.state import metrics
from socialcrm.state.changelog import (
    changelog_consumer,
    ensure_changelog_topic,
    read_to_end,
)
from socialcrm.state.codec import Codec
from socialcrm.state.fencing import FENCE_KEY, Fences

log = logging.getLogger(__name__)

V = TypeVar("V")


class ChangelogView(Generic[V]):
    def __init__(
        self,
        *,
        name: str,
        settings: ServiceSettings,
        topic: str,
        input_topic: str,
        codec: Codec[V],
        keep: Callable[[V], bool] = lambda _: True,
    ) -> None:
        """``keep`` says which values the view holds (e.g. only open interactions): the
        others are dropped as if deleted, to spare memory on every replica."""
        self.name = name
        self.settings = settings
        self.topic = topic
        self.input_topic = input_topic
        self.codec = codec
        self.keep = keep
        self._values: dict[str, V] = {}
        self._fences = Fences()
        self._consumer: AIOKafkaConsumer | None = None
        self._follower = BackgroundTask(name, self._follow)

    def get(self, key: str) -> V | None:
        return self._values.get(key)

    async def start(self) -> None:
        """Read the changelog to its end, then follow it."""
        started = time.monotonic()
        partitions = await ensure_changelog_topic(
            self.settings, self.topic, await partitions_of(self.settings, self.input_topic)
        )
        consumer = changelog_consumer(self.settings, self.name)
        await consumer.start()
        self._consumer = consumer
        await read_to_end(consumer, dict.fromkeys(partitions), self._apply)
        seconds = time.monotonic() - started
        metrics.RESTORE_SECONDS.labels(self.name).set(seconds)
        metrics.KEYS.labels(self.name).set(len(self._values))
        log.info(
            "state restored",
            extra={"store": self.name, "keys": len(self._values), "seconds": round(seconds, 3)},
        )
        await self._follower.start()

    async def stop(self) -> None:
        await self._follower.stop()
        if self._consumer is not None:
            await self._consumer.stop()

    async def check(self) -> None:
        await self._follower.check()

    @property
    def alive(self) -> bool:
        return self._follower.alive

    def _apply(self, record: ConsumerRecord[bytes, bytes]) -> None:
        if record.key is None or not self._fences.admit(record.partition, record.headers):
            return
        if record.key == FENCE_KEY:
            return
        key = record.key.decode()
        value = None if record.value is None else self.codec.decode(record.value)
        if value is None or not self.keep(value):
            self._values.pop(key, None)
        else:
            self._values[key] = value

    async def _follow(self) -> None:
        assert self._consumer is not None
        keys = metrics.KEYS.labels(self.name)
        while True:
            try:
                for records in (await self._consumer.getmany(timeout_ms=1000)).values():
                    for record in records:
                        self._apply(record)
                keys.set(len(self._values))
            except Exception:
                log.exception("changelog view could not read; retrying", extra={"view": self.name})
                await asyncio.sleep(1.0)
