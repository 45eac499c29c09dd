"""The sentiment service's stream handler, without a broker: one enriched interaction per
interaction, in order, counted by the model that read it."""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka import ConsumerRecord
from google.protobuf.message import Message
from prometheus_client import REGISTRY

from socialcrm import contract
from socialcrm.v1 import common_pb2, enriched_pb2, interaction_pb2
from socialcrm_sentiment.enrich import MODEL_VERSION, Enricher
from socialcrm_sentiment.handlers import SentimentHandler
from tests.fixtures import events
from tests.fixtures.sentiment_models import accurate, fast

TOPIC = contract.topic_of(interaction_pb2.Interaction)


def posts_read(model: str) -> float:
    return REGISTRY.get_sample_value("socialcrm_sentiment_posts_total", {"model": model}) or 0.0


def post(text: str, followers: int = 100) -> interaction_pb2.Interaction:
    return events.interaction(text=text, author=common_pb2.Author(followers=followers))


def enriched_of(outputs: Sequence[Sequence[Message]]) -> list[enriched_pb2.EnrichedInteraction]:
    """The one enriched interaction of each record's outputs."""
    enriched = [output for [output] in outputs]
    assert all(isinstance(e, enriched_pb2.EnrichedInteraction) for e in enriched)
    return [e for e in enriched if isinstance(e, enriched_pb2.EnrichedInteraction)]


def record_of(item: interaction_pb2.Interaction) -> ConsumerRecord[bytes, bytes]:
    value, key = contract.encode(item), contract.key_of(item)
    return ConsumerRecord(TOPIC, 0, 0, 0, 0, key, value, None, len(key), len(value), ())


def test_without_the_fast_model_the_lexicons_read_every_post() -> None:
    handler = SentimentHandler(enricher=None, accurate=None, accurate_min_reach=0.6)
    before = posts_read("lexicon")
    items = [post("Merci, livraison parfaite !"), post("Colis jamais arrivé, honte")]
    enriched = enriched_of(handler.enrich_batch(items))
    assert posts_read("lexicon") == before + 2
    assert [e.header.event_id for e in enriched] == [i.header.event_id for i in items]
    assert [e.enrichment.model_version for e in enriched] == [MODEL_VERSION] * 2


def test_the_cascade_share_is_counted_by_model() -> None:
    handler = SentimentHandler(Enricher(fast(), accurate(), 0.6), accurate(), 0.6)
    fast_before, sent_before = posts_read("fast"), posts_read("fast+accurate")
    handler.enrich_batch(
        [post("Merci, livraison parfaite !"), post("Service nul", followers=250_000)]
    )
    assert (posts_read("fast"), posts_read("fast+accurate")) == (fast_before + 1, sent_before + 1)


async def test_a_batch_gives_one_output_list_per_record_in_order() -> None:
    handler = SentimentHandler(Enricher(fast()), None, 0.6)
    items = [post("Super service"), post("Toujours en panne"), post("Où est ma commande ?")]
    batch = enriched_of(await handler.handle_batch([(item, record_of(item)) for item in items]))
    assert [e.header.event_id for e in batch] == [item.header.event_id for item in items]
    [alone] = enriched_of([await handler.handle(items[1], record_of(items[1]))])
    in_batch = batch[1]
    assert alone.header.event_id == in_batch.header.event_id
    assert alone.enrichment.polarity == in_batch.enrichment.polarity
