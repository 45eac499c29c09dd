"""Event-time watermarks per input partition (pure logic: no I/O).

Each input partition's watermark is the latest event time seen on it. The stream's
watermark is the lowest of them, so that a partition read ahead (catching up after a
deploy, say) cannot make the others' events late. A partition that has had no record
for ``idle_seconds`` and has nothing left to read is idle and does not hold the
watermark back; when every partition is idle, the caller advances on the wall clock.
A partition assigned but not read yet holds the watermark back until it is idle.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass

# (topic, partition)
PartitionId = tuple[str, int]


@dataclass
class _PartitionClock:
    event_time: float
    last_record_at: float


class PartitionWatermarks:
    def __init__(self, idle_seconds: float) -> None:
        self.idle_seconds = idle_seconds
        self._partitions: dict[PartitionId, _PartitionClock] = {}

    @property
    def partitions(self) -> frozenset[PartitionId]:
        return frozenset(self._partitions)

    def assign(self, partitions: Iterable[PartitionId], now: float) -> None:
        """Start following ``partitions`` (those already followed keep their watermark)."""
        for partition in partitions:
            self._partitions.setdefault(partition, _PartitionClock(-math.inf, now))

    def revoke(self, partitions: Iterable[PartitionId]) -> None:
        for partition in partitions:
            self._partitions.pop(partition, None)

    def observe(self, partition: PartitionId, event_time: float, now: float) -> None:
        """A record of ``partition`` with ``event_time`` was read at wall-clock ``now``."""
        clock = self._partitions.setdefault(partition, _PartitionClock(-math.inf, now))
        clock.event_time = max(clock.event_time, event_time)
        clock.last_record_at = now

    def watermark(self, now: float, caught_up: Collection[PartitionId]) -> float | None:
        """The lowest watermark of the partitions that are not idle; None when all are
        idle (or none is assigned): then only the wall clock can move time on."""
        active = [
            clock.event_time
            for partition, clock in self._partitions.items()
            if not (partition in caught_up and now - clock.last_record_at >= self.idle_seconds)
        ]
        return min(active) if active else None
