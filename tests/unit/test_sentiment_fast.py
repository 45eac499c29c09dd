"""The fast default model: static e5, features, the linear head and the cascade."""

from __future__ import annotations

import numpy as np
import pytest

from socialcrm.v1 import common_pb2, interaction_pb2
from socialcrm_sentiment.enrich import Enricher
from socialcrm_sentiment.fast import NEGATIVE, POSITIVE
from socialcrm_sentiment.features import HASHED_FEATURES, extract
from socialcrm_sentiment.linear import CLASSES, train_head
from tests.fixtures.sentiment_models import accurate, fast


def test_a_text_is_cut_into_the_same_tokens_every_time() -> None:
    table = fast().table
    rows = table.tokenize("Livraison rapide, merci beaucoup !")
    assert rows
    assert rows == table.tokenize("Livraison rapide, merci beaucoup !")
    assert table.tokenize("LIVRAISON") == table.tokenize("livraison")


def test_posts_become_unit_vectors_and_an_empty_post_zeros() -> None:
    vectors = fast().table.embed(["service client nul", "great app", ""])
    assert vectors.shape == (3, fast().table.dim)
    assert np.allclose(np.linalg.norm(vectors[:2], axis=1), 1.0, atol=1e-4)
    assert not vectors[2].any()


def test_features_of_a_batch() -> None:
    texts = ["Colis jamais arrivé 😡", "Thanks, great service!", ""]
    features = extract(texts, ["fr", "en", "en"], fast().table)
    assert features.dense.shape[0] == len(features) == 3
    assert set(features.rows.tolist()) == {0, 1, 2}  # every post has n-grams
    assert np.all(np.diff(features.rows) >= 0)
    assert features.columns.min() >= 0
    assert features.columns.max() < HASHED_FEATURES
    again = extract(texts, ["fr", "en", "en"], fast().table)
    assert np.array_equal(features.columns, again.columns)
    assert np.array_equal(features.dense, again.dense)


def test_the_head_learns_a_separable_toy_set_deterministically() -> None:
    texts = ["horrible nul", "neutre info", "super génial"] * 10
    labels = np.asarray([0, 1, 2] * 10)
    features = extract(texts, ["fr"] * len(texts), fast().table)
    first = train_head(features, labels, epochs=30)
    second = train_head(features, labels, epochs=30)
    assert np.array_equal(first.hashed_weights, second.hashed_weights)
    assert (first.probabilities(features).argmax(axis=1) == labels).all()


@pytest.mark.parametrize(
    ("text", "language", "label"),
    [
        ("Service client lamentable, trois semaines sans réponse", "fr", NEGATIVE),
        ("Colis jamais arrivé, c'est une honte", "fr", NEGATIVE),
        ("Franchement bravo à l'équipe, livraison rapide et soignée", "fr", POSITIVE),
        ("Merci beaucoup, super service !", "fr", POSITIVE),
        ("Worst customer service ever, still waiting for my refund", "en", NEGATIVE),
        ("Thanks a lot, the new app is really great", "en", POSITIVE),
    ],
)
def test_obvious_french_and_english_posts(text: str, language: str, label: int) -> None:
    reading = fast().read([text], [language])
    assert int(reading.labels[0]) == label
    assert bool(reading.scores[0] > 0) is (label == POSITIVE)


def test_a_batch_reads_like_its_posts_one_by_one() -> None:
    texts = ["Nul, remboursez-moi", "Great job!", "Le magasin ouvre à 9h"]
    together = fast().read(texts, ["fr", "en", "fr"])
    alone = [fast().read([t], [lang]) for t, lang in zip(texts, ["fr", "en", "fr"], strict=True)]
    assert together.labels.tolist() == [int(r.labels[0]) for r in alone]
    assert np.allclose(together.scores, [float(r.scores[0]) for r in alone], atol=1e-5)
    assert together.confidences.shape == (3,)
    assert ((1 / len(CLASSES) <= together.confidences) & (together.confidences <= 1)).all()


def post(text: str, followers: int = 100) -> interaction_pb2.Interaction:
    return interaction_pb2.Interaction(text=text, author=common_pb2.Author(followers=followers))


