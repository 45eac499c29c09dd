"""Enrichment of an interaction (pure logic once the models are loaded).

Language (lingua), sentiment (VADER in English, the French lexicon with negation and
sarcasm cues; optionally the accurate e5 head), intent and urgency (bilingual rules),
author reach and post virality.
"""

from __future__ import annotations

from dataclasses import dataclass

from socialcrm import contract
from socialcrm.v1 import common_pb2, enriched_pb2, interaction_pb2
from socialcrm_sentiment.accurate import AccurateSentiment
from socialcrm_sentiment.intent import classify_intent
from socialcrm_sentiment.language import detect_language
from socialcrm_sentiment.reach import author_reach, virality
from socialcrm_sentiment.sentiment import (
    NEUTRAL_BAND,
    blend_accurate,
    polarity_of,
    score_sentiment,
)
from socialcrm_sentiment.urgency import urgency_of

MODEL_VERSION = "lingua-vader-lexfr-rules-1"
# Any urgency signal makes a post a problem whatever its words' tone ("please help").
_PROBLEM_INTENTS = frozenset({common_pb2.INTENT_COMPLAINT, common_pb2.INTENT_CHURN_THREAT})


@dataclass(frozen=True)
class Assessment:
    polarity: common_pb2.Polarity.ValueType
    score: float
    intent: common_pb2.Intent.ValueType
    urgency: float
    signals: list[str]


def assess(text: str, language: str, accurate_score: float | None = None) -> Assessment:
    """Sentiment, intent and urgency together: a complaint or a problem signal is
    negative even when the words are polite. ``accurate_score``: the accurate head's score
    of the text, when it was run."""
    polarity, score = score_sentiment(text, language)
    if accurate_score is not None:
        score = blend_accurate(score, accurate_score)
        polarity = polarity_of(score)
    intent = classify_intent(text, polarity)
    urgency, signals = urgency_of(text)
    if signals and intent == common_pb2.INTENT_PRAISE:
        intent = common_pb2.INTENT_COMPLAINT
    if intent in _PROBLEM_INTENTS or signals:
        polarity, score = common_pb2.POLARITY_NEGATIVE, min(score, -NEUTRAL_BAND)
    return Assessment(polarity, score, intent, urgency, signals)


def enrich(
    interaction: interaction_pb2.Interaction,
    accurate: AccurateSentiment | None = None,
    accurate_min_reach: float = 0.0,
) -> enriched_pb2.EnrichedInteraction:
    """``accurate``, when given, scores the posts of authors with at least
    ``accurate_min_reach`` (the lexicons score the others)."""
    text = interaction.text
    language, language_confidence = detect_language(text, interaction.language_hint)
    reach = author_reach(interaction.author)
    model_version = MODEL_VERSION
    accurate_score = None
    if accurate is not None and reach >= accurate_min_reach and text.strip():
        accurate_score = accurate.score(text)
        model_version = f"{MODEL_VERSION}+{accurate.head.version}"
    assessment = assess(text, language, accurate_score)
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
