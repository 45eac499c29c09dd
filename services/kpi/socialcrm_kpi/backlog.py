"""Unanswered interactions per queue (pure logic: no I/O).

An interaction that needs a response opens an item; the first reply to it closes the
item. A reply read before its interaction (the two topics are read at their own pace) is
remembered, so that the interaction, when it comes, opens nothing. Both kinds of entry
older than ``max_age_seconds`` are dropped: nobody answers such items any more and they
would otherwise grow the state without bound.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# Replies whose interaction never came, at most: forged replies cannot grow the state.
MAX_EARLY_REPLIES = 100_000


def open_entry(event_id: str, queue: str, occurred_at: float) -> list[Any]:
    """The snapshot entry of an open item (read back by ``Backlog.restore``)."""
    return ["open", event_id, queue, occurred_at]


def answered_entry(event_id: str, occurred_at: float) -> list[Any]:
    """The snapshot entry of a reply read before its interaction."""
    return ["answered", event_id, occurred_at]


@dataclass(frozen=True)
class QueueBacklog:
    items: int
    oldest_age_seconds: float


class Backlog:
    def __init__(self, max_age_seconds: float) -> None:
        self.max_age_seconds = max_age_seconds
        self._open: dict[str, tuple[str, float]] = {}
        # Interaction event id -> event time of the reply read before it.
        self._answered: dict[str, float] = {}

    def open(self, event_id: str, queue: str, occurred_at: float) -> None:
        if self._answered.pop(event_id, None) is not None:
            return
        self._open.setdefault(event_id, (queue, occurred_at))

    def answer(self, event_id: str, occurred_at: float) -> bool:
        """Close the item of ``event_id``; False when it was not open (yet)."""
        if self._open.pop(event_id, None) is not None:
            return True
        self._answered[event_id] = occurred_at
        if len(self._answered) > MAX_EARLY_REPLIES:
            newest = sorted(self._answered.items(), key=lambda item: item[1])
            self._answered = dict(newest[len(newest) - MAX_EARLY_REPLIES // 2 :])
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
        self._answered = {k: at for k, at in self._answered.items() if at >= horizon}

    def to_entries(self) -> list[list[Any]]:
        """JSON-compatible state, one small entry per item (``open_entry``,
        ``answered_entry``)."""
        entries = [open_entry(k, q, at) for k, (q, at) in self._open.items()]
        entries.extend(answered_entry(k, at) for k, at in self._answered.items())
        return entries

    def restore(self, entries: Iterable[list[Any]]) -> None:
        """Replace the state by the entries of ``to_entries``."""
        self._open, self._answered = {}, {}
        for kind, event_id, *rest in entries:
            if kind == "open":
                queue, at = rest
                self._open[event_id] = (str(queue), float(at))
            else:
                self._answered[event_id] = float(rest[0])
