"""Wiring of the sentiment service: social.interactions.v1 in, social.enriched.v1 out."""

from __future__ import annotations

from fastapi import FastAPI

from socialcrm import contract
from socialcrm.kafka.processor import StreamProcessor
from socialcrm.kafka.producer import EventProducer
from socialcrm.runtime import TopicsReady, create_app
from socialcrm.v1 import interaction_pb2
from socialcrm_sentiment.accurate import AccurateSentiment
from socialcrm_sentiment.enrich import Enricher
from socialcrm_sentiment.fast import FastSentiment
from socialcrm_sentiment.handlers import SentimentHandler
from socialcrm_sentiment.settings import SentimentSettings
from socialcrm_sentiment.understanding import load_heads


def build_handler(settings: SentimentSettings) -> SentimentHandler:
    """The handler with the models ``settings`` ask for, loaded."""
    accurate = AccurateSentiment() if settings.sentiment_accurate_for != "none" else None
    min_reach = (
        settings.sentiment_accurate_min_reach
        if settings.sentiment_accurate_for == "influential"
        else 0.0
    )
    enricher = (
        Enricher(
            FastSentiment(),
            accurate,
            min_reach,
            cascade_max_share=settings.sentiment_cascade_max_share,
            influential_sure_above=settings.sentiment_influential_sure_above,
            understanding=load_heads(),
        )
        if settings.sentiment_model == "fast"
        else None
    )
    return SentimentHandler(enricher, accurate, min_reach)


def build_app(settings: SentimentSettings) -> FastAPI:
    handler = build_handler(settings)
    producer = EventProducer(settings)
    processor = StreamProcessor(
        settings=settings,
        group_id=settings.service_name,
        input_type=interaction_pb2.Interaction,
        handler=handler.handle,
        batch_handler=handler.handle_batch,
        producer=producer,
    )
    return create_app(
        settings,
        [producer, processor],
        before_start=[TopicsReady(settings, contract.all_topics())],
        title="Social CRM sentiment",
        description="Enriches `social.interactions.v1` into `social.enriched.v1`.",
    )
