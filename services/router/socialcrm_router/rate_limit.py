"""Token buckets on the reply API: per agent and per interaction (pure logic, any clock).

Each request takes one token of the agent's bucket and one of the interaction's; a bucket
refills at its rate up to its burst. Without a token in both, nothing is taken and the
caller learns how long to wait. Buckets are per replica (a caller spread over N replicas
gets up to N times the rate); full buckets are dropped, so memory follows the active
callers only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from socialcrm.errors import DomainError

# Buckets held before the full ones are swept out.
SWEEP_ABOVE = 10_000


class TooManyReplies(DomainError):
    status_code = 429

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(max(1, math.ceil(retry_after)))}


@dataclass(frozen=True)
class Rate:
    per_second: float
    burst: float


class Buckets:
    def __init__(self, rate: Rate) -> None:
        self.rate = rate
        self._held: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def tokens(self, key: str, now: float) -> float:
        tokens, at = self._held.get(key, (self.rate.burst, now))
        return min(self.rate.burst, tokens + (now - at) * self.rate.per_second)

    def wait(self, key: str, now: float) -> float:
        """Seconds until ``key`` has a token (0: it has one)."""
        missing = 1.0 - self.tokens(key, now)
        return 0.0 if missing <= 0 else missing / self.rate.per_second

    def take(self, key: str, now: float) -> None:
        self._held[key] = (self.tokens(key, now) - 1.0, now)
        if len(self._held) > SWEEP_ABOVE:
            self._held = {
                k: held for k, held in self._held.items() if self.tokens(k, now) < self.rate.burst
            }

    def __len__(self) -> int:
        return len(self._held)


class ReplyLimiter:
    def __init__(self, per_agent: Rate, per_interaction: Rate, clock: Callable[[], float]) -> None:
        self.agents = Buckets(per_agent)
        self.interactions = Buckets(per_interaction)
        self.clock = clock

    def take(self, agent_id: str, interaction_event_id: str) -> None:
        """One request of ``agent_id`` on the interaction; TooManyReplies when either
        bucket is empty."""
        now = self.clock()
        agent_wait = self.agents.wait(agent_id, now)
        interaction_wait = self.interactions.wait(interaction_event_id, now)
        if agent_wait > 0:
            raise TooManyReplies(
                f"agent {agent_id!r} is over {self.agents.rate.per_second:g} replies a second"
                f" (burst {self.agents.rate.burst:g})",
                max(agent_wait, interaction_wait),
            )
        if interaction_wait > 0:
            raise TooManyReplies(
                f"interaction {interaction_event_id!r} is over"
                f" {self.interactions.rate.per_second * 60:g} replies a minute"
                f" (burst {self.interactions.rate.burst:g})",
                interaction_wait,
            )
        self.agents.take(agent_id, now)
        self.interactions.take(interaction_event_id, now)
