"""Enrichment of an interaction (pure logic).

Placeholder scoring for the walking skeleton: small French and English word lists.
Issue 4 replaces it with the real language detector, sentiment models, intent and
urgency classifiers; the contract of ``enrich`` stays.
"""

from __future__ import annotations

import math
import re

from socialcrm import contract
from socialcrm.v1 import common_pb2, enriched_pb2, interaction_pb2

MODEL_VERSION = "skeleton-lexicon-0"

_WORD = re.compile(r"[\w']+", re.UNICODE)
_FRENCH_MARKERS = frozenset(
    "le la les un une des et est pas je vous nous mon ma mes sur pour avec très depuis "
    "toujours jamais merci bonjour mais votre c'est j'ai".split()
)
_ENGLISH_MARKERS = frozenset(
    "the a an and is not i you we my on for with very since always never thanks hello "
    "but your it's i've this that".split()
)
_NEGATIVE = frozenset(
    "bad terrible awful broken worst angry refund never late cancelled hate useless "
    "nul honte arnaque panne retard cassé pire inadmissible jamais remboursement déçu".split()
)
_POSITIVE = frozenset(
    "great love thanks thank awesome perfect excellent happy good best "
    "merci super génial parfait excellent bravo top adore bien meilleur".split()
)


def detect_language(text: str, hint: str) -> tuple[str, float]:
    words = {w.lower() for w in _WORD.findall(text)}
    french, english = len(words & _FRENCH_MARKERS), len(words & _ENGLISH_MARKERS)
    if french == english:
        return (hint or "und"), 0.5
    return ("fr", 0.5 + 0.1 * french) if french > english else ("en", 0.5 + 0.1 * english)


def score_sentiment(text: str) -> tuple[common_pb2.Polarity.ValueType, float]:
    words = [w.lower() for w in _WORD.findall(text)]
    score = sum(w in _POSITIVE for w in words) - sum(w in _NEGATIVE for w in words)
    normalised = math.tanh(score / 2)
    if normalised <= -0.2:
        return common_pb2.POLARITY_NEGATIVE, normalised
    if normalised >= 0.2:
        return common_pb2.POLARITY_POSITIVE, normalised
    return common_pb2.POLARITY_NEUTRAL, normalised


def author_reach(author: common_pb2.Author) -> float:
    """Influence in [0, 1]: log-scaled followers, verified accounts weigh more."""
    base = min(math.log10(author.followers + 1) / 7, 1.0)
    return min(base + (0.2 if author.verified else 0.0), 1.0)


def enrich(interaction: interaction_pb2.Interaction) -> enriched_pb2.EnrichedInteraction:
    language, language_confidence = detect_language(interaction.text, interaction.language_hint)
    polarity, score = score_sentiment(interaction.text)
    intent = (
        common_pb2.INTENT_COMPLAINT
        if polarity == common_pb2.POLARITY_NEGATIVE
        else (
            common_pb2.INTENT_PRAISE
            if polarity == common_pb2.POLARITY_POSITIVE
            else common_pb2.INTENT_OTHER
        )
    )
    header = common_pb2.EventHeader()
    header.CopyFrom(interaction.header)
    header.producer = "sentiment"
    header.schema_version = contract.SCHEMA_VERSION
    return enriched_pb2.EnrichedInteraction(
        header=header,
        interaction=interaction,
        enrichment=enriched_pb2.Enrichment(
            language=language,
            language_confidence=min(language_confidence, 1.0),
            polarity=polarity,
            sentiment_score=score,
            intent=intent,
            reach=author_reach(interaction.author),
            model_version=MODEL_VERSION,
        ),
    )
