"""The accurate option: the e5 head, how it blends with the lexicons, and who gets it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from socialcrm import contract
from socialcrm.v1 import common_pb2, interaction_pb2
from socialcrm_sentiment.enrich import MODEL_VERSION, enrich
from socialcrm_sentiment.sentiment import blend_accurate
from tests.fixtures.sentiment_models import accurate


@pytest.mark.parametrize(
    ("text", "positive"),
    [
        ("Service client lamentable, trois semaines sans réponse", False),
        ("Franchement bravo à l'équipe, livraison rapide et soignée", True),
        ("Worst customer service ever, still waiting for my refund", False),
        ("Thanks a lot, the new app is really great", True),
    ],
)
def test_the_head_reads_clear_french_and_english(text: str, positive: bool) -> None:
    assert (accurate().score(text) > 0) is positive


@pytest.mark.parametrize(
    ("lexicon", "head", "blended"),
    [
        (0.5, -0.4, 0.5),  # polar post: the more confident reading wins
        (-0.3, 0.6, 0.6),
        (0.0, 0.5, 0.0),  # neutral-looking post, head unsure: stays neutral
        (0.05, -0.9, -0.9),  # neutral-looking post, head confident: polar
    ],
)
def test_blend(lexicon: float, head: float, blended: float) -> None:
    assert blend_accurate(lexicon, head) == blended


def post(followers: int) -> interaction_pb2.Interaction:
    now = contract.timestamp(datetime.now(UTC))
    return interaction_pb2.Interaction(
        header=common_pb2.EventHeader(event_id="e1", occurred_at=now, ingested_at=now),
        text="Le produit est arrivé cassé et personne ne répond au téléphone",
        author=common_pb2.Author(followers=followers),
    )


def test_only_influential_authors_get_the_accurate_model() -> None:
    anonymous = enrich(post(120), accurate(), accurate_min_reach=0.6).enrichment
    influential = enrich(post(250_000), accurate(), accurate_min_reach=0.6).enrichment
    assert anonymous.model_version == MODEL_VERSION
    assert influential.model_version == f"{MODEL_VERSION}+{accurate().head.version}"
    assert influential.polarity == anonymous.polarity == common_pb2.POLARITY_NEGATIVE
    head_score = accurate().score(post(0).text)
    assert influential.sentiment_score == pytest.approx(head_score)
    assert anonymous.sentiment_score != pytest.approx(head_score)