def test_the_cascade_sends_unsure_and_influential_posts_to_the_accurate_head() -> None:
    enricher = Enricher(fast(), accurate(), accurate_min_reach=0.6)
    texts = ["Merci beaucoup, super service !", "bof", "Colis jamais arrivé, honte"]
    confidences = fast().read(texts, ["fr"] * 3).confidences
    sent = [
        enricher.goes_to_accurate(text, reach=0.1, confidence=float(confidence))
        for text, confidence in zip(texts, confidences, strict=True)
    ]
    assert sent == [bool(c < enricher.unsure_below) for c in confidences]
    assert enricher.goes_to_accurate("un avis", reach=0.9, confidence=1.0)
    assert not enricher.goes_to_accurate("  ", reach=0.9, confidence=0.0)
    assert enricher.goes_to_accurate("un avis", reach=0.1, confidence=enricher.unsure_below / 2)


def test_an_influential_post_the_fast_head_is_sure_of_stays_on_the_fast_path() -> None:
    enricher = Enricher(fast(), accurate(), accurate_min_reach=0.6, influential_sure_above=0.8)
    texts = ["un avis"] * 3
    # Influential, sure / influential, unsure / small author, sure.
    assert enricher.to_accurate(texts, [0.9, 0.9, 0.1], [0.8, 0.79, 0.95]) == {1}
    assert not enricher.goes_to_accurate("un avis", reach=0.9, confidence=0.9)
    # Unsure enough for the cascade, an influential post is still read outside the share.
    enricher.cascade_max_share = 0.0
    assert enricher.to_accurate(["un avis"], [0.9], [enricher.unsure_below / 2]) == {0}


def test_the_cascade_share_is_counted_and_marked_in_the_model_version() -> None:
    enricher = Enricher(fast(), accurate(), accurate_min_reach=0.6)
    enriched = enricher.enrich_many(
        [post("Merci, livraison parfaite !"), post("Service nul", followers=250_000)]
    )
    assert (enricher.seen, enricher.sent) == (2, 1)
    assert enriched[0].enrichment.model_version == enricher.version
    care = accurate().care_head
    accurate_version = care.version if care is not None else accurate().head.version
    assert enriched[1].enrichment.model_version.endswith(accurate_version)
    polarities = [e.enrichment.polarity for e in enriched]
    assert polarities == [common_pb2.POLARITY_POSITIVE, common_pb2.POLARITY_NEGATIVE]


def test_without_the_accurate_head_nothing_is_sent() -> None:
    enricher = Enricher(fast())
    enriched = enricher.enrich_many([post("bof", followers=250_000)])
    assert enricher.sent == 0
    assert enriched[0].enrichment.model_version == enricher.version


def test_the_cascade_reads_at_most_its_share_of_unsure_posts_the_least_sure_first() -> None:
    enricher = Enricher(fast(), accurate(), accurate_min_reach=0.6, cascade_max_share=0.25)
    unsure = enricher.unsure_below / 2
    texts = ["un avis"] * 4
    # Four unsure posts, the third the least sure: a quarter of them is one post.
    confidences = [unsure, unsure, unsure / 2, unsure]
    assert enricher.to_accurate(texts, [0.1] * 4, confidences) == {2}
    # An influential author always goes, outside the share; the share carries over batches
    # of one post, so one in four is read whatever the batch size.
    assert enricher.to_accurate(["un avis"], [0.9], [1.0]) == {0}
    taken = [enricher.to_accurate(["un avis"], [0.1], [unsure]) for _ in range(8)]
    assert sum(len(t) for t in taken) == 2
    # Sure posts never go, whatever the share left.
    assert enricher.to_accurate(texts, [0.1] * 4, [1.0] * 4) == set()


def test_heavier_posts_win_where_the_labels_disagree() -> None:
    texts = ["bof"] * 6
    features = fast().features(texts, ["fr"] * len(texts))
    # Two read "bof" as negative, four as neutral: the class weights balance the two
    # classes, so the posts' own weights decide.
    labels = np.asarray([0, 0, 1, 1, 1, 1], dtype=np.int64)
    for heavier, expected in (([3, 3, 1, 1, 1, 1], 0), ([1, 1, 3, 3, 3, 3], 1)):
        weights = np.asarray(heavier, np.float32)
        head = train_head(features, labels, epochs=40, post_weights=weights)
        assert head.probabilities(features)[0].argmax() == expected
