"""The event ids the KPIs applied, so that a redelivered event changes nothing (pure logic).

Upstream stages publish at least once: after a crash they publish some events again, with
the same event ids, seconds or minutes later. The ids are part of the kpi state (journal
and snapshots), so a redelivery is recognised after a kpi failover too. An id is kept
while its event time is within ``horizon_seconds`` of the watermark; an older redelivery
finds its windows closed anyway.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class SeenEvents:
    def __init__(self, horizon_seconds: float) -> None:
        self.horizon_seconds = horizon_seconds
        self._seen: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._seen

    def add(self, event_id: str, event_time: float) -> None:
        self._seen[event_id] = event_time

    def forget_before(self, watermark: float) -> None:
        """Forget the ids of events more than the horizon behind ``watermark``."""
        horizon = watermark - self.horizon_seconds
        self._seen = {k: at for k, at in self._seen.items() if at >= horizon}

    def to_entries(self) -> list[list[Any]]:
        """JSON-compatible state, one ``[event id, event time]`` entry per id."""
        return [[event_id, at] for event_id, at in self._seen.items()]

    def restore(self, entries: Iterable[list[Any]]) -> None:
        self._seen = {event_id: float(at) for event_id, at in entries}
