"""The sources' cursors, in a one-partition state store (one record per source name).

The poller runs as one replica: it owns the store's only partition from start to stop.
"""

from __future__ import annotations

import logging

from socialcrm.kafka.producer import EventProducer
from socialcrm.state import Codec, PartitionedStore
from socialcrm_ingest.poller.schedule import Cursor, cursor_from_json, cursor_to_json
from socialcrm_ingest.poller.settings import PollerSettings

log = logging.getLogger(__name__)

_PARTITION = 0


def _decode(value: bytes) -> Cursor:
    try:
        return cursor_from_json(value)
    except ValueError:
        # A cursor this version cannot read: poll that source again from its start.
        log.warning("unreadable poll cursor ignored")
        return Cursor()


CURSOR_CODEC = Codec[Cursor](encode=cursor_to_json, decode=_decode)


class PollStateStore:
    """The sources' cursors, restored at start, saved after each page's publication."""

    name = "poll-state"

    def __init__(self, settings: PollerSettings, producer: EventProducer) -> None:
        self.store = PartitionedStore(
            name="poll-cursors",
            settings=settings,
            producer=producer,
            topic=settings.poll_state_topic,
            input_topic=None,
            codec=CURSOR_CODEC,
            partitions=1,
        )

    async def start(self) -> None:
        await self.store.start()
        await self.store.assign([_PARTITION])
        log.info("poll cursors restored", extra={"sources": sorted(self.cursors)})

    async def stop(self) -> None:
        return None

    async def check(self) -> None:
        return None

    @property
    def cursors(self) -> dict[str, Cursor]:
        return dict(self.store.items(_PARTITION))

    def cursor(self, source: str) -> Cursor:
        held = self.store.get(_PARTITION, source)
        return Cursor() if held is None else held

    async def save(self, source: str, cursor: Cursor) -> None:
        """Store ``cursor`` and wait for the broker's acknowledgement."""
        self.store.put(_PARTITION, source, cursor)
        await self.store.flush()
