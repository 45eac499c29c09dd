"""The deadline-ordered index of an owner's SLA timers, per owned partition (pure logic).

Each owned partition has a min-heap of (when, interaction event id): the next escalation
level of an open interaction, else the state's expiry (see expiry.py): every state held has
a timer. Entries made stale by later changes stay in the heap and are recognised when
popped: the owner looks at the state held and schedules it again.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from socialcrm.v1.routed_pb2 import InteractionSlaState
from socialcrm_router.expiry import Horizons, expires_at, is_erased_author
from socialcrm_router.sla import next_due


class SlaTimers:
    def __init__(self, horizons: Horizons) -> None:
        self.horizons = horizons
        self._heaps: dict[int, list[tuple[float, str]]] = {}

    def when(self, state: InteractionSlaState) -> float:
        """When the state next needs the owner: a level due, else its expiry."""
        due = None if is_erased_author(state) else next_due(state)
        return expires_at(state, self.horizons) if due is None else due

    def schedule(self, partition: int, state: InteractionSlaState) -> None:
        at = self.when(state)
        heapq.heappush(self._heaps.setdefault(partition, []), (at, state.interaction_event_id))

    def rebuild(self, partition: int, states: Iterable[InteractionSlaState]) -> None:
        """The index of a partition just restored."""
        heap = [(self.when(state), state.interaction_event_id) for state in states]
        heapq.heapify(heap)
        self._heaps[partition] = heap

    def drop(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            self._heaps.pop(partition, None)

    def pop_due(self, partition: int, at: float, limit: int) -> list[str]:
        """Up to ``limit`` distinct keys due at ``at`` in ``partition``, earliest first."""
        heap, keys = self._heaps.get(partition, []), dict[str, None]()
        while heap and heap[0][0] <= at and len(keys) < limit:
            keys[heapq.heappop(heap)[1]] = None
        return list(keys)

    def pending(self) -> int:
        return sum(len(heap) for heap in self._heaps.values())
