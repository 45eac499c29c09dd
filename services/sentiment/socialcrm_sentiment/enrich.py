"""Enrichment of an interaction (pure logic once the models are loaded).

Language (lingua), sentiment (VADER in English, the French lexicon with negation and
sarcasm cues), intent and urgency (bilingual rules), author reach and post virality.
"""

from __future__ import annotations

from dataclasses import dataclass

from socialcrm import contract
from socialcrm.v1 import common_pb2, enriched_pb2, interaction_pb2
from socialcrm_sentiment.intent import classify_intent
from socialcrm_sentiment.language import detect_language
from socialcrm_sentiment.reach import author_reach, virality
from socialcrm_sentiment.sentiment import NEUTRAL_BAND, score_sentiment
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


def assess(text: str, language: str) -> Assessment:
    """Sentiment, intent and urgency together: a complaint or a problem signal is
    negative even when the words are polite."""
    polarity, score = score_sentiment(text, language)
    intent = classify_intent(text, polarity)
    urgency, signals = urgency_of(text)
    if signals and intent == common_pb2.INTENT_PRAISE:
        intent = common_pb2.INTENT_COMPLAINT
    if intent in _PROBLEM_INTENTS or signals:
        polarity, score = common_pb2.POLARITY_NEGATIVE, min(score, -NEUTRAL_BAND)
    return Assessment(polarity, score, intent, urgency, signals)


def enrich(interaction: interaction_pb2.Interaction) -> enriched_pb2.EnrichedInteraction:
    text = interaction.text
    language, language_confidence = detect_language(text, interaction.language_hint)
    assessment = assess(text, language)
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
            reach=author_reach(interaction.author),
            virality=virality(interaction.engagement, max(age, 0)),
            model_version=MODEL_VERSION,
        ),
    )
