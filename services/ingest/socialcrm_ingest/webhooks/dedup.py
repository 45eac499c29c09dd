"""A bounded memory of the event ids ingest published recently (pure, no I/O).

Networks redeliver webhooks (timeouts, retries) and polls overlap; answering those
from memory saves the broker and every consumer a duplicate record. It is only an
optimisation: consumers are idempotent on ``event_id``, so an id forgotten (cache full,
restart, another replica) is published again and still counts once downstream.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable


class RecentIds:
    """The ``capacity`` most recently seen ids, least recently seen forgotten first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(capacity, 0)
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def unseen(self, event_ids: Iterable[str]) -> list[str]:
        """The ids not seen recently, each once, in their order."""
        fresh: dict[str, None] = {}
        for event_id in event_ids:
            if event_id in self._ids:
                self._ids.move_to_end(event_id)
            else:
                fresh[event_id] = None
        return list(fresh)

    def remember(self, event_ids: Iterable[str]) -> None:
        """Record ids once the broker acknowledged them."""
        if not self.capacity:
            return
        for event_id in event_ids:
            self._ids[event_id] = None
            self._ids.move_to_end(event_id)
        while len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
