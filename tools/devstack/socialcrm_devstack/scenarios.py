"""The demo's scenarios: what the stream sends when, and how the agents answer (pure logic).

A scenario is steady bilingual traffic on every channel, optionally a viral negative burst
on one subject (``Burst``) and agents answering part of the queue through the router's
reply API (``Agents``): some within the SLA, some late, some resolving the case, the rest
left to breach and escalate. Times are seconds since the stream started.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from enum import StrEnum


class Phase(StrEnum):
    STEADY = "steady traffic"
    BURST = "viral burst under way"
    AFTER_BURST = "after the burst"


@dataclass(frozen=True)
class Burst:
    """A viral negative burst: many authors on one subject, one of them influential."""

    starts_after: float
    lasts: float
    # Burst posts per second: a multiple of the steady rate, and at least ``min_rate``, so
    # that a bucket of the burst holds twice the spike detector's minimum count (see
    # ``Scenario.kpi_env``).
    rate_factor: float = 3.0
    min_rate: float = 4.0

    def rate(self, steady_rate: float) -> float:
        return max(self.rate_factor * steady_rate, self.min_rate)

    def posts_due(self, steady_rate: float, elapsed: float) -> int:
        """Burst posts that should have been sent ``elapsed`` seconds into the stream."""
        running = min(elapsed, self.starts_after + self.lasts) - self.starts_after
        return math.floor(self.rate(steady_rate) * running) if running > 0 else 0


@dataclass(frozen=True)
class Agents:
    """How agents work the queue. While the burst runs they are overwhelmed: they answer a
    smaller share, and more of it late."""

    answered_share: float = 0.6
    answered_share_in_burst: float = 0.3
    late_share: float = 0.25
    late_share_in_burst: float = 0.6
    resolved_share: float = 0.4
    # An agent first opens an interaction this long after it was sent (the pipeline routes
    # it within a second or two), then again after twice as long each time until it is
    # tracked or ``looks`` are spent: 3+3+6+12+24 s covers a pipeline lagging by 45 s, as
    # seen at start-up on a loaded machine (an interaction routed without a needed
    # response is never tracked).
    first_look_after: float = 3.0
    look_again_after: float = 3.0
    looks: int = 5

    def next_look_after(self, looks_done: int) -> float:
        return self.look_again_after * 2.0 ** (looks_done - 1)


@dataclass(frozen=True)
class ReplyPlan:
    # The reply goes out when this fraction of the SLA window has passed: above 1 is late.
    sla_fraction: float
    resolves: bool


def plan_reply(agents: Agents, phase: Phase, rng: random.Random) -> ReplyPlan | None:
    """Whether agents will answer an interaction sent in ``phase``, and when; None: nobody
    answers it, so it breaches its SLA and escalates."""
    in_burst = phase is Phase.BURST
    answered = agents.answered_share_in_burst if in_burst else agents.answered_share
    if rng.random() >= answered:
        return None
    late = agents.late_share_in_burst if in_burst else agents.late_share
    fraction = rng.uniform(1.15, 1.6) if rng.random() < late else rng.uniform(0.15, 0.7)
    return ReplyPlan(sla_fraction=fraction, resolves=rng.random() < agents.resolved_share)


def reply_due(sent_at: float, sla_deadline: float, plan: ReplyPlan) -> float:
    """When (epoch seconds) the planned reply goes out."""
    return sent_at + plan.sla_fraction * max(0.0, sla_deadline - sent_at)


def reply_text(queue: str, resolves: bool) -> str:
    """An agent's answer, in French for the French queues."""
    if queue.endswith("-fr") or queue == "billing":
        if resolves:
            return "Bonjour, c'est réglé de notre côté : votre commande repart aujourd'hui."
        return "Bonjour, nous regardons votre demande et revenons vers vous rapidement."
    if resolves:
        return "Hello, this is sorted: your order ships today. Sorry for the wait."
    return "Hello, we are looking into it and will get back to you shortly."


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    burst: Burst | None = None
    agents: Agents | None = None
    # kpi's spike detector: its defaults (60 s buckets, 15 of history) need 15 minutes of
    # traffic before anything can alert; the demo shows a burst within minutes.
    spike_bucket_seconds: int = 10
    spike_history_buckets: int = 6

    def phase(self, elapsed: float) -> Phase:
        if self.burst is None or elapsed < self.burst.starts_after:
            return Phase.STEADY
        if elapsed < self.burst.starts_after + self.burst.lasts:
            return Phase.BURST
        return Phase.AFTER_BURST

    def kpi_env(self, steady_rate: float) -> dict[str, str]:
        """kpi's spike settings for this scenario at ``steady_rate`` posts per second.

        The detector's baseline starts from the first bucket it closes, often a partial
        one, and learns slowly (EWMA, weight 0.1), so for its first minutes it underrates
        steady traffic. A minimum count of twice the steady volume of a bucket keeps steady
        traffic from alerting; the burst (four times the steady volume) clears it.
        """
        steady_per_bucket = steady_rate * self.spike_bucket_seconds
        # Windows close 5 s after a partition goes idle and 10 s after their end, not the
        # failover-proof 45 s and 60 s: a five-minute story shows its windows as they close.
        return {
            "KPI_IDLE_PARTITION_SECONDS": "5",
            "KPI_ALLOWED_LATENESS_SECONDS": "10",
            "SPIKE_BUCKET_SECONDS": str(self.spike_bucket_seconds),
            "SPIKE_MIN_HISTORY_BUCKETS": str(self.spike_history_buckets),
            "SPIKE_MIN_COUNT": str(max(20, math.ceil(2 * steady_per_bucket))),
        }


STORY = Scenario(
    "story",
    "the default, everything within about five minutes: steady bilingual traffic (60% "
    "French) on every channel; agents answering part of the queue through the reply API, "
    "some within the SLA, some late, some resolving the case, the rest breaching and "
    "escalating; from 75 s to 120 s a viral negative burst about a delivery outage from "
    "many authors, one of them influential, which pages",
    burst=Burst(starts_after=75, lasts=45),
    agents=Agents(),
)
QUICK = Scenario(
    "quick",
    "the story compressed for tests: burst from 25 s to 60 s, 5-second spike buckets",
    # The burst outlasts a few scrapes even when kpi catches up a lag of tens of seconds
    # (its spike gauge is up for the burst's event time, which a catch-up compresses).
    burst=Burst(starts_after=25, lasts=35, min_rate=8.0),
    agents=Agents(first_look_after=2.0, look_again_after=2.0),
    spike_bucket_seconds=5,
    spike_history_buckets=3,
)
STEADY = Scenario(
    "steady",
    "steady bilingual traffic on every channel only: no burst, nobody answers",
)
SCENARIOS = {scenario.name: scenario for scenario in (STORY, QUICK, STEADY)}
