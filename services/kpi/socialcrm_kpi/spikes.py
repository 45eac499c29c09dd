"""Viral-spike detection per brand and topic (pure logic: no I/O).

Each series (brand, topic) counts events in fixed event-time buckets. Its baseline
is the larger of an EWMA of past bucket counts and the EWMA of the buckets at the
same hour of the day (learned across days), so the daily cycle's usual peaks do not
alert. On every event, the count of the current bucket, partial as it is, is tested
against the baseline with the Poisson upper tail P(X >= count | baseline): the
count only grows within the bucket, so a spike is reported as soon as the evidence
suffices, not when the bucket ends. A series alerts once per spike; the spike ends
with the first bucket that closes below the alert threshold. Spike buckets enter the
baseline capped at the baseline's threshold, so a spike does not teach the baseline
that spikes are normal.

Authors are known only by an opaque key (``counting.AuthorPseudonyms``): the state holds
no handle, and a spike names each top author by the event id of their widest-reach post,
which the CRM resolves for as long as the person is not erased.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

HOURS_PER_DAY = 24


@dataclass(frozen=True)
class SpikeSettings:
    bucket_seconds: int = 60
    # Weight of the newest bucket in the recent baseline, and in the hour-of-day baseline.
    recent_alpha: float = 0.1
    daily_alpha: float = 0.05
    # Buckets a series must have seen before it may alert.
    min_history_buckets: int = 15
    # Fewest events in a bucket that can make a spike, whatever the baseline.
    min_count: int = 20
    # A bucket count whose Poisson upper tail is at most this is a spike.
    max_p_value: float = 1e-6
    # Lowest baseline (events per bucket): a near-silent series still needs a real burst.
    baseline_floor: float = 1.0
    top_n: int = 5


@dataclass(frozen=True)
class Post:
    event_id: str
    # Opaque key of the author (never a handle); empty for an anonymous author.
    author: str
    reach: float


@dataclass(frozen=True)
class Spike:
    brand: str
    topic: str
    bucket_start: int
    detected_at: float
    count: int
    baseline: float
    p_value: float
    top_posts: tuple[Post, ...]
    # (event id of the author's widest-reach post, reach), widest first.
    top_authors: tuple[tuple[str, float], ...]

    @property
    def score(self) -> float:
        """Evidence strength: -log10 of the p-value."""
        return -math.log10(max(self.p_value, 1e-300))

    @property
    def z_score(self) -> float:
        return (self.count - self.baseline) / math.sqrt(self.baseline)


def poisson_upper_tail(count: int, mean: float) -> float:
    """P(X >= count) for X ~ Poisson(mean)."""
    if count <= 0:
        return 1.0
    if count <= mean:
        # Only counts above the mean matter to detection; the exact value does not.
        return min(1.0, 1.0 - _poisson_cdf(count - 1, mean))
    log_term = -mean + count * math.log(mean) - math.lgamma(count + 1)
    total, term, k = 0.0, math.exp(log_term), count
    while term > total * 1e-12 and k < count + 100_000:
        total += term
        k += 1
        term *= mean / k
    return min(1.0, total)


def _poisson_cdf(count: int, mean: float) -> float:
    term = math.exp(-mean)
    total = term
    for k in range(1, count + 1):
        term *= mean / k
        total += term
    return total


def threshold_count(mean: float, settings: SpikeSettings) -> int:
    """Smallest count that is a spike against ``mean``."""
    count = max(settings.min_count, math.ceil(mean))
    while poisson_upper_tail(count, mean) > settings.max_p_value:
        count += max(1, int(math.sqrt(mean)) // 4)
    return count


@dataclass
class Series:
    """State of one (brand, topic) series."""

    bucket_start: int | None = None
    count: int = 0
    level: float = 0.0
    buckets_seen: int = 0
    hourly: list[float | None] = field(default_factory=lambda: [None] * HOURS_PER_DAY)
    active: bool = False
    top_posts: list[Post] = field(default_factory=list)
    # Author key -> (event id of their widest-reach post, reach).
    top_authors: dict[str, tuple[str, float]] = field(default_factory=dict)

    def baseline(self, bucket_start: int, settings: SpikeSettings) -> float:
        usual = self.hourly[_hour_of(bucket_start)]
        return max(settings.baseline_floor, self.level, usual or 0.0)


def _hour_of(epoch_seconds: float) -> int:
    return int(epoch_seconds // 3600) % HOURS_PER_DAY


class SpikeDetector:
    def __init__(self, settings: SpikeSettings | None = None) -> None:
        self.settings = settings or SpikeSettings()
        self.series: dict[tuple[str, str], Series] = {}

    def observe(self, brand: str, topic: str, at: float, post: Post) -> Spike | None:
        """Count one event of the series at event time ``at``; a Spike when it starts one."""
        settings = self.settings
        series = self.series.setdefault((brand, topic), Series())
        bucket = int(at // settings.bucket_seconds) * settings.bucket_seconds
        if series.bucket_start is None:
            series.bucket_start = bucket
        elif bucket > series.bucket_start:
            self._roll(series, bucket)
        elif bucket < series.bucket_start:
            return None  # older than the current bucket: its bucket was already judged
        series.count += 1
        _keep_top(series, post, settings.top_n)
        if series.active or series.buckets_seen < settings.min_history_buckets:
            return None
        if series.count < settings.min_count:
            return None
        baseline = series.baseline(bucket, settings)
        p_value = poisson_upper_tail(series.count, baseline)
        if p_value > settings.max_p_value:
            return None
        series.active = True
        authors = sorted(series.top_authors.values(), key=lambda item: (-item[1], item[0]))
        return Spike(
            brand=brand,
            topic=topic,
            bucket_start=bucket,
            detected_at=at,
            count=series.count,
            baseline=baseline,
            p_value=p_value,
            top_posts=tuple(series.top_posts),
            top_authors=tuple(authors[: settings.top_n]),
        )

    def active_series(self) -> list[tuple[str, str]]:
        return sorted(key for key, series in self.series.items() if series.active)

    def _roll(self, series: Series, bucket: int) -> None:
        """Close the current bucket (and the empty ones up to ``bucket``) into the baseline."""
        settings = self.settings
        assert series.bucket_start is not None
        closing, count = series.bucket_start, series.count
        empty_buckets = (bucket - closing) // settings.bucket_seconds - 1
        baseline = series.baseline(closing, settings)
        threshold = threshold_count(baseline, settings)
        if count < threshold:
            series.active = False
        # A spike enters the baseline capped, so the baseline does not learn it.
        self._learn(series, closing, min(count, threshold))
        # Empty buckets: at most a day of them matters to the baselines.
        for index in range(min(empty_buckets, HOURS_PER_DAY * 3600 // settings.bucket_seconds)):
            self._learn(series, closing + (index + 1) * settings.bucket_seconds, 0)
        if empty_buckets:
            series.active = False
        series.bucket_start = bucket
        series.count = 0
        series.top_posts = []
        series.top_authors = {}

    def _learn(self, series: Series, bucket_start: int, count: float) -> None:
        settings = self.settings
        if series.buckets_seen == 0:
            series.level = count
        else:
            series.level += settings.recent_alpha * (count - series.level)
        hour = _hour_of(bucket_start)
        usual = series.hourly[hour]
        series.hourly[hour] = (
            count if usual is None else usual + settings.daily_alpha * (count - usual)
        )
        series.buckets_seen += 1

    def to_state(self) -> dict[str, Any]:
        """JSON-compatible state (baselines, open buckets), restored by ``restore``."""
        return {
            f"{brand}\x1f{topic}": {
                "bucket_start": s.bucket_start,
                "count": s.count,
                "level": s.level,
                "buckets_seen": s.buckets_seen,
                "hourly": s.hourly,
                "active": s.active,
                "top_posts": [[p.event_id, p.author, p.reach] for p in s.top_posts],
                "top_authors": {k: list(v) for k, v in s.top_authors.items()},
            }
            for (brand, topic), s in self.series.items()
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        self.series = {}
        for key, s in state.items():
            brand, topic = key.split("\x1f", 1)
            self.series[(brand, topic)] = Series(
                bucket_start=s["bucket_start"],
                count=s["count"],
                level=s["level"],
                buckets_seen=s["buckets_seen"],
                hourly=list(s["hourly"]),
                active=s["active"],
                top_posts=[Post(e, a, r) for e, a, r in s["top_posts"]],
                # States written before authors were opaque held a bare reach: dropped.
                top_authors={
                    k: (v[0], v[1]) for k, v in s["top_authors"].items() if isinstance(v, list)
                },
            )


def _keep_top(series: Series, post: Post, top_n: int) -> None:
    posts = series.top_posts
    if len(posts) < top_n or post.reach > posts[-1].reach:
        posts.append(post)
        posts.sort(key=lambda p: -p.reach)
        del posts[top_n:]
    if post.author:
        authors = series.top_authors
        if post.reach > authors.get(post.author, ("", -1.0))[1]:
            authors[post.author] = (post.event_id, post.reach)
        if len(authors) > 4 * top_n:
            kept = sorted(authors.items(), key=lambda item: -item[1][1])[:top_n]
            series.top_authors = dict(kept)
