"""Wiring of the sentiment service: social.interactions.v1 in, social.enriched.v1 out."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Literal

from aiokafka import ConsumerRecord
from fastapi import FastAPI
from google.protobuf.message import Message
from prometheus_client import Counter
from pydantic import Field

from socialcrm import contract
from socialcrm.http import TopicsReady, create_app
from socialcrm.kafka import EventProducer, StreamProcessor
from socialcrm.settings import ServiceSettings
from socialcrm.v1 import interaction_pb2
from socialcrm_sentiment.accurate import AccurateSentiment
from socialcrm_sentiment.enrich import Enricher, enrich
from socialcrm_sentiment.fast import FastSentiment

POSTS_READ = Counter(
    "socialcrm_sentiment_posts_total",
    "Posts whose sentiment was read, by the model that read it.",
    ["model"],
)


class SentimentSettings(ServiceSettings):
    service_name: str = "sentiment"
    http_port: int = 8002
    sentiment_model: Literal["fast", "lexicon"] = Field(
        "fast",
        description="Default reading of every post: the fast linear head (static e5 + "
        "n-grams + lexicon score) or the lexicons alone.",
    )
    sentiment_accurate_for: Literal["none", "influential", "all"] = Field(
        "influential",
        description="Posts also read by the accurate model (e5 embeddings, about 30 posts/s/"
        "core): none, influential authors (and, with the fast model, the posts it is least "
        "sure of), or all.",
    )
    sentiment_accurate_min_reach: float = Field(
        0.6,
        ge=0.0,
        le=1.0,
        description="Author reach from which a post counts as influential (0.6: about "
        "16,000 followers, or 1,000 and verified).",
    )


def build_app(settings: SentimentSettings) -> FastAPI:
    accurate = AccurateSentiment() if settings.sentiment_accurate_for != "none" else None
    min_reach = (
        settings.sentiment_accurate_min_reach
        if settings.sentiment_accurate_for == "influential"
        else 0.0
    )
    enricher = (
        Enricher(FastSentiment(), accurate, min_reach)
        if settings.sentiment_model == "fast"
        else None
    )

    def enrich_batch(
        interactions: Sequence[interaction_pb2.Interaction],
    ) -> list[Sequence[Message]]:
        if enricher is None:
            POSTS_READ.labels("lexicon").inc(len(interactions))
            return [[enrich(i, accurate, min_reach)] for i in interactions]
        sent_before = enricher.sent
        enriched = enricher.enrich_many(interactions)
        sent = enricher.sent - sent_before
        POSTS_READ.labels("fast").inc(len(interactions) - sent)
        POSTS_READ.labels("fast+accurate").inc(sent)
        return [[e] for e in enriched]

    # Enrichment is CPU-bound (a fetch of 500 posts with the cascade takes seconds): run it
    # off the event loop, so the consumer's heartbeats and the HTTP probes still answer.
    # On the loop, a loaded machine saw sentiment put out of its group mid-batch, the batch
    # handled again, and /metrics time out.
    async def handle(
        interaction: interaction_pb2.Interaction, _: ConsumerRecord[bytes, bytes]
    ) -> Sequence[Message]:
        return (await asyncio.to_thread(enrich_batch, [interaction]))[0]

    async def handle_batch(
        batch: Sequence[tuple[interaction_pb2.Interaction, ConsumerRecord[bytes, bytes]]],
    ) -> Sequence[Sequence[Message]]:
        return await asyncio.to_thread(enrich_batch, [interaction for interaction, _ in batch])

    producer = EventProducer(settings)
    processor = StreamProcessor(
        settings=settings,
        group_id=settings.service_name,
        input_type=interaction_pb2.Interaction,
        handler=handle,
        batch_handler=handle_batch,
        producer=producer,
    )
    return create_app(
        settings,
        [producer, processor],
        before_start=[TopicsReady(settings, contract.all_topics())],
        title="Social CRM sentiment",
        description="Enriches `social.interactions.v1` into `social.enriched.v1`.",
    )
