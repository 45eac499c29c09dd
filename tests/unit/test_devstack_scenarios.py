"""The demo's scenarios: what the stream sends when, how agents answer, the demo's rules."""

from __future__ import annotations

import json
import random
from importlib import resources
from typing import Any

import pytest

from socialcrm_devstack.demo_rules import demo_rules_text
from socialcrm_devstack.demo_stream import BURST_POSTS, INFLUENTIAL_FOLLOWERS, DemoStream
from socialcrm_devstack.scenarios import (
    QUICK,
    SCENARIOS,
    STEADY,
    STORY,
    Agents,
    Phase,
    ReplyPlan,
    plan_reply,
    reply_due,
    reply_text,
)
from socialcrm_router.rules import DEFAULT_RULES_RESOURCE, parse_rules


def test_the_story_shows_the_burst_within_the_first_two_minutes() -> None:
    assert STORY.burst is not None
    assert 60 <= STORY.burst.starts_after <= 90
    assert STORY.burst.starts_after + STORY.burst.lasts <= 150
    assert STORY.phase(10) is Phase.STEADY
    assert STORY.phase(STORY.burst.starts_after + 1) is Phase.BURST
    assert STORY.phase(STORY.burst.starts_after + STORY.burst.lasts) is Phase.AFTER_BURST
    assert STEADY.phase(1_000) is Phase.STEADY
    assert set(SCENARIOS) == {"story", "quick", "steady"}


def test_burst_posts_are_due_at_the_burst_rate_only_while_it_runs() -> None:
    burst = STORY.burst
    assert burst is not None
    assert burst.posts_due(5, burst.starts_after - 1) == 0
    assert burst.posts_due(5, burst.starts_after + 2) == 30  # 3 x 5 posts/s for 2 s
    assert burst.posts_due(5, burst.starts_after + burst.lasts + 100) == 15 * burst.lasts
    assert burst.rate(0.5) == burst.min_rate


@pytest.mark.parametrize("scenario", [STORY, QUICK, STEADY])
@pytest.mark.parametrize("rate", [1.0, 5.0, 10.0, 50.0])
def test_steady_traffic_stays_under_the_spike_minimum_and_the_burst_clears_it(
    scenario: Any, rate: float
) -> None:
    env = scenario.kpi_env(rate)
    bucket = int(env["SPIKE_BUCKET_SECONDS"])
    minimum = int(env["SPIKE_MIN_COUNT"])
    # Every post of the steady stream in one bucket: the "all" series at its fullest.
    assert rate * bucket * 1.5 <= minimum
    if scenario.burst is not None:
        assert (rate + scenario.burst.rate(rate)) * bucket >= 2 * minimum
        history = bucket * int(env["SPIKE_MIN_HISTORY_BUCKETS"])
        # The detector has its history (plus a partial first bucket) before the burst.
        assert history + bucket <= scenario.burst.starts_after


def test_agents_answer_a_share_some_late_fewer_and_later_during_the_burst() -> None:
    agents = Agents()
    rng = random.Random(1)
    steady = [plan_reply(agents, Phase.STEADY, rng) for _ in range(4_000)]
    burst = [plan_reply(agents, Phase.BURST, rng) for _ in range(4_000)]

    def shares(plans: list[ReplyPlan | None]) -> tuple[float, float, float]:
        answered = [p for p in plans if p is not None]
        late = sum(p.sla_fraction > 1 for p in answered) / len(answered)
        resolved = sum(p.resolves for p in answered) / len(answered)
        return len(answered) / len(plans), late, resolved

    answered, late, resolved = shares(steady)
    assert answered == pytest.approx(agents.answered_share, abs=0.03)
    assert late == pytest.approx(agents.late_share, abs=0.03)
    assert resolved == pytest.approx(agents.resolved_share, abs=0.03)
    answered_in_burst, late_in_burst, _ = shares(burst)
    assert answered_in_burst < answered
    assert late_in_burst > late


def test_a_reply_is_due_at_its_fraction_of_the_sla_window() -> None:
    assert reply_due(1_000.0, 1_060.0, ReplyPlan(0.5, resolves=False)) == 1_030.0
    assert reply_due(1_000.0, 1_060.0, ReplyPlan(1.5, resolves=True)) == 1_090.0
    assert reply_due(1_000.0, 990.0, ReplyPlan(0.5, resolves=False)) == 1_000.0


def test_agents_answer_french_queues_in_french() -> None:
    assert reply_text("customer-service-fr", resolves=False).startswith("Bonjour")
    assert reply_text("customer-service-en", resolves=True).startswith("Hello")


def test_the_burst_is_negative_tweets_from_many_authors_the_first_one_influential() -> None:
    stream = DemoStream(seed=3)
    first = json.loads(stream.burst_delivery(20).body)["tweet_create_events"]
    later = json.loads(stream.burst_delivery(20).body)["tweet_create_events"]
    assert first[0]["user"]["followers_count"] == INFLUENTIAL_FOLLOWERS
    assert first[0]["user"]["verified"] is True
    assert all(t["user"]["followers_count"] != INFLUENTIAL_FOLLOWERS for t in later)
    authors = {t["user"]["id_str"] for t in first + later}
    assert len(authors) > 20
    texts = set(BURST_POSTS["fr"] + BURST_POSTS["en"])
    assert all(t["text"].replace("AcmeFrance", "{brand}") in texts for t in first + later)
    assert stream.burst_delivery(0).events == 0


def test_the_demo_rules_are_the_defaults_with_an_hour_of_sla_a_minute() -> None:
    text = resources.files("socialcrm_router").joinpath(DEFAULT_RULES_RESOURCE).read_text()
    default, demo = parse_rules(text), parse_rules(demo_rules_text(text))
    assert demo.version.startswith("demo-")
    assert demo.rules == default.rules
    assert demo.queues == default.queues
    for channel, priority in [("x", "high"), ("facebook", "normal"), ("x", "urgent")]:
        expected = default.sla_for(channel, priority, "standard").total_seconds() / 60
        assert demo.sla_for(channel, priority, "standard").total_seconds() == expected
    assert demo.sla_for("x", "high", "standard").total_seconds() == 45
    assert demo.escalation.second_level_after.total_seconds() == 60


def test_agents_look_again_later_each_time_a_lagging_pipeline_has_not_routed_it() -> None:
    agents = Agents(first_look_after=3.0, look_again_after=3.0, looks=5)
    waits = [agents.first_look_after] + [agents.next_look_after(n) for n in range(1, agents.looks)]
    assert waits == [3.0, 3.0, 6.0, 12.0, 24.0]
