"""The models bench/sentiment.py reads the sets with: the service's own enrichment (fast
head, cascade), the e5 head alone, and plain scorers as baselines; and the demo mix."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from socialcrm.v1 import common_pb2, interaction_pb2
from socialcrm_bench.sentiment_sets import EvalSet, Labelled
from socialcrm_devstack.demo_stream import DemoStream
from socialcrm_sentiment.accurate import AccurateSentiment
from socialcrm_sentiment.enrich import Enricher, assess
from socialcrm_sentiment.evaluate import macro_f1 as multiclass_macro_f1
from socialcrm_sentiment.linear import CLASSES

BATCH = 500


@dataclass(frozen=True)
class Reading:
    scores: list[float]
    polarities: list[str]
    posts_per_second: float
    cascade_share: float


Model = Callable[[Sequence[Labelled]], Reading]


def _polarity_name(polarity: int) -> str:
    return common_pb2.Polarity.Name(polarity).split("_", 1)[1].lower()  # type: ignore[arg-type]


def through_service(enricher: Enricher, kind: str = "post") -> Model:
    """The service's enrichment of each text as an interaction of ``kind``, a batch at a
    time, language detection included."""

    def read(examples: Sequence[Labelled]) -> Reading:
        interactions = [interaction_pb2.Interaction(text=e.text, kind=kind) for e in examples]
        seen, sent = enricher.seen, enricher.sent
        started = time.process_time()
        enriched = []
        for start in range(0, len(interactions), BATCH):
            enriched += enricher.enrich_many(interactions[start : start + BATCH])
        seconds = time.process_time() - started
        return Reading(
            scores=[e.enrichment.sentiment_score for e in enriched],
            polarities=[_polarity_name(e.enrichment.polarity) for e in enriched],
            posts_per_second=len(examples) / max(seconds, 1e-9),
            cascade_share=(enricher.sent - sent) / max(enricher.seen - seen, 1),
        )

    return read


def accurate_alone(accurate: AccurateSentiment) -> Model:
    """The e5 head's reading: its score; a post is polar when the head is confident
    (P >= 0.9) or when the rules see a complaint, as the service's blend would do."""

    def read(examples: Sequence[Labelled]) -> Reading:
        started = time.process_time()
        scores = [accurate.score(e.text) for e in examples]
        seconds = time.process_time() - started
        polarities = [
            _polarity_name(
                assess(e.text, e.language, score, (common_pb2.POLARITY_NEUTRAL, 0.0)).polarity
            )
            for e, score in zip(examples, scores, strict=True)
        ]
        return Reading(scores, polarities, len(examples) / max(seconds, 1e-9), 1.0)

    return read


def care_head_alone(accurate: AccurateSentiment) -> Model:
    """The neutral-aware e5 head's reading (three classes: the most probable one)."""

    def read(examples: Sequence[Labelled]) -> Reading:
        care = accurate.care_head
        assert care is not None
        started = time.process_time()
        probabilities = [care.probabilities(accurate.embed(e.text)) for e in examples]
        seconds = time.process_time() - started
        polarities = [CLASSES[int(p.argmax())] for p in probabilities]
        scores = [float(p[2] - p[0]) for p in probabilities]
        return Reading(scores, polarities, len(examples) / max(seconds, 1e-9), 1.0)

    return read


def baseline(score: Callable[[str], float]) -> Model:
    def read(examples: Sequence[Labelled]) -> Reading:
        started = time.process_time()
        scores = [score(e.text) for e in examples]
        seconds = time.process_time() - started
        polarities = [
            "positive" if s >= 0.05 else "negative" if s <= -0.05 else "neutral" for s in scores
        ]
        return Reading(scores, polarities, len(examples) / max(seconds, 1e-9), 0.0)

    return read


def macro_f1(evaluated: EvalSet, examples: Sequence[Labelled], reading: Reading) -> float:
    truth = [e.label for e in examples]
    if evaluated.classes == 3:
        return multiclass_macro_f1(truth, reading.polarities)
    predicted = ["positive" if s >= 0 else "negative" for s in reading.scores]
    return multiclass_macro_f1(truth, predicted)


def demo_mix(size: int) -> list[interaction_pb2.Interaction]:
    """The demo stream's posts and authors (60 % French), as the service receives them."""
    stream = DemoStream(seed=17)
    interactions = []
    for _ in range(size):
        [tweet] = stream.tweet_event()["tweet_create_events"]
        user = tweet["user"]
        interactions.append(
            interaction_pb2.Interaction(
                text=tweet["text"],
                author=common_pb2.Author(
                    followers=user["followers_count"], verified=user["verified"]
                ),
            )
        )
    return interactions


def demo_mix_speed(enricher: Enricher, size: int) -> tuple[float, float]:
    """(posts per CPU-second, share sent to the accurate head) on the demo mix."""
    interactions = demo_mix(size)
    seen, sent = enricher.seen, enricher.sent
    started = time.process_time()
    for start in range(0, len(interactions), BATCH):
        enricher.enrich_many(interactions[start : start + BATCH])
    seconds = time.process_time() - started
    return size / max(seconds, 1e-9), (enricher.sent - sent) / max(enricher.seen - seen, 1)
