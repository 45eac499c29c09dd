"""Learned intent and urgency: the heads, their joint pass with the fast head, the enrichment."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from socialcrm.v1 import common_pb2, interaction_pb2
from socialcrm_sentiment.enrich import Enricher, assess
from socialcrm_sentiment.features import extract
from socialcrm_sentiment.hidden_layer import HiddenFit, train_hidden_head
from socialcrm_sentiment.intent import RULES as INTENT_RULES
from socialcrm_sentiment.linear import train_multilabel_head
from socialcrm_sentiment.understanding import (
    INTENTS,
    SIGNALS,
    JointHead,
    UnderstandingHeads,
    load_heads,
    rule_matches,
    save_heads,
    with_rules,
)
from socialcrm_sentiment.urgency import SIGNALS as SIGNAL_RULES
from tests.fixtures.sentiment_models import accurate, fast


@cache
def heads() -> UnderstandingHeads:
    return load_heads()


def test_the_rules_are_written_in_lower_case_for_the_lowercased_post() -> None:
    patterns = [pattern for _, pattern in INTENT_RULES] + list(SIGNAL_RULES.values())
    assert all(p.pattern == p.pattern.lower() and not p.flags & re.IGNORECASE for p in patterns)
    assert (
        rule_matches(["JE RÉSILIE, C'EST URGENT"]).tolist()
        == rule_matches(["je résilie, c'est urgent"]).tolist()
    )


def test_rule_matches_are_one_column_per_rule() -> None:
    matches = rule_matches(["je résilie", "le site est en panne, c'est urgent", "bonjour"])
    assert matches.shape == (3, 10)
    assert matches[0, 0] == 1  # the churn rule
    assert matches[1, 4 + SIGNALS.index("outage")] == 1
    assert matches[1, 4 + SIGNALS.index("explicit_urgency")] == 1
    assert not matches[2].any()


def test_the_multilabel_head_learns_several_labels_per_post_deterministically() -> None:
    texts = ["fumée et avocat", "fumée partout", "avocat prévenu", "bonne journée"] * 8
    targets = np.asarray([[1, 1], [1, 0], [0, 1], [0, 0]] * 8, dtype=np.float32)
    features = extract(texts, ["fr"] * len(texts), fast().table)
    first = train_multilabel_head(features, targets, epochs=40)
    second = train_multilabel_head(features, targets, epochs=40)
    assert np.array_equal(first.hashed_weights, second.hashed_weights)
    predicted = first.logits(features) > 0
    assert (predicted == (targets > 0)).all()


def test_the_shipped_heads_are_for_the_six_intents_and_six_signals() -> None:
    assert heads().metadata["intents"] == list(INTENTS)
    assert heads().metadata["signals"] == list(SIGNALS)
    assert heads().intent_offsets.shape == heads().urgency_thresholds.shape == (6,)
    # Offsets and thresholds chosen on held-out readings, which it reports.
    assert "intent:complaint" in heads().metadata["held_out"]


def test_the_joint_pass_reads_as_the_heads_one_by_one() -> None:
    texts = ["Colis jamais arrivé, remboursez-moi", "Great job!", "Vous ouvrez dimanche ?"]
    features = fast().features(texts, ["fr", "en", "fr"])
    joint = JointHead(fast().head, heads())
    probabilities, together = joint.read(with_rules(features, texts))
    assert np.allclose(probabilities, fast().head.probabilities(features), atol=1e-5)
    alone = heads().read(with_rules(features, texts))
    assert together.intents.tolist() == alone.intents.tolist()
    assert together.signals == alone.signals


@pytest.mark.parametrize(
    ("text", "intent", "signal"),
    [
        ("Je résilie mon abonnement, je passe chez la concurrence", "churn_threat", None),
        ("Toujours pas livré après deux semaines, c'est inadmissible", "complaint", None),
        ("Vous ouvrez à quelle heure dimanche ?", "question", None),
        ("Combien coûte l'abonnement fibre ?", "purchase_intent", None),
        ("Thanks so much, the team was brilliant!", "praise", None),
        ("Il y a de la fumée qui sort du chargeur, ça sent le brûlé", "complaint", "safety"),
        ("Plus d'internet depuis ce matin, tout le quartier est coupé", "complaint", "outage"),
        ("I want to speak to a manager right now", "complaint", "escalation_request"),
    ],
)
def test_obvious_posts_are_understood(text: str, intent: str, signal: str | None) -> None:
    understanding = heads().read(with_rules(fast().features([text], ["fr"]), [text]))
    assert INTENTS[int(understanding.intents[0])] == intent
    if signal is not None:
        assert signal in understanding.signals[0]


def test_the_learned_labels_reach_the_enrichment() -> None:
    enricher = Enricher(fast(), understanding=heads())
    [enriched] = enricher.enrich_many(
        [interaction_pb2.Interaction(text="Il y a de la fumée qui sort du chargeur !")]
    )
    assert enriched.enrichment.model_version == enricher.version
    assert heads().version in enricher.version
    assert "safety" in enriched.enrichment.urgency_signals
    assert enriched.enrichment.urgency == pytest.approx(0.9)
    assert enriched.enrichment.polarity == common_pb2.POLARITY_NEGATIVE
    assert enricher.enrich_many([]) == []


def test_learned_labels_replace_the_rules_for_intent_and_urgency_only() -> None:
    understood = (common_pb2.INTENT_QUESTION, ["fraud", "outage"])
    reading = (common_pb2.POLARITY_POSITIVE, 0.7)
    assessment = assess(
        "Super produit, je recommande", "fr", reading=reading, understood=understood
    )
    assert assessment.intent == common_pb2.INTENT_QUESTION
    assert assessment.signals == ["fraud", "outage"]
    assert assessment.urgency == pytest.approx(0.8)  # fraud 0.7 + 0.1 for the second signal
    # The learned signals route the post; they do not make a review the rules find clean
    # negative (they misread reviews and tweets as problems).
    assert assessment.polarity == common_pb2.POLARITY_POSITIVE
    assert assessment.score == pytest.approx(0.7)


def test_the_fast_reading_keeps_its_polarity_where_the_rules_see_a_problem() -> None:
    no_signals: list[str] = []
    understood = (common_pb2.INTENT_OTHER, no_signals)
    reading = (common_pb2.POLARITY_NEUTRAL, 0.1)
    assessment = assess("Mon compte est piraté", "fr", reading=reading, understood=understood)
    assert assessment.intent == common_pb2.INTENT_OTHER
    assert assessment.signals == []
    assert (assessment.polarity, assessment.score) == reading
    # Without the fast model, the lexicons read it and the rules' problem makes it negative.
    lexicon = assess("Mon compte est piraté", "fr")
    assert lexicon.polarity == common_pb2.POLARITY_NEGATIVE
    assert lexicon.score < 0


def test_the_cascade_mixes_the_neutral_aware_head_into_unsure_posts() -> None:
    care = accurate().care_head
    assert care is not None
    enricher = Enricher(fast(), accurate(), accurate_min_reach=0.6, understanding=heads())
    assert enricher.unsure_below == care.threshold
    text = "Vous ouvrez à quelle heure dimanche ?"
    probabilities = care.probabilities(accurate().embed(text))
    assert probabilities.shape == (3,)
    assert float(probabilities.sum()) == pytest.approx(1.0, abs=1e-5)
    [influential] = enricher.enrich_many(
        [interaction_pb2.Interaction(text=text, author=common_pb2.Author(followers=250_000))]
    )
    assert influential.enrichment.model_version.endswith(care.version)
    assert enricher.sent == 1


def test_the_hidden_layer_head_is_seeded_and_learns_what_one_word_does_not_say() -> None:
    texts = ["livraison rapide", "livraison en retard", "prix du forfait ?", "merci"] * 6
    labels = np.asarray([4, 2, 1, 4] * 6, dtype=np.int64)
    features = extract(texts, ["fr"] * len(texts), fast().table)
    fit = HiddenFit(epochs=60, hidden=8)
    first = train_hidden_head(features, labels, classes=len(INTENTS), fit=fit)
    second = train_hidden_head(features, labels, classes=len(INTENTS), fit=fit)
    assert np.array_equal(first.hidden.weights_in, second.hidden.weights_in)
    assert (first.logits(features).argmax(axis=1) == labels).all()


def test_heads_with_a_hidden_layer_are_saved_and_read_back(tmp_path: Path) -> None:
    saved = tmp_path / "heads.npz"
    save_heads(saved, heads())
    again = load_heads(saved)
    assert (again.intent_hidden is None) == (heads().intent_hidden is None)
    texts = ["Vous ouvrez à quelle heure dimanche ?", "Je résilie"]
    features = with_rules(fast().features(texts, ["fr", "fr"]), texts)
    assert np.allclose(again.intent_logits(features), heads().intent_logits(features), atol=1e-3)
