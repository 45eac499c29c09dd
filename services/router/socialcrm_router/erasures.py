"""The erasure tombstones of authors known to this replica, whatever partition wrote them.

An erasure is applied by the owner of the erased interaction's partition, but the person's
message in flight may belong to another conversation, hence another partition. Each owner
writes its tombstones to its partition of the changelog; every replica's read view of the
whole changelog notes them here (``note``), so that each owner applies every tombstone:
to an interaction of that author arriving later (``erased_at``), and to the states it
already holds (``take_new``, at its next punctuation). Tombstones are forgotten once
their horizon has passed (``expire``), as their changelog records are.
"""

from __future__ import annotations

from datetime import datetime


class ErasedAuthors:
    def __init__(self, horizon_seconds: float) -> None:
        self.horizon_seconds = horizon_seconds
        self._erased: dict[str, datetime] = {}
        self._new: dict[str, datetime] = {}

    def note(self, key: str, at: datetime) -> None:
        held = self._erased.get(key)
        if held is None or at > held:
            self._erased[key] = at
            self._new[key] = at

    def forget(self, key: str) -> None:
        self._erased.pop(key, None)
        self._new.pop(key, None)

    def erased_at(self, key: str) -> datetime | None:
        """When the author of ``key`` was erased (None: not erased, or long ago)."""
        return self._erased.get(key)

    def take_new(self) -> dict[str, datetime]:
        """The tombstones noted since the last call."""
        new, self._new = self._new, {}
        return new

    def expire(self, now: float) -> None:
        gone = [k for k, at in self._erased.items() if at.timestamp() + self.horizon_seconds <= now]
        for key in gone:
            self.forget(key)

    def __len__(self) -> int:
        return len(self._erased)
