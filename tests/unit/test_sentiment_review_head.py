"""The review head: posts of kind "review" are read by their own fast head (issue 28)."""

from __future__ import annotations

import copy

import numpy as np

from socialcrm.v1 import common_pb2, interaction_pb2
from socialcrm_sentiment.enrich import Enricher
from socialcrm_sentiment.fast import NEGATIVE, FastSentiment, StoredHead
from socialcrm_sentiment.features import extract
from socialcrm_sentiment.linear import LinearHead
from tests.fixtures.sentiment_models import accurate, fast


def with_review_head(bias: list[float], threshold: float = 0.5) -> FastSentiment:
    """The shipped model with a review head that reads every text by ``bias`` alone."""
    model = copy.copy(fast())
    head = LinearHead(
        np.zeros_like(fast().head.dense_weights),
        np.zeros_like(fast().head.hashed_weights),
        np.asarray(bias, np.float32),
    )
    model.review = StoredHead(head, threshold, {"version": "review-head-under-test"})
    return model


def test_the_features_of_some_rows_are_what_those_posts_alone_give() -> None:
    texts = ["Colis jamais arrivé", "Great product, works fine", "Le livre est arrivé hier"]
    languages = ["fr", "en", "fr"]
    some = extract(texts, languages, fast().table).take(np.asarray([0, 2]))
    alone = extract([texts[0], texts[2]], ["fr", "fr"], fast().table)
    assert np.array_equal(some.dense, alone.dense)
    assert np.array_equal(some.rows, alone.rows)
    assert np.array_equal(some.columns, alone.columns)
    assert np.allclose(some.values, alone.values)


def test_reviews_are_read_by_the_review_head_and_other_posts_by_the_posts_head() -> None:
    enricher = Enricher(with_review_head([5.0, 0.0, 0.0]))
    enriched = enricher.enrich_many(
        [
            interaction_pb2.Interaction(text="Merci, super service !", kind="review"),
            interaction_pb2.Interaction(text="Merci, super service !", kind="post"),
        ]
    )
    review, post = (e.enrichment for e in enriched)
    assert review.polarity == common_pb2.POLARITY_NEGATIVE  # the review head's bias alone
    assert review.model_version == enricher.review_version
    assert "review-head-under-test" in review.model_version
    assert post.polarity == common_pb2.POLARITY_POSITIVE
    assert post.model_version == enricher.version


def test_without_a_review_head_reviews_are_read_as_posts() -> None:
    model = copy.copy(fast())
    model.review = None
    enricher = Enricher(model)
    texts = ["Produit décevant, cassé au bout d'une semaine", "Très bon livre, je recommande"]
    as_reviews = enricher.enrich_many(
        [interaction_pb2.Interaction(text=t, kind="review") for t in texts]
    )
    as_posts = enricher.enrich_many([interaction_pb2.Interaction(text=t) for t in texts])
    assert [e.enrichment.sentiment_score for e in as_reviews] == [
        e.enrichment.sentiment_score for e in as_posts
    ]
    assert enricher.review_version == enricher.version


def test_a_review_is_unsure_under_the_review_heads_own_threshold() -> None:
    enricher = Enricher(with_review_head([0.0, 0.0, 0.0], threshold=0.95), accurate())
    confidence = (1 + enricher.unsure_below) / 2  # sure for the posts head
    assert not enricher.goes_to_accurate("un avis", reach=0.1, confidence=confidence)
    assert enricher.goes_to_accurate("un avis", reach=0.1, confidence=confidence, review=True)
    texts = ["un avis", "un avis"]
    assert enricher.to_accurate(texts, [0.1, 0.1], [confidence] * 2, reviews={1}) == {1}


def test_the_shipped_review_head_reads_obvious_reviews() -> None:
    review = fast().review
    assert review is not None
    texts = [
        "Livre ennuyeux, je me suis forcé à le finir. Je ne recommande pas.",
        "Arrived broken and the seller never answered. Avoid.",
    ]
    features = extract(texts, ["fr", "en"], fast().table)
    assert (review.head.probabilities(features).argmax(axis=1) == NEGATIVE).all()
