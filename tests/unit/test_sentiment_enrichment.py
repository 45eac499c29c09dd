"""Enrichment on clear cases in French and English, and its accuracy on the seed sets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from socialcrm import contract
from socialcrm.v1 import common_pb2, interaction_pb2
from socialcrm_sentiment.enrich import assess, enrich
from socialcrm_sentiment.evaluate import evaluate
from socialcrm_sentiment.language import detect_language
from socialcrm_sentiment.reach import author_reach, virality
from socialcrm_sentiment.sentiment import score_sentiment
from socialcrm_sentiment.text import clean
from socialcrm_sentiment.understanding import rule_matches

NEGATIVE, NEUTRAL, POSITIVE = (
    common_pb2.POLARITY_NEGATIVE,
    common_pb2.POLARITY_NEUTRAL,
    common_pb2.POLARITY_POSITIVE,
)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Mon colis est en retard depuis une semaine", "fr"),
        ("My parcel is late and I am not happy with this", "en"),
        ("El pedido llegó roto y nadie contesta", "es"),
        ("Die Lieferung ist schon wieder zu spät", "de"),
    ],
)
def test_language_of_short_social_text(text: str, language: str) -> None:
    assert detect_language(text)[0] == language


def test_the_networks_language_tag_decides_very_short_texts() -> None:
    assert detect_language("ok merci", "fr")[0] == "fr"
    assert detect_language("ok thanks", "en-GB")[0] == "en"


def test_social_style_is_cleaned_before_scoring() -> None:
    assert clean("@acme nuuuul #ServiceClient https://t.co/x").split() == [
        "nul",
        "Service",
        "Client",
    ]


@pytest.mark.parametrize(
    ("text", "language", "polarity"),
    [
        ("Colis toujours pas livré, c'est une honte !", "fr", NEGATIVE),
        ("Merci, livraison parfaite !", "fr", POSITIVE),
        ("Le magasin ouvre à 9h", "fr", NEUTRAL),
        ("Service nuuuul #honte", "fr", NEGATIVE),  # elongation and hashtag
        ("Livraison rapide 😍", "fr", POSITIVE),  # emoji
        ("Ce n'est pas parfait du tout", "fr", NEGATIVE),  # negation
        ("pas terrible", "fr", NEGATIVE),
        ("Tres decu, service nul", "fr", NEGATIVE),  # typed without accents
        ("J'adore, c'est génial", "fr", POSITIVE),  # elisions
        ("Je n'suis pas content", "fr", NEGATIVE),  # elided "ne"
        ("Bravo, encore en panne", "fr", NEGATIVE),  # sarcasm cue
        ("Thanks for the quick refund, great service!", "en", POSITIVE),
        ("This is not good at all", "en", NEGATIVE),
        ("Great, delayed again", "en", NEGATIVE),  # sarcasm cue
        ("Worst service ever 😡", "en", NEGATIVE),
    ],
)
def test_sentiment_handles_social_style(text: str, language: str, polarity: int) -> None:
    assert score_sentiment(text, language)[0] == polarity


@pytest.mark.parametrize(
    ("text", "language", "intent"),
    [
        ("Je veux résilier mon abonnement", "fr", common_pb2.INTENT_CHURN_THREAT),
        ("Switching to your competitor if this isn't fixed", "en", common_pb2.INTENT_CHURN_THREAT),
        ("Combien coûte la livraison express ?", "fr", common_pb2.INTENT_PURCHASE_INTENT),
        ("Is the blue model in stock?", "en", common_pb2.INTENT_PURCHASE_INTENT),
        ("Remboursement jamais reçu, inadmissible", "fr", common_pb2.INTENT_COMPLAINT),
        ("How do I reset my password?", "en", common_pb2.INTENT_QUESTION),
        ("Accueil au top, bravo l'équipe", "fr", common_pb2.INTENT_PRAISE),
        ("Thanks for the quick refund, great service!", "en", common_pb2.INTENT_PRAISE),
        ("New store opening on Oxford Street", "en", common_pb2.INTENT_OTHER),
    ],
)
def test_intent(text: str, language: str, intent: int) -> None:
    assert assess(text, language).intent == intent


@pytest.mark.parametrize(
    ("text", "signal"),
    [
        ("Mon chargeur a pris feu cette nuit", "safety"),
        ("Mon avocat va vous contacter", "legal"),
        ("Internet en panne depuis ce matin", "outage"),
        ("Charged twice, this is fraud", "fraud"),
        ("URGENT please answer", "explicit_urgency"),
        ("I want to speak to a manager", "escalation_request"),
    ],
)
def test_urgency_signals(text: str, signal: str) -> None:
    found = assess(text, "fr").signals
    assert signal in found
    assert assess(text, "fr").urgency > 0


@pytest.mark.parametrize("language", ["fr", "en"])
def test_mixed_french_and_english_is_read_either_way(language: str) -> None:
    assessment = assess("Service client nul, worst experience ever 😡", language)
    assert assessment.polarity == NEGATIVE


def test_a_polite_post_about_a_problem_is_still_negative() -> None:
    assessment = assess("URGENT my card is blocked and I'm abroad, please help", "en")
    assert assessment.polarity == NEGATIVE
    assert "explicit_urgency" in assessment.signals


def test_reach_grows_with_followers_and_verification() -> None:
    small = common_pb2.Author(followers=120)
    large = common_pb2.Author(followers=250_000)
    verified = common_pb2.Author(followers=250_000, verified=True)
    assert 0 <= author_reach(small) < author_reach(large) < author_reach(verified) <= 1


def test_virality_grows_with_engagement_velocity() -> None:
    engagement = common_pb2.Engagement(likes=500, shares=200, replies=80)
    assert virality(engagement, age_seconds=600) > virality(engagement, age_seconds=86_400) > 0
    assert virality(common_pb2.Engagement(), age_seconds=60) == 0


def test_enrich_fills_every_field() -> None:
    now = datetime.now(UTC)
    interaction = interaction_pb2.Interaction(
        header=common_pb2.EventHeader(
            event_id="e1",
            occurred_at=contract.timestamp(now - timedelta(minutes=5)),
            ingested_at=contract.timestamp(now),
        ),
        text="Colis toujours pas livré, c'est une honte ! Je veux résilier",
        author=common_pb2.Author(followers=90_000, verified=True),
        engagement=common_pb2.Engagement(likes=40, shares=12),
    )
    enrichment = enrich(interaction).enrichment
    assert (enrichment.language, enrichment.polarity) == ("fr", NEGATIVE)
    assert enrichment.intent == common_pb2.INTENT_CHURN_THREAT
    assert enrichment.reach > 0.8
    assert enrichment.virality > 0
    assert enrichment.model_version


@pytest.mark.parametrize("language", ["fr", "en"])
def test_accuracy_on_the_seed_sets_stays_above_its_floor(language: str) -> None:
    # Measured 0.88-1.00 (see the service README); the floor leaves room for rule edits.
    scores = evaluate(language)
    assert scores.language_accuracy >= 0.95
    assert scores.sentiment_macro_f1 >= 0.8
    assert scores.intent_macro_f1 >= 0.8
    assert scores.urgency_precision >= 0.8
    assert scores.urgency_recall >= 0.8


@pytest.mark.parametrize(
    "text",
    [
        "Je résilie demain, le site est en panne et c'est urgent !",
        "Merci pour le remboursement rapide",
        "How much is the premium plan? I want to buy it asap",
        "My account was hacked, I'll call my lawyer",
        "bonjour",
    ],
)
@pytest.mark.parametrize(
    "reading", [(common_pb2.POLARITY_POSITIVE, 0.8), (common_pb2.POLARITY_NEGATIVE, -0.7)]
)
def test_rules_searched_once_for_the_batch_read_as_when_searched_again(
    text: str, reading: tuple[common_pb2.Polarity.ValueType, float]
) -> None:
    [matched] = (rule_matches([text]) > 0).tolist()
    assert assess(text, "fr", reading=reading, matched=matched) == assess(
        text, "fr", reading=reading
    )
