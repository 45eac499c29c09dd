"""Signatures of recent calls, to refuse an exact replay inside the replay window (pure).

A signed call's timestamp already bounds when it can be replayed; within that window the
same signature seen twice is a replay. Entries expire with their window, and the cache is
bounded: past ``max_entries`` the oldest are forgotten first (a replay of a forgotten call
is then still answered as a duplicate by the event-id cache, not published again).
"""

from __future__ import annotations


class RecentSignatures:
    def __init__(self, window_seconds: int, max_entries: int) -> None:
        self.window_seconds = window_seconds
        self.max_entries = max_entries
        # signature -> when it leaves the window; insertion order is roughly time order.
        self._expiry: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._expiry)

    def claim(self, signature: str, timestamp: int, now: float) -> bool:
        """Record a signature; False when it was already claimed inside the window."""
        self._forget_expired(now)
        key = signature.strip().lower()
        if key in self._expiry:
            return False
        while len(self._expiry) >= self.max_entries:
            del self._expiry[next(iter(self._expiry))]
        self._expiry[key] = timestamp + self.window_seconds
        return True

    def release(self, signature: str) -> None:
        """Forget a claimed signature (its call failed, so the sender may retry it as is)."""
        self._expiry.pop(signature.strip().lower(), None)

    def _forget_expired(self, now: float) -> None:
        while self._expiry:
            oldest = next(iter(self._expiry))
            if self._expiry[oldest] > now:
                return
            del self._expiry[oldest]
