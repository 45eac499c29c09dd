"""Unanswered interactions per queue (pure logic: no I/O).

An interaction that needs a response opens an item; the first reply to it closes the
item. Items older than ``max_age_seconds`` are dropped: nobody answers them any more
and they would otherwise grow the state without bound.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class QueueBacklog:
    items: int
    oldest_age_seconds: float


class Backlog:
    def __init__(self, max_age_seconds: float) -> None:
        self.max_age_seconds = max_age_seconds
        self._open: dict[str, tuple[str, float]] = {}
        self._answered: set[str] = set()

    def open(self, event_id: str, queue: str, occurred_at: float) -> None:
        # A reply may arrive before its interaction is seen here (another consumer group).
        if event_id in self._answered:
            self._answered.discard(event_id)
            return
        self._open.setdefault(event_id, (queue, occurred_at))

    def answer(self, event_id: str) -> bool:
        """Close the item of ``event_id``; False when it was not open."""
        if self._open.pop(event_id, None) is not None:
            return True
        self._answered.add(event_id)
        return False

    def by_queue(self, now: float) -> dict[str, QueueBacklog]:
        """Open items and the age of the oldest one, per queue, at ``now``."""
        self.expire(now)
        oldest: dict[str, float] = {}
        counts: dict[str, int] = {}
        for queue, occurred_at in self._open.values():
            counts[queue] = counts.get(queue, 0) + 1
            oldest[queue] = min(oldest.get(queue, occurred_at), occurred_at)
        return {
            queue: QueueBacklog(counts[queue], max(0.0, now - oldest[queue])) for queue in counts
        }

    def expire(self, now: float) -> None:
        horizon = now - self.max_age_seconds
        self._open = {k: v for k, v in self._open.items() if v[1] >= horizon}
        # Replies whose interaction never came: keep a bounded memory of them.
        if len(self._answered) > 100_000:
            self._answered.clear()

    def to_states(self, shards: int) -> list[dict[str, Any]]:
        """JSON-compatible state split in ``shards`` parts (by event id)."""
        states: list[dict[str, Any]] = [{"open": {}} for _ in range(shards)]
        for event_id, (queue, occurred_at) in self._open.items():
            states[zlib.crc32(event_id.encode()) % shards]["open"][event_id] = [queue, occurred_at]
        return states

    def restore(self, *states: Mapping[str, Any]) -> None:
        """Replace the items by those of ``states`` (the parts of ``to_states``)."""
        self._open = {
            k: (str(q), float(at)) for state in states for k, (q, at) in state["open"].items()
        }
