"""Viral-spike detection: replays of a calm synthetic stream, with and without a burst."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator

import pytest

from socialcrm_kpi.spikes import (
    Post,
    Spike,
    SpikeDetector,
    SpikeSettings,
    poisson_upper_tail,
    threshold_count,
)

DAY = 86_400
START = 1_700_000_000 - 1_700_000_000 % DAY  # a midnight UTC


def poisson_arrivals(
    rng: random.Random, start: float, end: float, rate_per_second: float
) -> Iterator[float]:
    """Event times of a Poisson process of ``rate_per_second`` between start and end."""
    at = start + rng.expovariate(rate_per_second)
    while at < end:
        yield at
        at += rng.expovariate(rate_per_second)


def replay(detector: SpikeDetector, times: list[float], rng: random.Random) -> list[Spike]:
    spikes = []
    for index, at in enumerate(sorted(times)):
        author = f"user{rng.randrange(500)}"
        post = Post(f"event-{index}", author, reach=rng.random())
        spike = detector.observe("acme", "all", at, post)
        if spike is not None:
            spikes.append(spike)
    return spikes


def calm_stream(rng: random.Random, hours: float) -> list[float]:
    return list(poisson_arrivals(rng, START, START + hours * 3600, rate_per_second=0.5))


def test_calm_stream_raises_no_alert() -> None:
    rng = random.Random(7)
    assert replay(SpikeDetector(), calm_stream(rng, hours=3), rng) == []


def test_burst_alerts_within_60_seconds_of_its_start() -> None:
    rng = random.Random(11)
    burst_start = START + 2 * 3600 + 37  # mid-bucket: detection must not wait for its end
    times = calm_stream(rng, hours=3)
    times += poisson_arrivals(rng, burst_start, burst_start + 300, rate_per_second=3.0)
    [spike] = replay(SpikeDetector(), times, rng)
    assert burst_start <= spike.detected_at <= burst_start + 60
    assert spike.count >= 20
    assert spike.baseline == pytest.approx(30, rel=0.3)
    assert spike.score >= 6
    assert len(spike.top_posts) == 5
    reaches = [post.reach for post in spike.top_posts]
    assert reaches == sorted(reaches, reverse=True)
    assert [reach for _, reach in spike.top_authors] == sorted(
        (reach for _, reach in spike.top_authors), reverse=True
    )


def test_burst_starting_at_a_bucket_end_still_alerts_within_60_seconds() -> None:
    rng = random.Random(5)
    burst_start = START + 2 * 3600 + 55
    times = calm_stream(rng, hours=3)
    times += poisson_arrivals(rng, burst_start, burst_start + 300, rate_per_second=3.0)
    [spike] = replay(SpikeDetector(), times, rng)
    assert spike.detected_at - burst_start <= 60


def test_small_bursts_under_the_minimum_volume_do_not_alert() -> None:
    rng = random.Random(3)
    quiet = list(poisson_arrivals(rng, START, START + 3 * 3600, rate_per_second=0.01))
    burst_start = START + 2 * 3600
    quiet += [burst_start + i for i in range(15)]  # 15 posts in a minute, from ~0.6 usually
    assert replay(SpikeDetector(), quiet, rng) == []


def test_a_series_needs_history_before_it_alerts() -> None:
    rng = random.Random(2)
    times = [START + i * 0.1 for i in range(2000)]  # busy from the first second
    assert replay(SpikeDetector(), times, rng) == []


def test_daily_peak_learned_the_day_before_does_not_alert() -> None:
    rng = random.Random(13)
    times: list[float] = []
    for day in range(2):
        midnight = START + day * DAY
        times += poisson_arrivals(rng, midnight, midnight + 12 * 3600, 0.2)
        times += poisson_arrivals(rng, midnight + 12 * 3600, midnight + 13 * 3600, 1.0)
        times += poisson_arrivals(rng, midnight + 13 * 3600, midnight + DAY, 0.2)
    spikes = replay(SpikeDetector(), times, rng)
    # The first noon peak is news; the second is the usual daily cycle.
    assert all(spike.detected_at < START + DAY for spike in spikes)


def test_one_alert_per_spike_and_a_new_one_after_it_ended() -> None:
    rng = random.Random(17)
    times = calm_stream(rng, hours=4)
    for burst_start in (START + 2 * 3600, START + 3 * 3600):
        times += poisson_arrivals(rng, burst_start, burst_start + 240, rate_per_second=3.0)
    spikes = replay(SpikeDetector(), times, rng)
    assert len(spikes) == 2
    assert spikes[1].detected_at - spikes[0].detected_at > 3000


def test_active_series_are_listed_until_the_spike_ends() -> None:
    detector = SpikeDetector(SpikeSettings(min_history_buckets=2, min_count=5))
    post = Post("e", "a", 0.5)
    for minute in range(3):
        detector.observe("acme", "negative", START + minute * 60, post)
    for i in range(30):
        detector.observe("acme", "negative", START + 180 + i, post)
    assert detector.active_series() == [("acme", "negative")]
    detector.observe("acme", "negative", START + 300, post)
    assert detector.active_series() == []


def test_poisson_tail() -> None:
    assert poisson_upper_tail(0, 3.0) == 1.0
    assert poisson_upper_tail(1, 2.0) == pytest.approx(1 - 2.718281828**-2)
    assert poisson_upper_tail(60, 30.0) < 1e-6 < poisson_upper_tail(45, 30.0)
    assert poisson_upper_tail(threshold_count(30.0, SpikeSettings()), 30.0) <= 1e-6


def test_state_survives_a_json_round_trip() -> None:
    rng = random.Random(19)
    detector = SpikeDetector()
    replay(detector, calm_stream(rng, hours=1), rng)
    restored = SpikeDetector()
    restored.restore(json.loads(json.dumps(detector.to_state())))
    assert restored.series == detector.series
